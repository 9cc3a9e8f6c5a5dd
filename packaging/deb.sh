#!/usr/bin/env bash
# Builds netsql's .deb: the release binary, then the man page and the completions the
# binary itself generates (never kept in the tree), then `cargo deb` packs them with the
# files [package.metadata.deb] in Cargo.toml lists. Prints the .deb's path.
#
# Usage: packaging/deb.sh [--no-build] [CARGO-DEB OPTIONS]   (--no-build: use the release
#        binary already built; e.g. --fast: quicker, larger compression)
# Needs cargo-deb: cargo install cargo-deb --locked
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "deb.sh: cargo-deb is not installed (cargo install cargo-deb --locked)" >&2
    exit 2
fi
target="${CARGO_TARGET_DIR:-target}"
if [ "${1:-}" = --no-build ]; then
    shift
else
    cargo build --release >&2
fi
bin="$target/release/netsql"
# cargo-deb reads assets under target/release/ from the real target directory.
out="$target/release/packaging"
rm -rf "$out"
mkdir -p "$out"
"$bin" man | gzip -9n > "$out/netsql.1.gz"
"$bin" completions bash > "$out/netsql.bash"
"$bin" completions zsh > "$out/_netsql"
"$bin" completions fish > "$out/netsql.fish"
cargo deb --no-build --output "$target/debian/" "$@" >&2
ls -t "$target"/debian/netsql_*.deb | head -1
