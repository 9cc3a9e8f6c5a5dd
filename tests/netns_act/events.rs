//! `socket_events`: every socket we destroy in a namespace appears once, with the right
//! endpoints and byte counts, as it happens; Ctrl-C ends it cleanly; a reader that falls
//! behind is told exactly how many events the kernel dropped.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{ndjson, number, tcp_info, text, Kid, Lines, Netns, Row, RunExt};
use crate::netsql_in;

/// Waits until a sock_diag socket in `ns` listens to the four destroy groups: netsql
/// has subscribed and nothing destroyed from now on can be missed.
fn wait_subscribed(ns: &Netns, already: usize) {
    let started = Instant::now();
    loop {
        let table = ns.exec_ok(&["cat", "/proc/net/netlink"]);
        // sk Eth Pid Groups ...: protocol 4 is NETLINK_SOCK_DIAG.
        let subscribed = table
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1) == Some(&"4") && f.get(3) == Some(&"0000000f")
            })
            .count();
        if subscribed > already {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "netsql never subscribed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `count` UDP sockets bound in `ns` and closed; their ports.
fn udp_churn(ns: &Netns, count: usize) -> Vec<u16> {
    ns.within(move || {
        (0..count)
            .map(|_| {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.local_addr().unwrap().port()
            })
            .collect()
    })
}

/// An independent subscriber to destroy events in a namespace (tests/destroy_witness.py,
/// Python's own netlink socket). The kernel sends each destroy event from a work queue,
/// later than the close and, on a busy machine, up to seconds later; it offers each one
/// to every subscriber in the same call. So once the witness has been offered an event
/// (received or dropped), so has netsql.
struct Witness {
    kid: Kid,
    answers: Lines,
}

impl Witness {
    fn subscribe(ns: &Netns) -> Witness {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/destroy_witness.py");
        let mut kid = Kid::spawn(
            ns.command(&["python3", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let answers = Lines::of(kid.stdout.take().unwrap());
        answers.expect("ready");
        Witness { kid, answers }
    }

    /// Reads until `total` events since the subscription were received (UDP with a local
    /// port: netsql's own unbound sockets, its ioctls for `interfaces`, have none) or
    /// dropped there.
    fn wait_offered(&mut self, total: usize, limit: Duration) {
        let stdin = self.kid.stdin.as_mut().unwrap();
        writeln!(stdin, "{total}").unwrap();
        stdin.flush().unwrap();
        let answer = self.answers.next_within(limit);
        let counts: Vec<usize> = answer
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        // The witness's buffer is large enough to drop nothing; if it did drop, the
        // count includes port-0 events and can pass the total.
        let [received, dropped] = counts[..] else {
            panic!("{answer}")
        };
        assert!(
            received <= total,
            "more events than sockets closed: {answer}"
        );
        assert!(dropped > 0 || received == total, "{answer}");
    }
}

/// The CSV values (header dropped) `sql` gives over the recording in `dir`.
fn recorded(dir: &std::path::Path, sql: &str) -> Vec<String> {
    let out = crate::common::netsql()
        .arg("--history")
        .arg(dir)
        .args(["--format", "csv", "-e", sql])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// The one number `sql` gives over the recording in `dir`.
/// The ports of the UDP closes a recording under `--host h1` wrote, in order.
fn recorded_closes(dir: &std::path::Path) -> Vec<String> {
    recorded(
        dir,
        "SELECT local_port FROM history.socket_events WHERE host = 'h1' AND proto = 'udp' AND local_port <> 0 ORDER BY local_port",
    )
}

/// `ports` as [`recorded_closes`] lists them.
fn sorted_ports(ports: &[u16]) -> Vec<String> {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.iter().map(u16::to_string).collect()
}

fn recorded_number(dir: &std::path::Path, sql: &str) -> u64 {
    recorded(dir, sql)[0].parse().unwrap()
}

/// Finished Parquet files under `dir`, at any depth.
fn parquet_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                parquet_files(&path)
            } else {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                usize::from(!name.starts_with('.') && name.ends_with(".parquet"))
            }
        })
        .sum()
}

const LOOPBACK: &str = "127.0.0.1";
const NORMAL: usize = 70;
const RESET: usize = 30;
const UDP: usize = 30;

/// What one end must report when it is destroyed: its local address, and the byte
/// counts (acked, received) and segments sent where they are known.
struct End {
    address: &'static str,
    acked: Option<u64>,
    received: Option<u64>,
    segs_out: Option<std::ops::RangeInclusive<u64>>,
}

impl End {
    fn at(address: &'static str) -> End {
        End {
            address,
            acked: None,
            received: None,
            segs_out: None,
        }
    }
}

/// What we closed, keyed by "proto local_port remote_port".
struct Closed {
    expected: BTreeMap<String, End>,
}

fn close_all_kinds(ns: &Netns) -> Closed {
    ns.within(|| {
        let mut expected = BTreeMap::new();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Every socket is open before any closes, so no port is used twice and each
        // key below names one socket (a closed port is free at once: for UDP, after a
        // reset, and on loopback even from TIME_WAIT).
        let pairs: Vec<(TcpStream, TcpStream)> = (0..NORMAL + RESET)
            .map(|_| {
                let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let (server, _) = listener.accept().unwrap();
                (client, server)
            })
            .collect();
        for (i, (mut client, mut server)) in pairs.into_iter().enumerate() {
            let cport = client.local_addr().unwrap().port();
            if i < NORMAL {
                // A transfer of a known size, then FIN both ways.
                let size = 1000 * (i + 1);
                client.write_all(&vec![7u8; size]).unwrap();
                client.shutdown(std::net::Shutdown::Write).unwrap();
                let mut got = Vec::new();
                server.read_to_end(&mut got).unwrap();
                assert_eq!(got.len(), size);
                // The server's close sends its FIN, which may carry the ACK of the
                // client's FIN or follow it (a delayed ACK fired in between).
                let server_segs = u64::from(tcp_info(&server).tcpi_segs_out);
                drop(server);
                let mut rest = Vec::new();
                client.read_to_end(&mut rest).unwrap();
                // The client acknowledged the server's FIN before read saw it; closing
                // sends nothing more.
                let client_segs = u64::from(tcp_info(&client).tcpi_segs_out);
                drop(client);
                // bytes_acked counts the SYN and the FIN; bytes_received the FIN.
                let size = size as u64;
                expected.insert(
                    format!("tcp {cport} {port}"),
                    End {
                        acked: Some(size + 2),
                        segs_out: Some(client_segs..=client_segs),
                        ..End::at(LOOPBACK)
                    },
                );
                expected.insert(
                    format!("tcp {port} {cport}"),
                    End {
                        received: Some(size + 1),
                        segs_out: Some(server_segs + 1..=server_segs + 2),
                        ..End::at(LOOPBACK)
                    },
                );
            } else {
                // Closed with a reset: linger 0.
                socket2::SockRef::from(&client)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
                drop(client);
                drop(server);
                // An abortive close disconnects first (tcp_disconnect zeroes the peer),
                // and unbinds the address, so the kernel reports the aborting end as
                // 0.0.0.0:cport with remote port 0.
                expected.insert(format!("tcp {cport} 0"), End::at("0.0.0.0"));
                expected.insert(format!("tcp {port} {cport}"), End::at(LOOPBACK));
            }
        }
        drop(listener);
        expected.insert(format!("tcp {port} 0"), End::at(LOOPBACK));
        let udp: Vec<UdpSocket> = (0..UDP)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for socket in udp {
            let uport = socket.local_addr().unwrap().port();
            expected.insert(format!("udp {uport} 0"), End::at(LOOPBACK));
        }
        Closed { expected }
    })
}

#[test]
fn every_destroyed_socket_appears_once_with_its_totals() {
    let Some(ns) = Netns::create("events", &["ss"]) else {
        return;
    };
    let wanted = 2 * (NORMAL + RESET) + 1 + UDP;
    let mut kid = Kid::spawn(
        netsql_in(
            &ns,
            &[
                "--format",
                "ndjson",
                "-e",
                &format!("SELECT * FROM socket_events LIMIT {wanted}"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()),
    );
    // Read as it comes: a full pipe would stop netsql before its LIMIT.
    let mut pipe = kid.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stdout = Vec::new();
        pipe.read_to_end(&mut stdout).map(|_| stdout)
    });
    wait_subscribed(&ns, 0);
    let closed = close_all_kinds(&ns);
    assert_eq!(closed.expected.len(), wanted);
    let out = kid.finish_within(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = ndjson(&reader.join().unwrap().unwrap());
    if rows.len() != wanted {
        let got: std::collections::BTreeSet<String> = rows
            .iter()
            .map(|row| {
                format!(
                    "{} {} {}",
                    text(row, "proto").unwrap_or_default(),
                    number(row, "local_port").unwrap_or_default(),
                    number(row, "remote_port").unwrap_or_default()
                )
            })
            .collect();
        let missing: Vec<&String> = closed
            .expected
            .keys()
            .filter(|k| !got.contains(*k))
            .collect();
        panic!(
            "{} rows for LIMIT {wanted}; missing {missing:?}; stderr: {}",
            rows.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut seen = BTreeMap::new();
    for row in &rows {
        assert_eq!(text(row, "event").as_deref(), Some("destroy"));
        assert_eq!(number(row, "netns"), Some(ns.inode()));
        assert!(text(row, "time").is_some_and(|t| t.ends_with('Z')));
        let key = format!(
            "{} {} {}",
            text(row, "proto").unwrap(),
            number(row, "local_port").unwrap(),
            number(row, "remote_port").unwrap()
        );
        assert!(seen.insert(key.clone(), row).is_none(), "{key} twice");
    }
    let keys: Vec<&String> = seen.keys().collect();
    let expected: Vec<&String> = closed.expected.keys().collect();
    assert_eq!(keys, expected, "each destroyed socket exactly once");
    for (key, end) in &closed.expected {
        let row: &Row = seen[key];
        assert_eq!(
            text(row, "local_address").as_deref(),
            Some(end.address),
            "{key}"
        );
        if let Some(acked) = end.acked {
            assert_eq!(number(row, "bytes_acked"), Some(acked), "{key}");
        }
        if let Some(received) = end.received {
            assert_eq!(number(row, "bytes_received"), Some(received), "{key}");
        }
        if key.starts_with("udp") {
            assert_eq!(row["bytes_acked"], serde_json::Value::Null, "{key}");
        } else {
            let sent = number(row, "segs_out").expect("a TCP end's segs_out");
            if let Some(range) = &end.segs_out {
                assert!(
                    range.contains(&sent),
                    "{key}: segs_out {sent}, not in {range:?}"
                );
            }
        }
    }
}

#[test]
fn rows_print_as_they_happen_and_ctrl_c_ends_cleanly() {
    let Some(ns) = Netns::create("evlive", &[]) else {
        return;
    };
    let mut kid = Kid::spawn(
        netsql_in(&ns, &["-e", "SELECT proto, local_port FROM socket_events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let lines = Lines::of(kid.stdout.take().unwrap());
    wait_subscribed(&ns, 0);
    let ports = udp_churn(&ns, 5);
    // The header and each row arrive while netsql is still running.
    let header = lines.next_within(Duration::from_secs(10));
    assert!(header.starts_with("proto"), "{header}");
    for port in &ports {
        let line = lines.next_within(Duration::from_secs(10));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields, ["udp", &port.to_string()], "{line}");
    }
    assert!(kid.try_wait().unwrap().is_none(), "still listening");
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGINT) };
    assert_eq!(lines.next_within(Duration::from_secs(10)), "(5 rows)");
    let out = kid.finish_within(Duration::from_secs(10));
    assert!(
        out.status.success(),
        "Ctrl-C is the normal end: {:?}",
        out.status
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An aggregate over a bounded listen: exactly the sockets closed meanwhile.
    let kid = Kid::spawn(
        netsql_in(
            &ns,
            &[
                "--for",
                "3s",
                "--format",
                "csv",
                "-e",
                "SELECT proto, count(*) AS n FROM socket_events GROUP BY proto",
            ],
        )
        .stdout(Stdio::piped()),
    );
    wait_subscribed(&ns, 0);
    udp_churn(&ns, 123);
    let out = kid.finish_within(Duration::from_secs(20));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "proto,n\nudp,123\n");
}

#[test]
fn a_reader_that_falls_behind_is_told_how_many_events_were_lost() {
    let Some(ns) = Netns::create("evlost", &[]) else {
        return;
    };
    // Nobody reads netsql's output until the churn is over: its pipe, its queue and the
    // kernel's buffer fill, and the kernel drops the rest.
    let mut kid = Kid::spawn(
        netsql_in(
            &ns,
            &[
                "--format",
                "csv",
                "-e",
                "SELECT local_port FROM socket_events",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()),
    );
    wait_subscribed(&ns, 0);
    let mut witness = Witness::subscribe(&ns);
    const CHURN: usize = 150_000;
    udp_churn(&ns, CHURN);
    witness.wait_offered(CHURN, Duration::from_secs(60));
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGINT) };
    let mut stdout = Vec::new();
    kid.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let out = kid.finish_within(Duration::from_secs(30));
    assert!(out.status.success());
    let rows = String::from_utf8_lossy(&stdout).lines().count() - 1;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lost: usize = stderr
        .split_whitespace()
        .skip_while(|w| *w != "dropped")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no loss reported: {stderr}"));
    assert!(lost > 0);
    assert_eq!(
        rows + lost,
        CHURN,
        "every event is a row or counted lost: {stderr}"
    );
}

#[test]
fn record_writes_socket_events_continuously() {
    let Some(ns) = Netns::create("evrecord", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut kid = Kid::spawn(
        netsql_in(&ns, &["record", "--to"])
            .arg(dir.path())
            .args([
                "--tables",
                "socket_events,interfaces",
                "--every",
                "1s",
                "--host",
                "h1",
            ])
            .stderr(Stdio::piped()),
    );
    wait_subscribed(&ns, 0);
    let mut witness = Witness::subscribe(&ns);
    let mut ports = udp_churn(&ns, 40);
    witness.wait_offered(40, Duration::from_secs(60));
    // Ticks write them (each tick also writes netsql's own port-0 events): once all 40
    // are in files, what follows goes to later ones.
    crate::common::wait_until("the first churn in files", Duration::from_secs(30), || {
        parquet_files(&dir.path().join("socket_events")) > 0
            && recorded_number(
                dir.path(),
                "SELECT count(*) FROM history.socket_events WHERE local_port <> 0",
            ) >= 40
    });
    ports.extend(udp_churn(&ns, 25));
    witness.wait_offered(65, Duration::from_secs(60));
    // SIGTERM ends the recording; what the kernel delivered before is written.
    assert!(kid.try_wait().unwrap().is_none(), "still recording");
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGTERM) };
    let out = kid.finish_within(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = recorded_closes(dir.path());
    assert_eq!(
        got,
        sorted_ports(&ports),
        "every closed socket recorded once"
    );
    // Written tick by tick: one file a tick, each stamped with its tick.
    let distinct = recorded_number(
        dir.path(),
        "SELECT count(DISTINCT taken) FROM history.socket_events",
    );
    assert_eq!(
        distinct as usize,
        parquet_files(&dir.path().join("socket_events")),
        "one tick a file"
    );
    // The two churns' sockets, in files of different ticks.
    let ticks = recorded_number(
        dir.path(),
        "SELECT count(DISTINCT taken) FROM history.socket_events WHERE local_port <> 0",
    );
    assert!(ticks >= 2, "{ticks}");
}

#[test]
fn record_listens_out_its_for_when_no_tick_falls_in_it() {
    let Some(ns) = Netns::create("evrecfor", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Ticks each minute, a recording of 20 s: whether or not a tick falls in it, every
    // event of those 20 s is written (at the tick, or at the end).
    let mut kid = Kid::spawn(
        netsql_in(&ns, &["record", "--to"])
            .arg(dir.path())
            .args([
                "--tables",
                "socket_events",
                "--every",
                "60s",
                "--for",
                "20s",
            ])
            .args(["--host", "h1"])
            .stderr(Stdio::piped()),
    );
    wait_subscribed(&ns, 0);
    let mut witness = Witness::subscribe(&ns);
    let ports = udp_churn(&ns, 20);
    witness.wait_offered(20, Duration::from_secs(60));
    // Still listening: the events came within --for (on a very slow machine they might
    // not, and the test would say so here rather than fail below).
    assert!(
        kid.try_wait().unwrap().is_none(),
        "--for ran out before the churn"
    );
    let out = kid.finish_within(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got = recorded_closes(dir.path());
    let expected = sorted_ports(&ports);
    assert_eq!(got, expected, "{stderr}");
}

#[test]
fn record_keeps_the_events_of_a_tick_it_could_not_write() {
    let Some(ns) = Netns::create("evrecfail", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A file where the table's folder goes: each tick's write fails until it is gone.
    let blocker = dir.path().join("socket_events");
    std::fs::write(&blocker, b"in the way").unwrap();
    let mut kid = Kid::spawn(
        netsql_in(&ns, &["record", "--to"])
            .arg(dir.path())
            .args(["--tables", "socket_events", "--every", "1s", "--host", "h1"])
            .stderr(Stdio::piped()),
    );
    let lines = Lines::of(kid.stderr.take().unwrap());
    wait_subscribed(&ns, 0);
    let mut witness = Witness::subscribe(&ns);
    let ports = udp_churn(&ns, 20);
    witness.wait_offered(20, Duration::from_secs(60));
    // Two ticks failed since the kernel offered the events: the second held them all
    // (other lines, an overrun tick's, are not failures).
    let mut failed = 0;
    while failed < 2 {
        if lines
            .next_within(Duration::from_secs(30))
            .contains("snapshot at")
        {
            failed += 1;
        }
    }
    std::fs::remove_file(&blocker).unwrap();
    crate::common::wait_until("the events in a file", Duration::from_secs(30), || {
        parquet_files(&blocker) > 0
            && recorded_number(
                dir.path(),
                "SELECT count(*) FROM history.socket_events WHERE local_port <> 0",
            ) >= 20
    });
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGTERM) };
    let out = kid.finish_within(Duration::from_secs(30));
    assert!(out.status.success());
    let got = recorded_closes(dir.path());
    let expected = sorted_ports(&ports);
    assert_eq!(got, expected, "every close written once, late");
}

#[test]
fn socket_events_is_refused_in_snapshots_and_explain_does_not_listen() {
    // A snapshot of a stream would never end: refused up front.
    let out = crate::common::netsql()
        .args([
            "snapshot",
            "--to",
            "/nonexistent",
            "--tables",
            "socket_events",
        ])
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket_events is a stream"));
    // EXPLAIN plans it without subscribing (and so returns at once).
    let out = crate::common::netsql()
        .args(["-e", "EXPLAIN SELECT * FROM socket_events"])
        .run_within(Duration::from_secs(20));
    assert!(out.status.success());
}

/// UDP sockets bound in `ns` to each of `ports` and closed, in that order.
fn udp_close(ns: &Netns, ports: &[u16]) {
    let ports = ports.to_vec();
    ns.within(move || {
        for port in ports {
            drop(UdpSocket::bind((LOOPBACK, port)).unwrap());
        }
    })
}

/// A filtered, joined or limited query over `socket_events` streams: each matching row
/// prints while netsql still listens (a filter gathering rows to fill a batch printed
/// nothing until Ctrl-C), and `LIMIT n` ends after n matching events.
#[test]
fn filtered_joined_and_limited_queries_stream() {
    let Some(ns) = Netns::create("evfilter", &[]) else {
        return;
    };
    for sql in [
        "SELECT proto, local_port FROM socket_events WHERE local_port IN (46001, 46003)",
        "SELECT e.proto, e.local_port FROM socket_events e \
         JOIN (VALUES (46001), (46003)) AS w(p) ON e.local_port = w.p",
    ] {
        let mut kid = Kid::spawn(
            netsql_in(&ns, &["-e", sql])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let lines = Lines::of(kid.stdout.take().unwrap());
        wait_subscribed(&ns, 0);
        udp_close(&ns, &[46000, 46001, 46002, 46003, 46004]);
        let header = lines.next_within(Duration::from_secs(10));
        assert!(header.starts_with("proto"), "{sql}: {header}");
        for port in ["46001", "46003"] {
            let line = lines.next_within(Duration::from_secs(10));
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields, ["udp", port], "{sql}: {line}");
        }
        assert!(kid.try_wait().unwrap().is_none(), "{sql}: still listening");
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(kid.id() as i32, libc::SIGINT) };
        assert_eq!(
            lines.next_within(Duration::from_secs(10)),
            "(2 rows)",
            "{sql}"
        );
        let out = kid.finish_within(Duration::from_secs(10));
        assert!(out.status.success(), "{sql}: {:?}", out.status);
    }

    let kid = Kid::spawn(
        netsql_in(
            &ns,
            &[
                "--format",
                "csv",
                "-e",
                "SELECT local_port FROM socket_events WHERE local_port >= 46010 LIMIT 3",
            ],
        )
        .stdout(Stdio::piped()),
    );
    wait_subscribed(&ns, 0);
    udp_close(&ns, &[46005, 46010, 46011, 46012, 46013]);
    let out = kid.finish_within(Duration::from_secs(20));
    assert!(out.status.success(), "{:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut ports: Vec<&str> = text.lines().collect();
    assert_eq!(ports.remove(0), "local_port", "{text}");
    assert_eq!(ports.len(), 3, "exactly LIMIT rows: {text}");
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each close once: {text}");
    assert!(
        ports
            .iter()
            .all(|p| ["46010", "46011", "46012", "46013"].contains(p)),
        "{text}"
    );
}

/// The REPL prints a stream's rows as they come, too (it used to gather every result
/// until the statement ended: a spinner until Ctrl-C); Ctrl-C ends the stream, not the
/// REPL.
#[test]
fn the_repl_streams_socket_events() {
    use expectrl::session::OsSession as Session;
    use expectrl::Expect;
    let Some(ns) = Netns::create("evrepl", &[]) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_netsql"));
    command
        .args(["--netns", &ns.name])
        .env("XDG_DATA_HOME", data.path())
        .env("XDG_CONFIG_HOME", data.path().join("config"))
        .env("TERM", "xterm-256color");
    let mut s = Session::spawn(command).expect("spawn netsql in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s.expect("netsql> ").unwrap();
    s.send("SELECT proto, local_port FROM socket_events WHERE local_port > 46100;\r")
        .unwrap();
    wait_subscribed(&ns, 0);
    udp_close(&ns, &[46101, 46102]);
    s.expect("46101").unwrap();
    s.expect("46102").unwrap();
    s.send("\x03").unwrap();
    s.expect("(2 rows)").unwrap();
    s.expect("netsql> ").unwrap();
    // The session's tables are all still there after a stream.
    s.send("SELECT count(*) AS still_here FROM sockets;\r")
        .unwrap();
    s.expect("| still_here |").unwrap();
    // \watch over a stream stops at Ctrl-C: the stream took the press as its own end,
    // and the watch ran it again, for good.
    // (The spinner at one second: the stream is running and holds Ctrl-C.)
    s.send("SELECT count(*) AS n FROM socket_events;\r")
        .unwrap();
    s.expect(" 1s").unwrap();
    s.send("\x03").unwrap();
    s.expect("(1 row)").unwrap();
    s.expect("netsql> ").unwrap();
    s.send("\\watch 1\r").unwrap();
    s.expect(" 1s").unwrap();
    s.send("\x03").unwrap();
    s.expect("(1 row)").unwrap();
    s.expect("netsql> ").unwrap();
    s.send("SELECT 'after' AS a;\r").unwrap();
    s.expect("| after |").unwrap();
    s.send("\\q\r").unwrap();
    s.expect(expectrl::Eof).unwrap();
}
