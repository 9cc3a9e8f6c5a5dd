//! The command line as a user meets it: output formats, inputs, errors and exit codes.
//! Socket rows come from `tests/fixtures/proc`, /proc/net files captured in a namespace
//! together with `ss -tuanwxe` (fixtures/proc/ss.txt), from which the expected values here
//! were read.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use std::time::Duration;

use common::{netsql, Kid, Lines, RunExt};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");

fn run(args: &[&str]) -> Output {
    netsql().args(args).run()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fixture(args: &[&str]) -> Output {
    let mut all = vec!["--proc", FIXTURE, "--source", "proc"];
    all.extend_from_slice(args);
    run(&all)
}

/// An error is one `netsql: ...` line on stderr, exit status 2, nothing on stdout.
fn assert_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("netsql: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

const VALUES: &str = "SELECT 1 AS a, NULL AS b, 'x,y' AS c";

#[test]
fn csv_quotes_and_leaves_null_empty() {
    assert_eq!(
        stdout(&run(&["--format", "csv", "-e", VALUES])),
        "a,b,c\n1,,\"x,y\"\n"
    );
}

/// A list in CSV is JSON: an empty item, a NULL item and an item holding a comma stay
/// apart, and an empty list is not a list of one NULL.
#[test]
fn csv_writes_lists_as_json() {
    let sql = "SELECT make_array('a,b', '', NULL) AS l, make_array(CAST(NULL AS INT)) AS n, \
               arrow_cast(make_array(1), 'List(Int32)')[2:1] AS e, CAST(NULL AS INT[]) AS z, \
               named_struct('a', CAST(NULL AS INT), 'b', 1) AS s";
    assert_eq!(
        stdout(&run(&["--format", "csv", "-e", sql])),
        "l,n,e,z,s\n\"[\"\"a,b\"\",\"\"\"\",null]\",[null],[],,\"{\"\"a\"\":null,\"\"b\"\":1}\"\n"
    );
}

#[test]
fn tsv_separates_with_tabs() {
    assert_eq!(
        stdout(&run(&["--format", "tsv", "-e", VALUES])),
        "a\tb\tc\n1\t\tx,y\n"
    );
}

/// A TSV row is one line of as many fields as the header, whatever its values hold: a
/// tab, a newline, a backslash escaped as jq's @tsv escapes them, a quote as it is; a
/// list is its JSON text, unquoted.
#[test]
fn tsv_escapes_and_never_quotes() {
    let sql = "SELECT 'a' || chr(9) || 'b' AS \"t\", 'l1' || chr(10) || 'l2' AS n, \
               'back\\slash \"q\"' AS s, make_array('UP', 'x y') AS l, \
               arrow_cast('d' || chr(9), 'Dictionary(Int32, Utf8)') AS d";
    let out = stdout(&run(&["--format", "tsv", "-e", sql]));
    assert_eq!(
        out,
        "t\tn\ts\tl\td\na\\tb\tl1\\nl2\tback\\\\slash \"q\"\t[\"UP\",\"x y\"]\td\\t\n"
    );
    // jq, the reference for @tsv, escapes the same row the same way.
    let jq = std::process::Command::new("jq")
        .args(["-r", "[.t, .n, .s] | @tsv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    if let Ok(mut jq) = jq {
        use std::io::Write;
        let json = stdout(&run(&["--format", "ndjson", "-e", sql]));
        jq.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
        let theirs = jq.wait_with_output().unwrap();
        let ours: Vec<&str> = out.lines().nth(1).unwrap().split('\t').take(3).collect();
        assert_eq!(
            String::from_utf8_lossy(&theirs.stdout).trim_end(),
            ours.join("\t")
        );
    } else if common::require_netns() {
        panic!("CI must install jq");
    }
}

#[test]
fn json_is_one_array_with_nulls() {
    let text = stdout(&run(&["--format", "json", "-e", VALUES]));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value, serde_json::json!([{"a": 1, "b": null, "c": "x,y"}]));
}

#[test]
fn ndjson_is_one_object_per_line() {
    let text = stdout(&run(&[
        "--format",
        "ndjson",
        "-e",
        "SELECT * FROM (VALUES (1), (2)) AS t(n)",
    ]));
    assert_eq!(text, "{\"n\":1}\n{\"n\":2}\n");
}

#[test]
fn table_is_aligned_with_a_row_count() {
    let text = stdout(&run(&["-e", VALUES]));
    let expected = "\
+---+---+-----+
| a | b | c   |
+---+---+-----+
| 1 |   | x,y |
+---+---+-----+
(1 row)
";
    assert_eq!(text, expected);
}

#[test]
fn empty_results_keep_their_header() {
    let csv = stdout(&fixture(&[
        "--format",
        "csv",
        "-e",
        "SELECT proto, state FROM sockets WHERE false",
    ]));
    assert_eq!(csv, "proto,state\n");
    let json = stdout(&fixture(&[
        "--format",
        "json",
        "-e",
        "SELECT proto FROM sockets WHERE false",
    ]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn fixture_sockets_match_ss() {
    // From fixtures/proc/ss.txt: tcp LISTEN 127.0.0.1:8080, the two ends of one connection
    // with 42 bytes unread, tcp6 LISTEN *:443, udp UNCONN 0.0.0.0:53, and two unix sockets.
    let sql = "SELECT proto, state, local_address, local_port, remote_address, remote_port, recv_q, inode, path \
               FROM sockets ORDER BY inode";
    let csv = stdout(&fixture(&["--format", "csv", "-e", sql]));
    let expected = "\
proto,state,local_address,local_port,remote_address,remote_port,recv_q,inode,path
tcp,LISTEN,127.0.0.1,8080,0.0.0.0,0,0,11605,
tcp,ESTABLISHED,127.0.0.1,44540,127.0.0.1,8080,0,11606,
tcp,ESTABLISHED,127.0.0.1,8080,127.0.0.1,44540,42,11607,
tcp6,LISTEN,::,443,::,0,0,11608,
udp,CLOSE,0.0.0.0,53,0.0.0.0,0,0,11609,
unix,LISTEN,,,,,,11610,/tmp/netsql-fixture.sock
unix,CLOSE,,,,,,11611,@fixture-abstract
";
    assert_eq!(csv, expected);
}

#[test]
fn group_by_state_counts() {
    let sql = "SELECT state, count(*) AS n FROM sockets GROUP BY state ORDER BY state";
    let csv = stdout(&fixture(&["--format", "csv", "-e", sql]));
    assert_eq!(csv, "state,n\nCLOSE,2\nESTABLISHED,2\nLISTEN,3\n");
}

#[test]
fn several_statements_files_and_stdin() {
    let two = stdout(&run(&[
        "--format",
        "csv",
        "-e",
        "SELECT 1 AS x; SELECT 2 AS y",
        "-e",
        "SELECT 3 AS z",
    ]));
    assert_eq!(two, "x\n1\ny\n2\nz\n3\n");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    std::fs::write(&file, "-- a comment\nSELECT 'from file' AS source;\n").unwrap();
    let out = stdout(&run(&["--format", "csv", "-f", file.to_str().unwrap()]));
    assert_eq!(out, "source\nfrom file\n");

    let mut child = Kid::spawn(
        netsql()
            .args(["--format", "csv"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 40 + 2 AS answer")
        .unwrap();
    let out = child.finish_within(Duration::from_secs(60));
    assert_eq!(stdout(&out), "answer\n42\n");
}

#[test]
fn information_schema_describes_the_tables() {
    let tables = stdout(&run(&["--format", "csv", "-e", "SHOW TABLES"]));
    assert!(
        tables.contains("datafusion,public,sockets,VIEW"),
        "{tables}"
    );
    let described = stdout(&run(&["--format", "csv", "-e", "DESCRIBE sockets"]));
    let names: Vec<&str> = described
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let spec: Vec<&str> = netsql::tables::sockets::SPEC
        .columns
        .iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, spec);
    let columns = stdout(&run(&[
        "--format",
        "csv",
        "-e",
        "SHOW COLUMNS FROM sockets",
    ]));
    assert!(columns.contains("sockets,local_port,Int32"), "{columns}");
}

#[test]
fn sql_errors_are_one_line_with_status_2() {
    assert_error(
        &run(&["-e", "SELEC 1"]),
        "syntax error at line 1, column 1: expected an SQL statement, found SELEC",
    );
    assert_error(
        &run(&["-e", "SELECT * FROM sockts"]),
        "no table sockts (did you mean sockets?)",
    );
    assert_error(&run(&["-e", "SELECT * FROM nope"]), "nope");
    assert_error(&run(&["-e", "SELECT nope FROM sockets"]), "nope");
    assert_error(
        &run(&["-f", "/nonexistent/q.sql"]),
        "cannot read /nonexistent/q.sql",
    );
}

#[test]
fn each_subcommand_says_what_it_does() {
    let overview = stdout(&run(&["--help"]));
    for (subcommand, about) in [
        (
            "snapshot",
            "Write one snapshot of tables to a Parquet dataset: DEST/<table>/",
        ),
        (
            "record",
            "Write snapshots on the wall clock's ticks until --count",
        ),
        (
            "serve",
            "Serve the live tables over Arrow Flight SQL, read-only",
        ),
        (
            "audit",
            "Run audit queries (a .sql file, or every .sql in a folder;",
        ),
    ] {
        let help = stdout(&run(&[subcommand, "--help"]));
        assert!(help.starts_with(about), "{subcommand}: {help}");
        assert!(
            help.contains(&format!("Usage: netsql {subcommand}")),
            "{help}"
        );
        assert!(
            overview
                .lines()
                .any(|l| l.trim_start().starts_with(subcommand) && l.contains(about)),
            "{overview}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["--format", "xml", "-e", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    // -o and --format on a subcommand that prints no result (it wrote nothing there and
    // exited 0): one line, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.json");
    for args in [
        vec!["doctor", "-o", doc.to_str().unwrap()],
        vec!["man", "--format", "csv"],
        vec!["completions", "bash", "-o", doc.to_str().unwrap()],
    ] {
        assert_error(&run(&args), "-o and --format are for results");
    }
    assert!(!doc.exists());
}

/// SQL may begin with `-`: a `-- comment` line (as the README's examples do, pasted
/// into `-e "$(cat q.sql)"`) or `-1`. clap took it for an unknown flag.
#[test]
fn sql_may_start_with_a_dash() {
    let out = run(&[
        "--format",
        "csv",
        "-e",
        "-- who is listening\nSELECT -1 AS x",
    ]);
    assert_eq!(stdout(&out), "x\n-1\n");
    let out = run(&["--format", "csv", "-e", "-2 AS y"]);
    assert_error(&out, "syntax error");
}

#[test]
fn unreadable_and_malformed_proc_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    std::fs::create_dir_all(net.join("tcp")).unwrap(); // a directory where a file should be
    let root = dir.path().to_str().unwrap();
    let out = run(&[
        "--proc",
        root,
        "--source",
        "proc",
        "-e",
        "SELECT * FROM sockets",
    ]);
    assert_error(&out, "net/tcp");

    std::fs::remove_dir(net.join("tcp")).unwrap();
    std::fs::write(net.join("tcp"), "header\n   0: 0100007F:1F90 zz\n").unwrap();
    let out = run(&[
        "--proc",
        root,
        "--source",
        "proc",
        "-e",
        "SELECT * FROM sockets",
    ]);
    assert_error(&out, "line 2: bad rem_address");

    // Missing files are protocols this kernel lacks: no rows, no error.
    std::fs::remove_file(net.join("tcp")).unwrap();
    let out = run(&[
        "--proc",
        root,
        "--source",
        "proc",
        "--format",
        "csv",
        "-e",
        "SELECT count(*) AS n FROM sockets",
    ]);
    assert_eq!(stdout(&out), "n\n0\n");
}

#[test]
fn explain_reads_nothing() {
    // With /proc pointing at a tree that would fail any scan, EXPLAIN still plans.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("net/tcp")).unwrap();
    let root = dir.path().to_str().unwrap();
    let out = run(&[
        "--proc",
        root,
        "--source",
        "proc",
        "-e",
        "EXPLAIN SELECT * FROM sockets WHERE state = 'LISTEN'",
    ]);
    let plan = stdout(&out);
    assert!(plan.contains("StreamingTableExec"), "{plan}");
    // The table shows a plan a line per line, not as one line of `\n`s.
    let grouped = stdout(&run(&[
        "-e",
        "EXPLAIN SELECT state, count(*) FROM sockets GROUP BY state",
    ]));
    assert!(!grouped.contains("\\n"), "{grouped}");
    assert!(
        grouped
            .lines()
            .any(|l| l.contains("TableScan") && !l.contains("Aggregate")),
        "{grouped}"
    );
    // The state filter went to the kernel request: applied exactly by the scan.
    assert!(
        plan.contains(r#"full_filters=[sockets.state = Utf8("LISTEN")]"#),
        "{plan}"
    );
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let mut child = Kid::spawn(
        netsql()
            .args([
                "--format",
                "csv",
                "-e",
                "SELECT * FROM generate_series(1, 2000000)",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let lines = Lines::of(child.stdout.take().unwrap());
    assert_eq!(lines.next_within(Duration::from_secs(30)), "value");
    // The reader stops at its next line: the pipe closes under netsql.
    drop(lines);
    let out = child.finish_within(Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_state_summary_query_counts_the_fixture() {
    // fixtures/proc/ss.txt: two tcp listeners (one IPv6) and one connection's two ends.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/queries/tcp_state_summary.sql");
    let csv = stdout(&fixture(&["--format", "csv", "-f", file]));
    assert_eq!(
        csv,
        "state,ipv4,ipv6,total\nESTABLISHED,2,0,2\nLISTEN,1,1,2\n"
    );
}

#[test]
fn control_characters_reach_a_table_escaped_and_csv_exact() {
    // What a process named "\x1b[2J" (clear screen) would put in a column.
    let sql = "SELECT chr(27) || '[2J' || chr(10) || 'x' AS name";
    let table = stdout(&run(&["-e", sql]));
    assert!(
        !table.contains('\u{1b}') && !table.contains("[2J\n"),
        "{table:?}"
    );
    assert!(table.contains(r"\x1b[2J\nx"), "{table}");
    let csv = stdout(&run(&["--format", "csv", "-e", sql]));
    assert_eq!(csv, "name\n\"\u{1b}[2J\nx\"\n");
}

/// Saved queries: `-q` with `-p`, a user folder overriding a built-in, `--list`, and the
/// errors a user can make. The fixture's sockets give the expected rows.
#[test]
fn saved_queries_run_list_and_take_parameters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("listen_on.sql"),
        "-- name: listen_on\n-- description: listeners on one port\n-- param: port = 22\n\
         SELECT proto, local_port FROM sockets WHERE state = 'LISTEN' AND local_port = $port ORDER BY proto;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("summary.sql"),
        "-- name: tcp_state_summary\n-- description: overridden\nSELECT 'mine' AS who;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("needs.sql"),
        "-- description: uses an undeclared parameter\nSELECT $nothing AS x;\n",
    )
    .unwrap();
    let queries = dir.path().to_str().unwrap();
    // The captured table listens on 127.0.0.1:8080 and *:443 (tcp6), per fixtures/proc/ss.txt.
    let out = fixture(&[
        "--queries",
        queries,
        "--format",
        "csv",
        "-q",
        "listen_on",
        "-p",
        "port=443",
    ]);
    assert_eq!(stdout(&out), "proto,local_port\ntcp6,443\n");
    let out = fixture(&[
        "--queries",
        queries,
        "--format",
        "csv",
        "-q",
        "listen_on",
        "-p",
        "port=8080",
    ]);
    assert_eq!(stdout(&out), "proto,local_port\ntcp,8080\n");
    let out = fixture(&[
        "--queries",
        queries,
        "--format",
        "csv",
        "-q",
        "tcp_state_summary",
    ]);
    assert_eq!(stdout(&out), "who\nmine\n");
    let out = fixture(&["--queries", queries, "--format", "csv", "--list"]);
    let list = stdout(&out);
    assert!(
        list.starts_with("name,description,parameters,origin\n"),
        "{list}"
    );
    assert!(
        list.contains("listen_on,listeners on one port,port = 22,"),
        "{list}"
    );
    assert!(list.contains("netstat_inet,"), "{list}");
    assert!(
        !list.contains("wildcard_listeners"),
        "audits are not saved queries: {list}"
    );

    assert_error(
        &fixture(&["--queries", queries, "-q", "listen_on", "-p", "prot=1"]),
        "unknown parameter \"prot\"",
    );
    assert_error(&fixture(&["--queries", queries, "-q", "needs"]), "$nothing");
    assert_error(&fixture(&["-q", "no_such_query"]), "no saved query");
    // A LIMIT's parameter is a count: said so, naming it (the planner said "Expected
    // LIMIT to be an integer or null, but got Utf8").
    assert_error(
        &fixture(&["-q", "deepest_queues", "-p", "limit=abc"]),
        "parameter limit: \"abc\" is not a value of type Int64",
    );
    assert!(fixture(&["-q", "deepest_queues", "-p", "limit=3"])
        .status
        .success());
    // -p with -e or -f was dropped without a word (`$x` then "not provided").
    assert_error(
        &fixture(&["-e", "SELECT $x AS x", "-p", "x=1"]),
        "-p sets the parameters of a saved query",
    );
    assert_error(
        &fixture(&["--queries", "/nonexistent", "--list"]),
        "/nonexistent",
    );
    let copy = dir.path().join("copy.sql");
    std::fs::write(
        &copy,
        "-- description: writes\nCOPY (SELECT 1) TO '/tmp/x.csv';\n",
    )
    .unwrap();
    assert_error(&fixture(&["--queries", queries, "-q", "copy"]), "read-only");
}

/// `netsql netstat -c` prints the view again every second until stopped; a bad flag is
/// netstat's one-line complaint plus the usage, exit 2.
#[test]
fn netstat_repeats_with_c_and_refuses_bad_flags() {
    let mut child = Kid::spawn(
        netsql()
            .args(["--proc", FIXTURE, "--source", "proc", "netstat", "-tnc"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null()),
    );
    let lines = Lines::of(child.stdout.take().unwrap());
    let started = std::time::Instant::now();
    let mut titles = 0;
    while titles < 3 {
        let line = lines.next_within(Duration::from_secs(10));
        if line.starts_with("Active Internet connections (w/o servers)") {
            titles += 1;
        }
    }
    let took = started.elapsed();
    drop(child);
    assert_eq!(titles, 3);
    assert!(
        took >= std::time::Duration::from_millis(1900),
        "three listings in {took:?}"
    );

    let out = run(&["netstat", "-tq"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.starts_with("netsql netstat: invalid option -- 'q'\n"),
        "{err}"
    );
    assert!(err.contains("usage: netsql netstat"), "{err}");
    let help = stdout(&run(&["netstat", "-h"]));
    assert!(help.starts_with("usage: netsql netstat"), "{help}");
}

/// A saved query in $XDG_CONFIG_HOME/netsql/queries replaces the built-in netstat view
/// of the same name: here one that keeps only port 8080 (fixture: the 8080 listener and
/// the accepted end of its connection from 44540).
#[test]
fn a_user_query_replaces_a_built_in_netstat_view() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("netsql/queries");
    std::fs::create_dir_all(&dir).unwrap();
    let builtin = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/queries/netstat/inet.sql"
    ))
    .unwrap();
    let filter = "WHERE family IN ('inet', 'inet6')";
    assert!(builtin.contains(filter));
    let mine = builtin.replace(filter, &format!("{filter} AND local_port = 8080"));
    assert_ne!(mine, builtin);
    std::fs::write(dir.join("netstat_inet.sql"), mine).unwrap();
    let out = netsql()
        .env("XDG_CONFIG_HOME", config.path())
        .args(["--proc", FIXTURE, "--source", "proc", "netstat", "-tan"])
        .run();
    assert_eq!(
        stdout(&out),
        "Active Internet connections (servers and established)\n\
         Proto Recv-Q Send-Q Local Address           Foreign Address         State      \n\
         tcp        0      0 127.0.0.1:8080          0.0.0.0:*               LISTEN     \n\
         tcp       42      0 127.0.0.1:8080          127.0.0.1:44540         ESTABLISHED\n"
    );
}

/// A netstat view whose columns are not what the renderer reads fails in one line naming
/// the column: misspelt (the query does not plan) or of another type (the renderer checks),
/// never a column of NULLs.
#[test]
fn a_netstat_view_with_a_wrong_column_fails() {
    let builtin = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/queries/netstat/inet.sql"
    ))
    .unwrap();
    for (from, to, needle) in [
        (
            "    local_address,",
            "    local_address AS locl_address,",
            "local_address",
        ),
        (
            "    local_port,",
            "    CAST(local_port AS VARCHAR) AS local_port,",
            "the view's column local_port is",
        ),
    ] {
        let config = tempfile::tempdir().unwrap();
        let dir = config.path().join("netsql/queries");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(builtin.contains(from));
        std::fs::write(dir.join("netstat_inet.sql"), builtin.replacen(from, to, 1)).unwrap();
        let out = netsql()
            .env("XDG_CONFIG_HOME", config.path())
            .args(["--proc", FIXTURE, "--source", "proc", "netstat", "-tan"])
            .run();
        assert_error(&out, needle);
    }
}

/// JSON gives each statement's result as one array on a line of its own: one result is a
/// JSON document, several are JSON lines that `json.loads` takes line by line (and jq
/// as they are). The same through -o and from netstat's views.
#[test]
fn json_is_one_array_a_statement_a_line() {
    let one = stdout(&run(&["--format", "json", "-e", VALUES]));
    assert_eq!(one, "[{\"a\":1,\"b\":null,\"c\":\"x,y\"}]\n");
    let two = "SELECT 1 AS a; SELECT 2 AS b WHERE false; SELECT 3 AS c";
    let expected = "[{\"a\":1}]\n[]\n[{\"c\":3}]\n";
    assert_eq!(stdout(&run(&["--format", "json", "-e", two])), expected);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.json");
    stdout(&run(&["-o", file.to_str().unwrap(), "-e", two]));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
    let views = stdout(&fixture(&["netstat", "-an", "--format", "json"]));
    let results: Vec<serde_json::Value> = views
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    // -an: the internet view, then the unix one (fixtures/proc/ss.txt: 5 and 2 sockets).
    let sizes: Vec<usize> = results
        .iter()
        .map(|r| r.as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [5, 2], "{views}");
}

/// A column's doc is not part of its type: a parameter compared with two columns, a
/// UNION, COALESCE and a join over columns with different docs all plan (expected rows
/// from fixtures/proc/ss.txt), and DESCRIBE still shows each column's doc.
#[test]
fn column_docs_never_change_a_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("either_end.sql"),
        "-- name: either_end\n-- description: sockets with the port at either end\n\
         -- param: port = 1\n\
         SELECT inode FROM sockets WHERE local_port = $port OR remote_port = $port ORDER BY inode;\n",
    )
    .unwrap();
    let queries = dir.path().to_str().unwrap();
    let out = fixture(&[
        "--queries",
        queries,
        "--format",
        "csv",
        "-q",
        "either_end",
        "-p",
        "port=8080",
    ]);
    assert_eq!(stdout(&out), "inode\n11605\n11606\n11607\n");
    for (sql, expected) in [
        (
            "SELECT local_port AS p FROM sockets WHERE proto = 'tcp' \
             UNION SELECT remote_port FROM sockets WHERE proto = 'tcp' ORDER BY p",
            "p\n0\n8080\n44540\n",
        ),
        (
            "SELECT coalesce(path, local_address) AS at FROM sockets \
             WHERE proto = 'tcp' OR family = 'unix' ORDER BY at",
            "at\n/tmp/netsql-fixture.sock\n127.0.0.1\n127.0.0.1\n127.0.0.1\n@fixture-abstract\n",
        ),
        (
            "SELECT a.inode AS a, b.inode AS b FROM sockets a JOIN sockets b \
             ON a.local_port = b.remote_port AND a.remote_port = b.local_port \
             WHERE a.proto = 'tcp' AND a.state = 'ESTABLISHED' ORDER BY a.inode",
            "a,b\n11606,11607\n11607,11606\n",
        ),
    ] {
        assert_eq!(
            stdout(&fixture(&["--format", "csv", "-e", sql])),
            expected,
            "{sql}"
        );
    }
    let described = stdout(&run(&["--format", "json", "-e", "DESCRIBE sockets"]));
    let described: Vec<serde_json::Value> = serde_json::from_str(&described).unwrap();
    assert_eq!(described.len(), netsql::tables::sockets::SPEC.columns.len());
    for (row, column) in described.iter().zip(netsql::tables::sockets::SPEC.columns) {
        assert_eq!(row["column_name"], column.name);
        assert_eq!(row["description"], column.doc, "{}", column.name);
    }
}

/// A saved query's name or parameter given wrong gets a line that says what is wrong.
#[test]
fn saved_query_mistakes_say_what_is_wrong() {
    assert_error(&fixture(&["-q", "listner"]), "did you mean listeners?");
    assert_error(
        &fixture(&["-q", "listeners", "-p", "nosuch=1"]),
        "unknown parameter \"nosuch\" (it takes no parameters)",
    );
    // An audit parameter no audit declares is a typo, not an allowlist of nothing.
    assert_error(
        &fixture(&["audit", "-p", "alow=sshd"]),
        "no audit takes the parameter \"alow\" (they take: ",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("on_port.sql"),
        "-- name: on_port\n-- description: one port\n-- param: port = 1\n\
         SELECT inode FROM sockets WHERE local_port = $port;\n",
    )
    .unwrap();
    let queries = dir.path().to_str().unwrap();
    assert_error(
        &fixture(&["--queries", queries, "-q", "on_port", "-p", "port=abc"]),
        "parameter port: \"abc\" is not a value of type Int32",
    );
}

/// `--history` naming a folder that is not there says so; only queries of `history.*`
/// fail (it used to say "cannot write" and fail every query).
#[test]
fn a_missing_history_fails_only_history_queries() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nohist");
    let missing = missing.to_str().unwrap();
    let warning = format!("netsql: --history {missing}: no such directory (no history.* tables)\n");
    let out = run(&[
        "--history",
        missing,
        "--format",
        "csv",
        "-e",
        "SELECT 1 AS one",
    ]);
    assert_eq!(stdout(&out), "one\n1\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), warning);
    let out = run(&[
        "--history",
        missing,
        "-e",
        "SELECT count(*) FROM history.sockets",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&warning), "{err}");
    assert!(err[warning.len()..].contains("history.sockets"), "{err}");
}

/// A bad flag or value is README's one line `netsql: ...`, with the hint to --help on a
/// second line, not clap's block.
#[test]
fn a_bad_flag_is_one_line_and_a_hint() {
    for (args, needle) in [
        (
            &["--format", "xml", "-e", "SELECT 1"][..],
            "invalid value 'xml' for '--format",
        ),
        (
            &["--no-such-flag"][..],
            "unexpected argument '--no-such-flag'",
        ),
        // What clap says under its first line stays: the missing flag, a near one.
        (&["snapshot"][..], "were not provided: --to <DEST>"),
        (
            &["--formt", "csv"][..],
            "tip: a similar argument exists: '--format'",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with("netsql: ") && lines[0].contains(needle),
            "{err}"
        );
        assert_eq!(lines[1], "For more information, try 'netsql --help'.");
    }
    let err =
        String::from_utf8_lossy(&run(&["--format", "xml", "-e", "SELECT 1"]).stderr).into_owned();
    assert!(err.contains("[possible values: table, csv"), "{err}");
}

/// `record --count 0` would write nothing and succeed: refused, as `--every 0s` is.
#[test]
fn record_refuses_a_count_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "record",
        "--to",
        dir.path().to_str().unwrap(),
        "--count",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("netsql: invalid value '0' for '--count <N>'"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// A setting or a COPY that names what is not there fails at once, in one line: `SET
/// netsql.netns` to a namespace that does not exist (it failed the next query), COPY
/// into a directory that does not exist (DataFusion made it).
#[test]
fn settings_and_copies_naming_what_is_not_there_fail_at_once() {
    assert_error(
        &run(&["-e", "SET netsql.netns = 'netsql-no-such-ns'; SELECT 1"]),
        "netsql-no-such-ns",
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("missing/x.parquet");
    let sql = format!("COPY (SELECT 1 AS a) TO '{}'", target.display());
    assert_error(&run(&["-e", &sql]), "no such directory");
    assert!(!dir.path().join("missing").exists(), "no directory made");
    let fine = dir.path().join("x.csv");
    let sql = format!("COPY (SELECT 1 AS a) TO '{}'", fine.display());
    stdout(&run(&["-e", &sql]));
    assert_eq!(std::fs::read_to_string(&fine).unwrap(), "a\n1\n");
}

/// `serve --listen` takes a host name as well as an address; one that does not resolve
/// is refused in one line.
#[test]
fn serve_listens_on_a_host_name() {
    use std::io::BufRead;
    let mut kid = Kid::spawn(
        netsql()
            .args(["serve", "--listen", "localhost:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = kid.stderr.take().unwrap();
    let (send, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stderr).read_line(&mut line);
        let _ = send.send(line);
    });
    let line = first.recv_timeout(Duration::from_secs(30)).expect("a line");
    assert!(
        line.contains("grpc://127.0.0.1:") || line.contains("grpc://[::1]:"),
        "{line}"
    );
    drop(kid);
    let out = run(&["serve", "--listen", "no-such-host.invalid:50051"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("netsql: invalid value 'no-such-host.invalid:50051'"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 2, "{err}");
}

/// `--version` names netsql's version and commit and the DataFusion and Arrow it
/// carries; `-V` stays one line.
#[test]
fn version_names_the_engine_it_carries() {
    let long = stdout(&run(&["--version"]));
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    // The versions Cargo.lock resolved, read independently of the binary.
    let locked = |name: &str| {
        let at = lock
            .find(&format!("name = \"{name}\"\nversion = \""))
            .unwrap_or_else(|| panic!("{name} in Cargo.lock"));
        let rest = &lock[at..];
        let start = rest.find("version = \"").unwrap() + "version = \"".len();
        rest[start..start + rest[start..].find('"').unwrap()].to_string()
    };
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        long,
        format!(
            "netsql {} (commit {commit})\nDataFusion {}\nArrow {}\n",
            env!("CARGO_PKG_VERSION"),
            locked("datafusion"),
            locked("arrow"),
        )
    );
    assert_eq!(
        stdout(&run(&["-V"])),
        format!("netsql {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_load_in_bash_and_complete_formats() {
    let bin = env!("CARGO_BIN_EXE_netsql");
    let script = format!(
        "source <({bin} completions bash) && complete -p netsql && \
         COMP_WORDS=(netsql --format ''); COMP_CWORD=2; COMP_LINE='netsql --format '; \
         COMP_POINT=${{#COMP_LINE}}; _netsql netsql '' --format; echo \"${{COMPREPLY[@]}}\""
    );
    let out = Command::new("bash").args(["-c", &script]).run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().ends_with("-F _netsql netsql"),
        "{text}"
    );
    let offered: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // The witness: the formats `--help` documents.
    let help = Command::new(bin).arg("--help").run();
    let help = String::from_utf8_lossy(&help.stdout);
    let formats = help
        .lines()
        .find(|l| l.contains("possible values: table"))
        .unwrap_or_else(|| panic!("--help lists the formats:\n{help}"));
    let listed: Vec<&str> = formats
        .split("possible values: ")
        .nth(1)
        .unwrap()
        .trim_end_matches(']')
        .split(", ")
        .collect();
    assert_eq!(offered, listed);
}

#[test]
fn the_man_page_lists_every_option_of_help() {
    let bin = env!("CARGO_BIN_EXE_netsql");
    let man = Command::new(bin).arg("man").run();
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout).replace("\\-", "-");
    assert!(
        man.starts_with(".ie") && man.contains(".TH netsql 1"),
        "{man}"
    );
    let help = Command::new(bin).arg("--help").run();
    let help = String::from_utf8_lossy(&help.stdout);
    // The options --help defines: its lines that begin with one.
    let options: std::collections::BTreeSet<&str> = help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
                .find(|w| w.starts_with("--"))
        })
        .collect();
    assert!(options.len() > 20, "{options:?}");
    for option in options {
        assert!(
            man.contains(&format!("fB{option}")),
            "{option} is not in the man page"
        );
    }
    for sub in ["snapshot", "record", "serve", "audit", "completions", "man"] {
        assert!(man.contains(sub), "{sub}");
    }
}

/// DataFusion 55's SQL parser reads `a IS NOT DISTINCT FROM b AND c` as
/// `a IS NOT DISTINCT FROM (b AND c)`: true below, where PostgreSQL says false. netsql
/// refuses that shape in one line; with the parentheses written, the answer is right.
#[test]
fn is_distinct_from_next_to_and_must_be_parenthesized() {
    for sql in [
        "SELECT false IS NOT DISTINCT FROM false AND false AS x",
        "SELECT 1 FROM sockets s JOIN sockets t ON s.inode IS NOT DISTINCT FROM t.inode \
         AND s.pid = t.pid",
        "EXPLAIN SELECT false IS DISTINCT FROM true OR true AS x",
    ] {
        assert_error(&run(&["-e", sql]), "in parentheses");
    }
    for (sql, answer) in [
        (
            "SELECT (false IS NOT DISTINCT FROM false) AND false AS x",
            "x\nfalse\n",
        ),
        // An AND before it is read right: false AND (true IS NOT DISTINCT FROM false).
        (
            "SELECT false AND true IS NOT DISTINCT FROM false AS x",
            "x\nfalse\n",
        ),
        (
            "SELECT false IS NOT DISTINCT FROM (false AND false) AS x",
            "x\ntrue\n",
        ),
        ("SELECT 1 IS DISTINCT FROM 2 AS x", "x\ntrue\n"),
    ] {
        assert_eq!(
            stdout(&run(&["--format", "csv", "-e", sql])),
            answer,
            "{sql}"
        );
    }
}

/// `rss_bytes` is the resident memory `ps` and /proc/<pid>/status show: stat's rss field
/// is the kernel's per-CPU approximation, off by up to a fifth on 6.x kernels.
#[test]
fn rss_is_what_ps_counts() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Until exec has replaced the forked image, the numbers move.
    let status = format!("/proc/{pid}/status");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&status)
        .unwrap_or_default()
        .starts_with("Name:\tsleep")
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let sql = format!("SELECT rss_bytes FROM processes WHERE pid = {pid}");
    let ours = stdout(&run(&["--format", "csv", "-e", &sql]));
    let ps = std::process::Command::new("ps")
        .args(["-o", "rss=", "-p", &pid])
        .output()
        .unwrap();
    let vm_rss = std::fs::read_to_string(&status)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| v.trim().trim_end_matches(" kB").to_string())
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let kib = |text: &str| text.trim().parse::<u64>().unwrap() * 1024;
    let want = kib(&String::from_utf8_lossy(&ps.stdout));
    assert_eq!(want, kib(&vm_rss));
    assert_eq!(ours, format!("rss_bytes\n{want}\n"));
}

/// A `--host` that a partition path cannot hold as it is was rewritten (`a b` to `a_b`):
/// `WHERE host = 'a b'` found nothing, and `a b` and `a_b` shared one partition. It is
/// refused in one line, with nothing written; a name that can be a path segment is kept.
#[test]
fn snapshot_refuses_a_host_name_it_would_have_to_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap();
    for host in ["a b", "x=y", "é", "p%2Fq", "a/b", ".hidden", ""] {
        let out = run(&[
            "snapshot",
            "--to",
            to,
            "--tables",
            "interfaces",
            "--host",
            host,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{host:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("netsql: --host {host:?}: ")),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    let out = run(&[
        "snapshot",
        "--to",
        to,
        "--tables",
        "interfaces",
        "--host",
        "web-1.a_b",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "--history",
        to,
        "--format",
        "csv",
        "-e",
        "SELECT DISTINCT host FROM history.interfaces",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host\nweb-1.a_b\n");
}

/// Query files as editors leave them: a user folder holding one bad file still serves
/// the rest (it failed every saved query, the built-in ones too), a byte-order mark
/// neither hides a header nor fails the SQL, and an audit folder of no audits is an
/// error (it passed, exit 0).
#[test]
fn query_files_with_a_bad_neighbour_a_bom_and_none_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("netsql/queries");
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(queries.join("bad.sql"), "-- param: nodefault\nSELECT 1\n").unwrap();
    std::fs::write(
        queries.join("bom.sql"),
        "\u{feff}-- name: bomq\r\n-- param: lim = 2\r\nSELECT 7 AS seven LIMIT $lim;\r\n",
    )
    .unwrap();
    let out = netsql()
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["--format", "csv", "-q", "bomq", "-p", "lim=1"])
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "seven\n7\n");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.sql"), "{stderr}");
    let bom = dir.path().join("bom-only.sql");
    std::fs::write(&bom, "\u{feff}SELECT 8 AS eight;").unwrap();
    let out = run(&["--format", "csv", "-f", bom.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "eight\n8\n");
    let empty = dir.path().join("no-audits");
    std::fs::create_dir(&empty).unwrap();
    assert_error(&run(&["audit", empty.to_str().unwrap()]), "no audits in it");
}
