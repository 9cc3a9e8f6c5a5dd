//! The REPL in a real pseudo-terminal: multi-line statements, completion, meta-commands,
//! history across runs, Ctrl-C and Ctrl-D.

mod common;

use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession as Session;
use expectrl::{Eof, Expect};

const PROC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");

/// netsql on a terminal, its history under `data` (XDG_DATA_HOME).
fn repl(data: &std::path::Path) -> Session {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
    command
        .args(["--proc", PROC, "--source", "proc"])
        .env("XDG_DATA_HOME", data)
        .env("XDG_CONFIG_HOME", data.join("config"))
        .env("TERM", "xterm-256color");
    let mut session = Session::spawn(command).expect("spawn netsql in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    session.expect("netsql> ").unwrap();
    session
}

/// Types `line` once netsql shows `prompt`: input typed before the prompt may be flushed
/// when the line editor switches the terminal to raw mode, as with a person typing ahead.
fn at(session: &mut Session, prompt: &str, line: &str) {
    session.expect(prompt).unwrap();
    session.send(line).unwrap();
}

fn quit(mut session: Session) {
    at(&mut session, "netsql> ", "\\q\r");
    session.expect(Eof).unwrap();
}

#[test]
fn multi_line_statements_and_several_on_a_line() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("SELECT 40 +\r").unwrap();
    s.expect("   ...> ").unwrap();
    s.send("2 AS answer;\r").unwrap();
    s.expect("| 42     |").unwrap();
    s.expect("(1 row)").unwrap();
    at(
        &mut s,
        "netsql> ",
        "SELECT 'first' AS a; SELECT 'second' AS b;\r",
    );
    s.expect("| first |").unwrap();
    s.expect("| second |").unwrap();
    // An error is one line and the REPL goes on; what the statements before it on the
    // line printed is shown, as -f shows it.
    at(&mut s, "netsql> ", "SELECT 'before' AS b; SELECT nope;\r");
    s.expect("| before |").unwrap();
    s.expect("netsql: ").unwrap();
    at(&mut s, "netsql> ", "SELECT 1 AS still_here;\r");
    s.expect("still_here").unwrap();
    quit(s);
}

#[test]
fn tab_completes_columns_and_tables() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("SELECT local_p\t FROM sockets ORDER BY 1 LIMIT 1;\r")
        .unwrap();
    s.expect("| local_port |").unwrap();
    s.expect("| 53         |").unwrap();
    at(&mut s, "netsql> ", "SELECT * FROM socket_ow\t LIMIT 0;\r");
    s.expect("| inode | pid | fd | program |").unwrap();
    // A DataFusion function, though no statement has named it yet.
    at(&mut s, "netsql> ", "SELECT char_len\t('abcd') AS n;\r");
    s.expect("| 4 |").unwrap();
    quit(s);
}

#[test]
fn meta_commands_describe_and_format() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("\\d sockets\r").unwrap();
    s.expect("Lowest pid of a process holding the socket")
        .unwrap();
    at(&mut s, "netsql> ", "\\d\r");
    s.expect("socket_owners").unwrap();
    at(&mut s, "netsql> ", "\\?\r");
    s.expect("\\watch N").unwrap();
    at(&mut s, "netsql> ", "\\format csv\r");
    at(
        &mut s,
        "netsql> ",
        "SELECT state, count(*) AS n FROM sockets GROUP BY state ORDER BY state;\r",
    );
    s.expect("CLOSE,2").unwrap();
    at(&mut s, "netsql> ", "\\format table\r");
    at(&mut s, "netsql> ", "\\maxrows 2\r");
    at(&mut s, "netsql> ", "SELECT inode FROM sockets;\r");
    s.expect("7 rows (2 shown)").unwrap();
    // A description is never cut: its last column shows.
    at(&mut s, "netsql> ", "\\d sockets\r");
    let last = netsql::tables::sockets::SPEC.columns.last().unwrap().name;
    s.expect(format!("| {last} ").as_str()).unwrap();
    at(&mut s, "netsql> ", "\\x\r");
    at(&mut s, "netsql> ", "SELECT 'v' AS k;\r");
    s.expect("-[ RECORD 1 ]").unwrap();
    at(&mut s, "netsql> ", ".quit\r");
    s.expect(Eof).unwrap();
}

#[test]
fn history_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("SELECT 'remember' AS a -- a comment\r").unwrap();
    at(&mut s, "   ...> ", ", 'me2' AS b;\r");
    s.expect("| remember | me2 |").unwrap();
    quit(s);
    // One entry, its lines kept (joined, the comment swallowed `, 'me2' AS b`).
    let history = std::fs::read_to_string(data.path().join("netsql/history")).unwrap();
    assert!(
        history.contains("SELECT 'remember' AS a -- a comment\\n, 'me2' AS b;"),
        "one entry: {history}"
    );

    let mut s = repl(data.path());
    // Up twice: past "\q" to the statement. (repl() has consumed the first prompt.)
    s.send("\x1b[A\x1b[A\r").unwrap();
    s.expect("| remember | me2 |").unwrap();
    quit(s);

    // A history file with a line that is not UTF-8: what follows it is not lost (the
    // file was saved over with only the lines before it).
    let file = data.path().join("netsql/history");
    let mut bytes = b"#V2\nSELECT 'old' AS o;\nSELECT '\xff' AS bad;\n".to_vec();
    bytes.extend_from_slice(b"SELECT 'later' AS l;\n");
    std::fs::write(&file, &bytes).unwrap();
    let mut s = repl(data.path());
    s.send("SELECT 'new' AS n;\r").unwrap();
    s.expect("| new |").unwrap();
    quit(s);
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}

/// Blank lines, block comments, a byte that is not UTF-8, Tab after a wide character:
/// each once lost the session or its next statement (helper-51).
#[test]
fn blank_lines_comments_odd_bytes_and_wide_characters() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    // A blank or comment-only line leaves the prompt as it was: \q is a command.
    s.send("\r").unwrap();
    at(&mut s, "netsql> ", "-- a note\r");
    at(&mut s, "netsql> ", "SELECT 1 AS a; /* trailing */\r");
    s.expect("| 1 |").unwrap();
    at(&mut s, "netsql> ", "SELECT 2 AS b /* a comment;\r");
    at(&mut s, "   ...> ", "still one */ , 3 AS c;\r");
    s.expect("| 2 | 3 |").unwrap();
    at(&mut s, "netsql> ", "SELECT E'x\\'y;' AS e;\r");
    s.expect("| x'y; |").unwrap();
    s.expect("netsql> ").unwrap();
    s.send(b"SELECT '\xff' AS bad;\r").unwrap();
    s.expect("not UTF-8").unwrap();
    at(&mut s, "netsql> ", "SELECT 'caf\u{e9}so\t");
    std::thread::sleep(Duration::from_millis(300));
    s.send("\x03").unwrap();
    at(&mut s, "netsql> ", "SELECT 'alive' AS a;\r");
    s.expect("| alive |").unwrap();
    s.expect("netsql> ").unwrap();
    s.send("\r").unwrap();
    quit(s);
}

#[test]
fn ctrl_c_cancels_the_query_not_the_repl() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("SELECT count(*) FROM generate_series(1, 100000000000);\r")
        .unwrap();
    // Ready: the query has had half a second of processor time.
    common::wait_for_cpu(
        s.get_process().pid().as_raw() as u32,
        Duration::from_millis(500),
    );
    s.send("\x03").unwrap();
    s.expect("query cancelled").unwrap();
    at(&mut s, "netsql> ", "SELECT 6 * 7 AS v;\r");
    s.expect("| 42 |").unwrap();
    // At the prompt, Ctrl-C clears the line; Ctrl-D on an empty line exits.
    at(&mut s, "netsql> ", "SELECT this is not run\x03");
    at(&mut s, "netsql> ", "\x04");
    s.expect(Eof).unwrap();
}

#[test]
fn watch_repeats_until_ctrl_c() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("SELECT 'tick' AS t;\r").unwrap();
    s.expect("| tick |").unwrap();
    at(&mut s, "netsql> ", "\\watch 1\r");
    s.expect("| tick |").unwrap();
    s.expect("| tick |").unwrap();
    s.send("\x03").unwrap();
    at(&mut s, "netsql> ", "SELECT 'after' AS a;\r");
    s.expect("| after |").unwrap();
    // An interval no clock can add waits for Ctrl-C (it panicked on overflow).
    at(&mut s, "netsql> ", "\\watch 18446744073709551615\r");
    s.expect("| after |").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send("\x03").unwrap();
    at(&mut s, "netsql> ", "SELECT 'alive' AS a;\r");
    s.expect("| alive |").unwrap();
    quit(s);
}

/// A REPL whose stdout is a closed pipe ends quietly, as a one-shot query does, whatever
/// it was printing: a meta-command's lines (println! panicked), a result, the prompt.
#[test]
fn a_closed_stdout_ends_the_repl_quietly() {
    let data = tempfile::tempdir().unwrap();
    for typed in ["\\?", "\\timing", "SELECT 1 AS one;"] {
        // stdout is `head -c 1`'s pipe, closed once the banner's first byte is read;
        // stdin and stderr stay the terminal.
        let netsql = env!("CARGO_BIN_EXE_netsql");
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                &format!("{netsql} --proc {PROC} --source proc | head -c 1 >/dev/null; sleep 2"),
            ])
            .env("XDG_DATA_HOME", data.path())
            .env("XDG_CONFIG_HOME", data.path().join("config"))
            .env("TERM", "dumb");
        let mut s = Session::spawn(command).expect("spawn netsql in a pty");
        s.set_expect_timeout(Some(Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(500));
        s.send(format!("{typed}\r")).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        s.send(format!("{typed}\r")).unwrap();
        let mut seen = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut seen);
        let seen = String::from_utf8_lossy(&seen);
        assert!(!seen.contains("panicked"), "{typed}: {seen}");
        assert!(!seen.contains("Broken pipe"), "{typed}: {seen}");
    }
}

/// With stdout a file, the prompts and what is typed stay on the terminal and the file
/// holds the results alone (prompts and escapes went into it, the terminal blank).
#[test]
fn stdout_to_a_file_keeps_the_prompt_on_the_terminal() {
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("out.txt");
    let netsql = env!("CARGO_BIN_EXE_netsql");
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            &format!(
                "{netsql} --proc {PROC} --source proc > {}",
                out.to_str().unwrap()
            ),
        ])
        .env("XDG_DATA_HOME", data.path())
        .env("XDG_CONFIG_HOME", data.path().join("config"))
        .env("TERM", "xterm-256color");
    let mut s = Session::spawn(command).expect("spawn netsql in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    at(&mut s, "netsql> ", "SELECT 'a' AS x;\r");
    quit(s);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "+---+\n| x |\n+---+\n| a |\n+---+\n(1 row)\n"
    );
}

/// Saved queries, files in and out, timing and `.tables`, on the fixture's sockets
/// (fixtures/proc/ss.txt: two established connections 127.0.0.1:8080 <-> :44540, 42
/// bytes unread on the 8080 end).
#[test]
fn saved_queries_files_and_timing() {
    let data = tempfile::tempdir().unwrap();
    let user = data.path().join("config/netsql/queries");
    std::fs::create_dir_all(&user).unwrap();
    // A path of this test's own: another run's file could not make it pass or fail.
    let never = data.path().join("never.csv");
    std::fs::write(
        user.join("writes.sql"),
        format!(
            "-- name: writes\n-- description: tries to write\nCOPY (SELECT 1) TO '{}';\n",
            never.display()
        ),
    )
    .unwrap();
    let input = data.path().join("in.sql");
    std::fs::write(&input, "SELECT 'from-file' AS f;\n").unwrap();
    let output = data.path().join("out.txt");

    let mut s = repl(data.path());
    s.send("\\saved\r").unwrap();
    s.expect("deepest_queues").unwrap();
    s.expect("writes").unwrap();
    // A parameter set on the command line, and one left at its default.
    at(&mut s, "netsql> ", "\\run connections_per_remote limit=1\r");
    s.expect("| 127.0.0.1      | 2           | 2            |")
        .unwrap();
    s.expect("(1 row)").unwrap();
    at(&mut s, "netsql> ", "\\run deepest_queues\r");
    s.expect("| tcp   | ESTABLISHED | 127.0.0.1     | 8080       | 127.0.0.1      | 44540       | 42     | 0      |").unwrap();
    // Saved queries are read-only, whoever wrote them.
    at(&mut s, "netsql> ", "\\run writes\r");
    s.expect("read-only").unwrap();
    at(&mut s, "netsql> ", "\\run deepest_queues limit\r");
    s.expect("expected NAME=VALUE").unwrap();
    at(&mut s, "netsql> ", &format!("\\i {}\r", input.display()));
    s.expect("| from-file |").unwrap();
    at(&mut s, "netsql> ", &format!("\\o {}\r", output.display()));
    at(&mut s, "netsql> ", "SELECT 'to-file' AS t;\r");
    at(&mut s, "netsql> ", "\\o\r");
    at(&mut s, "netsql> ", "\\timing on\r");
    s.expect("Timing is on.").unwrap();
    at(&mut s, "netsql> ", "SELECT 'timed' AS t;\r");
    s.expect("| timed |").unwrap();
    s.expect(expectrl::Regex("Time: [0-9]+\\.[0-9]{3} ms"))
        .unwrap();
    at(&mut s, "netsql> ", ".tables\r");
    s.expect("socket_owners").unwrap();
    quit(s);
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.contains("| to-file |"), "{written}");
    assert!(!written.contains("from-file"), "{written}");
    assert!(!never.exists());
}

/// `record` on a terminal keeps one status line, rewritten after each snapshot and ended
/// once; off a terminal it says nothing.
#[test]
fn record_shows_one_status_line_on_a_terminal() {
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().join("d");
    let args = [
        "record",
        "--to",
        dir.to_str().unwrap(),
        "--every",
        "1s",
        "--count",
        "2",
        "--tables",
        "interfaces",
        "--host",
        "tty",
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
    command.args(args).env("TERM", "xterm-256color");
    let mut session = Session::spawn(command).expect("spawn netsql in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let first = session.expect("\r1 snapshots, ").unwrap();
    assert!(!String::from_utf8_lossy(first.before()).contains('\n'));
    let second = session.expect("\r2 snapshots, ").unwrap();
    assert!(
        !String::from_utf8_lossy(second.before()).contains('\n'),
        "one line, rewritten: {:?}",
        String::from_utf8_lossy(second.before())
    );
    let rest = session.expect(Eof).unwrap();
    let rest = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(
        rest.contains(" rows, ") && rest.contains(" 0 failed"),
        "{rest:?}"
    );
    assert_eq!(rest.matches('\n').count(), 1, "ended once: {rest:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_netsql"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "quiet off a terminal"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("interfaces")).unwrap().count(),
        1
    );
}

/// Lines that arrive in one burst (typed fast, or pasted where the terminal has no
/// bracketed paste) all run, in order: statements on lines of their own, and one
/// statement over three lines.
#[test]
fn a_burst_of_lines_runs_every_line() {
    let data = tempfile::tempdir().unwrap();
    let mut s = repl(data.path());
    s.send("SELECT 1 AS x;\rSELECT 2 AS y;\rSELECT 3 AS z;\r")
        .unwrap();
    s.expect("| x |").unwrap();
    s.expect("| y |").unwrap();
    s.expect("| z |").unwrap();
    at(&mut s, "netsql> ", "SELECT 40\r+ 2\rAS pasted;\r");
    s.expect("| pasted |").unwrap();
    s.expect("| 42     |").unwrap();
    quit(s);
}
