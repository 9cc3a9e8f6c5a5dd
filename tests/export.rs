//! `-o FILE` in every format, read back by independent readers; writes all or nothing;
//! COPY on the live tables; the read-only guard.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{netsql, RunExt};

const PROC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");
const ETC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/etc");

fn fixture(args: &[&str]) -> Output {
    netsql()
        .args(["--proc", PROC, "--etc", ETC, "--source", "proc"])
        .args(args)
        .run()
}

/// Integers, unsigned queues, a nullable string, a list and a UTC timestamp.
const QUERY: &str = "SELECT s.proto, s.local_port, s.recv_q, s.inode, s.path, sv.aliases, \
                     to_timestamp_micros(1700000000000000 + s.inode) AT TIME ZONE 'UTC' AS stamp \
                     FROM sockets s LEFT JOIN services sv ON sv.port = s.local_port AND sv.protocol = 'tcp' \
                     ORDER BY s.inode";

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn python_readers() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyarrow, duckdb"])
        .run()
        .status
        .success();
    if !ok {
        if common::require_netns() {
            panic!("CI must install pyarrow and duckdb (pip install pyarrow duckdb)");
        }
        eprintln!("skipped: pyarrow and duckdb are not installed");
    }
    ok
}

#[test]
fn every_format_reads_back_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["csv", "tsv", "json", "ndjson", "parquet", "arrow"] {
        let path = dir.path().join(format!("out.{ext}"));
        let out = fixture(&["-o", path.to_str().unwrap(), "-e", QUERY]);
        assert!(
            out.status.success(),
            "{ext}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{ext}: -o writes nothing to stdout");
    }
    // The Parquet magic at both ends, the Arrow file magic at the start.
    let parquet = std::fs::read(dir.path().join("out.parquet")).unwrap();
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    assert!(std::fs::read(dir.path().join("out.arrow"))
        .unwrap()
        .starts_with(b"ARROW1"));
    if !python_readers() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readback.py");
    let out = Command::new("python3")
        .args([script, dir.path().to_str().unwrap()])
        .run();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

#[test]
fn a_failed_write_leaves_nothing_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    std::fs::write(&target, "old\n").unwrap();
    for sql in ["SELECT * FROM nope", "SELECT 1 / 0 AS boom", "SELEC 1"] {
        let out = fixture(&["-o", target.to_str().unwrap(), "-e", sql]);
        assert_eq!(out.status.code(), Some(2), "{sql}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n", "{sql}");
        assert_eq!(
            files_in(dir.path()),
            ["out.csv"],
            "{sql}: no temporary file left"
        );
    }
    // A folder that cannot hold the file (a regular file stands in its path).
    let blocked = dir.path().join("out.csv").join("x.parquet");
    let out = fixture(&["-o", blocked.to_str().unwrap(), "-e", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("netsql: cannot write") && err.contains("x.parquet"),
        "{err}"
    );
    assert_eq!(files_in(dir.path()), ["out.csv"]);
    // The error names the target, not the temporary file beside it.
    let missing = dir.path().join("nosuch").join("x.csv");
    let out = fixture(&["-o", missing.to_str().unwrap(), "-e", "SELECT 1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "netsql: cannot write {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

/// Ctrl-C, SIGTERM (`timeout`, `kill`) or SIGHUP while `-o` is writing over an existing
/// file: the old file stays as it was and no temporary file is left. `ulimit -f` bounds
/// what a lost signal could write.
#[test]
fn interrupting_an_export_keeps_the_existing_file() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.csv");
        std::fs::write(&target, "old,contents\n").unwrap();
        let mut command = std::process::Command::new("sh");
        command
            .args([
                "-c",
                "ulimit -f 1000000 && exec \"$0\" -o \"$1\" -e \"$2\"",
                env!("CARGO_BIN_EXE_netsql"),
                target.to_str().unwrap(),
                "SELECT * FROM generate_series(1, 1000000000)",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let child = common::Kid::spawn(&mut command);
        // Ready when the temporary file beside the target has bytes in it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let writing = || {
            std::fs::read_dir(dir.path()).unwrap().any(|e| {
                let e = e.unwrap();
                e.file_name() != "big.csv" && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        };
        while !writing() {
            assert!(
                std::time::Instant::now() < deadline,
                "no temporary file grew within 30 s: {:?}",
                files_in(dir.path())
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.finish_within(std::time::Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "signal {signal}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "netsql: interrupted",
            "signal {signal}"
        );
        assert_eq!(files_in(dir.path()), ["big.csv"], "signal {signal}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "old,contents\n",
            "signal {signal}"
        );
    }
}

/// `-o` writes where the shell's `>` would: through a symbolic link (also one to a file
/// not yet there), into a device or FIFO in place (renaming over `/dev/null` replaced it
/// with a file), keeping an old file's mode and owner, a new file 0666 less the umask.
#[test]
fn output_goes_where_the_shell_would_put_it() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let write = |target: &Path, umask: &str| {
        let out = Command::new("sh")
            .args([
                "-c",
                "umask \"$3\" && exec \"$0\" --format csv -o \"$1\" -e \"$2\"",
                env!("CARGO_BIN_EXE_netsql"),
                target.to_str().unwrap(),
                "SELECT 7 AS n",
                umask,
            ])
            .stdin(Stdio::null())
            .run();
        assert!(
            out.status.success(),
            "{}: {}",
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(at("real.csv"), "old\n").unwrap();
    std::os::unix::fs::symlink("real.csv", at("link.csv")).unwrap();
    std::os::unix::fs::symlink("later.csv", at("dangling.csv")).unwrap();
    write(&at("link.csv"), "022");
    write(&at("dangling.csv"), "022");
    assert!(at("link.csv").symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(at("real.csv")).unwrap(), "n\n7\n");
    assert!(at("dangling.csv").symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(at("later.csv")).unwrap(), "n\n7\n");

    // A new file: 0666 less the umask.
    write(&at("umask077.csv"), "077");
    write(&at("umask002.csv"), "002");
    let mode = |name: &str| std::fs::metadata(at(name)).unwrap().mode() & 0o7777;
    assert_eq!((mode("umask077.csv"), mode("umask002.csv")), (0o600, 0o664));

    // A FIFO gets the rows, in place.
    let fifo = std::ffi::CString::new(at("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a path we own.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let reader = {
        let path = at("fifo");
        std::thread::spawn(move || std::fs::read_to_string(path).unwrap())
    };
    write(&at("fifo"), "022");
    assert_eq!(reader.join().unwrap(), "n\n7\n");
    assert!(at("fifo").metadata().unwrap().file_type().is_fifo());
    // A FIFO nothing reads: one line at once (the open waited for a reader past Ctrl-C).
    let out = Command::new(env!("CARGO_BIN_EXE_netsql"))
        .args(["-o", at("fifo").to_str().unwrap(), "--format", "csv"])
        .args(["-e", "SELECT 1"])
        .stdin(Stdio::null())
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing reads from it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // /dev/stdout, a pipe here: through /proc/self/fd/1 to a pipe that no path names.
    let out = Command::new(env!("CARGO_BIN_EXE_netsql"))
        .args([
            "-o",
            "/dev/stdout",
            "--format",
            "csv",
            "-e",
            "SELECT 7 AS n",
        ])
        .stdin(Stdio::null())
        .run();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n\n7\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Only root may give a file away, and make a device.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the owner and device parts need root");
        return;
    }
    // An old file keeps its mode and owner (nobody's, written by root).
    std::fs::write(at("private.csv"), "secret\n").unwrap();
    std::fs::set_permissions(at("private.csv"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(at("private.csv"), Some(65534), Some(65534)).unwrap();
    write(&at("private.csv"), "022");
    let meta = std::fs::metadata(at("private.csv")).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o600, 65534, 65534)
    );
    assert_eq!(
        std::fs::read_to_string(at("private.csv")).unwrap(),
        "n\n7\n"
    );
    // While it is written, the new contents are as private as the old: the temporary
    // file has the old one's owner and mode from the start (it was 0644 until the end).
    let mut long = Command::new(env!("CARGO_BIN_EXE_netsql"));
    long.args(["--format", "csv", "-o", at("private.csv").to_str().unwrap()])
        .args(["-e", "SELECT * FROM generate_series(1, 1000000000)"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let child = common::Kid::spawn(&mut long);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let partial = loop {
        let found = std::fs::read_dir(dir.path()).unwrap().find_map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            (name.ends_with(".partial") && meta.len() > 0).then_some(meta)
        });
        if let Some(meta) = found {
            break meta;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file grew"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    drop(child.finish_within(std::time::Duration::from_secs(10)));
    assert_eq!(
        (partial.mode() & 0o777, partial.uid()),
        (0o600, 65534),
        "the temporary file while written"
    );

    // A character device (a /dev/null of our own) stays one.
    let null = std::ffi::CString::new(at("null").to_str().unwrap()).unwrap();
    // SAFETY: a path we own; makedev(1, 3) is /dev/null's.
    assert_eq!(
        unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) },
        0
    );
    write(&at("null"), "022");
    assert!(at("null").metadata().unwrap().file_type().is_char_device());
    assert_eq!(
        files_in(dir.path()),
        [
            "dangling.csv",
            "fifo",
            "later.csv",
            "link.csv",
            "null",
            "private.csv",
            "real.csv",
            "umask002.csv",
            "umask077.csv"
        ],
        "no temporary file left"
    );
}

/// Two columns of one name (`a.pid, b.pid`, which DataFusion lets through when
/// qualified): JSON objects kept the last value only and pyarrow could not read the
/// Parquet file, so those formats refuse it; CSV, TSV and the table print both.
#[test]
fn formats_keyed_by_name_refuse_a_name_twice() {
    let sql = "SELECT a.local_port, b.local_port FROM sockets a JOIN sockets b ON a.inode = b.inode LIMIT 1";
    for format in ["json", "ndjson", "parquet"] {
        let out = fixture(&["--format", format, "-e", sql]);
        assert_eq!(out.status.code(), Some(2), "{format}");
        assert!(out.stdout.is_empty(), "{format}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("two columns are named \"local_port\""),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = fixture(&["--format", "csv", "-e", sql]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("local_port,local_port\n"));
}

/// Statements that return no columns (SET, CREATE VIEW) print nothing in CSV and TSV,
/// not a header line of one empty name.
#[test]
fn statements_without_columns_print_nothing() {
    for format in ["csv", "tsv"] {
        let out = fixture(&[
            "--format",
            format,
            "-e",
            "SET datafusion.execution.batch_size = 100; CREATE VIEW v AS SELECT 1 AS x; SELECT * FROM v",
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x\n1\n", "{format}");
    }
}

#[test]
fn format_comes_from_the_extension_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("x.json");
    assert!(
        fixture(&["-o", json.to_str().unwrap(), "-e", "SELECT 1 AS n"])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(&json).unwrap().trim(),
        "[{\"n\":1}]"
    );
    let forced = dir.path().join("x.json");
    assert!(fixture(&[
        "--format",
        "csv",
        "-o",
        forced.to_str().unwrap(),
        "-e",
        "SELECT 1 AS n"
    ])
    .status
    .success());
    assert_eq!(std::fs::read_to_string(&forced).unwrap(), "n\n1\n");
    let unknown = dir.path().join("x.unknown");
    let out = fixture(&["-o", unknown.to_str().unwrap(), "-e", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
    // A binary format holds one result.
    let two = dir.path().join("two.parquet");
    let out = fixture(&["-o", two.to_str().unwrap(), "-e", "SELECT 1; SELECT 2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!two.exists());
    // To a pipe, binary formats are fine.
    let out = fixture(&["--format", "arrow", "-e", "SELECT 1 AS n"]);
    assert!(out.status.success() && out.stdout.starts_with(b"ARROW1"));
}

#[test]
fn copy_works_on_live_tables() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.csv");
    let sql = format!(
        "COPY (SELECT proto, local_port FROM sockets WHERE state = 'LISTEN' AND proto LIKE 'tcp%' ORDER BY local_port) TO '{}' STORED AS CSV",
        target.display()
    );
    let out = fixture(&["--format", "csv", "-e", &sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "proto,local_port\ntcp6,443\ntcp,8080\n"
    );
}

/// COPY ... STORED AS PARQUET from a live table, read back by pyarrow and DuckDB: the
/// fixture's two TCP listeners (ss.txt: *:443 and 127.0.0.1:8080) with their types.
#[test]
fn copy_stored_as_parquet_reads_back() {
    if !python_readers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy.parquet");
    let sql = format!(
        "COPY (SELECT proto, local_port, inode FROM sockets WHERE state = 'LISTEN' AND proto LIKE 'tcp%' ORDER BY local_port) TO '{}' STORED AS PARQUET",
        target.display()
    );
    let out = fixture(&["--format", "csv", "-e", &sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = "import sys, duckdb, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1])\n\
                  print([f'{f.name}:{f.type}' for f in t.schema])\n\
                  print(t.to_pylist())\n\
                  print(duckdb.sql(f\"SELECT proto, local_port, inode FROM '{sys.argv[1]}' ORDER BY local_port\").fetchall())\n";
    let out = Command::new("python3")
        .args(["-c", script, target.to_str().unwrap()])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "['proto:string', 'local_port:int32', 'inode:uint64']\n\
         [{'proto': 'tcp6', 'local_port': 443, 'inode': 11608}, {'proto': 'tcp', 'local_port': 8080, 'inode': 11605}]\n\
         [('tcp6', 443, 11608), ('tcp', 8080, 11605)]\n"
    );
}

#[test]
fn read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.csv");
    let statements = [
        format!("COPY (SELECT 1) TO '{}'", target.display()),
        format!(
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}'",
            target.display()
        ),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        "INSERT INTO t VALUES (1)".to_string(),
        "DROP TABLE sockets".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        format!("EXPLAIN COPY (SELECT 1) TO '{}'", target.display()),
    ];
    for sql in &statements {
        let out = fixture(&["--read-only", "-e", sql]);
        assert_eq!(out.status.code(), Some(2), "{sql}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("netsql: read-only:"), "{sql}: {err}");
    }
    assert!(!target.exists());
    for sql in [
        "SELECT 1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "EXPLAIN SELECT 1",
        "SHOW TABLES",
        "DESCRIBE sockets",
    ] {
        let out = fixture(&["--read-only", "-e", sql]);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn hostname_and_now_stamp_rows() {
    let out = fixture(&[
        "--format",
        "csv",
        "-e",
        "SELECT hostname() AS h, now() IS NOT NULL AS t",
    ]);
    let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("h,t\n{},true\n", expected.trim())
    );
}
