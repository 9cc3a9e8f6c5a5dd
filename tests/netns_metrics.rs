//! `netsql metrics` and `serve --metrics`: scraped by a real Prometheus in a namespace
//! with known sockets and compared with `ss`; both formats checked by independent parsers
//! (promtool for 0.0.4, prometheus_client's strict OpenMetrics parser); bad metric files,
//! failing and slow queries, the token, the cardinality bound.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{netsql, Kid, Netns, RunExt, Traced};

/// A running exporter (`netsql ARGS metrics|serve ...`), its address and its log.
struct Exporter {
    _kid: Kid,
    addr: String,
    log: common::Lines,
    /// Lines before the one naming the address.
    early: Vec<String>,
}

impl Exporter {
    /// Starts `command` and waits for the line naming where metrics are served.
    fn start(mut command: Command) -> Exporter {
        let mut kid = Kid::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped()));
        let log = common::Lines::of(kid.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut early = Vec::new();
        loop {
            let line = log
                .try_next(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| panic!("the exporter never said where it serves: {early:?}"));
            if let Some(rest) = line.strip_prefix("netsql: serving ") {
                if rest.contains(" metrics on ") {
                    let addr = rest
                        .rsplit("://")
                        .next()
                        .unwrap()
                        .trim_end_matches("/metrics")
                        .to_string();
                    return Exporter {
                        _kid: kid,
                        addr,
                        log,
                        early,
                    };
                }
            }
            early.push(line);
        }
    }

    /// Every line so far.
    fn lines(&self) -> Vec<String> {
        self.early
            .iter()
            .cloned()
            .chain(self.log.pending())
            .collect()
    }
}

/// Runs `command` with `input` on its stdin; its output.
fn fed(command: &mut Command, input: &str) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// One HTTP/1.1 GET: status, body.
fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    exchange(stream, addr, path, headers)
}

/// A GET to a server that may not be listening yet.
fn try_get(addr: &str, path: &str) -> Option<(u16, String)> {
    TcpStream::connect(addr)
        .ok()
        .map(|stream| exchange(stream, addr, path, &[]))
}

fn exchange(
    mut stream: TcpStream,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).expect("utf-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn unchunk(mut text: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = text.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
}

/// Samples of one metric in text format: labels -> value.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let (metric, labels) = match series.split_once('{') {
            Some((m, l)) => (m, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let mut map = BTreeMap::new();
        // Values here have no commas or escaped quotes.
        for pair in labels.split(",\"").flat_map(|p| p.split("\",")) {
            if let Some((k, v)) = pair.split_once("=\"") {
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
        }
        found.push((map, value.parse().expect("a float")));
    }
    found
}

/// A tool the test cannot do without: missing is a failure under NETSQL_REQUIRE_NETNS.
fn need(tool: &str) -> bool {
    if common::have(tool) {
        return true;
    }
    common::skip_or_fail(&format!("{tool} is not installed"));
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder of user metric queries: DIR/metrics/NAME.sql.
fn queries(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("metrics")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("metrics").join(name), text).unwrap();
    }
    dir
}

fn metrics(extra: &[&str]) -> Command {
    let mut command = netsql();
    command.args(extra);
    command
}

#[test]
fn both_formats_pass_independent_parsers() {
    if !need("promtool") || !need("python3") {
        return;
    }
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .unwrap();
    if !ok.status.success() {
        common::skip_or_fail("python3's prometheus_client is not installed");
        return;
    }
    // A label value and a help text that need escaping, from a user metric.
    let dir = queries(&[(
        "quoted.sql",
        "-- metric: netsql_test_quoted\n-- help: A \"quoted\" help \\ with a backslash\n\
         SELECT 'a \"b\" c' AS label, 1 AS v\n",
    )]);
    let exporter = Exporter::start(metrics(&[
        "--queries",
        dir.path().to_str().unwrap(),
        "metrics",
        "--listen",
        "127.0.0.1:0",
    ]));
    let (status, text) = get(&exporter.addr, "/metrics", &[]);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("netsql_sockets{"), "{text}");
    let out = fed(Command::new("promtool").args(["check", "metrics"]), &text);
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, open) = get(
        &exporter.addr,
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert_eq!(status, 200);
    assert!(open.ends_with("# EOF\n"), "{open}");
    let out = fed(
        Command::new("python3").args([
            "-c",
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
             for f in p(sys.stdin.read()):\n\
             \x20   for s in f.samples:\n\
             \x20       print(f.type, s.name, sorted(s.labels.items()), s.value)\n",
        ]),
        &open,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "OpenMetrics parser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The parser read back each type, and the escaped label value whole.
    assert!(
        stdout.contains("counter netsql_protocol_total "),
        "{stdout}"
    );
    assert!(stdout.contains("info netsql_listener_info "), "{stdout}");
    assert!(
        stdout.contains(r#"gauge netsql_test_quoted [('label', 'a "b" c')] 1"#),
        "{stdout}"
    );
}

/// A real Prometheus scrapes netsql in a namespace holding known sockets; what its query
/// API answers equals what `ss` counts there.
#[test]
fn prometheus_scrapes_what_ss_counts() {
    let Some(ns) = Netns::create("metrics", &["ss", "prometheus", "python3"]) else {
        return;
    };
    // Listeners on 7101 and 7102 (held by a python process, so their program is one ss
    // names), three connections to the first, two to the second, one of them closed by
    // the server (CLOSE_WAIT on the client, FIN_WAIT2 on the server).
    let mut holder = Kid::spawn(
        ns.command(&[
            "python3",
            "-c",
            "import socket, sys\n\
             ls = []\n\
             for p in (7101, 7102):\n\
             \x20   l = socket.socket(); l.bind(('127.0.0.1', p)); l.listen(); ls.append(l)\n\
             cs = [socket.create_connection(('127.0.0.1', 7101)) for _ in range(3)]\n\
             cs += [socket.create_connection(('127.0.0.1', 7102)) for _ in range(2)]\n\
             acc = [ls[0].accept()[0] for _ in range(3)] + [ls[1].accept()[0] for _ in range(2)]\n\
             acc[-1].shutdown(socket.SHUT_WR)\n\
             print('ready', flush=True)\n\
             sys.stdin.read()\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped()),
    );
    let lines = common::Lines::of(holder.stdout.take().unwrap());
    lines.expect("ready");
    let port = free_port();
    let exporter_addr = format!("127.0.0.1:{port}");
    let _exporter = Exporter::start(ns.command(&[
        env!("CARGO_BIN_EXE_netsql"),
        "metrics",
        "--listen",
        &exporter_addr,
    ]));
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: netsql\n    static_configs:\n      - targets: ['{exporter_addr}']\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let _prometheus = Kid::spawn(
        ns.command(&[
            "prometheus",
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", data.path().join("tsdb").display()),
            &format!("--web.listen-address={web}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null()),
    );
    let try_query = |promql: &str| -> Option<Vec<(BTreeMap<String, String>, f64)>> {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let web = web.clone();
        let (status, body) = ns.within(move || try_get(&web, &path))?;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                (labels, r["value"][1].as_str().unwrap().parse().unwrap())
            })
            .collect::<Vec<_>>()
            .into()
    };
    let query = |promql: &str| {
        try_query(promql).unwrap_or_else(|| panic!("Prometheus did not answer {promql}"))
    };
    // Prometheus is up and has scraped netsql twice (its first scrape may precede the
    // listeners' settling; every value below is read from the latest).
    let started = Instant::now();
    loop {
        let ready = try_query("up{job=\"netsql\"}");
        let scrapes = try_query("count_over_time(up{job=\"netsql\"}[1m])")
            .and_then(|r| r.first().map(|r| r.1))
            .unwrap_or(0.0);
        if ready
            .as_ref()
            .is_some_and(|up| up.first().is_some_and(|r| r.1 == 1.0))
            && scrapes >= 3.0
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape netsql within 60 s: {ready:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The target's last scrape had no error: Prometheus asked for OpenMetrics (its
    // default) and its strict parser took it.
    let (_, targets) = {
        let web = web.clone();
        ns.within(move || get(&web, "/api/v1/targets", &[]))
    };
    let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");

    // Connections per listening port and state, for the two ports the holder made.
    let ss_states = |port: u16| -> BTreeMap<String, f64> {
        let out = ns.exec_ok(&["ss", "-tanH", &format!("sport = :{port}")]);
        let mut counts = BTreeMap::new();
        for line in out.lines() {
            let state = line.split_whitespace().next().unwrap();
            if state != "LISTEN" {
                *counts.entry(ss_state(state)).or_insert(0.0) += 1.0;
            }
        }
        counts
    };
    for port in [7101u16, 7102] {
        let from_prometheus: BTreeMap<String, f64> = query(&format!(
            "netsql_listener_connections{{job=\"netsql\",port=\"{port}\"}}"
        ))
        .into_iter()
        .map(|(labels, v)| (labels["state"].clone(), v))
        .collect();
        let expected = ss_states(port);
        assert_eq!(from_prometheus, expected, "port {port}: Prometheus vs ss");
        assert!(
            expected.values().sum::<f64>() >= if port == 7101 { 3.0 } else { 2.0 },
            "{expected:?}"
        );
    }
    // Listeners with their program: every TCP listener ss names, and no other.
    let from_ss: BTreeSet<(String, String)> = ns
        .exec_ok(&["ss", "-tlnpH"])
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields[3].rsplit(':').next().unwrap().to_string();
            let program = line
                .split("((\"")
                .nth(1)
                .and_then(|p| p.split('"').next())
                .unwrap_or("")
                .to_string();
            (port, program)
        })
        .collect();
    let from_prometheus: BTreeSet<(String, String)> =
        query("netsql_listener_info{job=\"netsql\",proto=\"tcp\"}")
            .into_iter()
            .map(|(labels, _)| (labels["port"].clone(), labels["program"].clone()))
            .collect();
    assert_eq!(
        from_prometheus, from_ss,
        "listeners: Prometheus vs ss -tlnp"
    );
    assert!(from_ss.contains(&("7101".into(), "python3".into())));
    // Sockets by state: listening TCP sockets, as ss counts them.
    let listening = ns.exec_ok(&["ss", "-tlnH"]).lines().count() as f64;
    let sockets = query("netsql_sockets{job=\"netsql\",state=\"LISTEN\",proto=\"tcp\"}");
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!(sockets[0].1, listening, "LISTEN sockets: Prometheus vs ss");
    drop(holder.stdin.take());
}

/// ss's state names as the kernel's (netsql's) are written.
fn ss_state(ss: &str) -> String {
    match ss {
        "ESTAB" => "ESTABLISHED",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "LAST-ACK" => "LAST_ACK",
        other => other,
    }
    .to_string()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_bad_metric_file_is_one_line_at_start() {
    for (file, wanted) in [
        (
            "-- type: histogram\nSELECT 1 AS v\n",
            "type \"histogram\": a metric is a gauge, a counter or info",
        ),
        (
            "-- labels: nope\nSELECT 'a' AS state, 1 AS v\n",
            "label \"nope\" is not a column of the query",
        ),
        (
            "-- metric: 9bad\nSELECT 1 AS v\n",
            "is not a Prometheus metric name",
        ),
        (
            "SELECT * FROM socket_events\n",
            "socket_events is a stream that never ends",
        ),
        (
            "-- metric: netsql_sockets\nSELECT 1 AS v\n",
            "metric netsql_sockets is also declared by",
        ),
        ("SELECT 1 AS v; SELECT 2 AS v\n", "a metric is one query"),
        (
            "-- labels: state, state\nSELECT 'a' AS state, 1 AS v\n",
            "label \"state\" is named twice",
        ),
        (
            "-- metric: netsql_query_errors_total\nSELECT 1 AS v\n",
            "metric netsql_query_errors_total is netsql's own",
        ),
        (
            "SELECT count(*) AS v FROM sockets WHERE netns_name = 'blue'\n",
            "a metric cannot choose namespaces with a filter on netns or netns_name",
        ),
        (
            "-- type: counter\nSELECT 'x' AS state, 'y' AS other\n",
            "no value column",
        ),
    ] {
        let dir = queries(&[("bad.sql", file)]);
        let out = metrics(&[
            "--queries",
            dir.path().to_str().unwrap(),
            "metrics",
            "--listen",
            "127.0.0.1:0",
        ])
        .run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{file}: {stderr}");
        assert!(
            stderr.contains("bad.sql") && stderr.contains(wanted),
            "{file}: {stderr}"
        );
    }
}

#[test]
fn a_failing_or_slow_query_loses_only_its_own_samples() {
    let dir = queries(&[
        // Fails at run time on every row whose program is not a number.
        (
            "broken.sql",
            "SELECT CAST(program AS INT) AS v FROM sockets WHERE program IS NOT NULL\n",
        ),
        // The same, optional: left out at start, never counted.
        (
            "gone.sql",
            "-- optional: true\n\
             SELECT CAST(program AS INT) AS v FROM sockets WHERE program IS NOT NULL\n",
        ),
        // Ten billion pairs through a join filter: minutes, far past any scrape's time.
        (
            "slow.sql",
            "SELECT count(*) AS v FROM generate_series(1, 100000) a \
             JOIN generate_series(1, 100000) b ON (a.value * b.value) % 7 = 3\n",
        ),
    ]);
    let exporter = Exporter::start(metrics(&[
        "--queries",
        dir.path().to_str().unwrap(),
        "metrics",
        "--listen",
        "127.0.0.1:0",
        "--query-timeout",
        "60s",
    ]));
    for scrape in 1..=2 {
        let started = Instant::now();
        let (status, text) = get(
            &exporter.addr,
            "/metrics",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
        );
        let took = started.elapsed();
        assert_eq!(status, 200, "{text}");
        // Answered within the scraper's time, not the 60 s --query-timeout.
        assert!(
            took < Duration::from_secs(5),
            "scrape {scrape} took {took:?}"
        );
        assert!(samples(&text, "netsql_broken").is_empty(), "{text}");
        assert!(!text.contains("netsql_gone"), "{text}");
        assert!(!text.contains("query=\"gone\""), "{text}");
        assert!(samples(&text, "netsql_slow").is_empty(), "{text}");
        assert!(!samples(&text, "netsql_sockets").is_empty(), "{text}");
        let errors: BTreeMap<String, f64> = samples(&text, "netsql_query_errors_total")
            .into_iter()
            .map(|(l, v)| (l["query"].clone(), v))
            .collect();
        assert_eq!(errors["broken"], f64::from(scrape), "{errors:?}");
        assert_eq!(errors["slow"], f64::from(scrape), "{errors:?}");
        assert_eq!(errors["sockets"], 0.0, "{errors:?}");
    }
    // Each error is logged once, not once per scrape.
    let log = exporter.lines();
    assert!(
        log.iter()
            .any(|l| l.starts_with("netsql: metric netsql_gone left out: ")),
        "{log:?}"
    );
    let broken: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("metric query broken"))
        .collect();
    assert_eq!(broken.len(), 1, "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("metric query slow: not finished within the scrape's time")),
        "{log:?}"
    );
}

#[test]
fn the_token_is_required_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The standalone exporter and serve's, with the same token file.
    let standalone = Exporter::start(metrics(&[
        "metrics",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        token.to_str().unwrap(),
    ]));
    let served = Exporter::start(metrics(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--token-file",
        token.to_str().unwrap(),
    ]));
    for exporter in [&standalone, &served] {
        let (status, _) = get(&exporter.addr, "/metrics", &[]);
        assert_eq!(status, 401, "no token");
        let (status, _) = get(
            &exporter.addr,
            "/metrics",
            &[("Authorization", "Bearer wrong")],
        );
        assert_eq!(status, 401, "a wrong token");
        let (status, text) = get(
            &exporter.addr,
            "/metrics",
            &[("Authorization", "Bearer s3cret")],
        );
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("# TYPE netsql_sockets gauge"), "{text}");
    }
    // Without a token only loopback.
    let out = metrics(&["metrics", "--listen", "0.0.0.0:0"]).run();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without --token-file"));
}

/// `tcp_peers` gives at most `top` remote addresses series, the busiest first.
#[test]
fn the_peer_metric_is_bounded_to_top_n() {
    let Some(ns) = Netns::create("metrics-top", &["ss"]) else {
        return;
    };
    // Connections from six source addresses, so that tcp_info sees six remote
    // addresses on the listener's side.
    let _held = ns.within(|| {
        let listener = TcpListener::bind("127.0.0.1:7201").unwrap();
        let mut held = Vec::new();
        for i in 2..8u8 {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&std::net::SocketAddr::from(([127, 0, 0, i], 0)).into())
                .unwrap();
            socket
                .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], 7201)).into())
                .unwrap();
            held.push(socket);
            held.push(socket2::Socket::from(listener.accept().unwrap().0));
        }
        (listener, held)
    });
    let addr = format!("127.0.0.1:{}", free_port());
    let peers = |args: &[&str]| -> BTreeSet<String> {
        let mut argv = vec![env!("CARGO_BIN_EXE_netsql"), "metrics", "--listen", &addr];
        argv.extend_from_slice(args);
        let exporter = Exporter::start(ns.command(&argv));
        let a = exporter.addr.clone();
        let (status, text) = ns.within(move || get(&a, "/metrics", &[]));
        assert_eq!(status, 200);
        let found = samples(&text, "netsql_tcp_peer_connections");
        // The three peer metrics name the same addresses.
        for other in ["netsql_tcp_peer_retransmits", "netsql_tcp_peer_rtt_seconds"] {
            let addresses: BTreeSet<String> = samples(&text, other)
                .iter()
                .map(|(l, _)| l["remote_address"].clone())
                .collect();
            let connections: BTreeSet<String> = found
                .iter()
                .map(|(l, _)| l["remote_address"].clone())
                .collect();
            assert_eq!(addresses, connections, "{other}");
        }
        found
            .iter()
            .map(|(l, _)| l["remote_address"].clone())
            .collect()
    };
    let all = peers(&[]);
    let expected: BTreeSet<String> = (1..8).map(|i| format!("127.0.0.{i}")).collect();
    assert!(all.is_superset(&expected), "{all:?}");
    let top = peers(&["--metrics-param", "top=3"]);
    assert_eq!(top.len(), 3, "{top:?}");
    assert!(top.is_subset(&all));
    // No retransmits anywhere: the most connections first. 127.0.0.1 is the remote end
    // of the six client sockets (and of the scrape's own).
    assert!(top.contains("127.0.0.1"), "{top:?}");
}

/// A scrape reads each table once for every query together (one sock_diag dump, one walk
/// of /proc's descriptors), and walks /proc not at all when no query reads a socket's
/// process (a scrape collects only the columns its queries read). Witness: strace's
/// count of sock_diag requests and of opens of pid 1's descriptor folder, against one
/// `netsql -e` query's counts.
#[test]
fn a_scrape_reads_each_table_once_and_only_what_its_queries_need() {
    if !need("strace") {
        return;
    }
    // (sock_diag requests, opens of /proc/1/fd, iterators made) in a trace. A process
    // that has loaded the kernel's iterator over open files (a server, not a one-shot
    // query: collect/task_files.rs) reads one iterator where a walk of /proc opens
    // /proc/1/fd (more than once when its descriptor numbers have gaps).
    let count = |trace: &std::path::Path| -> (usize, usize, usize) {
        let text = std::fs::read_to_string(trace).unwrap();
        let lines = |what: &str| text.lines().filter(|l| l.contains(what)).count();
        (
            lines("SOCK_DIAG_BY_FAMILY"),
            lines("\"/proc/1/fd\""),
            lines("BPF_ITER_CREATE"),
        )
    };
    let strace = |trace: &std::path::Path| {
        let mut command = Command::new("strace");
        command
            .args(["-f", "-qq", "-e", "trace=openat,sendto,sendmsg,bpf", "-o"])
            .arg(trace)
            .arg(env!("CARGO_BIN_EXE_netsql"));
        command
    };
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let out = strace(&one)
        .args(["-e", "SELECT program FROM sockets"])
        .run();
    assert!(out.status.success());
    let (dump, opens, iterators) = count(&one);
    assert!(
        dump > 0 && opens > 0 && iterators == 0,
        "one query: {dump} requests, {opens} opens, {iterators} iterators"
    );
    let scrape = |only: &str| -> (usize, usize, usize) {
        let trace = dir.path().join(only);
        let mut command = strace(&trace);
        // --queries names this run's folder: how its netsql is found to be stopped
        // (killing strace leaves its tracee running).
        command.arg("--queries").arg(dir.path()).args([
            "metrics",
            "--listen",
            "127.0.0.1:0",
            "--metrics-only",
            only,
        ]);
        let exporter = Exporter::start(command);
        // Stopped even when an assertion below fails first.
        let traced = Traced(format!("netsql --queries {} metrics", dir.path().display()));
        let (status, text) = get(&exporter.addr, "/metrics", &[]);
        assert_eq!(status, 200, "{text}");
        drop(traced);
        drop(exporter);
        count(&trace)
    };
    // Three queries over sockets, one of them naming programs: one dump, and the owners
    // listed once, by one read of the iterator or else by one walk of /proc.
    let three = scrape("sockets,listeners,connections_per_port");
    let doctor = netsql().arg("doctor").run();
    let iterator = String::from_utf8_lossy(&doctor.stdout)
        .lines()
        .any(|l| l.starts_with("socket owners' iterator: yes"));
    assert_eq!(
        three,
        if iterator {
            (dump, 0, 1)
        } else {
            (dump, opens, 0)
        },
        "one dump of {dump} requests, then one iterator (doctor says it loads: {iterator}) or {opens} opens"
    );
    // netsql_sockets reads state, proto and the namespace: no owners.
    assert_eq!(scrape("sockets"), (dump, 0, 0));
    // sockets and tcp_info in one scrape: one walk of the kernel's TCP table (both
    // families' TCPDIAG_GETSOCK request), asking for tcp_info (idiag_ext 0x02, the
    // byte after the two address lengths) because one of the scrape's tables needs it.
    let both = "sockets,tcp_peer_connections";
    assert_eq!(scrape(both), (dump, 0, 0));
    let trace = std::fs::read_to_string(dir.path().join(both)).unwrap();
    let tcp: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("nlmsg_type=TCPDIAG_GETSOCK"))
        .collect();
    assert_eq!(tcp.len(), 1, "one TCP dump for both tables: {tcp:#?}");
    assert!(
        tcp[0].contains(r#"data="\x00\x00\x02"#),
        "the dump asks for tcp_info: {}",
        tcp[0]
    );
}

/// One raw request (any method): the whole response.
fn raw(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A metric's samples by one label's value.
fn by(text: &str, metric: &str, label: &str) -> BTreeMap<String, f64> {
    samples(text, metric)
        .into_iter()
        .map(|(l, v)| (l[label].clone(), v))
        .collect()
}

#[test]
fn rows_become_samples_as_documented() {
    let dir = queries(&[
        // A NULL value is no sample.
        (
            "nulls.sql",
            "SELECT 'a' AS k, CAST(NULL AS BIGINT) AS v UNION ALL SELECT 'b', 2\n",
        ),
        // Two rows with one label set: the family fails, nothing of it is served.
        (
            "twice.sql",
            "SELECT 'a' AS k, 1 AS v UNION ALL SELECT 'a', 2\n",
        ),
        // A counter below zero (OpenMetrics refuses the whole exposition for it).
        (
            "negative.sql",
            "-- type: counter\nSELECT 'a' AS k, -1 AS v\n",
        ),
    ]);
    let exporter = Exporter::start(metrics(&[
        "--queries",
        dir.path().to_str().unwrap(),
        "metrics",
        "--listen",
        "127.0.0.1:0",
    ]));
    let (status, text) = get(&exporter.addr, "/metrics", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        by(&text, "netsql_nulls", "k"),
        BTreeMap::from([("b".to_string(), 2.0)])
    );
    assert!(samples(&text, "netsql_twice").is_empty(), "{text}");
    assert!(samples(&text, "netsql_negative_total").is_empty(), "{text}");
    let errors = by(&text, "netsql_query_errors_total", "query");
    assert_eq!(
        (errors["nulls"], errors["twice"], errors["negative"]),
        (0.0, 1.0, 1.0)
    );
}

#[test]
fn the_exporter_answers_http_as_documented() {
    let dir = queries(&[(
        // About a second of work: long enough for a second request to arrive meanwhile.
        "second.sql",
        "SELECT count(*) AS v FROM generate_series(1, 20000) a \
         JOIN generate_series(1, 20000) b ON (a.value * b.value) % 7 = 3\n",
    )]);
    let start = |extra: &[&str]| {
        let mut args = vec![
            "--queries",
            dir.path().to_str().unwrap(),
            "metrics",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Exporter::start(metrics(&args))
    };
    let exporter = start(&[]);
    let addr = exporter.addr.as_str();
    let response = raw(
        addr,
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    let response = raw(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nallow: get, head\r\n"),
        "{response}"
    );
    let response = raw(
        addr,
        "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with("\r\n\r\n"),
        "a HEAD answer has no body: {response}"
    );

    // Two scrapes at once share one run of each query: the same duration in both.
    let duration = |text: &str| by(text, "netsql_query_duration_seconds", "query")["second"];
    let both: Vec<String> = std::thread::scope(|scope| {
        let first = scope.spawn(|| get(addr, "/metrics", &[]).1);
        std::thread::sleep(Duration::from_millis(200));
        let second = scope.spawn(|| get(addr, "/metrics", &[]).1);
        vec![first.join().unwrap(), second.join().unwrap()]
    });
    assert!(duration(&both[0]) > 0.2, "{}", both[0]);
    assert_eq!(duration(&both[0]), duration(&both[1]));
    // One after the other: two runs.
    let again = get(addr, "/metrics", &[]).1;
    assert_ne!(duration(&again), duration(&both[0]));

    // A scraper with a short time that starts a scrape does not cut its queries short for
    // one that joins it with more: the second gets the slow query's sample.
    let (short, long) = std::thread::scope(|scope| {
        let short = scope.spawn(|| {
            get(
                addr,
                "/metrics",
                &[("X-Prometheus-Scrape-Timeout-Seconds", "0.05")],
            )
        });
        std::thread::sleep(Duration::from_millis(10));
        let long = scope.spawn(|| get(addr, "/metrics", &[]));
        (short.join().unwrap(), long.join().unwrap())
    });
    assert_eq!(long.0, 200, "{}", long.1);
    assert_eq!(
        samples(&long.1, "netsql_second").len(),
        1,
        "the joined scrape ran its queries to the end: {}",
        long.1
    );
    // The short one waited its own time and got the last finished scrape's.
    assert_eq!(short.0, 200, "{}", short.1);

    // Clients that connect and send nothing lose their slot after the time a request's
    // headers get: more of them than slots do not keep a scraper out for good.
    let idle: Vec<TcpStream> = (0..70).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(11));
    let response = raw(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(idle);
    // Nor do clients that send one byte of what could be HTTP/2's preface (hyper waits
    // for the rest to tell the protocols apart, with no time limit of its own).
    let started: Vec<TcpStream> = (0..70)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"P").unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_secs(11));
    let response = raw(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(started);

    // --metrics-min-interval: a scrape soon after the last is the last. A scraper whose
    // time lets no query finish gets 503 and leaves no empty scrape behind (it was
    // served, empty, to every scraper for the interval).
    let cached = start(&["--metrics-min-interval", "60s"]);
    let tiny = [("X-Prometheus-Scrape-Timeout-Seconds", "0.0001")];
    assert_eq!(get(&cached.addr, "/metrics", &tiny).0, 503);
    let first = get(&cached.addr, "/metrics", &[]).1;
    assert_eq!(samples(&first, "netsql_second").len(), 1, "{first}");
    let second = get(&cached.addr, "/metrics", &[]).1;
    assert_eq!(first, second);
    assert_eq!(get(&cached.addr, "/metrics", &tiny).1, first);
}

/// A client that asks and never reads is closed once its answer has waited 10 s for it
/// (it held its slot, and its answer in memory, for good: 64 such kept every scraper out).
#[test]
fn a_client_that_never_reads_is_let_go() {
    let dir = queries(&[(
        "many.sql",
        "SELECT CAST(value AS VARCHAR) AS l, value AS v FROM generate_series(1, 300000) t\n",
    )]);
    let exporter = Exporter::start(metrics(&[
        "--queries",
        dir.path().to_str().unwrap(),
        "metrics",
        "--listen",
        "127.0.0.1:0",
        "--metrics-only",
        "many",
    ]));
    let mut stream = TcpStream::connect(&exporter.addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Several MB, more than the socket buffers hold: the exporter's writes wait.
    std::thread::sleep(Duration::from_secs(14));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let end = std::io::Read::read_to_end(&mut stream, &mut got);
    assert!(
        !matches!(&end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the connection was still open after {} bytes: {end:?}",
        got.len()
    );
    // The exporter serves the next scraper.
    let (code, text) = get(&exporter.addr, "/metrics", &[]);
    assert_eq!(code, 200);
    assert_eq!(samples(&text, "netsql_many").len(), 300000);
}

#[test]
fn https_with_the_exporters_certificate() {
    if !need("openssl") || !need("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(
        dir.path(),
        "exporter",
        "/CN=localhost",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
    );
    let exporter = Exporter::start(metrics(&[
        "metrics",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]));
    let url = format!("https://{}/metrics", exporter.addr);
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&cert)
        .arg(&url)
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("# TYPE netsql_sockets gauge"), "{text}");
    // Plain HTTP to the TLS port gets no metrics.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://{}/metrics", exporter.addr))
        .run();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("netsql_sockets"));
}

/// An exporter between scrapes, and a Flight server with one, sleep: nothing in them
/// wakes on a timer waiting for SIGTERM (a 20 ms poll was 0.6 % of a core, idle). Both
/// still end on SIGTERM.
#[test]
fn an_idle_exporter_sleeps_until_sigterm() {
    // Voluntary context switches of every thread of `pid`: one per wakeup from sleep.
    let wakeups = |pid: u32| -> u64 {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let status = std::fs::read_to_string(task.unwrap().path().join("status"));
            total += status
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .map_or(0, |n| n.trim().parse::<u64>().unwrap());
        }
        total
    };
    let standalone = Exporter::start(metrics(&["metrics", "--listen", "127.0.0.1:0"]));
    let served = Exporter::start(metrics(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ]));
    for mut exporter in [standalone, served] {
        let (status, _) = get(&exporter.addr, "/metrics", &[]);
        assert_eq!(status, 200);
        let pid = exporter._kid.id();
        // Threads the scrape started have ended or gone to sleep.
        std::thread::sleep(Duration::from_secs(1));
        let before = wakeups(pid);
        std::thread::sleep(Duration::from_secs(3));
        // (A thread that ends meanwhile takes its count with it.)
        let woke = wakeups(pid).saturating_sub(before);
        // A poll every 20 ms wakes 150 times in 3 s; a thread the runtime retires
        // after its idle time, a few.
        assert!(woke < 30, "woke {woke} times in 3 s without a request");
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = exporter._kid.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "SIGTERM did not end it");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status:?}: {:?}", exporter.lines());
    }
}

/// `netsql_protocol_total` is a counter family: no sample of it may fall between two
/// scrapes, or Prometheus reads a reset and `rate()` lies. MPTCP connections opened
/// before the first scrape and closed before the second move the kernel's MPTcpExt
/// MPCurrEstab (a gauge of current connections) down; each counter only goes up.
#[test]
fn protocol_counters_never_fall_between_scrapes() {
    let Some(ns) = Netns::create("mptcp", &["python3"]) else {
        return;
    };
    // socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP): a kernel without MPTCP cannot show the
    // gauge at all (nor can nstat).
    let mut holder = Kid::spawn(
        ns.command(&[
            "python3",
            "-c",
            "import socket, sys\n\
             try:\n\
             \x20   l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n\
             except OSError as e:\n\
             \x20   print('no-mptcp', e, flush=True); sys.exit()\n\
             l.bind(('127.0.0.1', 7150)); l.listen()\n\
             cs = []\n\
             for _ in range(3):\n\
             \x20   c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n\
             \x20   c.connect(('127.0.0.1', 7150)); cs += [c, l.accept()[0]]\n\
             print('ready', flush=True)\n\
             sys.stdin.readline()\n\
             for s in cs: s.close()\n\
             l.close()\n\
             print('closed', flush=True)\n\
             sys.stdin.read()\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped()),
    );
    let lines = common::Lines::of(holder.stdout.take().unwrap());
    let first = lines.next_within(std::time::Duration::from_secs(30));
    if first.starts_with("no-mptcp") {
        common::skip_or_fail(&format!("this kernel has no MPTCP: {first}"));
        return;
    }
    assert_eq!(first, "ready");
    let current = || -> u64 {
        let text = ns.exec_ok(&["cat", "/proc/net/netstat"]);
        let mut rows = text.lines().filter(|l| l.starts_with("MPTcpExt:"));
        let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
        let at = names.split(' ').position(|n| n == "MPCurrEstab").unwrap();
        values.split(' ').nth(at).unwrap().parse().unwrap()
    };
    let before = current();
    assert!(before > 0, "the kernel counts the open MPTCP connections");
    let exporter = Exporter::start(metrics(&[
        "--netns",
        &ns.name,
        "metrics",
        "--listen",
        "127.0.0.1:0",
        "--metrics-only",
        "protocol_stats",
    ]));
    let (status, one) = get(&exporter.addr, "/metrics", &[]);
    assert_eq!(status, 200, "{one}");
    use std::io::Write;
    writeln!(holder.stdin.as_mut().unwrap()).unwrap();
    lines.expect("closed");
    common::wait_until(
        "MPCurrEstab falls",
        std::time::Duration::from_secs(30),
        || current() < before,
    );
    let (status, two) = get(&exporter.addr, "/metrics", &[]);
    assert_eq!(status, 200, "{two}");
    let first: BTreeMap<_, _> = samples(&one, "netsql_protocol_total").into_iter().collect();
    let second = samples(&two, "netsql_protocol_total");
    assert!(second.len() > 100, "{two}");
    for (labels, value) in second {
        if let Some(earlier) = first.get(&labels) {
            assert!(
                value >= *earlier,
                "{labels:?} fell from {earlier} to {value}"
            );
        }
    }
}
