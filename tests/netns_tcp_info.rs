//! TCP internals against `ss` on the same sockets, in a namespace of our own: a finished
//! bulk transfer of a known size, a connection whose peer's ACKs iptables drops, a
//! listener, a TIME_WAIT socket, a `reno` connection, UDP sockets overflowed until they
//! drop, unix sockets, a socket made in a test cgroup. Every `tcp_info` field `ss -tin`
//! prints must equal ours (times within [`TOLERANCE_MS`]); `skmem_*` must equal
//! `ss -tmn`/`ss -xmn`/`ss -umn`; `cgroup`, `shutdown`, `mark` must equal `ss -e`'s.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{ndjson, number, text, Netns, Row, RunExt};

/// Time between our scan and ss's for the "ms since" fields.
const TOLERANCE_MS: u64 = 1500;
/// Bytes the bulk transfer sends.
const BULK: usize = 3_000_000;

/// What the test made, held open while it compares.
struct Made {
    _held: Vec<OwnedFd>,
    bulk_client_port: u16,
    reno_port: Option<u16>,
    udp_port: u16,
    marked_port: u16,
}

fn setsockopt_str(fd: &impl AsRawFd, level: i32, name: i32, value: &[u8]) -> bool {
    // SAFETY: a valid descriptor and a buffer of the given length.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        ) == 0
    }
}

fn setsockopt_int(fd: &impl AsRawFd, level: i32, name: i32, value: i32) {
    let ok = setsockopt_str(fd, level, name, &value.to_ne_bytes());
    assert!(
        ok,
        "setsockopt {level}/{name}: {}",
        std::io::Error::last_os_error()
    );
}

fn build() -> Made {
    let mut held: Vec<OwnedFd> = Vec::new();
    // The bulk transfer: all sent, all read, then quiet.
    let listener = TcpListener::bind("127.0.0.1:7300").unwrap();
    let mut client = TcpStream::connect("127.0.0.1:7300").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let bulk_client_port = client.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; BULK];
        server.read_exact(&mut buf).unwrap();
        server
    });
    client.write_all(&vec![7u8; BULK]).unwrap();
    let server = reader.join().unwrap();
    held.extend([listener.into(), client.into(), server.into()]);

    // A TIME_WAIT: the side that closes first keeps it.
    let tw_listener = TcpListener::bind("127.0.0.1:7301").unwrap();
    let tw_client = TcpStream::connect("127.0.0.1:7301").unwrap();
    let (tw_server, _) = tw_listener.accept().unwrap();
    drop(tw_server);
    drop(tw_client);
    held.push(tw_listener.into());

    // reno, where the kernel has it.
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    let reno_port = available.split_whitespace().any(|c| c == "reno").then(|| {
        let listener = TcpListener::bind("127.0.0.1:7303").unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        assert!(setsockopt_str(
            &socket,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            b"reno"
        ));
        socket
            .connect(
                &"127.0.0.1:7303"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        let (accepted, _) = listener.accept().unwrap();
        held.extend([listener.into(), OwnedFd::from(socket), accepted.into()]);
        port
    });

    // UDP overflowed: a small buffer nobody reads.
    let sink = UdpSocket::bind("127.0.0.1:7304").unwrap();
    setsockopt_int(&sink, libc::SOL_SOCKET, libc::SO_RCVBUF, 2048);
    let source = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        let _ = source.send_to(&[1u8; 1000], "127.0.0.1:7304");
    }
    held.extend([sink.into(), source.into()]);

    // A marked socket with a TOS, one half shut down.
    let marked_listener = TcpListener::bind("127.0.0.1:7305").unwrap();
    let marked = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    setsockopt_int(&marked, libc::SOL_SOCKET, libc::SO_MARK, 7);
    setsockopt_int(&marked, libc::IPPROTO_IP, libc::IP_TOS, 0x10);
    marked
        .connect(
            &"127.0.0.1:7305"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    marked.shutdown(std::net::Shutdown::Write).unwrap();
    let marked_port = marked.local_addr().unwrap().as_socket().unwrap().port();
    let (marked_peer, _) = marked_listener.accept().unwrap();
    held.extend([
        marked_listener.into(),
        OwnedFd::from(marked),
        marked_peer.into(),
    ]);

    // Unix: a pair with unread bytes one way.
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(&[0u8; 3000]).unwrap();
    held.extend([a.into(), b.into()]);
    Made {
        _held: held,
        bulk_client_port,
        reno_port,
        udp_port: 7304,
        marked_port,
    }
}

/// One socket as `ss -i`/`-m`/`-e` prints it: its endpoints, `key:value` fields and
/// bare words.
#[derive(Debug, Default)]
struct SsSocket {
    fields: BTreeMap<String, String>,
    words: Vec<String>,
}

/// `ss ARGS` (with -H) in the namespace, two-line records joined: `local peer` -> what
/// it printed. Run with nsenter, which changes the network namespace alone: `ip netns
/// exec` mounts a /sys without cgroup2, where ss says `cgroup:unreachable`.
fn ss(ns: &Netns, args: &[&str]) -> BTreeMap<String, SsSocket> {
    let netns = format!("--net=/run/netns/{}", ns.name);
    let mut argv = vec![netns.as_str(), "ss", "-H"];
    argv.extend_from_slice(args);
    let out = common::run_ok("nsenter", &argv);
    let mut sockets = BTreeMap::new();
    let mut current: Option<(String, SsSocket)> = None;
    for line in out.lines() {
        let detail = line.starts_with(char::is_whitespace);
        if !detail {
            if let Some((key, socket)) = current.take() {
                sockets.insert(key, socket);
            }
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let rest = if detail {
            &tokens[..]
        } else {
            // [Netid] State Recv-Q Send-Q Local Peer ...: ss prints Netid when the
            // sockets shown are of more than one kind (unix: u_str, u_dgr, ...). A unix
            // socket's Local is `path inode`, as our key for it.
            let o = usize::from(tokens[0].starts_with("u_") || ["tcp", "udp"].contains(&tokens[0]));
            current = Some((
                format!("{} {}", tokens[3 + o], tokens[4 + o]),
                SsSocket::default(),
            ));
            &tokens[5 + o..]
        };
        let socket = &mut current.as_mut().unwrap().1;
        let mut i = 0;
        while i < rest.len() {
            let token = rest[i];
            // `send 1.2Gbps`, `pacing_rate 3bps`, `delivery_rate 4bps`: a word, a value.
            if ["send", "pacing_rate", "delivery_rate"].contains(&token) && i + 1 < rest.len() {
                socket
                    .fields
                    .insert(token.to_string(), rest[i + 1].to_string());
                i += 2;
                continue;
            }
            match token.split_once(':') {
                Some((key, value)) if !key.is_empty() => {
                    socket.fields.insert(key.to_string(), value.to_string());
                }
                _ => socket.words.push(token.to_string()),
            }
            i += 1;
        }
    }
    if let Some((key, socket)) = current {
        sockets.insert(key, socket);
    }
    sockets
}

fn endpoint(row: &Row) -> String {
    let side = |a: &str, p: &str| format!("{}:{}", text(row, a).unwrap(), number(row, p).unwrap());
    format!(
        "{} {}",
        side("local_address", "local_port"),
        side("remote_address", "remote_port")
    )
}

/// ss's bandwidth: `123bps`, `1.5Kbps`, `2.3Mbps`, `4Gbps`; and how exact it is.
fn bps(text: &str) -> (f64, f64) {
    let number = text.trim_end_matches("bps");
    for (suffix, scale) in [("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)] {
        if let Some(n) = number.strip_suffix(suffix) {
            // Printed with a few digits: within 1%.
            return (n.parse::<f64>().unwrap() * scale, 0.01);
        }
    }
    (number.parse().unwrap(), 0.0)
}

/// Compares every tcp_info field ss printed for one socket with our row.
fn same_tcp_info(row: &Row, theirs: &SsSocket, what: &str) {
    let ours = |column: &str| number(row, column);
    let exact = [
        ("mss", "mss"),
        ("pmtu", "pmtu"),
        ("rcvmss", "rcv_mss"),
        ("advmss", "advmss"),
        ("cwnd", "cwnd"),
        ("ssthresh", "ssthresh"),
        ("bytes_sent", "bytes_sent"),
        ("bytes_retrans", "bytes_retrans"),
        ("bytes_acked", "bytes_acked"),
        ("bytes_received", "bytes_received"),
        ("segs_out", "segs_out"),
        ("segs_in", "segs_in"),
        ("data_segs_out", "data_segs_out"),
        ("data_segs_in", "data_segs_in"),
        ("delivered", "delivered"),
        ("delivered_ce", "delivered_ce"),
        ("unacked", "unacked"),
        ("lost", "lost"),
        ("sacked", "sacked"),
        ("dsack_dups", "dsack_dups"),
        ("reordering", "reordering"),
        ("reord_seen", "reord_seen"),
        ("rcv_space", "rcv_space"),
        ("rcv_ssthresh", "rcv_ssthresh"),
        ("notsent", "notsent_bytes"),
        ("snd_wnd", "snd_wnd"),
        ("rcv_wnd", "rcv_wnd"),
        ("rcv_ooopack", "rcv_ooopack"),
        ("backoff", "backoff"),
        ("ato", "ato_ms"),
        ("rto", "rto_ms"),
    ];
    let mut compared = 0;
    for (key, column) in exact {
        if let Some(value) = theirs.fields.get(key) {
            // rto and ato print as %g of milliseconds: whole here unless the kernel's
            // microseconds are not, then ours is the floor.
            let theirs: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{what} {key}:{value}"));
            assert_eq!(ours(column), Some(theirs.floor() as u64), "{what}: {key}");
            compared += 1;
        }
    }
    for (key, column) in [
        ("lastsnd", "last_send_ms"),
        ("lastrcv", "last_recv_ms"),
        ("lastack", "last_ack_ms"),
    ] {
        if let Some(value) = theirs.fields.get(key) {
            let theirs: u64 = value.parse().unwrap();
            let ours = ours(column).unwrap();
            assert!(
                ours.abs_diff(theirs) <= TOLERANCE_MS,
                "{what}: {key} {ours} vs {theirs}"
            );
            compared += 1;
        }
    }
    if let Some(busy) = theirs.fields.get("busy") {
        let theirs: u64 = busy.trim_end_matches("ms").parse().unwrap();
        assert_eq!(ours("busy_ms"), Some(theirs), "{what}: busy");
    }
    for (key, column) in [
        ("rwnd_limited", "rwnd_limited_ms"),
        ("sndbuf_limited", "sndbuf_limited_ms"),
    ] {
        if let Some(value) = theirs.fields.get(key) {
            let ms: u64 = value.split("ms").next().unwrap().parse().unwrap();
            assert_eq!(ours(column), Some(ms), "{what}: {key}");
        }
    }
    // rtt:avg/var and minrtt, rcv_rtt: milliseconds with three decimals of microseconds.
    let ms = |us: Option<u64>| us.unwrap() as f64 / 1000.0;
    if let Some(rtt) = theirs.fields.get("rtt") {
        let (avg, var) = rtt.split_once('/').unwrap();
        assert_eq!(
            avg.parse::<f64>().unwrap(),
            ms(ours("rtt_us")),
            "{what}: rtt"
        );
        assert_eq!(
            var.parse::<f64>().unwrap(),
            ms(ours("rttvar_us")),
            "{what}: rttvar"
        );
        compared += 1;
    }
    for (key, column) in [("minrtt", "min_rtt_us"), ("rcv_rtt", "rcv_rtt_us")] {
        if let Some(value) = theirs.fields.get(key) {
            assert_eq!(
                value.parse::<f64>().unwrap(),
                ms(ours(column)),
                "{what}: {key}"
            );
        }
    }
    if let Some(retrans) = theirs.fields.get("retrans") {
        let (now, total) = retrans.split_once('/').unwrap();
        assert_eq!(
            ours("retrans"),
            Some(now.parse().unwrap()),
            "{what}: retrans"
        );
        assert_eq!(
            ours("total_retrans"),
            Some(total.parse().unwrap()),
            "{what}: total"
        );
    }
    if let Some(wscale) = theirs.fields.get("wscale") {
        let (snd, rcv) = wscale.split_once(',').unwrap();
        assert_eq!(
            (ours("snd_wscale"), ours("rcv_wscale")),
            (Some(snd.parse().unwrap()), Some(rcv.parse().unwrap())),
            "{what}"
        );
    }
    for (key, column) in [
        ("send", "send_rate_bps"),
        ("pacing_rate", "pacing_rate_bps"),
        ("delivery_rate", "delivery_rate_bps"),
    ] {
        if let Some(value) = theirs.fields.get(key) {
            let (theirs, tolerance) = bps(value);
            let ours = ours(column).unwrap() as f64;
            assert!(
                (ours - theirs).abs() <= theirs * tolerance + 1.0,
                "{what}: {key} {ours} vs {value}"
            );
        }
    }
    // Bare words: the algorithm, the options, app_limited.
    let congestion = text(row, "congestion").unwrap();
    assert!(
        theirs.words.contains(&congestion),
        "{what}: {congestion} not in {:?}",
        theirs.words
    );
    let options: Vec<String> = row["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    for option in ["ts", "sack", "ecn", "ecnseen", "fastopen"] {
        assert_eq!(
            options.iter().any(|o| o == option),
            theirs.words.iter().any(|w| w == option),
            "{what}: option {option}"
        );
    }
    assert_eq!(
        row["delivery_rate_app_limited"].as_bool(),
        Some(theirs.words.iter().any(|w| w == "app_limited")),
        "{what}: app_limited"
    );
    // A listener has little to say; a connection much.
    if text(row, "state").as_deref() != Some("LISTEN") {
        assert!(
            compared >= 10,
            "{what}: ss printed too little to compare: {theirs:?}"
        );
    }
}

/// ss -m's `skmem:(r0,rb131072,...)` against our skmem columns.
fn same_skmem(row: &Row, theirs: &SsSocket, what: &str) {
    let skmem = theirs
        .fields
        .get("skmem")
        .unwrap_or_else(|| panic!("{what}: no skmem in {theirs:?}"));
    let values: Vec<&str> = skmem
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .collect();
    let columns = [
        ("r", "skmem_rmem_alloc"),
        ("rb", "skmem_rcvbuf"),
        ("t", "skmem_wmem_alloc"),
        ("tb", "skmem_sndbuf"),
        ("f", "skmem_fwd_alloc"),
        ("w", "skmem_wmem_queued"),
        ("o", "skmem_optmem"),
        ("bl", "skmem_backlog"),
        ("d", "drops"),
    ];
    for ((prefix, column), value) in columns.iter().zip(&values) {
        let value: u64 = value.strip_prefix(prefix).unwrap().parse().unwrap();
        assert_eq!(number(row, column), Some(value), "{what}: {column}");
    }
}

/// Our rows, read from here with `--netns` (so with this mount namespace's cgroup2).
fn query(ns: &Netns, args: &[&str], sql: &str) -> Vec<Row> {
    let out = common::netsql()
        .args(["--netns", &ns.name])
        .args(args)
        .args(["--format", "ndjson", "-e", sql])
        .run();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
}

#[test]
fn tcp_internals_equal_what_ss_shows() {
    let Some(ns) = Netns::create("tcpinfo", &["ss"]) else {
        return;
    };
    let made = ns.within(build);
    std::thread::sleep(Duration::from_millis(300));

    let ours = query(&ns, &[], "SELECT * FROM tcp_info");
    // -o adds the options (ts, sack, ...) to -i's fields.
    let theirs = ss(&ns, &["-tinamo"]);
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
        same_tcp_info(row, socket, &key);
        compared += 1;
    }
    assert!(compared >= 8, "{compared}");
    assert!(ours
        .iter()
        .any(|r| text(r, "state").as_deref() == Some("TIME_WAIT")));

    // The bulk transfer, exactly: the SYN counts one byte acknowledged.
    let client = ours
        .iter()
        .find(|r| number(r, "local_port") == Some(u64::from(made.bulk_client_port)))
        .unwrap();
    assert_eq!(number(client, "bytes_sent"), Some(BULK as u64));
    assert_eq!(number(client, "bytes_acked"), Some(BULK as u64 + 1));
    let server = ours
        .iter()
        .find(|r| number(r, "remote_port") == Some(u64::from(made.bulk_client_port)))
        .unwrap();
    assert_eq!(number(server, "bytes_received"), Some(BULK as u64));
    match made.reno_port {
        Some(port) => {
            let reno = ours
                .iter()
                .find(|r| number(r, "local_port") == Some(u64::from(port)))
                .unwrap();
            assert_eq!(text(reno, "congestion").as_deref(), Some("reno"));
        }
        None => {
            eprintln!("skipped (reno): this kernel offers no reno, and ss cannot show it either")
        }
    }

    // Socket memory of every TCP, UDP and unix socket, against ss -m.
    let sql = "SELECT proto, local_address, local_port, remote_address, remote_port, inode, path, state, \
               skmem_rmem_alloc, skmem_rcvbuf, skmem_wmem_alloc, skmem_sndbuf, skmem_fwd_alloc, \
               skmem_wmem_queued, skmem_optmem, skmem_backlog, drops, cgroup_id, cgroup, shutdown, tos, mark \
               FROM sockets";
    let rows = query(&ns, &[], sql);
    let tcp = ss(&ns, &["-tanme"]);
    let udp = ss(&ns, &["-uanme"]);
    let unix = ss(&ns, &["-xanm"]);
    for row in &rows {
        let proto = text(row, "proto").unwrap();
        let what = format!("{proto} {row:?}");
        if proto == "unix" {
            let key = format!(
                "{} {}",
                text(row, "path").unwrap_or_else(|| "*".into()),
                number(row, "inode").unwrap()
            );
            same_skmem(row, &unix[&key], &what);
            continue;
        }
        if text(row, "state").as_deref() == Some("TIME_WAIT") {
            assert_eq!(row["skmem_rcvbuf"], serde_json::Value::Null);
            continue;
        }
        let key = endpoint(row).replace(":0", ":*");
        let theirs = if proto.starts_with("tcp") {
            &tcp[&key]
        } else {
            &udp[&key]
        };
        same_skmem(row, theirs, &what);
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
    std::thread::sleep(Duration::from_millis(1500));
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
    let total = |s: &SsSocket| {
        s.fields["retrans"]
            .split_once('/')
            .unwrap()
            .1
            .parse::<u64>()
            .unwrap()
    };
    let total_ours = number(row, "total_retrans").unwrap();
    assert!(
        total(b) <= total_ours && total_ours <= total(a),
        "{total_ours} vs {} .. {}",
        total(b),
        total(a)
    );
    let backoff = |s: &SsSocket| s.fields["backoff"].parse::<u64>().unwrap();
    assert!((backoff(b)..=backoff(a)).contains(&number(row, "backoff").unwrap()));
    let lost = |s: &SsSocket| {
        s.fields
            .get("lost")
            .map_or(0, |l| l.parse::<u64>().unwrap())
    };
    let lost_ours = number(row, "lost").unwrap();
    assert!(
        lost_ours == lost(b) || lost_ours == lost(a),
        "lost {lost_ours} vs {} / {}",
        lost(b),
        lost(a)
    );
    assert!(number(row, "bytes_retrans").unwrap() > 0);
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
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let Some(mount) = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f[2] == "cgroup2")
        .map(|f| f[1].to_string())
    else {
        eprintln!("skipped: no cgroup v2 here, so ss --cgroup has nothing to show either");
        return;
    };
    let dir = format!("{mount}/netsql-sockcg-{}", std::process::id());
    if let Err(e) = std::fs::create_dir(&dir) {
        assert!(!common::require_netns(), "cgroup v2 cannot be written: {e}");
        eprintln!("skipped: cgroup v2 cannot be written: {e}");
        return;
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

#[test]
fn a_query_without_these_columns_asks_for_nothing() {
    let Some(ns) = Netns::create("asks", &[]) else {
        return;
    };
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
    assert_eq!(
        plan("SELECT state, count(*) FROM sockets GROUP BY state"),
        ["none"]
    );
    assert_eq!(
        plan("SELECT * FROM sockets WHERE state = 'LISTEN'"),
        ["tcp_info", "skmem", "tos"]
    );
    assert_eq!(
        plan("SELECT local_port, retransmits FROM sockets"),
        ["tcp_info"]
    );
    assert_eq!(plan("SELECT congestion FROM tcp_info"), ["congestion"]);
    assert_eq!(plan("SELECT rtt_us FROM tcp_info"), ["tcp_info"]);
    assert_eq!(plan("SELECT drops FROM sockets"), ["skmem"]);
    assert_eq!(
        plan("SELECT cgroup, shutdown, mark FROM sockets"),
        ["none"],
        "sent unasked"
    );
    assert_eq!(plan("SELECT proto FROM sockets WHERE tos > 0"), ["tos"]);
}
