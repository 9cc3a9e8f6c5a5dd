//! What a packaged netsql ships, generated from clap: the bash completion (loaded and
//! driven the way bash-completion's own tests drive a completion function), the man page
//! (rendered by `man`, holding every option `--help` shows), and audits by name.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::RunExt;

const NETSQL: &str = env!("CARGO_BIN_EXE_netsql");

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names of the query files in `queries/<folder>` (a `-- name:` header, else the
/// file's stem): the witness for what completions offer.
fn query_files(folder: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("queries")
        .join(folder);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("query file");
            text.lines()
                .find_map(|l| l.strip_prefix("-- name:"))
                .map(|n| n.trim().to_string())
                .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect()
}

/// The tables docs/tables.md documents (a test in readme.rs holds it to the specs).
fn documented_tables() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tables.md"))
        .expect("docs/tables.md");
    doc.lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.strip_suffix('`'))
        .map(str::to_string)
        .collect()
}

/// Sources `script` (a bash completion file) in a fresh bash and asks its completion
/// function, as bash would on TAB, for each command line in `lines` (the last word being
/// the one completed). Returns each line's candidates.
pub fn complete(script: &Path, lines: &[&[&str]]) -> Vec<BTreeSet<String>> {
    let mut program = format!(
        "source {}\n\
         spec=$(complete -p netsql) || exit 3\n\
         fn=$(sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p' <<<\"$spec\")\n\
         [ -n \"$fn\" ] || exit 4\n\
         ask() {{\n\
           COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 ))\n\
           COMP_LINE=\"$*\"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()\n\
           \"$fn\" netsql \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
           printf '%s\\n' \"${{COMPREPLY[@]}}\"; echo '--end--'\n\
         }}\n",
        script.display()
    );
    for words in lines {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        program.push_str(&format!("ask {}\n", quoted.join(" ")));
    }
    let out = Command::new("bash").args(["-c", &program]).run();
    assert!(
        out.status.success(),
        "bash exited {:?} (3: complete -p netsql failed, 4: no -F function): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let replies: Vec<BTreeSet<String>> = text
        .split("--end--\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .take(lines.len())
        .collect();
    assert_eq!(replies.len(), lines.len(), "{text}");
    replies
}

/// Checks a bash completion script: it loads, and completes saved queries, formats,
/// tables, audits, metric queries, options and subcommands.
pub fn check_bash_completion(script: &Path) {
    let asked: [&[&str]; 8] = [
        &["netsql", "-q", "tcp_"],
        &["netsql", "--query", ""],
        &["netsql", "--format", ""],
        &["netsql", "--format", "n"],
        &["netsql", "snapshot", "--tables", ""],
        &["netsql", "audit", "wild"],
        &["netsql", "serve", "--metrics-only", ""],
        &["netsql", "do"],
    ];
    let replies = complete(script, &asked);
    let starting = |set: &BTreeSet<String>, prefix: &str| -> BTreeSet<String> {
        set.iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect()
    };
    let saved: BTreeSet<String> = query_files("")
        .into_iter()
        .chain(query_files("netstat"))
        .collect();
    let want: BTreeSet<String> = ["tcp_health", "tcp_state_summary"].map(String::from).into();
    assert_eq!(replies[0], want, "netsql -q tcp_<TAB>");
    assert_eq!(
        starting(&saved, "tcp_"),
        want,
        "the tcp_ files under queries/"
    );
    assert_eq!(replies[1], saved, "netsql --query <TAB>");
    let formats: BTreeSet<String> = ["table", "csv", "tsv", "json", "ndjson", "parquet", "arrow"]
        .map(String::from)
        .into();
    assert_eq!(replies[2], formats, "netsql --format <TAB>");
    assert_eq!(
        replies[3],
        ["ndjson".to_string()].into(),
        "netsql --format n<TAB>"
    );
    assert_eq!(replies[4], documented_tables(), "snapshot --tables <TAB>");
    assert_eq!(
        replies[5],
        starting(&query_files("audits"), "wild"),
        "netsql audit wild<TAB>"
    );
    assert!(
        replies[5].contains("wildcard_listeners"),
        "{:?}",
        replies[5]
    );
    assert_eq!(
        replies[6],
        query_files("metrics"),
        "serve --metrics-only <TAB>"
    );
    assert_eq!(replies[7], ["doctor".to_string()].into(), "netsql do<TAB>");
}

#[test]
fn bash_completion_completes_names_and_values() {
    if !common::have("bash") {
        return common::skip_or_fail("bash is not installed");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("netsql.bash");
    let out = Command::new(NETSQL).args(["completions", "bash"]).run();
    assert!(out.status.success());
    std::fs::write(&script, &out.stdout).expect("write the completion");
    check_bash_completion(&script);
}

#[test]
fn other_shells_get_a_completion_too() {
    // The shells the .deb ships a completion for (clap_complete's elvish script has no
    // value lists).
    for shell in ["zsh", "fish"] {
        let out = Command::new(NETSQL).args(["completions", shell]).run();
        assert!(out.status.success(), "{shell}");
        // The saved queries reach every shell's script, not only bash's.
        assert!(stdout(&out).contains("tcp_state_summary"), "{shell}");
    }
}

/// Every `--long` option a `--help` text lists on its option lines.
fn long_options(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| {
            l.split([' ', ',', '='])
                .take_while(|w| w.starts_with('-') || w.is_empty())
                .filter(|w| w.starts_with("--"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The subcommands `--help` lists (but `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Checks a man page file: `man -l` renders it, and it holds every long option of
/// `netsql --help` and of each subcommand's `--help`, the subcommands and the tables.
pub fn check_man_page(page: &Path, netsql: &str) {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .run();
    assert!(
        out.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // man strips bold and underline when its output is not a terminal; col -b would too.
    let rendered: String = stdout(&out)
        .replace("\u{2010}", "-")
        .replace('\u{2212}', "-");
    let help = stdout(&Command::new(netsql).arg("--help").run());
    let subs = subcommands(&help);
    assert!(subs.contains(&"serve".to_string()), "{help}");
    let mut wanted = vec![("netsql".to_string(), long_options(&help))];
    for sub in &subs {
        let help = stdout(&Command::new(netsql).args([sub, "--help"]).run());
        wanted.push((format!("netsql {sub}"), long_options(&help)));
        assert!(
            rendered.contains(&format!("netsql {sub}")),
            "no section for {sub}"
        );
    }
    for (what, options) in wanted {
        assert!(!options.is_empty(), "{what} --help lists no option");
        for option in options {
            assert!(
                names_option(&rendered, &option),
                "{what}'s {option} is missing from the man page"
            );
        }
    }
    for table in documented_tables() {
        assert!(
            rendered.contains(&table),
            "table {table} is missing from the man page"
        );
    }
    assert!(rendered.contains("EXIT STATUS"), "no EXIT STATUS section");
}

#[test]
fn the_man_page_holds_every_option_of_every_help() {
    if !common::have("man") {
        return common::skip_or_fail("man is not installed");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("netsql.1");
    let out = Command::new(NETSQL).arg("man").run();
    assert!(out.status.success());
    std::fs::write(&page, &out.stdout).expect("write the page");
    check_man_page(&page, NETSQL);
}

#[test]
fn an_audit_runs_by_its_built_in_name() {
    let out = Command::new(NETSQL)
        .args(["audit", "--format", "json", "wildcard_listeners"])
        .run();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("\"wildcard_listeners\""), "{text}");
    assert!(
        !text.contains("close_wait_leaks"),
        "ran more than the one audit: {text}"
    );
    // A name that is neither a file nor a built-in audit is one line, exit 2.
    let out = Command::new(NETSQL).args(["audit", "no_such_audit"]).run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no_such_audit"), "{err}");
}

/// The release binary's target directory (`CARGO_TARGET_DIR` or target/).
fn target_dir() -> &'static Path {
    let release = Path::new(NETSQL).parent().expect("the binary's folder");
    // deb.sh packs <target>/release/netsql: a debug build's binary would be another.
    assert!(
        release.ends_with("release"),
        "the .deb test needs `cargo test --release` (binary in {})",
        release.display()
    );
    release
        .parent()
        .expect("the binary lives in <target>/release")
}

/// Whether `text` names `option` whole: `--to` is not found in `--token-file`.
fn names_option(text: &str, option: &str) -> bool {
    text.match_indices(option).any(|(at, _)| {
        !text[at + option.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn the_deb_installs_its_files_and_they_work() {
    let cargo_deb = Command::new("cargo").args(["deb", "--version"]).run();
    if !cargo_deb.status.success() {
        return common::skip_or_fail("cargo-deb not installed");
    }
    for tool in ["dpkg", "dpkg-deb", "man", "bash"] {
        if !common::have(tool) {
            return common::skip_or_fail(&format!("{tool} is not installed"));
        }
    }
    // The binary this test run built, packed with what it generates.
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/deb.sh"))
        .args(["--no-build", "--fast"])
        .env("CARGO_TARGET_DIR", target_dir())
        .run();
    assert!(
        out.status.success(),
        "packaging/deb.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = stdout(&out).trim().to_string();
    assert!(deb.ends_with(".deb"), "deb.sh printed {deb:?}");

    // The file list: binary, page, completions where each shell looks, unit, docs.
    let listing = stdout(&Command::new("dpkg-deb").args(["-c", &deb]).run());
    let files: BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for want in [
        "./usr/bin/netsql",
        "./usr/share/man/man1/netsql.1.gz",
        "./usr/share/bash-completion/completions/netsql",
        "./usr/share/zsh/vendor-completions/_netsql",
        "./usr/share/fish/vendor_completions.d/netsql.fish",
        "./lib/systemd/system/netsql-serve.service",
        "./usr/share/doc/netsql/README.md",
        "./usr/share/doc/netsql/serving.md",
        "./usr/share/doc/netsql/queries/tcp_health.sql",
        "./usr/share/doc/netsql/queries/audits/wildcard_listeners.sql",
    ] {
        assert!(
            files.contains(want),
            "{want} is not in the .deb:\n{listing}"
        );
    }
    let binary = listing
        .lines()
        .find(|l| l.ends_with(" ./usr/bin/netsql"))
        .expect("the binary's line");
    // Owned by root (dpkg-deb shows cargo-deb's numeric owner as 0/0).
    assert!(
        binary.starts_with("-rwxr-xr-x root/root") || binary.starts_with("-rwxr-xr-x 0/0 "),
        "{binary}"
    );

    // Installed by dpkg into a root of our own (no maintainer scripts run: it has none
    // that matter; its dependencies are the host's, so they are not checked there).
    let root = tempfile::tempdir().expect("tempdir");
    let db = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(db.join("info")).expect("dpkg info");
    std::fs::create_dir_all(db.join("updates")).expect("dpkg updates");
    std::fs::write(db.join("status"), "").expect("dpkg status");
    let rooted = |args: &[&str]| {
        let mut command = Command::new("dpkg");
        command
            .arg(format!("--root={}", root.path().display()))
            .args(args);
        command.run()
    };
    let out = rooted(&["--force-depends", "--force-script-chrootless", "-i", &deb]);
    assert!(
        out.status.success(),
        "dpkg -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = root.path().join("usr/bin/netsql");
    let netsql = installed.to_str().expect("utf-8 path");
    let out = Command::new(netsql)
        .args(["--format", "csv", "-e", "SELECT 1 AS one"])
        .run();
    assert_eq!(
        stdout(&out),
        "one\n1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // cargo-deb strips the binary: no .symtab left.
    let sections = Command::new("readelf").args(["-S", netsql]).run();
    if sections.status.success() {
        assert!(
            !stdout(&sections).contains(".symtab"),
            "the packaged binary is not stripped"
        );
    }
    check_man_page(&root.path().join("usr/share/man/man1/netsql.1.gz"), netsql);
    check_bash_completion(
        &root
            .path()
            .join("usr/share/bash-completion/completions/netsql"),
    );

    // The unit is valid to systemd (pointed at the installed binary: this host has none
    // in /usr/bin); an unknown key is only a warning, so any warning fails.
    if common::have("systemd-analyze") {
        let unit =
            std::fs::read_to_string(root.path().join("lib/systemd/system/netsql-serve.service"))
                .expect("the unit");
        // The unit names the token as a setting; the installed binary takes it so.
        assert!(
            unit.contains("Environment=NETSQL_SERVE_TOKEN_FILE=/etc/netsql/token"),
            "{unit}"
        );
        let shown = Command::new(netsql)
            .args(["--print-config", "serve"])
            .env("NETSQL_CONFIG", "")
            .env("NETSQL_SERVE_TOKEN_FILE", "/etc/netsql/token")
            .run();
        assert!(
            stdout(&shown)
                .lines()
                .any(|l| l == "token-file = \"/etc/netsql/token\"  # NETSQL_SERVE_TOKEN_FILE"),
            "{shown:?}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("netsql-serve.service");
        std::fs::write(&copy, unit.replace("/usr/bin/netsql", netsql)).expect("write the unit");
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .run();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify: {said}"
        );
    }

    // dpkg knows every file, and takes them all away again.
    let known = stdout(&rooted(&["-L", "netsql"]));
    assert!(known.contains("/usr/bin/netsql"), "{known}");
    let out = rooted(&["--force-script-chrootless", "-r", "netsql"]);
    assert!(
        out.status.success(),
        "dpkg -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!installed.exists(), "dpkg -r left the binary");
}
