#!/usr/bin/env bash
# Writes link/startup.order: the functions netsql runs for its common one-shot queries,
# which build.rs asks the linker to lay out together at the start of .text.
#
# Why: a start touches ~3,000 functions (3.5 MB) scattered over 100 MB of code, so
# `SELECT 1` took ~430 page faults on code alone, each mapping a 64 KB window of which
# it used a few functions. Laid out together, they fill a few dozen windows.
#
# Run after a dependency update or a large change (a stale list only costs speed:
# symbols it names that no longer exist are ignored). Needs root, valgrind, iproute2 and
# python3; builds and profiles the release binary at $CARGO_TARGET_DIR (or target/).
#   link/startup-order.sh
set -euo pipefail
link=$(cd "$(dirname "$0")" && pwd)
target_dir=${CARGO_TARGET_DIR:-$link/../target}
netsql=${NETSQL:-$target_dir/release/netsql}
# The names must be those `cargo build --release` links: a binary that `cargo test`
# built has its dependencies' features unified with the dev-dependencies', and so
# other symbol hashes.
if [ -z "${NETSQL:-}" ]; then
    (cd "$link/.." && cargo build --release --bin netsql)
fi
[ -x "$netsql" ] || { echo "no netsql at $netsql" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 2; }

# A namespace with connections, a listener and their holders, so every query below
# finds rows (benches/namespace.sh removes them on exit).
here=$link/../benches
. "$here/namespace.sh"
hold_connections 200 20000

q="SELECT state, recv_q, send_q, local_address, local_port, remote_address, remote_port FROM sockets WHERE proto IN ('tcp','tcp6')"
statements=(
    "SELECT 1"
    "$q"
    "$q AND state = 'LISTEN'"
    "$q AND local_port = 20000"
    "SELECT state, count(*) FROM sockets GROUP BY state"
    "${q/SELECT /SELECT pid, program, }"
    "SELECT * FROM tcp_info"
    "SELECT * FROM sockets"
    "SELECT * FROM processes"
)
# A run valgrind cannot finish is left out: under it, rustix's check of the auxiliary
# vector faults, so the statements that read the clock tick (processes' times) fail.
i=0
for sql in "${statements[@]}"; do
    i=$((i + 1))
    ip netns exec "$ns" valgrind --tool=callgrind --demangle=no \
        --callgrind-out-file="$work/cg.$i.out" "$netsql" --format csv -e "$sql" \
        > /dev/null 2> "$work/cg.$i.err" || {
        echo "left out (callgrind failed): $sql" >&2
        rm -f "$work/cg.$i.out"
    }
done
[ -e "$work/cg.1.out" ] || { echo "callgrind failed on SELECT 1" >&2; exit 1; }

# Function names the profiles name, kept when the executable defines them as code
# (libc's and the loader's are not ours to place), sorted so a rewrite's diff shows
# what changed: what counts is that they are together, not their order.
nm --defined-only "$netsql" | awk '$2 ~ /^[tTwW]$/ { print $3 }' > "$work/defined"
python3 - "$work/defined" "$work"/cg.*.out > "$link/startup.order" <<'PY'
import re, sys
defined = set(open(sys.argv[1]).read().split())
seen, order = set(), []
for path in sys.argv[2:]:
    for line in open(path):
        m = re.match(r"c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
        if not m:
            continue
        # Callgrind marks recursion levels as NAME'2.
        name = re.sub(r"'\d+$", "", m.group(1))
        if name in defined and name not in seen:
            seen.add(name)
            order.append(name)
print("\n".join(sorted(order)))
PY
echo "link/startup.order: $(wc -l < "$link/startup.order") functions" >&2
