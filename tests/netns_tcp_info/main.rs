//! TCP internals against `ss` on the same sockets, in a namespace of our own: a finished
//! bulk transfer of a known size, a connection whose peer's ACKs iptables drops, a
//! listener, a TIME_WAIT socket, a `reno` connection, UDP sockets overflowed until they
//! drop, unix sockets, a socket made in a test cgroup. Every `tcp_info` field `ss -tin`
//! prints must equal ours ("ms since" times within the time both reads took); `skmem_*`
//! must equal `ss -tmn`/`ss -xmn`/`ss -umn`; `cgroup`, `shutdown`, `mark` must equal
//! `ss -e`'s, `sockopt` `ss --inet-sockopt`'s.

#[path = "../common/mod.rs"]
mod common;
mod made;
mod ss;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{ndjson, number, text, Netns, Row, RunExt};
use made::{build, BULK};
use ss::{endpoint, same_skmem, same_tcp_info, ss, SsSocket};

/// Our rows, read from here with `--netns` (so with this mount namespace's cgroup2).
fn query(ns: &Netns, args: &[&str], sql: &str) -> Vec<Row> {
    common::ndjson_rows(
        common::netsql()
            .args(["--netns", &ns.name])
            .args(args)
            .args(["--format", "ndjson", "-e", sql]),
    )
}

/// A list column's text items; None for NULL.
fn list(row: &Row, column: &str) -> Option<Vec<String>> {
    row[column].as_array().map(|items| {
        items
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect()
    })
}

#[test]
fn tcp_internals_equal_what_ss_shows() {
    let Some(ns) = Netns::create("tcpinfo", &["ss"]) else {
        return;
    };
    let made = ns.within(build);
    std::thread::sleep(Duration::from_millis(300));

    let read = std::time::Instant::now();
    let ours = query(&ns, &[], "SELECT * FROM tcp_info");
    // -o adds the options (ts, sack, ...) to -i's fields.
    let theirs = ss(&ns, &["-tinamo"]);
    let window_ms = read.elapsed().as_millis() as u64;
    let by_key: BTreeMap<String, &Row> = ours.iter().map(|r| (endpoint(r), r)).collect();
    assert_eq!(ours.len(), by_key.len());
    let mut compared = 0;
    for row in &ours {
        let key = endpoint(row);
        let state = text(row, "state").unwrap();
        if state == "TIME_WAIT" {
            // No tcp_info for a TIME_WAIT socket: NULL, not 0.
            assert_eq!(row["rtt_us"], serde_json::Value::Null, "{key}");
            assert_eq!(row["congestion"], serde_json::Value::Null, "{key}");
            continue;
        }
        let ss_key = key.replace("0.0.0.0:0", "0.0.0.0:*");
        let Some(socket) = theirs.get(&ss_key) else {
            panic!(
                "ss has no {ss_key}: {:?}",
                theirs.keys().collect::<Vec<_>>()
            );
        };
        // The stalled sender probes the zero window on a timer: its counters move
        // between two reads, so it is compared in saved_queries_and_audits instead.
        if [number(row, "local_port"), number(row, "remote_port")]
            .contains(&Some(u64::from(made.stalled_port)))
        {
            continue;
        }
        same_tcp_info(row, socket, &key, window_ms);
        compared += 1;
    }
    assert!(compared >= 8, "{compared}");
    // A listener's tcpi_sacked is its backlog limit, which ss leaves out: NULL, not a
    // count of segments; its unacked is its accept queue, as ss prints it.
    let listeners: Vec<&Row> = ours
        .iter()
        .filter(|r| text(r, "state").as_deref() == Some("LISTEN"))
        .collect();
    assert!(!listeners.is_empty());
    for listener in listeners {
        assert_eq!(listener["sacked"], serde_json::Value::Null, "{listener:?}");
        assert!(number(listener, "unacked").is_some(), "{listener:?}");
    }
    // SO_MAX_PACING_RATE, set to 1,000,000 bytes/s on the marked socket alone: 8 Mbit/s
    // there, and the kernel's "unlimited" (~0) NULL everywhere else.
    let limited: Vec<(u64, Option<u64>)> = ours
        .iter()
        .filter(|r| number(r, "max_pacing_rate_bps").is_some())
        .map(|r| {
            (
                number(r, "max_pacing_rate_bps").unwrap(),
                number(r, "remote_port"),
            )
        })
        .collect();
    assert_eq!(limited, [(8_000_000, Some(7305))]);
    assert!(ours
        .iter()
        .any(|r| text(r, "state").as_deref() == Some("TIME_WAIT")));

    // The bulk transfer, exactly: the SYN counts one byte acknowledged.
    let client = ours
        .iter()
        .find(|r| number(r, "local_port") == Some(u64::from(made.bulk_client_port)))
        .unwrap();
    // bytes_sent counts retransmitted bytes too (a busy machine may lose one on lo).
    let retransmitted = number(client, "bytes_retrans").unwrap();
    assert_eq!(
        number(client, "bytes_sent"),
        Some(BULK as u64 + retransmitted)
    );
    assert_eq!(number(client, "bytes_acked"), Some(BULK as u64 + 1));
    let server = ours
        .iter()
        .find(|r| number(r, "remote_port") == Some(u64::from(made.bulk_client_port)))
        .unwrap();
    assert_eq!(number(server, "bytes_received"), Some(BULK as u64));
    match &made.reno_port {
        Ok(port) => {
            let reno = ours
                .iter()
                .find(|r| number(r, "local_port") == Some(u64::from(*port)))
                .unwrap();
            assert_eq!(text(reno, "congestion").as_deref(), Some("reno"));
        }
        // The kernel itself refused: ss cannot show reno either.
        Err(why) => eprintln!("skipped (reno): {why}"),
    }

    // Socket memory of every TCP, UDP and unix socket, against ss -m.
    let sql = "SELECT proto, local_address, local_port, remote_address, remote_port, inode, path, state, \
               skmem_rmem_alloc, skmem_rcvbuf, skmem_wmem_alloc, skmem_sndbuf, skmem_fwd_alloc, \
               skmem_wmem_queued, skmem_optmem, skmem_backlog, drops, cgroup_id, cgroup, shutdown, tos, mark, \
               sockopt FROM sockets";
    let tcp_before = ss(&ns, &["-tanme"]);
    let udp_before = ss(&ns, &["-uanme"]);
    let unix_before = ss(&ns, &["-xanm"]);
    let rows = query(&ns, &[], sql);
    let tcp = ss(&ns, &["-tanme"]);
    let udp = ss(&ns, &["-uanme"]);
    let unix = ss(&ns, &["-xanm"]);
    let tcp_options = ss(&ns, &["-tan", "--inet-sockopt"]);
    let udp_options = ss(&ns, &["-uan", "--inet-sockopt"]);
    for row in &rows {
        let proto = text(row, "proto").unwrap();
        let what = format!("{proto} {row:?}");
        if proto == "unix" {
            let key = format!(
                "{} {}",
                text(row, "path").unwrap_or_else(|| "*".into()),
                number(row, "inode").unwrap()
            );
            // (A socket made between the two readings is compared with the second.)
            let after = &unix[&key];
            same_skmem(row, unix_before.get(&key).unwrap_or(after), after, &what);
            continue;
        }
        if text(row, "state").as_deref() == Some("TIME_WAIT") {
            assert_eq!(row["skmem_rcvbuf"], serde_json::Value::Null);
            continue;
        }
        let key = endpoint(row).replace(":0", ":*");
        let (before, theirs) = if proto.starts_with("tcp") {
            (tcp_before.get(&key), &tcp[&key])
        } else {
            (udp_before.get(&key), &udp[&key])
        };
        let before = before.unwrap_or(theirs);
        same_skmem(row, before, theirs, &what);
        // ss -e: the shutdown arrows (`<->` none, `<--` wr, `-->` rd, `---` both) and fwmark.
        let arrows = theirs
            .words
            .iter()
            .find(|w| w.len() == 3 && w.chars().nth(1) == Some('-'));
        let shutdown = match arrows.map(String::as_str) {
            Some("<->") | None => None,
            Some("<--") => Some("wr"),
            Some("-->") => Some("rd"),
            Some("---") => Some("rdwr"),
            Some(other) => panic!("{other}"),
        };
        assert_eq!(text(row, "shutdown").as_deref(), shutdown, "{what}");
        let mark = theirs
            .fields
            .get("fwmark")
            .map(|m| u64::from_str_radix(m.trim_start_matches("0x"), 16).unwrap());
        assert_eq!(number(row, "mark").filter(|&m| m != 0), mark, "{what}");
        assert_eq!(
            text(row, "cgroup").as_deref(),
            theirs.fields.get("cgroup").map(String::as_str),
            "{what}"
        );
        // `inet-sockopt: ( is_icsk mc_loop mc_all)`, absent when the kernel sent none.
        let options = if proto.starts_with("tcp") {
            &tcp_options[&key]
        } else {
            &udp_options[&key]
        };
        let theirs: Option<Vec<String>> = options.fields.get("inet-sockopt").map(|_| {
            options
                .words
                .iter()
                .map(|w| w.trim_matches(|c| c == '(' || c == ')').to_string())
                .filter(|w| !w.is_empty())
                .collect()
        });
        assert_eq!(list(row, "sockopt"), theirs, "{what}");
    }
    let marked = rows
        .iter()
        .find(|r| number(r, "local_port") == Some(u64::from(made.marked_port)))
        .unwrap();
    assert_eq!(
        (
            number(marked, "mark"),
            number(marked, "tos"),
            text(marked, "shutdown")
        ),
        (Some(7), Some(0x10), Some("wr".into()))
    );
    let options = list(marked, "sockopt").unwrap_or_default();
    assert!(
        options.contains(&"recverr".to_string()) && options.contains(&"freebind".to_string()),
        "{options:?}"
    );
    let sink = rows
        .iter()
        .find(|r| {
            text(r, "proto").as_deref() == Some("udp")
                && number(r, "local_port") == Some(u64::from(made.udp_port))
        })
        .unwrap();
    let drops = number(sink, "drops").unwrap();
    assert!(drops > 0, "the small buffer dropped datagrams");
    // /proc/net/udp says the same; there every other extension is NULL.
    let proc_rows = query(&ns, &["--source", "proc"], &format!("SELECT drops, skmem_rcvbuf, cgroup_id FROM sockets WHERE proto = 'udp' AND local_port = {}", made.udp_port));
    assert_eq!(number(&proc_rows[0], "drops"), Some(drops));
    assert_eq!(proc_rows[0]["skmem_rcvbuf"], serde_json::Value::Null);
    assert_eq!(proc_rows[0]["cgroup_id"], serde_json::Value::Null);
    saved_queries_and_audits(&ns, &made, &rows);
    let proc_tcp = query(
        &ns,
        &["--source", "proc"],
        "SELECT rtt_us, congestion FROM tcp_info",
    );
    assert!(
        !proc_tcp.is_empty()
            && proc_tcp
                .iter()
                .all(|r| r["rtt_us"].is_null() && r["congestion"].is_null())
    );
    drop(made);
}

/// Runs a built-in saved query in the namespace; its rows.
fn saved(ns: &Netns, args: &[&str]) -> Vec<Row> {
    let mut all = vec!["--netns", &ns.name, "--format", "ndjson"];
    all.extend_from_slice(args);
    let out = common::netsql().args(&all).run();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
}

/// Each audit's findings, by name.
fn audits(ns: &Netns, params: &[&str]) -> BTreeMap<String, Vec<Row>> {
    let mut args = vec!["audit", "--netns", &ns.name, "--format", "json"];
    for p in params {
        args.extend(["-p", p]);
    }
    let out = common::netsql().args(&args).run();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    json.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let findings = a["findings"].as_array().unwrap();
            let rows = findings
                .iter()
                .map(|f| f.as_object().unwrap().clone())
                .collect();
            (a["name"].as_str().unwrap().to_string(), rows)
        })
        .collect()
}

/// tcp_health, socket_memory and the audits against ss's figures for the same sockets.
fn saved_queries_and_audits(ns: &Netns, made: &made::Made, rows: &[Row]) {
    let mut established = ss(ns, &["-tin"]);
    established.retain(|_, s| s.state == "ESTAB");
    let rtts: Vec<u64> = established
        .values()
        .map(|s| {
            let ms: f64 = s.fields["rtt"].split('/').next().unwrap().parse().unwrap();
            (ms * 1000.0).round() as u64
        })
        .collect();
    let health = saved(ns, &["-q", "tcp_health"]);
    assert_eq!(
        health.len(),
        1,
        "every connection is to 127.0.0.1: {health:?}"
    );
    let row = &health[0];
    assert_eq!(text(row, "remote_address").as_deref(), Some("127.0.0.1"));
    assert_eq!(number(row, "connections"), Some(established.len() as u64));
    assert_eq!(number(row, "max_rtt_us"), rtts.iter().max().copied());
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(text(row, "programs").as_deref(), Some(me.trim()));

    // socket_memory: our process holds every socket here; sums of ss -m's fields.
    let all = [ss(ns, &["-tanm"]), ss(ns, &["-uanm"]), ss(ns, &["-xanm"])];
    let (mut count, mut receive, mut send, mut total, mut drops) = (0, 0, 0, 0, 0);
    for socket in all.iter().flat_map(|m| m.values()) {
        let Some(skmem) = socket.fields.get("skmem") else {
            continue; // TIME_WAIT: no memory of its own
        };
        let field = |prefix: &str| -> u64 {
            skmem
                .trim_matches(|c| c == '(' || c == ')')
                .split(',')
                .find_map(|f| {
                    f.strip_prefix(prefix)
                        .filter(|v| v.chars().all(|c| c.is_ascii_digit()))
                })
                .unwrap()
                .parse()
                .unwrap()
        };
        count += 1;
        receive += field("r");
        send += field("w");
        total += field("r") + field("w") + field("o") + field("bl");
        drops += field("d");
    }
    let memory = saved(ns, &["-q", "socket_memory"]);
    assert_eq!(memory.len(), 1, "{memory:?}");
    let m = &memory[0];
    assert_eq!(number(m, "pid"), Some(u64::from(std::process::id())));
    assert_eq!(
        (
            number(m, "sockets"),
            number(m, "receive_bytes"),
            number(m, "send_bytes"),
            number(m, "total_bytes"),
            number(m, "drops")
        ),
        (
            Some(count),
            Some(receive),
            Some(send),
            Some(total),
            Some(drops)
        )
    );
    assert!(send > 0 && receive > 0 && drops > 0);

    let found = audits(ns, &[]);
    let udp: Vec<(Option<u64>, Option<u64>)> = found["udp_drops"]
        .iter()
        .map(|f| (number(f, "local_port"), number(f, "drops")))
        .collect();
    let sink = rows
        .iter()
        .find(|r| {
            text(r, "proto").as_deref() == Some("udp")
                && number(r, "local_port") == Some(u64::from(made.udp_port))
        })
        .unwrap();
    assert_eq!(
        udp,
        [(Some(u64::from(made.udp_port)), number(sink, "drops"))]
    );
    let stalls: Vec<Option<u64>> = found["zero_window_stalls"]
        .iter()
        .map(|f| number(f, "local_port"))
        .collect();
    assert_eq!(stalls, [Some(u64::from(made.stalled_port))]);
    let theirs = ss(ns, &["-tin", &format!("sport = :{}", made.stalled_port)]);
    let sender = theirs.values().next().unwrap();
    // ss prints snd_wnd only when it is not 0.
    assert_eq!(sender.fields.get("snd_wnd"), None, "ss agrees: {sender:?}");
    assert_eq!(number(&found["zero_window_stalls"][0], "snd_wnd"), Some(0));
    // The storm audit (defaults: over 1% of at least 1 MiB) finds exactly the connections
    // ss's counters put there: on a loaded machine even lo sometimes retransmits.
    let everything = ss(ns, &["-tin"]);
    let mut storms: Vec<u64> = everything
        .iter()
        .filter(|(_, s)| {
            let field = |k: &str| s.fields.get(k).map_or(0.0, |v| v.parse::<f64>().unwrap());
            let sent = field("bytes_sent");
            sent >= 1_048_576.0 && 100.0 * field("bytes_retrans") / sent > 1.0
        })
        .map(|(key, _)| {
            key.split(' ')
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    storms.sort_unstable();
    let mut found_storms: Vec<u64> = found["retransmit_storm"]
        .iter()
        .map(|f| number(f, "local_port").unwrap())
        .collect();
    found_storms.sort_unstable();
    assert_eq!(found_storms, storms, "{:?}", found["retransmit_storm"]);
}

#[test]
fn retransmissions_while_acks_are_dropped() {
    let Some(ns) = Netns::create("retrans", &["ss", "iptables"]) else {
        return;
    };
    let (client, server, listener) = ns.within(|| {
        let listener = TcpListener::bind("127.0.0.1:7310").unwrap();
        let client = TcpStream::connect("127.0.0.1:7310").unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server, listener)
    });
    let port = client.local_addr().unwrap().port();
    // Everything the server sends back (its ACKs) is dropped.
    ns.exec_ok(&[
        "iptables", "-w", "-A", "OUTPUT", "-p", "tcp", "--sport", "7310", "-j", "DROP",
    ]);
    (&client).write_all(&[1u8; 20_000]).unwrap();
    let total = |s: &SsSocket| {
        s.fields
            .get("retrans")
            .map_or(0, |r| r.split_once('/').unwrap().1.parse::<u64>().unwrap())
    };
    // A field ss prints as `name:N`, 0 when it prints none.
    let field =
        |s: &SsSocket, name: &str| s.fields.get(name).map_or(0, |n| n.parse::<u64>().unwrap());
    let backoff = |s: &SsSocket| field(s, "backoff");
    // Until ss shows the kernel retransmitting and backing off (not a guessed time).
    let started = std::time::Instant::now();
    loop {
        let now = ss(&ns, &["-tin", &format!("sport = :{port}")]);
        let socket = now.values().next().expect("ss shows the client");
        if total(socket) > 0 && backoff(socket) > 0 && socket.fields.contains_key("lost") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no retransmission in 30 s: {:?}",
            socket.fields
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sql = format!("SELECT * FROM tcp_info WHERE local_port = {port}");
    // Timers fire between two reads: take ss before and after ours, and require ours
    // to equal one of them for what moves.
    let before = ss(&ns, &["-tin", &format!("sport = :{port}")]);
    let ours = query(&ns, &[], &sql);
    let after = ss(&ns, &["-tin", &format!("sport = :{port}")]);
    assert_eq!(ours.len(), 1);
    let row = &ours[0];
    let key = endpoint(row);
    let (b, a) = (&before[&key], &after[&key]);
    for column in ["total_retrans", "backoff", "lost"] {
        let value = number(row, column).unwrap();
        assert!(value > 0, "{column} is {value}");
    }
    let total_ours = number(row, "total_retrans").unwrap();
    assert!(
        total(b) <= total_ours && total_ours <= total(a),
        "{total_ours} vs {} .. {}",
        total(b),
        total(a)
    );
    assert!((backoff(b)..=backoff(a)).contains(&number(row, "backoff").unwrap()));
    let lost = |s: &SsSocket| field(s, "lost");
    let lost_ours = number(row, "lost").unwrap();
    assert!(
        lost_ours == lost(b) || lost_ours == lost(a),
        "lost {lost_ours} vs {} / {}",
        lost(b),
        lost(a)
    );
    let bytes = |s: &SsSocket| field(s, "bytes_retrans");
    let bytes_ours = number(row, "bytes_retrans").unwrap();
    assert!(
        bytes_ours > 0 && bytes(b) <= bytes_ours && bytes_ours <= bytes(a),
        "bytes_retrans {bytes_ours} vs {} .. {}",
        bytes(b),
        bytes(a)
    );
    // The storm audit and retransmitting_peers find it, with ss's counters.
    let found = audits(&ns, &["max_pct=1", "min_bytes=10000"]);
    let storm: Vec<Option<u64>> = found["retransmit_storm"]
        .iter()
        .map(|f| number(f, "local_port"))
        .collect();
    assert_eq!(storm, [Some(u64::from(port))]);
    let peers = saved(&ns, &["-q", "retransmitting_peers"]);
    assert_eq!(peers.len(), 1, "{peers:?}");
    let now = ss(&ns, &["-tin", &format!("sport = :{port}")]);
    let retrans_now = total(&now[&key]);
    let listed = number(&peers[0], "total_retrans").unwrap();
    assert!(total_ours <= listed && listed <= retrans_now, "{listed}");
    assert_eq!(
        number(&peers[0], "pid"),
        Some(u64::from(std::process::id()))
    );

    // A connection whose SYN is dropped has no RTT sample: the kernel's min_rtt is its
    // "none yet" (~0), which ss prints as no minrtt, and the column as NULL.
    ns.exec_ok(&[
        "iptables", "-w", "-A", "OUTPUT", "-p", "tcp", "--dport", "7311", "-j", "DROP",
    ]);
    let syn_sent = ns.within(|| {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_nonblocking(true).unwrap();
        let to: std::net::SocketAddr = "127.0.0.1:7311".parse().unwrap();
        let _ = socket.connect(&to.into());
        socket
    });
    let shown = ss(&ns, &["-tin", "dport = :7311"]);
    let shown = shown.values().next().expect("ss shows the SYN_SENT socket");
    assert!(!shown.fields.contains_key("minrtt"), "{:?}", shown.fields);
    let rows = query(
        &ns,
        &[],
        "SELECT state, min_rtt_us FROM tcp_info WHERE remote_port = 7311",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(text(&rows[0], "state").as_deref(), Some("SYN_SENT"));
    assert_eq!(rows[0].get("min_rtt_us"), Some(&serde_json::Value::Null));
    drop(syn_sent);

    // Let the ACKs through again: the connection recovers, retransmissions stay counted.
    ns.exec_ok(&[
        "iptables", "-w", "-D", "OUTPUT", "-p", "tcp", "--sport", "7310", "-j", "DROP",
    ]);
    drop((client, server, listener));
}

#[test]
fn a_socket_reports_the_cgroup_it_was_made_in() {
    let Some(ns) = Netns::create("cgroup", &["ss", "python3"]) else {
        return;
    };
    let cgroup2 = match common::Cgroup2::find() {
        Ok(Some(cgroup2)) => cgroup2,
        Ok(None) => {
            eprintln!(
                "skipped: this kernel has no cgroup v2, so ss --cgroup has nothing to show either"
            );
            return;
        }
        Err(why) => return common::skip_or_fail(&format!("cgroup v2 cannot be mounted: {why}")),
    };
    let mount = cgroup2.mount.to_str().unwrap().to_string();
    let dir = format!("{mount}/netsql-sockcg-{}", std::process::id());
    if let Err(e) = std::fs::create_dir(&dir) {
        return common::skip_or_fail(&format!("cgroup v2 cannot be written: {e}"));
    }
    struct Rmdir(String);
    impl Drop for Rmdir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rmdir = Rmdir(dir.clone());
    // `ip netns exec` mounts its own /sys: the process is moved from out here, and
    // makes its socket only once it is in the cgroup.
    let script = "import socket, sys\nprint('moving', flush=True)\nsys.stdin.readline()\n\
                  s = socket.socket()\ns.bind(('127.0.0.1', 7320))\ns.listen()\n\
                  print('ready', flush=True)\nsys.stdin.read()";
    let mut holder = common::Kid::spawn(
        ns.command(&["python3", "-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped()),
    );
    let lines = common::Lines::of(holder.stdout.take().unwrap());
    lines.expect("moving");
    std::fs::write(format!("{dir}/cgroup.procs"), holder.id().to_string()).unwrap();
    holder.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    lines.expect("ready");
    let rows = query(
        &ns,
        &[],
        "SELECT cgroup_id, cgroup FROM sockets WHERE local_port = 7320",
    );
    let relative = dir.strip_prefix(&mount).unwrap();
    assert_eq!(text(&rows[0], "cgroup").as_deref(), Some(relative));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        number(&rows[0], "cgroup_id"),
        Some(std::fs::metadata(&dir).unwrap().ino())
    );
    let theirs = ss(&ns, &["-tlne", "--cgroup", "sport = :7320"]);
    let socket = theirs.values().next().unwrap();
    assert_eq!(
        socket.fields.get("cgroup").map(String::as_str),
        Some(relative)
    );
    drop(holder);
}

/// The inet sock_diag dump requests `strace` saw netsql send, and the extensions they
/// asked for, by their kernel names without `INET_DIAG_` (the legacy TCP request's are
/// the third byte of its raw data; `SOCK_DIAG_BY_FAMILY`'s strace decodes).
fn extensions_sent(trace: &str) -> (usize, std::collections::BTreeSet<String>) {
    const NAMES: [&str; 8] = [
        "MEMINFO",
        "INFO",
        "VEGASINFO",
        "CONG",
        "TOS",
        "TCLASS",
        "SKMEMINFO",
        "SHUTDOWN",
    ];
    let mut sent = std::collections::BTreeSet::new();
    let mut requests = 0;
    for line in trace.lines().filter(|l| l.contains("sendto(")) {
        if let Some(at) = line.find("idiag_ext=") {
            requests += 1;
            let flags = line[at + 10..].split(',').next().unwrap();
            for flag in flags.split('|').filter(|f| *f != "0") {
                let name = flag
                    .strip_prefix("1<<(INET_DIAG_")
                    .and_then(|f| f.strip_suffix("-1)"))
                    .unwrap_or_else(|| panic!("{flag} in {line}"));
                sent.insert(name.to_string());
            }
        } else if line.contains("TCPDIAG_GETSOCK") {
            requests += 1;
            let data = line.split("data=\"").nth(1).expect(line);
            let ext = data.split("\\x").nth(3).expect(line);
            let ext = u8::from_str_radix(&ext[..2], 16).unwrap();
            for (bit, name) in NAMES.iter().enumerate() {
                if ext & (1 << bit) != 0 {
                    sent.insert(name.to_string());
                }
            }
        }
    }
    (requests, sent)
}

#[test]
fn a_query_without_these_columns_asks_for_nothing() {
    let Some(ns) = Netns::create("asks", &["strace"]) else {
        return;
    };
    // What EXPLAIN says the scan asks for.
    let plan = |sql: &str| {
        let out = ns.netsql(&["--format", "csv", "-e", &format!("EXPLAIN {sql}")]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let at = text
            .find("sock_diag_extensions=")
            .unwrap_or_else(|| panic!("{text}"));
        text[at + 21..]
            .split([',', ' '])
            .take_while(|w| !w.is_empty() && !w.contains("StreamingTableExec"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // What the query, run, asked the kernel for: strace is the witness.
    let sent = |sql: &str| {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace");
        let out = ns
            .command(&[
                "strace",
                "-f",
                "-qq",
                "-xx",
                "-e",
                "trace=sendto",
                "-e",
                "signal=none",
                "-o",
                trace.to_str().unwrap(),
                env!("CARGO_BIN_EXE_netsql"),
                "--format",
                "csv",
                "-e",
                sql,
            ])
            .run();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        extensions_sent(&std::fs::read_to_string(&trace).unwrap())
    };
    let cases: [(&str, &[&str]); 9] = [
        (
            "SELECT state, count(*) FROM sockets GROUP BY state",
            &["none"],
        ),
        (
            "SELECT * FROM sockets WHERE state = 'LISTEN'",
            &["tcp_info", "skmem", "tos"],
        ),
        ("SELECT local_port, retransmits FROM sockets", &["tcp_info"]),
        ("SELECT congestion FROM tcp_info", &["congestion"]),
        ("SELECT rtt_us FROM tcp_info", &["tcp_info"]),
        ("SELECT drops FROM sockets", &["skmem"]),
        // The kernel sends these unasked.
        (
            "SELECT cgroup, shutdown, mark, sockopt FROM sockets",
            &["none"],
        ),
        ("SELECT proto FROM sockets WHERE tos > 0", &["tos"]),
        (
            "SELECT local_port FROM sockets WHERE proto = 'tcp'",
            &["none"],
        ),
    ];
    for (sql, words) in cases {
        assert_eq!(plan(sql), words, "EXPLAIN {sql}");
        // TOS is asked as TCLASS of IPv6 sockets.
        let kernel: std::collections::BTreeSet<String> = words
            .iter()
            .flat_map(|w| match *w {
                "tcp_info" => &["INFO"][..],
                "skmem" => &["SKMEMINFO"],
                "tos" => &["TOS", "TCLASS"],
                "congestion" => &["CONG"],
                "none" => &[],
                other => panic!("{other}"),
            })
            .map(|n| n.to_string())
            .collect();
        let (requests, asked) = sent(sql);
        // An empty set proves nothing when no request was seen.
        assert!(requests > 0, "no request seen for {sql}");
        assert_eq!(asked, kernel, "sent for {sql}");
    }
}

/// tcp_health and connections_per_remote count each connection once and an IPv4 peer
/// once: a connection not yet accepted (inode 0) was joined to every TIME_WAIT socket of
/// its namespace (inode 0 too), and `::ffff:127.0.0.1` was a peer apart from
/// `127.0.0.1`. Witness: ss's established connections, addresses unmapped.
#[test]
fn saved_queries_count_each_connection_and_peer_once() {
    let Some(ns) = Netns::create("tcphealth", &[]) else {
        return;
    };
    let _held = ns.within(|| {
        let four = TcpListener::bind("127.0.0.1:0").unwrap();
        let six = TcpListener::bind("[::]:0").unwrap();
        let mut held = Vec::new();
        // Ten TIME_WAIT sockets: connections whose client closed first.
        for _ in 0..10 {
            let client = TcpStream::connect(four.local_addr().unwrap()).unwrap();
            let (served, _) = four.accept().unwrap();
            drop(client);
            drop(served);
        }
        // One accepted and one waiting in the backlog; one to the dual-stack listener.
        let client = TcpStream::connect(four.local_addr().unwrap()).unwrap();
        held.push(four.accept().unwrap().0);
        held.push(client);
        held.push(TcpStream::connect(four.local_addr().unwrap()).unwrap());
        let port = six.local_addr().unwrap().port();
        held.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
        held.push(six.accept().unwrap().0);
        (four, six, held)
    });
    let established = ss(&ns, &["-tn"]);
    let established: Vec<_> = established
        .values()
        .filter(|s| s.state == "ESTAB")
        .collect();
    assert_eq!(established.len(), 6, "{established:?}");
    let health = saved(&ns, &["-q", "tcp_health"]);
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!(
        text(&health[0], "remote_address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(number(&health[0], "connections"), Some(6), "{health:?}");
    let remotes = saved(&ns, &["-q", "connections_per_remote"]);
    assert_eq!(remotes.len(), 1, "{remotes:?}");
    assert_eq!(number(&remotes[0], "connections"), Some(6), "{remotes:?}");
}
