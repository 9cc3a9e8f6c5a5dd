//! `netsql serve` with real clients: ADBC's Flight SQL driver from Python against
//! `netsql -e` on the same namespace, the security matrix, load and faults (fleet
//! queries over several servers: netns_fleet.rs).

#[path = "../common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Kid, Lines, Netns, RunExt, Server};
use serde_json::Value;

fn client_script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flight_client.py")
}

/// Runs the ADBC client; its JSON answer (or {"error": ...}).
fn adbc(uri: &str, token: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new("python3")
        .arg(client_script())
        .arg(uri)
        .arg(token.unwrap_or("-"))
        .args(args)
        .envs(env.iter().copied())
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "client {args:?}: {e}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn error_of(answer: &Value) -> String {
    answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {answer}"))
        .to_string()
}

fn have_adbc() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import adbc_driver_flightsql.dbapi"])
        .run()
        .status
        .success();
    if !ok {
        assert!(
            !common::require_netns(),
            "NETSQL_REQUIRE_NETNS=1 but adbc_driver_flightsql is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: adbc_driver_flightsql is not installed");
    }
    ok
}

/// A holder in `ns`: a listener, an established pair, a UDP socket, unix sockets.
fn hold(ns: &Netns, port: u16) -> (Kid, Lines) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/holder.py");
    let mut kid = Kid::spawn(
        ns.command(&["python3", script, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let lines = Lines::of(kid.stdout.take().unwrap());
    lines.expect("ready");
    (kid, lines)
}

const GROUPED: &str = "SELECT state, count(*) AS n FROM sockets GROUP BY state ORDER BY state";

#[test]
fn adbc_reads_what_netsql_reads() {
    let Some(ns) = Netns::create("serve", &["python3"]) else {
        return;
    };
    if !have_adbc() {
        return;
    }
    let _holder = hold(&ns, 7401);
    let server = Server::start(&["--netns", &ns.name], &[]);
    let uri = server.uri(false);

    // The grouped count, schema included, equals netsql -e on the same namespace.
    let over = adbc(&uri, None, &["query", GROUPED], &[]);
    let local = common::netsql()
        .args(["--netns", &ns.name, "--format", "json", "-e", GROUPED])
        .run();
    let local: Vec<Value> = serde_json::from_slice(&local.stdout).unwrap();
    let expected: Vec<Value> = local
        .iter()
        .map(|r| serde_json::json!([r["state"], r["n"]]))
        .collect();
    assert_eq!(over["rows"], Value::Array(expected));
    assert_eq!(
        over["schema"],
        serde_json::json!([["state", "string"], ["n", "int64"]])
    );

    // A prepared statement with a parameter.
    let prepared = adbc(
        &uri,
        None,
        &[
            "prepared",
            "SELECT local_port, state FROM sockets WHERE proto = 'tcp' AND local_port = $1 AND state = 'LISTEN'",
            "7401",
        ],
        &[],
    );
    assert_eq!(
        prepared["rows"],
        serde_json::json!([[7401, "LISTEN"]]),
        "{prepared}"
    );

    // Browsing: the tables and columns DESCRIBE shows.
    let describe = common::netsql()
        .args(["--format", "json", "-e", "DESCRIBE sockets"])
        .run();
    let describe: Vec<Value> = serde_json::from_slice(&describe.stdout).unwrap();
    let columns: Vec<Value> = describe.iter().map(|r| r["column_name"].clone()).collect();
    let objects = adbc(&uri, None, &["objects"], &[]);
    assert_eq!(objects["tables"]["sockets"], Value::Array(columns.clone()));
    for table in ["tcp_info", "processes", "socket_events", "net_namespaces"] {
        assert!(objects["tables"][table].is_array(), "{table}: {objects}");
    }
    let schema = adbc(&uri, None, &["schema", "sockets"], &[]);
    let names: Vec<Value> = schema
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].clone())
        .collect();
    assert_eq!(names, columns);

    // A bad statement: InvalidArgument with netsql's own message.
    let bad = error_of(&adbc(&uri, None, &["query", "SELEC 1"], &[]));
    assert!(
        bad.contains("INVALID_ARGUMENT") || bad.contains("InvalidArgument"),
        "{bad}"
    );
    assert!(bad.contains("syntax error"), "{bad}");
    let log = server.lines().join("\n");
    assert!(log.contains("status=OK"), "{log}");
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
}

fn write_token(dir: &Path, token: &str, mode: u32) -> PathBuf {
    let path = dir.join(format!("token-{mode:o}"));
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn the_security_matrix() {
    if !have_adbc() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = "s3cr3t-token-for-tests";
    let good = write_token(dir.path(), token, 0o600);
    let loose = write_token(dir.path(), token, 0o644);

    // Refused at start: a token file others may read; beyond loopback without a token.
    let out = common::netsql()
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&loose)
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    let out = common::netsql()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .run();
    assert_eq!(out.status.code(), Some(2));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains("without --token-file") && why.lines().count() == 1,
        "{why}"
    );

    let server = Server::start(&[], &["--token-file", good.to_str().unwrap()]);
    let uri = server.uri(false);
    let fine = || {
        let ok = adbc(&uri, Some(token), &["query", "SELECT 1 AS one"], &[]);
        assert_eq!(ok["rows"], serde_json::json!([[1]]), "{ok}");
    };
    fine();
    for wrong in [None, Some("wrong-token"), Some("")] {
        let err = error_of(&adbc(&uri, wrong, &["query", "SELECT 1"], &[]));
        assert!(
            err.to_uppercase().contains("UNAUTHENTICATED"),
            "{wrong:?}: {err}"
        );
    }
    fine();
    for sql in [
        "CREATE TABLE t AS SELECT 1",
        "DELETE FROM sockets WHERE local_port = 1",
        "COPY (SELECT 1) TO '/tmp/netsql-serve-copy.csv'",
        "SET netsql.netns = 'all'",
        "CREATE EXTERNAL TABLE shadow STORED AS CSV LOCATION '/etc/shadow'",
    ] {
        let err = error_of(&adbc(&uri, Some(token), &["query", sql], &[]));
        assert!(
            err.to_uppercase().contains("PERMISSION_DENIED") || err.contains("PermissionDenied"),
            "{sql}: {err}"
        );
        assert!(err.contains("read-only"), "{sql}: {err}");
    }
    assert!(!Path::new("/tmp/netsql-serve-copy.csv").exists());
    let err = error_of(&adbc(
        &uri,
        Some(token),
        &["query", "SELECT * FROM '/etc/shadow'"],
        &[],
    ));
    assert!(
        err.contains("no table") || err.contains("not found"),
        "{err}"
    );
    assert!(!err.contains("root:"), "{err}");
    fine();

    // TLS with a certificate made here; then a client certificate required.
    let made = |name: &str, extra: &[&str]| {
        let key = dir.path().join(format!("{name}.key"));
        let cert = dir.path().join(format!("{name}.pem"));
        let mut args = vec![
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ];
        args.push(if name == "server" {
            "/CN=localhost"
        } else {
            "/CN=netsql-test-client"
        });
        args.extend_from_slice(extra);
        let out = Command::new("openssl")
            .args(&args)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .run();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    };
    let (cert, key) = made(
        "server",
        &["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    // Client certificates: a CA of our own and a client certificate it signs (a
    // self-signed CA certificate is no client identity to rustls).
    let (ca_cert, ca_key) = made("ca", &[]);
    let client_key = dir.path().join("client.key");
    let client_csr = dir.path().join("client.csr");
    let client_cert = dir.path().join("client.pem");
    let ext = dir.path().join("client.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").unwrap();
    for args in [
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=netsql-test-client",
            "-keyout",
            client_key.to_str().unwrap(),
            "-out",
            client_csr.to_str().unwrap(),
        ],
        vec![
            "x509",
            "-req",
            "-in",
            client_csr.to_str().unwrap(),
            "-CA",
            ca_cert.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            client_cert.to_str().unwrap(),
        ],
    ] {
        let out = Command::new("openssl").args(&args).run();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tls = Server::start(
        &[],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let roots = [("NETSQL_ADBC_ROOTS", cert.to_str().unwrap())];
    let ok = adbc(&tls.uri(true), None, &["query", "SELECT 2 AS two"], &roots);
    assert_eq!(ok["rows"], serde_json::json!([[2]]), "{ok}");
    // Plain gRPC to a TLS port fails cleanly.
    assert!(adbc(&tls.uri(false), None, &["query", "SELECT 2"], &[])["error"].is_string());
    let mtls = Server::start(
        &[],
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            ca_cert.to_str().unwrap(),
        ],
    );
    let missing = adbc(&mtls.uri(true), None, &["query", "SELECT 3"], &roots);
    assert!(
        missing["error"].is_string(),
        "no client certificate: {missing}"
    );
    let with_cert = [
        ("NETSQL_ADBC_ROOTS", cert.to_str().unwrap()),
        ("NETSQL_ADBC_CERT", client_cert.to_str().unwrap()),
        ("NETSQL_ADBC_KEY", client_key.to_str().unwrap()),
    ];
    let ok = adbc(
        &mtls.uri(true),
        None,
        &["query", "SELECT 3 AS three"],
        &with_cert,
    );
    assert_eq!(ok["rows"], serde_json::json!([[3]]), "{ok}");
    drop((tls, mtls));
    fine();
    drop(server);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn load_and_faults() {
    if !have_adbc() {
        return;
    }
    let server = Server::start(&[], &["--max-queries", "4", "--query-timeout", "2s"]);
    let uri = server.uri(false);
    let before = rss_kib(server.kid.id());

    // 32 clients x 50 queries: each succeeds or is refused at once; none hangs.
    let load = adbc(&uri, None, &["load", "32", "50", GROUPED], &[]);
    let ok = load["ok"].as_u64().unwrap();
    let exhausted = load["exhausted"].as_u64().unwrap();
    assert_eq!(load["other"], serde_json::json!([]), "{load}");
    assert_eq!(ok + exhausted, 32 * 50);
    assert!(ok > 0, "{load}");
    let after = rss_kib(server.kid.id());
    assert!(
        after < before + 200 * 1024,
        "RSS {before} KiB -> {after} KiB"
    );

    // A client killed mid-stream frees its query (and its slot).
    let big = "SELECT value, value * 2 AS twice FROM generate_series(1, 20000000)";
    let mut stall = Kid::spawn(
        Command::new("python3")
            .arg(client_script())
            .args([uri.as_str(), "-", "stall", big])
            .stdout(Stdio::piped()),
    );
    let lines = Lines::of(stall.stdout.take().unwrap());
    assert_eq!(lines.next_within(Duration::from_secs(30)), "started");
    stall.kill().unwrap();
    let started = std::time::Instant::now();
    let cancelled = loop {
        let log = server.lines().join("\n");
        if log.contains("Cancelled (client went away)") {
            break true;
        }
        if started.elapsed() > Duration::from_secs(15) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(cancelled, "the server noticed the client leaving");
    let load = adbc(&uri, None, &["load", "4", "1", "SELECT 1"], &[]);
    assert_eq!(load["ok"], 4, "all four slots free again: {load}");

    // A megabyte of garbage to the port: the server keeps answering.
    {
        let mut garbage = std::net::TcpStream::connect(&server.addr).unwrap();
        let mut noise = vec![0u8; 1 << 20];
        let mut x: u32 = 12345;
        for b in noise.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        let _ = garbage.write_all(&noise);
    }
    let ok = adbc(&uri, None, &["query", "SELECT 4 AS four"], &[]);
    assert_eq!(ok["rows"], serde_json::json!([[4]]), "{ok}");

    // Over the timeout: DeadlineExceeded, with the reason.
    let slow = "SELECT count(*) FROM generate_series(1, 20000000000)";
    let err = error_of(&adbc(&uri, None, &["query", slow], &[]));
    assert!(
        err.to_uppercase().contains("DEADLINE_EXCEEDED") || err.contains("DeadlineExceeded"),
        "{err}"
    );
    assert!(err.contains("--query-timeout"), "{err}");
    assert_eq!(
        adbc(&uri, None, &["query", "SELECT 5 AS five"], &[])["rows"],
        serde_json::json!([[5]])
    );

    // Over the memory limit: ResourceExhausted, with DataFusion's reason.
    // A hash join's build side cannot spill: over the cap it fails at once.
    let hungry = "SELECT count(*) FROM generate_series(1, 2000000) a JOIN generate_series(1, 2000000) b ON a.value = b.value";
    let small = Server::start(&["--memory-limit", "2M"], &[]);
    let err = error_of(&adbc(&small.uri(false), None, &["query", hungry], &[]));
    assert!(
        err.contains("RESOURCE_EXHAUSTED") || err.contains("ResourceExhausted"),
        "{err}"
    );
    assert!(err.contains("Resources exhausted"), "{err}");

    // SIGTERM: exit 0.
    let mut kid = server.kid;
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGTERM) };
    let status = {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = kid.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "SIGTERM ends it"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(status.success(), "{status:?}");
}
