//! TCP timers against `ss -o` and `netstat -o` in a namespace of our own: a keepalive
//! timer, a zero-window probe (persist) timer, a retransmitting SYN and a TIME_WAIT.
//! Names and counters must match exactly; the time left may differ only by the time the
//! reads took (measured) and the tool's printed resolution. netstat shows both of the
//! kernel's counters, `(left/retransmits/probes)`; ss shows one, the retransmits for
//! `on` and the probes for keepalive and persist.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use common::{ndjson, Netns};
use socket2::{Domain, Socket, TcpKeepalive, Type};

/// Jiffies: the kernel's timers tick at HZ (4 ms at 250, 10 ms at 100).
const JIFFY_MS: i64 = 10;

/// Whether `theirs`, read after `ours` within `window_ms`, shows the same timer: a
/// countdown, so behind ours by at most the window, give or take the printed resolution.
fn near(theirs: i64, ours: i64, window_ms: i64, resolution_ms: i64) -> bool {
    let slack = resolution_ms + JIFFY_MS;
    theirs <= ours + slack && theirs >= ours - window_ms - slack
}

/// ss prints whole seconds (truncated) past 10 s, milliseconds below (print_ms_timer).
fn ss_resolution(ms: i64) -> i64 {
    if ms >= 10_000 {
        1000
    } else {
        1
    }
}

/// One timer as a tool shows it: name, milliseconds left, the counters it shows.
#[derive(Debug, Clone, PartialEq)]
struct Timer {
    name: String,
    left_ms: i64,
    retransmits: Option<u64>,
    probes: Option<u64>,
}

/// `local peer` -> the timer ss shows, for every TCP socket with one.
fn ss_timers(ns: &Netns) -> BTreeMap<String, Timer> {
    let out = ns.exec_ok(&["ss", "-Htano"]);
    let mut timers = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(t) = f.iter().find_map(|t| t.strip_prefix("timer:(")) else {
            continue;
        };
        let parts: Vec<&str> = t.trim_end_matches(')').split(',').collect();
        let count: u64 = parts[2].parse().unwrap();
        let (retransmits, probes) = match parts[0] {
            "keepalive" | "persist" => (None, Some(count)),
            "timewait" => (Some(count), Some(count)),
            _ => (Some(count), None),
        };
        timers.insert(
            format!("{} {}", f[3], f[4]),
            Timer {
                name: parts[0].to_string(),
                left_ms: ss_ms(parts[1]),
                retransmits,
                probes,
            },
        );
    }
    timers
}

/// ss's time left (iproute2 misc/ss.c print_ms_timer): `1min29sec`, `29sec`, `9.800ms`
/// (9.8 s), `200ms`; nothing for 0.
fn ss_ms(text: &str) -> i64 {
    let (minutes, rest) = match text.split_once("min") {
        Some((m, rest)) => (m.parse::<i64>().unwrap(), rest),
        None => (0, text),
    };
    let rest_ms = if let Some(s) = rest.strip_suffix("sec") {
        s.parse::<i64>().unwrap() * 1000
    } else if let Some(ms) = rest.strip_suffix("ms") {
        match ms.split_once('.') {
            Some((s, ms)) => s.parse::<i64>().unwrap() * 1000 + ms.parse::<i64>().unwrap(),
            None => ms.parse().unwrap(),
        }
    } else {
        assert!(rest.is_empty(), "ss timer {text:?}");
        0
    };
    minutes * 60_000 + rest_ms
}

/// `local peer` -> the timer netstat -tano shows: `keepalive (29.53/0/1)` is name,
/// seconds left, retransmits, probes.
fn netstat_timers(ns: &Netns) -> BTreeMap<String, Timer> {
    let out = ns.exec_ok(&["netstat", "-tano"]);
    let mut timers = BTreeMap::new();
    for line in out.lines().skip(2) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(numbers)) = (f.get(f.len() - 2), f.last()) else {
            continue;
        };
        let numbers: Vec<&str> = numbers
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split('/')
            .collect();
        let seconds: f64 = numbers[0].parse().unwrap();
        timers.insert(
            format!("{} {}", f[3], f[4]),
            Timer {
                name: name.to_string(),
                left_ms: (seconds * 1000.0).round() as i64,
                retransmits: Some(numbers[1].parse().unwrap()),
                probes: Some(numbers[2].parse().unwrap()),
            },
        );
    }
    timers
}

/// Ours, keyed the way each tool prints endpoints.
fn our_timers(ns: &Netns, source: &str) -> Vec<(String, String, Timer)> {
    let out = ns.netsql(&[
        "--source",
        source,
        "--format",
        "ndjson",
        "-e",
        "SELECT local_address, local_port, remote_address, remote_port, timer, \
         timer_expires_ms, retransmits, probes FROM sockets WHERE proto IN ('tcp', 'tcp6')",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
        .iter()
        .map(|r| {
            let end = |a: &str, p: &str| {
                let (addr, port) = (r[a].as_str().unwrap(), r[p].as_u64().unwrap());
                let port = if port == 0 {
                    "*".to_string()
                } else {
                    port.to_string()
                };
                if addr.contains(':') {
                    (format!("[{addr}]:{port}"), format!("{addr}:{port}"))
                } else {
                    (format!("{addr}:{port}"), format!("{addr}:{port}"))
                }
            };
            let (ss_local, netstat_local) = end("local_address", "local_port");
            let (ss_remote, netstat_remote) = end("remote_address", "remote_port");
            let timer = Timer {
                name: r["timer"].as_str().unwrap().to_string(),
                left_ms: r["timer_expires_ms"].as_i64().unwrap(),
                retransmits: Some(r["retransmits"].as_u64().unwrap()),
                probes: Some(r["probes"].as_u64().unwrap()),
            };
            (
                format!("{ss_local} {ss_remote}"),
                format!("{netstat_local} {netstat_remote}"),
                timer,
            )
        })
        .collect()
}

/// Compares ours with both tools once; the differences, if any.
fn compare(ns: &Netns, source: &str) -> Result<usize, String> {
    let read = Instant::now();
    let ours = our_timers(ns, source);
    let ss = ss_timers(ns);
    let netstat = netstat_timers(ns);
    let window = read.elapsed().as_millis() as i64;
    let mut problems = Vec::new();
    let mut compared = 0;
    for (ss_key, netstat_key, ours) in &ours {
        // ss prints no timer for `off`; it calls the zero-window probe `persist`.
        let ss_name = match ours.name.as_str() {
            "probe" => "persist",
            other => other,
        };
        match ss.get(ss_key) {
            None if ours.name == "off" => {}
            None => problems.push(format!("{ss_key}: ss shows no timer, we show {ours:?}")),
            Some(theirs) => {
                // ss shows one counter: compare the one it shows.
                let counters_agree = theirs
                    .retransmits
                    .is_none_or(|n| Some(n) == ours.retransmits)
                    && theirs.probes.is_none_or(|n| Some(n) == ours.probes);
                if theirs.name != ss_name
                    || !counters_agree
                    || !near(
                        theirs.left_ms,
                        ours.left_ms,
                        window,
                        ss_resolution(theirs.left_ms),
                    )
                {
                    problems.push(format!(
                        "{ss_key}: ss {theirs:?}, ours {ours:?} (read within {window} ms)"
                    ));
                }
                compared += 1;
            }
        }
        let Some(theirs) = netstat.get(netstat_key) else {
            problems.push(format!("{netstat_key}: not in netstat -tano"));
            continue;
        };
        if theirs.name != ours.name
            || theirs.retransmits != ours.retransmits
            || theirs.probes != ours.probes
        {
            problems.push(format!("{netstat_key}: netstat {theirs:?}, ours {ours:?}"));
        }
        // netstat shows no time left for `off`; hundredths of a second otherwise.
        if ours.name != "off" && !near(theirs.left_ms, ours.left_ms, window, 10) {
            problems.push(format!(
                "{netstat_key}: netstat {theirs:?}, ours {ours:?} (read within {window} ms)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(compared)
    } else {
        Err(problems.join("\n"))
    }
}

struct Made {
    _held: Vec<OwnedFd>,
    keepalive: SocketAddr,
    /// Just before and just after the keepalive connection was established (when the
    /// kernel armed its 30 s timer).
    connecting: (Instant, Instant),
    persist: SocketAddr,
}

/// Runs inside the namespace.
fn build(ns: String) -> Made {
    let mut held: Vec<OwnedFd> = Vec::new();
    // keepalive: the first probe 30 s after the last data.
    let lst = TcpListener::bind("127.0.0.1:7800").unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    client
        .set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::from_secs(30)))
        .unwrap();
    let before = Instant::now();
    client
        .connect(&"127.0.0.1:7800".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let connecting = (before, Instant::now());
    let keepalive = client.local_addr().unwrap().as_socket().unwrap();
    let (server, _) = lst.accept().unwrap();
    held.extend([client.into(), server.into(), lst.into()]);

    // persist: a receiver with a small buffer that never reads; the sender fills its
    // window, then probes a zero window.
    let small = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    small.set_recv_buffer_size(4096).unwrap();
    small
        .bind(&"127.0.0.1:7801".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    small.listen(1).unwrap();
    let mut sender = TcpStream::connect("127.0.0.1:7801").unwrap();
    let persist = sender.local_addr().unwrap();
    let (receiver, _) = small.accept().unwrap();
    sender.set_nonblocking(true).unwrap();
    let chunk = vec![0u8; 65536];
    let started = Instant::now();
    loop {
        match sender.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the window: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never filled");
    }
    held.extend([sender.into(), receiver.into(), small.into()]);

    // on: a SYN to a port whose SYNs are dropped, retransmitted every 1 s, 2 s, ...
    common::run_ok(
        "ip",
        &[
            "netns", "exec", &ns, "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "7802",
            "--syn", "-j", "DROP",
        ],
    );
    let syn = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    syn.set_nonblocking(true).unwrap();
    let _ = syn.connect(&"127.0.0.1:7802".parse::<SocketAddr>().unwrap().into());
    held.push(syn.into());

    // timewait: a connection this side closes first.
    let tw = TcpListener::bind("127.0.0.1:7803").unwrap();
    let closer = TcpStream::connect("127.0.0.1:7803").unwrap();
    let (peer, _) = tw.accept().unwrap();
    drop(closer);
    drop(peer);
    held.push(tw.into());
    Made {
        _held: held,
        keepalive,
        connecting,
        persist,
    }
}

#[test]
fn timers_match_ss_and_netstat() {
    let Some(ns) = Netns::create("timers", &["iptables", "ss", "netstat"]) else {
        return;
    };
    let made = {
        let name = ns.name.clone();
        ns.within(move || build(name))
    };
    // Wait for what the test needs to see: the persist timer armed and the SYN
    // retransmitted at least once (its first retransmission is 1 s after the SYN).
    let persist_key = format!("{} 127.0.0.1:7801", made.persist);
    let started = Instant::now();
    loop {
        let ss = ss_timers(&ns);
        let persisting = ss
            .get(&persist_key)
            .is_some_and(|t| t.name == "persist" && t.probes >= Some(1));
        let retried = ss
            .values()
            .any(|t| t.name == "on" && t.retransmits >= Some(1));
        if persisting && retried {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no zero-window probe or no SYN retransmission in 10 s: {ss:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The keepalive timer counts down from 30 s since the connection was made.
    let asked = Instant::now();
    let ours = our_timers(&ns, "netlink");
    let answered = Instant::now();
    let keepalive = ours
        .iter()
        .find(|(k, _, _)| k.starts_with(&format!("{} ", made.keepalive)))
        .map(|(_, _, t)| t.clone())
        .unwrap();
    assert_eq!(keepalive.name, "keepalive");
    let (before, after) = made.connecting;
    let most = 30_000 - asked.duration_since(after).as_millis() as i64 + JIFFY_MS;
    let least = 30_000 - answered.duration_since(before).as_millis() as i64 - JIFFY_MS;
    assert!(
        (least..=most).contains(&keepalive.left_ms),
        "{keepalive:?}: wanted {least}..={most}"
    );
    let names: Vec<&str> = ours.iter().map(|(_, _, t)| t.name.as_str()).collect();
    for wanted in ["keepalive", "probe", "on", "timewait", "off"] {
        assert!(names.contains(&wanted), "no {wanted} timer: {ours:#?}");
    }

    // Probes back off (0.2 s, 0.4 s, 0.8 s, ...) and SYNs are resent, so one may come
    // between the three runs of a comparison; a real difference shows on three tries.
    for source in ["netlink", "proc"] {
        let mut result = compare(&ns, source);
        for _ in 0..2 {
            if result.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            result = compare(&ns, source);
        }
        let compared = result.unwrap_or_else(|diff| panic!("--source {source}:\n{diff}"));
        assert!(compared >= 4, "compared {compared} timers with ss");
    }
    drop(made);
}
