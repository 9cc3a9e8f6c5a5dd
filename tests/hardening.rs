//! Hostile conditions: memory and descriptor limits, Ctrl-C in a runaway query, empty,
//! huge and broken input, missing /etc files, URL tables, control characters in names
//! and paths, and an unprivileged user. Each ends in rows, a clean cancel or one
//! `netsql: ...` line; never a panic.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::netsql;

fn run(args: &[&str]) -> Output {
    netsql().args(args).stdin(Stdio::null()).output().unwrap()
}

/// Exit 2 with one `netsql: ...` line naming `needle`, nothing on stdout, no panic.
fn assert_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with("netsql: ") && err.contains(needle),
        "{err:?} lacks {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const JOIN: &str = "SELECT count(*) FROM generate_series(1, 3000000) a \
                    JOIN generate_series(1, 3000000) b ON a.value = b.value";

#[test]
fn a_memory_limit_ends_a_big_join_with_one_line() {
    assert_error(
        &run(&["--memory-limit", "32M", "-e", JOIN]),
        "Resources exhausted",
    );
    // A query that fits runs under the same limit.
    let out = run(&[
        "--memory-limit",
        "32M",
        "--format",
        "csv",
        "-e",
        "SELECT count(*) AS n FROM generate_series(1, 1000000)",
    ]);
    assert_eq!(ok(&out), "n\n1000000\n");
    let out = run(&["--memory-limit", "lots", "-e", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a size"));
}

#[test]
fn ctrl_c_cancels_a_runaway_cross_join() {
    let mut child = netsql()
        .args(["-e", "SELECT sum(a.value * b.value) FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "10^10 rows finished in 1.5 s?"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let sent = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_error(&out, "interrupted");
}

#[test]
fn empty_huge_and_broken_input() {
    assert_error(&run(&["-e", ""]), "no SQL statement");
    assert_error(&run(&["-e", " ; -- nothing\n"]), "no SQL statement");
    let dir = tempfile::tempdir().unwrap();
    // A megabyte of nesting stops at the parser's recursion limit, not the stack.
    let deep = dir.path().join("deep.sql");
    std::fs::write(
        &deep,
        format!("SELECT {}1{}", "(".repeat(500_000), ")".repeat(500_000)),
    )
    .unwrap();
    assert_error(
        &run(&["-f", deep.to_str().unwrap()]),
        "RecursionLimitExceeded",
    );
    // A megabyte of query is just a long literal.
    let long = dir.path().join("long.sql");
    std::fs::write(
        &long,
        format!("SELECT length('{}') AS n", "x".repeat(1 << 20)),
    )
    .unwrap();
    assert_eq!(
        ok(&run(&["--format", "csv", "-f", long.to_str().unwrap()])),
        "n\n1048576\n"
    );
    let latin1 = dir.path().join("latin1.sql");
    std::fs::write(&latin1, b"SELECT '\xe9t\xe9'").unwrap();
    assert_error(&run(&["-f", latin1.to_str().unwrap()]), "valid UTF-8");
    assert_error(&run(&["-f", "/nonexistent/q.sql"]), "/nonexistent/q.sql");
}

#[test]
fn missing_etc_files_give_empty_tables_and_nulls() {
    let empty = tempfile::tempdir().unwrap();
    let etc = empty.path().to_str().unwrap();
    let out = run(&[
        "--etc", etc, "--format", "csv", "-e",
        "SELECT (SELECT count(*) FROM services) AS services, (SELECT count(*) FROM users) AS users, \
         service_name(80, 'tcp') AS s, user_name(0) AS u, host_name('127.0.0.1') IS NULL OR true AS h",
    ]);
    assert_eq!(ok(&out), "services,users,s,u,h\n0,0,,,true\n");
    let out = ok(&run(&["--etc", etc, "netstat", "-ta"]));
    assert!(out.starts_with("Active Internet connections"), "{out}");
}

#[test]
fn url_tables_are_not_tables() {
    assert_error(&run(&["-e", "SELECT * FROM '/etc/passwd'"]), "not found");
    assert_error(
        &run(&["--read-only", "-e", "SELECT * FROM 'file:///etc/passwd'"]),
        "not found",
    );
}

/// A process named `ESC[2J...` holding a unix socket whose path holds ESC: a terminal
/// must see the escape as text, CSV must keep the byte.
#[test]
fn control_characters_in_names_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netsql-esc-\x1b[2J");
    let script = "import socket, sys, time\n\
                  s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n\
                  print('ready', flush=True); time.sleep(60)\n";
    let mut child = Command::new("bash")
        .args([
            "-c",
            "exec -a $'\\e[2Jevil' /usr/bin/python3 -c \"$0\" \"$1\"",
            script,
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let view = ok(&run(&["netstat", "-xlp"]));
    let table = ok(&run(&[
        "-e",
        "SELECT path FROM sockets WHERE path LIKE '%netsql-esc-%'",
    ]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !view.contains('\x1b'),
        "a raw ESC reached the terminal view"
    );
    let mine: Vec<&str> = view.lines().filter(|l| l.contains("netsql-esc-")).collect();
    assert_eq!(mine.len(), 1, "{view}");
    assert!(mine[0].contains("netsql-esc-\\x1b[2J"), "{}", mine[0]);
    assert!(
        mine[0].contains(&format!("{}/\\x1b[2Jevil", child.id())),
        "{}",
        mine[0]
    );

    assert!(
        !table.contains('\x1b') && table.contains("netsql-esc-\\x1b[2J"),
        "{table}"
    );
}

#[test]
fn control_characters_stay_exact_in_csv() {
    let out = ok(&run(&[
        "--format",
        "csv",
        "-e",
        "SELECT chr(27) || '[2J' AS x",
    ]));
    assert_eq!(out, "x\n\x1b[2J\n");
}

/// The key queries and views as `nobody`: NULL owners where the kernel hides them, at
/// most the one warning, exit 0.
#[test]
fn an_unprivileged_user_gets_nulls_not_errors() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("setpriv").arg("--version").output().is_err()
    {
        assert!(!common::require_netns(), "needs root and setpriv");
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let netsql = env!("CARGO_BIN_EXE_netsql");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                netsql,
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for args in [
        vec!["netstat", "-tanp"],
        vec!["netstat", "-xap"],
        vec!["netstat", "-tanpe"],
        vec!["-q", "listeners"],
        vec!["-q", "sockets_per_process"],
        vec![
            "-e",
            "SELECT pid, name, cmdline, exe, uid, user FROM processes",
        ],
        vec!["-e", "SELECT * FROM sockets"],
        vec!["-e", "SELECT * FROM socket_owners"],
    ] {
        let out = as_nobody(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.lines().count() <= 1, "{args:?}: {err}");
        assert!(
            err.is_empty() || err.contains("Not all processes could be identified"),
            "{args:?}: {err}"
        );
    }
    // Root's listener (PID 1 here, or whoever) shows `-` as its owner.
    let view = String::from_utf8_lossy(&as_nobody(&["netstat", "-tlnp"]).stdout).into_owned();
    assert!(
        view.lines()
            .skip(2)
            .all(|l| l.trim_end().ends_with('-') || l.contains('/')),
        "{view}"
    );
}

/// `ulimit -n 64`: the sockets table, its owners and a netstat view still answer (or
/// would say why in one line); no panic, no silent NULL owners.
#[test]
fn few_descriptors_still_answer() {
    let netsql = env!("CARGO_BIN_EXE_netsql");
    for sql in [
        "SELECT count(*) AS n FROM sockets",
        "SELECT count(pid) AS n FROM sockets",
        "SELECT count(*) AS n FROM socket_owners",
    ] {
        let out = Command::new("sh")
            .args([
                "-c",
                "ulimit -n 64 && exec \"$0\" --format csv -e \"$1\"",
                netsql,
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{sql}: {err}");
        if out.status.success() {
            assert!(
                String::from_utf8_lossy(&out.stdout).starts_with("n\n"),
                "{sql}"
            );
        } else {
            assert_error(&out, "");
        }
    }
    let out = Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" netstat -tanp", netsql])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
