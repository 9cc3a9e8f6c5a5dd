//! History: snapshots of a namespace whose sockets the test made, written as a Parquet
//! dataset and read back by netsql (`--history`), DuckDB and pyarrow; recording with a
//! count and with SIGTERM; a full disk; a file lacking a column; a corrupt file; pruning.

#[path = "../common/mod.rs"]
mod common;
mod engines;
#[path = "../netns_sockets/ss.rs"]
mod ss;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ndjson, netsql, number, text, Kid, Netns, Row, RunExt};

const QUERIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");

fn ok(args: &[&str]) -> String {
    succeeds(netsql().args(args))
}

/// Runs a netsql command that must succeed; its stdout.
fn succeeds(command: &mut std::process::Command) -> String {
    let what = format!("{command:?}");
    let out = command.run();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rows(args: &[&str]) -> Vec<Row> {
    let mut all = args.to_vec();
    all.extend(["--format", "ndjson"]);
    ndjson(ok(&all).as_bytes())
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Runs python3 on `script` with `args`; its stdout.
fn python(script: &str, args: &[&str]) -> String {
    // In a folder of its own: Spark's Derby metastore leaves derby.log where it runs.
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(scratch.path())
        .run();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The saved query's SQL run by DuckDB over the dataset, compared there with netsql's
use engines::{DUCKDB_COMPARE, PYARROW_READ, S3, SPARK_DDL, SPARK_READ};

/// The ticks a recording says it skipped ("... N tick(s) skipped" lines), in all.
fn skipped_reported(stderr: &[u8]) -> i64 {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("netsql: a snapshot overran its interval: ")?
                .strip_suffix(" tick(s) skipped")?
                .parse::<i64>()
                .ok()
        })
        .sum()
}

/// `date -u` for `days` days ago (`+%F`): the witness for partition names.
fn day(days_ago: u32) -> String {
    common::run_ok(
        "date",
        &["-u", "-d", &format!("{days_ago} days ago"), "+%F"],
    )
    .trim()
    .to_string()
}

#[test]
fn record_retain_deletes_old_days_from_the_command_line() {
    let dest = tempfile::tempdir().unwrap();
    let made = [
        ("sockets", day(1)),
        ("sockets", day(3)),
        ("sockets", "2000-01-01".to_string()),
        ("interfaces", day(3)),
    ];
    for (table, date) in &made {
        let dir = dest.path().join(format!("{table}/date={date}/host=old"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.parquet"), b"").unwrap();
    }
    succeeds(netsql().args([
        "record",
        "--to",
        dest.path().to_str().unwrap(),
        "--every",
        "1s",
        "--count",
        "1",
        "--retain",
        "2d",
        "--tables",
        "sockets",
        "--host",
        "now",
    ]));
    let left = files(dest.path());
    // Yesterday is within two days; three days ago and older are gone, in every table.
    assert!(
        left.contains(&format!("sockets/date={}/host=old/x.parquet", day(1))),
        "{left:?}"
    );
    let three_days_ago = day(3);
    assert!(
        left.iter()
            .all(|f| !f.contains(&three_days_ago) && !f.contains("2000-01-01")),
        "{left:?}"
    );
    assert_eq!(
        left.iter().filter(|f| f.contains("/host=now/")).count(),
        1,
        "{left:?}"
    );
}

#[test]
fn record_for_a_period_stops_by_itself() {
    let dest = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = netsql()
        .args([
            "record",
            "--to",
            dest.path().to_str().unwrap(),
            "--every",
            "1s",
            "--for",
            "3s",
            "--tables",
            "interfaces",
        ])
        .run_within(Duration::from_secs(30));
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Within the period (and the snapshot under way at its end, and a start-up slowed by
    // the other tests); ticks each second.
    assert!(took < Duration::from_secs(8), "{took:?}");
    let written = files(dest.path()).len() as i64 + skipped_reported(&out.stderr);
    assert!((2..=3).contains(&written), "{:?}", files(dest.path()));
}

/// An S3 endpoint on loopback that takes `delay` to refuse each request (403): a store
/// slower than the interval. When each request arrived.
fn slow_store(
    delay: Duration,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    // The request line and headers; then the body, read whole.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    seen.lock().unwrap().push(std::time::Instant::now());
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    std::thread::sleep(delay);
                    let answer = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>slow and no</Message></Error>";
                    let response = format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if reader.get_mut().write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, arrivals)
}

#[test]
fn ticks_a_slow_snapshot_overran_are_reported() {
    // Each snapshot takes 1.6 s against the 1 s interval: the next tick is 2 s later
    // (3 s when collecting and connecting took 0.4 s more, on a loaded machine), one tick
    // or more skipped each time, as the store itself sees the requests arrive.
    let (endpoint, arrivals) = slow_store(Duration::from_millis(1600));
    let out = netsql()
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .args([
            "record",
            "--to",
            "s3://slow/netsql",
            "--every",
            "1s",
            "--count",
            "3",
            "--tables",
            "interfaces",
        ])
        .run_within(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every snapshot failed (403): exit 2, each failure said.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains("snapshot at")).count(),
        3,
        "{stderr}"
    );
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 3, "one request a snapshot: {stderr}");
    let seen_skipped: i64 = arrivals
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).as_secs_f64().round() as i64 - 1)
        .sum();
    assert!(seen_skipped >= 2, "{arrivals:?}");
    assert_eq!(skipped_reported(&out.stderr), seen_skipped, "{stderr}");
}

#[test]
fn snapshots_read_back_in_netsql_duckdb_and_pyarrow() {
    let Some(ns) = Netns::create("history", &["python3"]) else {
        return;
    };
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().to_str().unwrap().to_string();
    let listen = |port: u16| ns.within(move || TcpListener::bind(("127.0.0.1", port)).unwrap());
    let first = listen(7400);
    let second = listen(7401);
    let _pair = ns.within(|| TcpStream::connect("127.0.0.1:7400").unwrap());
    let snapshot_of = |scope: &str, tables: &str| {
        let out = ok(&[
            "--netns", scope, "snapshot", "--to", &dir, "--host", "h1", "--tables", tables,
        ]);
        out.lines().map(PathBuf::from).collect::<Vec<_>>()
    };
    let snapshot = |tables: &str| snapshot_of(&ns.name, tables);
    let stable =
        "proto, state, local_address, local_port, remote_address, remote_port, inode, uid, recv_q";
    let live_before = rows(&[
        "--netns",
        &ns.name,
        "-e",
        &format!("SELECT {stable} FROM sockets ORDER BY inode, local_port"),
    ]);
    let ss_before = ss::ss_rows(&ns);
    let written = snapshot("sockets,interfaces");
    let ss_after = ss::ss_rows(&ns);
    let live_after = rows(&[
        "--netns",
        &ns.name,
        "-e",
        &format!("SELECT {stable} FROM sockets ORDER BY inode, local_port"),
    ]);
    assert_eq!(live_before, live_after, "the namespace is quiet");
    assert_eq!(ss_before, ss_after, "the namespace is quiet");
    // One file a table, in its partition, under its final name; nothing else.
    assert_eq!(written.len(), 2);
    let listed = files(dest.path());
    assert_eq!(listed.len(), 2, "{listed:?}");
    for file in &listed {
        let parts: Vec<&str> = file.split('/').collect();
        assert!(["sockets", "interfaces"].contains(&parts[0]), "{file}");
        assert!(
            parts[1].starts_with("date=20") && parts[1].len() == 15,
            "{file}"
        );
        assert_eq!(parts[2], "host=h1");
        assert!(
            parts[3].ends_with(".parquet") && parts[3].as_bytes()[8] == b'T',
            "{file}"
        );
    }
    let back = rows(&[
        "--history",
        &dir,
        "-e",
        &format!("SELECT {stable} FROM history.sockets ORDER BY inode, local_port"),
    ]);
    assert_eq!(
        back, live_before,
        "the snapshot holds what a live query saw"
    );
    // And what ss saw, row for row.
    let mut kept: Vec<ss::SsRow> =
        rows(&["--history", &dir, "-e", "SELECT * FROM history.sockets"])
            .iter()
            .map(ss::as_ss)
            .collect();
    kept.sort();
    let mut seen = ss_before;
    seen.sort();
    assert_eq!(kept, seen, "the snapshot holds what ss saw");
    let interfaces = rows(&[
        "--history",
        &dir,
        "-e",
        "SELECT name FROM history.interfaces ORDER BY name",
    ]);
    assert_eq!(
        interfaces
            .iter()
            .map(|r| text(r, "name").unwrap())
            .collect::<Vec<_>>(),
        ["lo"]
    );

    // Three snapshots: 7401 closed before the second, 7402 opened before the third.
    // The last two also read a second namespace (a second container), which listens on
    // 127.0.0.1:7400 too from the third on: a new listener, though the first namespace
    // had one on that address and port all along.
    let other = Netns::create("history2", &[]).expect("a second namespace");
    let both = format!("{},{}", ns.name, other.name);
    drop(second);
    std::thread::sleep(Duration::from_millis(20));
    snapshot_of(&both, "sockets");
    let third = listen(7402);
    let twin = other.within(|| TcpListener::bind("127.0.0.1:7400").unwrap());
    std::thread::sleep(Duration::from_millis(20));
    snapshot_of(&both, "sockets");
    let new = rows(&["--history", &dir, "-q", "history_new_listeners"]);
    let new: Vec<(Option<String>, u64)> = new
        .iter()
        .map(|r| (text(r, "netns_name"), number(r, "local_port").unwrap()))
        .collect();
    assert_eq!(
        new,
        [
            (Some(other.name.clone()), 7400),
            (Some(ns.name.clone()), 7402)
        ]
    );
    let timeline = rows(&["--history", &dir, "-q", "history_listener_timeline"]);
    let mut seen: Vec<(u64, u64, Option<String>)> = timeline
        .iter()
        .map(|r| {
            (
                number(r, "local_port").unwrap(),
                number(r, "snapshots").unwrap(),
                text(r, "netns_name"),
            )
        })
        .collect();
    seen.sort();
    let name = |ns: &Netns| Some(ns.name.clone());
    assert_eq!(
        seen,
        [
            (7400, 1, name(&other)),
            (7400, 3, name(&ns)),
            (7401, 1, name(&ns)),
            (7402, 1, name(&ns))
        ]
    );
    let by_port = |p: u64| {
        timeline
            .iter()
            .find(|r| number(r, "local_port") == Some(p) && text(r, "netns_name") == name(&ns))
            .unwrap()
    };
    assert_eq!(
        text(by_port(7400), "first_seen"),
        text(by_port(7401), "last_seen")
    );
    assert_eq!(
        text(by_port(7400), "last_seen"),
        text(by_port(7402), "first_seen")
    );
    let hourly = rows(&["--history", &dir, "-q", "history_connections_per_hour"]);
    assert_eq!(hourly.len(), 1, "one hour, one remote: {hourly:?}");
    assert_eq!(
        number(&hourly[0], "connections"),
        Some(2),
        "both ends of the pair"
    );

    // DuckDB runs the same SQL files over the same files and gets the same rows.
    for name in [
        "history_new_listeners",
        "history_listener_timeline",
        "history_connections_per_hour",
    ] {
        let ours = dest.path().join(format!(".{name}.ndjson"));
        std::fs::write(
            &ours,
            ok(&["--history", &dir, "--format", "ndjson", "-q", name]),
        )
        .unwrap();
        let sql = format!("{QUERIES}/{name}.sql");
        let verdict = python(DUCKDB_COMPARE, &[&dir, &sql, ours.to_str().unwrap()]);
        assert!(verdict.starts_with("same "), "{name}: {verdict}");
        std::fs::remove_file(ours).unwrap();
    }
    // pyarrow with hive partitioning: the same row count, the types the README promises.
    let count = rows(&[
        "--history",
        &dir,
        "-e",
        "SELECT count(*) AS n FROM history.sockets",
    ]);
    let read = python(PYARROW_READ, &[&dir]);
    assert_eq!(
        read.trim(),
        format!(
            "{} timestamp[us, tz=UTC] int32 int64 string string",
            number(&count[0], "n").unwrap()
        )
    );
    // Spark (pyspark, its partition discovery): the same rows, the types promised.
    let spark = python(SPARK_READ, &[&dir]);
    let ours = rows(&[
        "--history",
        &dir,
        "-e",
        "SELECT host, local_port, inode FROM history.sockets",
    ]);
    let mut want: Vec<String> = ours
        .iter()
        .map(|r| {
            let port = number(r, "local_port").map_or("None".to_string(), |p| p.to_string());
            format!(
                "{} {port} {}",
                text(r, "host").unwrap(),
                number(r, "inode").unwrap()
            )
        })
        .collect();
    want.sort();
    let mut got: Vec<&str> = spark.lines().filter(|l| !l.starts_with("types ")).collect();
    got.sort();
    assert_eq!(got, want);
    assert!(
        spark
            .lines()
            .any(|l| l == "types timestamp int bigint string date"),
        "{spark}"
    );
    // A query on one host reads only that host's files (counted in the plan).
    snapshot_other_host(&ns, &dir);
    let plan = ok(&[
        "--history",
        &dir,
        "--format",
        "csv",
        "-e",
        "EXPLAIN SELECT local_port FROM history.sockets WHERE host = 'h1'",
    ]);
    assert_eq!(plan.matches(".parquet").count(), 3, "{plan}");
    let plan = ok(&[
        "--history",
        &dir,
        "--format",
        "csv",
        "-e",
        "EXPLAIN SELECT local_port FROM history.sockets",
    ]);
    assert_eq!(plan.matches(".parquet").count(), 4, "{plan}");
    drop((first, third, twin));
}

fn snapshot_other_host(ns: &Netns, dir: &str) {
    ok(&[
        "--netns", &ns.name, "snapshot", "--to", dir, "--host", "h2", "--tables", "sockets",
    ]);
}

/// The dataset files `netsql --history DIR -e SQL` opened, as strace saw them.
fn files_opened(dir: &str, sql: &str) -> std::collections::BTreeSet<String> {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("strace")
        // -z: successful calls only, each on one line (no unfinished/resumed halves).
        .args([
            "-f",
            "-qq",
            "-z",
            "-e",
            "trace=?open,openat",
            "-e",
            "signal=none",
            "-o",
        ])
        .arg(trace.path())
        .arg(env!("CARGO_BIN_EXE_netsql"))
        .args(["--history", dir, "-e", sql])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .filter_map(|l| l.split('"').nth(1))
        .filter(|path| path.starts_with(dir) && path.ends_with(".parquet"))
        .map(|path| path[dir.len()..].trim_start_matches('/').to_string())
        .collect()
}

/// A query on one host opens only that host's files: strace is the witness, not the
/// plan's text. The other host's file is older than the four newest (h1's), whose
/// footers give the table its schema, so nothing but pruning keeps it closed.
#[test]
fn a_query_on_one_host_opens_only_its_files() {
    let Some(ns) = Netns::create("prune", &["strace"]) else {
        return;
    };
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().to_str().unwrap().to_string();
    snapshot_other_host(&ns, &dir);
    // File names are stamped to the second: h1's must sort after h2's.
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..4 {
        ok(&[
            "--netns", &ns.name, "snapshot", "--to", &dir, "--host", "h1", "--tables", "sockets",
        ]);
    }
    let all = files(dest.path());
    let of = |host: &str| -> std::collections::BTreeSet<String> {
        all.iter()
            .filter(|f| f.contains(&format!("/host={host}/")))
            .cloned()
            .collect()
    };
    assert_eq!((of("h1").len(), of("h2").len()), (4, 1), "{all:?}");
    let sql =
        |host: &str| format!("SELECT count(local_port) FROM history.sockets WHERE host = '{host}'");
    assert_eq!(files_opened(&dir, &sql("h1")), of("h1"));
    // And h2's is opened when it is asked for (h1's too, for the schema).
    assert!(files_opened(&dir, &sql("h2")).is_superset(&of("h2")));
}

#[test]
fn old_files_without_a_column_and_corrupt_files() {
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().to_str().unwrap().to_string();
    ok(&[
        "snapshot", "--to", &dir, "--host", "now", "--tables", "sockets",
    ]);
    let now = rows(&[
        "--history",
        &dir,
        "-e",
        "SELECT count(*) AS n FROM history.sockets",
    ]);
    let n = number(&now[0], "n").unwrap();
    // A file as an older netsql would have written it: no uid column.
    let old = dest.path().join("sockets/date=2020-01-01/host=old");
    std::fs::create_dir_all(&old).unwrap();
    python(
        "import sys, datetime, pyarrow as pa, pyarrow.parquet as pq\n\
         t = pa.table({'taken': pa.array([datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)] * 2, pa.timestamp('us', tz='UTC')),\n\
                       'proto': ['tcp', 'udp'], 'local_port': pa.array([22, 53], pa.int32())})\n\
         pq.write_table(t, sys.argv[1])",
        &[old.join("20200101T000000Z-old.parquet").to_str().unwrap()],
    );
    let mixed = rows(&["--history", &dir, "-e", "SELECT host, count(*) AS n, count(uid) AS with_uid FROM history.sockets GROUP BY host ORDER BY host"]);
    assert_eq!(
        mixed
            .iter()
            .map(|r| (
                text(r, "host").unwrap(),
                number(r, "n").unwrap(),
                number(r, "with_uid").unwrap()
            ))
            .collect::<Vec<_>>(),
        [("now".to_string(), n, n), ("old".to_string(), 2, 0)]
    );
    // A corrupt file: one line naming it, exit 2, no panic.
    let fails_naming = |file: &Path| {
        let out = netsql()
            .args([
                "--history",
                &dir,
                "-e",
                "SELECT count(*) FROM history.sockets",
            ])
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    };
    let bad = old.join("broken.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet").unwrap();
    fails_naming(&bad);
    // An older corrupt file (the schema comes from the newest files): the query that
    // reads it fails in one line naming it.
    std::fs::remove_file(&bad).unwrap();
    let older = old.join("10000101T000000Z-older.parquet");
    std::fs::write(&older, b"PAR1 not parquet either").unwrap();
    fails_naming(&older);
    std::fs::rename(&older, &bad).unwrap();
    // --history-skip-corrupt: the same rows as before the corrupt files came, and one
    // warning line naming each (a second one, in another partition).
    let other = dest.path().join("sockets/date=2020-01-02/host=old");
    std::fs::create_dir_all(&other).unwrap();
    let bad2 = other.join("truncated.parquet");
    std::fs::write(&bad2, b"").unwrap();
    // The rows of hosts now and old, and the warnings (a folder of copies, made below,
    // left out).
    let skipping = || -> String {
        let out = netsql()
            .args([
                "--history",
                &dir,
                "--history-skip-corrupt",
                "--format",
                "csv",
                "-e",
                "SELECT host, count(*) AS n FROM history.sockets WHERE host <> 'copies' \
                 GROUP BY host ORDER BY host",
            ])
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("host,n\nnow,{n}\nold,2\n")
        );
        stderr
    };
    let stderr = skipping();
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].contains("skipping corrupt") && warnings[0].contains(bad.to_str().unwrap()),
        "{stderr}"
    );
    assert!(warnings[1].contains(bad2.to_str().unwrap()), "{stderr}");
    // An older corrupt file alone, the schema's files sound: left out as well (it failed
    // the query it was to be left out of).
    std::fs::remove_file(&bad).unwrap();
    std::fs::remove_file(&bad2).unwrap();
    std::fs::write(&older, b"PAR1 not parquet either").unwrap();
    // Four newer sound files the schema is read from, in a folder the query leaves out.
    let copies = dest.path().join("sockets/date=2020-01-03/host=copies");
    std::fs::create_dir_all(&copies).unwrap();
    for i in 0..4 {
        std::fs::copy(
            old.join("20200101T000000Z-old.parquet"),
            copies.join(format!("2030010{i}T000000Z-copy.parquet")),
        )
        .unwrap();
    }
    let stderr = skipping();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(older.to_str().unwrap()), "{stderr}");
    // A statement that reads no history table runs whatever the dataset holds (a corrupt
    // file failed every statement, `SELECT 1` too), and SHOW TABLES lists the table.
    std::fs::remove_file(&older).unwrap();
    std::fs::remove_dir_all(&copies).unwrap();
    std::fs::write(&bad, b"PAR1 this is not parquet").unwrap();
    for (sql, want) in [
        ("SELECT 1 AS one", "one\n1\n"),
        (
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_schema = 'history'",
            "table_schema,table_name\nhistory,sockets\n",
        ),
    ] {
        let out = netsql()
            .args(["--history", &dir, "--format", "csv", "-e", sql])
            .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{sql}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{sql}");
    }
    fails_naming(&bad);
}

#[test]
fn record_counts_stops_on_sigterm_and_survives_a_full_disk() {
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().to_str().unwrap().to_string();
    let out = netsql()
        .args([
            "record", "--to", &dir, "--every", "1s", "--count", "3", "--tables", "sockets",
            "--host", "r",
        ])
        .run_within(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = files(dest.path());
    assert_eq!(written.len(), 3, "{written:?}");
    // Ticks on whole seconds: the file names' times are one second apart, or further by
    // exactly the ticks the recording said it skipped (a busy machine overruns).
    let seconds: Vec<i64> = written
        .iter()
        .map(|f| {
            let hhmmss = &f.rsplit('/').next().unwrap()[9..15];
            let n = |at: usize| hhmmss[at..at + 2].parse::<i64>().unwrap();
            n(0) * 3600 + n(2) * 60 + n(4)
        })
        .collect();
    let gaps: i64 = seconds
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).rem_euclid(86400) - 1)
        .sum();
    assert_eq!(
        gaps,
        skipped_reported(&out.stderr),
        "{written:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM: the snapshot under way finishes, exit 0, nothing partial.
    let other = tempfile::tempdir().unwrap();
    let kid = Kid::spawn(
        netsql()
            .args([
                "record",
                "--to",
                other.path().to_str().unwrap(),
                "--every",
                "1s",
                "--tables",
                "sockets,processes",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let started = std::time::Instant::now();
    while files(other.path())
        .iter()
        .filter(|f| f.ends_with(".parquet"))
        .count()
        < 2
    {
        assert!(started.elapsed() < Duration::from_secs(20), "no snapshot");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(kid.id() as i32, libc::SIGTERM) };
    let out = kid.finish_within(Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    let left = files(other.path());
    assert!(
        left.iter()
            .all(|f| f.ends_with(".parquet") && !f.contains(".partial")),
        "{left:?}"
    );
    assert_eq!(left.len() % 2, 0, "whole snapshots only: {left:?}");

    // A full disk: each snapshot fails with the reason, leaves no file; exit 2 when all did.
    let full = tempfile::tempdir().unwrap();
    let mount = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=4k",
            "tmpfs",
            full.path().to_str().unwrap(),
        ])
        .run();
    if !mount.status.success() {
        assert!(
            !common::require_netns(),
            "cannot mount a tmpfs: {}",
            String::from_utf8_lossy(&mount.stderr)
        );
        eprintln!("skipped: not root, cannot mount a small tmpfs");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).run();
        }
    }
    let _unmount = Unmount(full.path().to_path_buf());
    // One page holds no snapshot of every process.
    let out = netsql()
        .args([
            "record",
            "--to",
            full.path().to_str().unwrap(),
            "--every",
            "1s",
            "--count",
            "2",
            "--tables",
            "processes",
        ])
        .run_within(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("snapshot at"))
        .collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(
        failures.iter().all(|l| l.contains("No space left")),
        "{stderr}"
    );
    let left = files(full.path());
    assert!(
        left.iter()
            .all(|f| !f.ends_with(".parquet") && !f.contains(".partial")),
        "{left:?}"
    );
}

#[test]
fn printed_hive_ddl_makes_tables_spark_reads() {
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().join("data");
    let dir = dir.to_str().unwrap();
    for host in ["a", "b"] {
        ok(&[
            "snapshot",
            "--to",
            dir,
            "--host",
            host,
            "--tables",
            "sockets,processes",
        ]);
    }
    let ddl = ok(&[
        "snapshot",
        "--to",
        dir,
        "--tables",
        "sockets,processes",
        "--print-ddl",
        "hive",
    ]);
    assert_eq!(
        files(Path::new(dir)).len(),
        4,
        "--print-ddl writes no snapshot"
    );
    let ddl_file = dest.path().join("ddl.sql");
    std::fs::write(&ddl_file, &ddl).unwrap();
    let warehouse = dest.path().join("warehouse");
    let spark = python(
        SPARK_DDL,
        &[ddl_file.to_str().unwrap(), warehouse.to_str().unwrap()],
    );
    for table in ["sockets", "processes"] {
        let count = rows(&[
            "--history",
            dir,
            "-e",
            &format!("SELECT count(*) AS n FROM history.{table}"),
        ]);
        let want = format!("{table} {} 2", number(&count[0], "n").unwrap());
        assert!(spark.lines().any(|l| l == want), "want {want} in {spark}");
    }
}

#[test]
fn record_to_an_s3_store_and_read_it_back() {
    let have = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .run()
        .status
        .success();
    if !have {
        assert!(
            !common::require_netns(),
            "moto_server is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: moto_server is not installed");
        return;
    }
    let s3 = S3::start();
    let make_bucket = "import boto3, sys\n\
        boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing',\n\
        aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket='fleet')";
    python(make_bucket, &[&s3.endpoint]);
    succeeds(s3.netsql().args([
        "record",
        "--to",
        "s3://fleet/netsql",
        "--every",
        "1s",
        "--count",
        "3",
        "--tables",
        "sockets,interfaces",
        "--host",
        "web1",
    ]));
    let read = |sql: &str| {
        common::ndjson_rows(s3.netsql().args([
            "--history",
            "s3://fleet/netsql",
            "--format",
            "ndjson",
            "-e",
            sql,
        ]))
    };
    let snapshots =
        read("SELECT host, count(DISTINCT taken) AS n FROM history.sockets GROUP BY host");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(
        (
            text(&snapshots[0], "host").as_deref(),
            number(&snapshots[0], "n")
        ),
        (Some("web1"), Some(3))
    );
    let interfaces = read("SELECT count(*) AS n FROM history.interfaces WHERE name = 'lo'");
    assert_eq!(number(&interfaces[0], "n"), Some(3));
    // pyarrow's own S3 filesystem reads the same objects.
    let script = "import sys, pyarrow.dataset as ds, pyarrow.fs as fs\n\
        s3 = fs.S3FileSystem(endpoint_override=sys.argv[1], access_key='testing', secret_key='testing', region='us-east-1', scheme='http')\n\
        d = ds.dataset('fleet/netsql/sockets', filesystem=s3, format='parquet', partitioning='hive')\n\
        t = d.to_table(columns=['host', 'taken'])\n\
        print(t.num_rows, len(set(t.column('taken').to_pylist())))";
    let total = read("SELECT count(*) AS n FROM history.sockets");
    assert_eq!(
        python(script, &[&s3.endpoint]).trim(),
        format!("{} 3", number(&total[0], "n").unwrap())
    );
    // A corrupt object in the dataset: the query fails in one line naming it.
    let put_garbage = "import boto3, sys\n\
        boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing',\n\
        aws_secret_access_key='testing', region_name='us-east-1').put_object(Bucket='fleet',\n\
        Key='netsql/sockets/date=2026-01-01/host=web1/bad.parquet', Body=b'not parquet at all')";
    python(put_garbage, &[&s3.endpoint]);
    let out = s3
        .netsql()
        .args([
            "--history",
            "s3://fleet/netsql",
            "-e",
            "SELECT count(*) FROM history.sockets",
        ])
        .run_within(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("s3://fleet/netsql/sockets/date=2026-01-01/host=web1/bad.parquet"),
        "{stderr}"
    );
    // The store gone mid-recording: each snapshot fails with the reason, exit 2, no panic.
    let env = s3.env();
    drop(s3.server);
    let out = netsql()
        .envs(env)
        .args([
            "record",
            "--to",
            "s3://fleet/netsql",
            "--every",
            "1s",
            "--count",
            "2",
            "--tables",
            "sockets",
        ])
        .run_within(Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("snapshot at"))
        .collect();
    assert_eq!(failed.len(), 2, "{stderr}");
    // Retries are bounded (3, none started after 15 s), not the crate's 10 in 3 minutes.
    for line in failed {
        assert!(line.contains("after 3 retries"), "{line}");
    }
}
