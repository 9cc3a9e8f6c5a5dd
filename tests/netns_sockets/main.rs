//! The `sockets` table against a socket table we built ourselves, inside a fresh network
//! namespace: every TCP state held with iptables, UDP, raw and unix sockets of each kind.
//! Rows are checked against what the test made, against `ss` in the same namespace, and
//! between `--source netlink` and `--source proc`.

#[path = "../common/mod.rs"]
mod common;
mod made;
mod ss;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use common::{ndjson, number, text, Netns, Row, RunExt};
use made::{build, Key};
use serde_json::Value;
use ss::{as_ss, ss_rows, SsRow};

fn key_of(row: &Row) -> Key {
    let endpoint = |a: &str, p: &str| match (text(row, a), text(row, p)) {
        (Some(a), Some(p)) => format!("{a} {p}"),
        _ => String::new(),
    };
    Key {
        proto: text(row, "proto").unwrap(),
        ty: text(row, "type").unwrap(),
        state: text(row, "state").unwrap(),
        local: endpoint("local_address", "local_port"),
        remote: endpoint("remote_address", "remote_port"),
        inode: number(row, "inode").unwrap(),
        path: text(row, "path"),
        peer: number(row, "peer_inode"),
    }
}

/// Runs `sql` with `--source source` in the namespace; its rows.
fn query(ns: &Netns, source: &str, sql: &str) -> Vec<Row> {
    let out = ns.netsql(&["--source", source, "--format", "ndjson", "-e", sql]);
    assert!(
        out.status.success(),
        "netsql --source {source} -e {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
}

/// A WHERE clause and the same test over rows.
type Filter<'a> = (&'a str, &'a dyn Fn(&Row) -> bool);

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// Asserts two multisets are equal, naming only the rows that differ.
fn assert_same<T: Ord + Clone + std::fmt::Debug>(ours: &[T], theirs: &[T], what: &str) {
    let mut a = ours.to_vec();
    let mut b = theirs.to_vec();
    a.sort();
    b.sort();
    let only_ours: Vec<&T> = a.iter().filter(|x| !b.contains(x)).collect();
    let only_theirs: Vec<&T> = b.iter().filter(|x| !a.contains(x)).collect();
    assert!(
        a == b,
        "{what}:\nonly in the first: {only_ours:#?}\nonly in the second: {only_theirs:#?}"
    );
}

#[test]
fn every_socket_the_namespace_holds() {
    let Some(ns) = Netns::create("sockets", &["iptables", "ss"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let made = {
        let name = ns.name.clone();
        let dir = dir.path().to_path_buf();
        ns.within(move || build(name, dir))
    };

    let netlink = query(&ns, "netlink", "SELECT * FROM sockets");
    let proc = query(&ns, "proc", "SELECT * FROM sockets");
    let ss = ss_rows(&ns);

    // 1. Row for row, the sockets we made, from sock_diag.
    let by_key: BTreeMap<Key, &Row> = netlink.iter().map(|r| (key_of(r), r)).collect();
    let keys: Vec<Key> = netlink.iter().map(key_of).collect();
    assert_same(&keys, &made.keys, "sock_diag rows vs the sockets made");
    for (key, recv_q, send_q) in &made.queues {
        let row = by_key[key];
        assert_eq!(
            (number(row, "recv_q"), number(row, "send_q")),
            (Some(*recv_q), Some(*send_q)),
            "{key:?}"
        );
    }
    for (key, timer) in &made.timers {
        assert_eq!(
            text(by_key[key], "timer").as_deref(),
            Some(*timer),
            "{key:?}"
        );
    }
    let udp = netlink
        .iter()
        .find(|r| number(r, "local_port") == Some(7020))
        .unwrap();
    assert!(
        number(udp, "recv_q").unwrap() > 0,
        "queued datagram: {udp:?}"
    );
    let uids: BTreeMap<Key, u64> = made.uids.iter().cloned().collect();
    let inode = ns.inode();
    for row in &netlink {
        let unix = text(row, "proto").as_deref() == Some("unix");
        let uid = uids.get(&key_of(row)).copied().unwrap_or(0);
        assert_eq!(number(row, "uid"), Some(uid), "{row:?}");
        assert_eq!(text(row, "timer").is_none(), unix, "{row:?}");
        assert_eq!(number(row, "netns"), Some(inode), "{row:?}");
    }

    // 2. The same as ss sees it, queues and timers included.
    let ours: Vec<SsRow> = netlink
        .iter()
        .filter(|r| text(r, "proto").as_deref() != Some("udplite"))
        .map(as_ss)
        .collect();
    assert_same(&ours, &ss, "netsql --source netlink vs ss -tuanwxeo");

    // 3. /proc gives the same sockets; it lacks unix peers, unix queues and owners, and
    // a listener's backlog limit (all NULL there).
    let strip_peer = |mut k: Key| {
        k.peer = None;
        k
    };
    let proc_keys: Vec<Key> = proc.iter().map(key_of).collect();
    let made_keys: Vec<Key> = made.keys.iter().cloned().map(strip_peer).collect();
    assert_same(&proc_keys, &made_keys, "/proc rows vs the sockets made");
    let proc_by_key: BTreeMap<Key, &Row> = proc.iter().map(|r| (key_of(r), r)).collect();
    for row in &netlink {
        let key = strip_peer(key_of(row));
        let other = proc_by_key[&key];
        if key.proto == "unix" {
            for column in ["recv_q", "send_q", "uid", "peer_inode", "timer"] {
                assert_eq!(other.get(column), Some(&Value::Null), "{column} of {key:?}");
            }
            continue;
        }
        assert_eq!(text(other, "timer"), text(row, "timer"), "{key:?}");
        assert_eq!(text(other, "uid"), text(row, "uid"), "{key:?}");
        assert_eq!(number(other, "recv_q"), number(row, "recv_q"), "{key:?}");
        if key.state == "LISTEN" {
            assert_eq!(other.get("send_q"), Some(&Value::Null), "{key:?}");
        } else {
            assert_eq!(number(other, "send_q"), number(row, "send_q"), "{key:?}");
        }
    }

    // 4. Filters the kernel applies give exactly the rows a filter over everything gives.
    // Both sides are read afresh for each filter, and a difference is read once more: a
    // TIME_WAIT or SYN_RECV socket may age between two reads, a real difference shows twice.
    let filters: [Filter; 10] = [
        ("state = 'LISTEN'", &|r: &Row| {
            text(r, "state").as_deref() == Some("LISTEN")
        }),
        ("proto IN ('udp', 'udp6')", &|r: &Row| {
            matches!(text(r, "proto").as_deref(), Some("udp" | "udp6"))
        }),
        ("family = 'unix' AND state = 'ESTABLISHED'", &|r: &Row| {
            text(r, "family").as_deref() == Some("unix")
                && text(r, "state").as_deref() == Some("ESTABLISHED")
        }),
        ("state = 'SYN_RECV' OR state = 'TIME_WAIT'", &|r: &Row| {
            matches!(text(r, "state").as_deref(), Some("SYN_RECV" | "TIME_WAIT"))
        }),
        // Ports and addresses go to the kernel as INET_DIAG bytecode.
        ("local_port = 7000", &|r: &Row| {
            number(r, "local_port") == Some(7000)
        }),
        ("remote_port = 7000 OR local_port = 7020", &|r: &Row| {
            number(r, "remote_port") == Some(7000) || number(r, "local_port") == Some(7020)
        }),
        (
            "local_port BETWEEN 7000 AND 7010 AND state <> 'LISTEN'",
            &|r: &Row| {
                number(r, "local_port").is_some_and(|p| (7000..=7010).contains(&p))
                    && text(r, "state").as_deref() != Some("LISTEN")
            },
        ),
        (
            "local_port NOT IN (7000, 7020) AND family = 'inet'",
            &|r: &Row| {
                number(r, "local_port").is_some_and(|p| p != 7000 && p != 7020)
                    && text(r, "family").as_deref() == Some("inet")
            },
        ),
        (
            "remote_address = '127.0.0.1' AND remote_port > 7000",
            &|r: &Row| {
                text(r, "remote_address").as_deref() == Some("127.0.0.1")
                    && number(r, "remote_port").is_some_and(|p| p > 7000)
            },
        ),
        (
            "local_address <> '127.0.0.1' AND 7000 >= local_port",
            &|r: &Row| {
                text(r, "local_address").is_some_and(|a| a != "127.0.0.1")
                    && number(r, "local_port").is_some_and(|p| p <= 7000)
            },
        ),
    ];
    for source in ["netlink", "proc"] {
        for (filter, keep) in filters {
            let sql = format!("SELECT * FROM sockets WHERE {filter}");
            let read = || {
                let all = query(&ns, source, "SELECT * FROM sockets");
                let want: Vec<Key> = all.iter().filter(|r| keep(r)).map(key_of).collect();
                let got: Vec<Key> = query(&ns, source, &sql).iter().map(key_of).collect();
                (got, want)
            };
            let (mut got, mut want) = read();
            if sorted(&got) != sorted(&want) {
                (got, want) = read();
            }
            assert!(!want.is_empty(), "{filter} selects something");
            assert_same(&got, &want, &format!("--source {source} WHERE {filter}"));
        }
        // LIMIT goes to the scan with the exact state filter: two of the listeners.
        let listeners: Vec<Key> =
            query(&ns, source, "SELECT * FROM sockets WHERE state = 'LISTEN'")
                .iter()
                .map(key_of)
                .collect();
        let limited = query(
            &ns,
            source,
            "SELECT * FROM sockets WHERE state = 'LISTEN' LIMIT 2",
        );
        assert_eq!(limited.len(), 2, "{limited:?}");
        for row in &limited {
            assert!(listeners.contains(&key_of(row)), "not a listener: {row:?}");
        }
    }

    // 5. Our own namespace: its inode always, its `ip netns` name when a query shows it
    // (only then is it looked up).
    let named = query(
        &ns,
        "netlink",
        "SELECT DISTINCT netns, netns_name FROM sockets",
    );
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(number(&named[0], "netns"), Some(ns.inode()));
    assert_eq!(text(&named[0], "netns_name"), Some(ns.name.clone()));
    let bare = query(&ns, "netlink", "SELECT DISTINCT netns FROM sockets");
    assert_eq!(bare.len(), 1, "{bare:?}");
    assert_eq!(number(&bare[0], "netns"), Some(ns.inode()));
    drop(made.fds);
}

/// From 20k TCP sockets the dump runs as two walks on two threads and streams in parts:
/// 10,500 loopback connections (21,001 sockets, held by two processes: one may hold at
/// most 20,000 descriptors) give exactly `ss`'s rows, and a LIMIT still ends early. The
/// namespace is walked twice whether netsql runs inside it or reads it from outside
/// (`--netns`, after setns), given two cores; read beside another namespace, each has
/// two cores to itself only from four; a server walks it once: strace counts the TCP
/// dump requests.
#[test]
fn a_large_namespace_gives_every_socket_once() {
    let Some(ns) = Netns::create("large", &["ss", "python3", "strace"]) else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hold_connections.py");
    let holders: Vec<common::Kid> = [("6000", "21000"), ("4500", "21001")]
        .iter()
        .map(|(count, port)| {
            let mut command = ns.command(&["python3", script, count, port]);
            common::Kid::spawn(command.stdout(std::process::Stdio::piped()))
        })
        .collect();
    let holders: Vec<common::Kid> = holders
        .into_iter()
        .map(|mut kid| {
            let lines = common::Lines::of(kid.stdout.take().unwrap());
            assert_eq!(
                lines.next_within(std::time::Duration::from_secs(120)),
                "ready"
            );
            kid
        })
        .collect();
    let rows = query(
        &ns,
        "netlink",
        "SELECT * FROM sockets WHERE proto IN ('tcp', 'tcp6')",
    );
    assert_eq!(
        rows.len(),
        21_002,
        "two listeners and 10,500 connections' two ends"
    );
    let ours: Vec<SsRow> = rows.iter().map(as_ss).collect();
    let theirs: Vec<SsRow> = ss_rows(&ns)
        .into_iter()
        .filter(|r| r.netid == "tcp")
        .collect();
    assert_same(&ours, &theirs, "sockets vs ss -tan at 21k sockets");
    // Every inode once: no socket came from both walks.
    let mut inodes: Vec<u64> = rows.iter().map(|r| number(r, "inode").unwrap()).collect();
    inodes.sort();
    inodes.dedup();
    assert_eq!(inodes.len(), rows.len());
    let counts = query(
        &ns,
        "netlink",
        "SELECT state, count(*) AS n FROM sockets GROUP BY state ORDER BY state",
    );
    let counts: Vec<(String, u64)> = counts
        .iter()
        .map(|r| (text(r, "state").unwrap(), number(r, "n").unwrap()))
        .collect();
    assert_eq!(
        counts,
        [
            ("ESTABLISHED".to_string(), 21_000),
            ("LISTEN".to_string(), 2)
        ]
    );
    let limited = query(&ns, "netlink", "SELECT inode FROM sockets LIMIT 5");
    assert_eq!(limited.len(), 5);

    // The query reads only the columns compared with ss: no owners, so no walk of /proc
    // under strace.
    let sql = "SELECT proto, type, state, local_address, local_port, remote_address, \
               remote_port, recv_q, send_q, timer, uid, netns FROM sockets \
               WHERE proto IN ('tcp', 'tcp6')";
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let walks = |namespaces: usize| if cores >= 2 * namespaces { 2 } else { 1 };
    let dir = tempfile::tempdir().unwrap();
    let traced = |trace: &str, netns: Option<&str>| -> ((usize, usize), Vec<Row>) {
        let trace = dir.path().join(trace);
        let mut argv = straced(&trace);
        if let Some(netns) = netns {
            argv.extend(["--netns".into(), netns.into()]);
        }
        argv.extend(["--format", "ndjson", "-e", sql].map(String::from));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = match netns {
            Some(_) => {
                let mut command = std::process::Command::new(argv[0]);
                common::without_settings(command.args(&argv[1..]));
                command.run()
            }
            None => ns.exec(&argv),
        };
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (named, numbered) = tcp_dumps(&trace);
        ((named.len(), numbered.len()), ndjson(&out.stdout))
    };
    let (inside, _) = traced("inside", None);
    assert_eq!(
        inside,
        (walks(1), 0),
        "walks inside the namespace, {cores} cores"
    );
    let (outside, rows) = traced("outside", Some(&ns.name));
    assert_eq!(
        outside,
        (0, walks(1)),
        "walks of the namespace read from outside, {cores} cores"
    );
    let ours: Vec<SsRow> = rows.iter().map(as_ss).collect();
    assert_same(&ours, &theirs, "sockets --netns vs ss -tan at 21k sockets");
    // Read beside our own namespace (named by its inode), both at once.
    let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let (beside, rows) = traced("beside", Some(&format!("{},{own}", ns.name)));
    assert_eq!(
        beside,
        (1, walks(2)),
        "walks of each namespace read together, {cores} cores"
    );
    let ours: Vec<SsRow> = rows
        .iter()
        .filter(|r| number(r, "netns") == Some(ns.inode()))
        .map(as_ss)
        .collect();
    assert_same(
        &ours,
        &theirs,
        "sockets --netns NAME,INODE vs ss -tan at 21k sockets",
    );

    // A server answers with one walk, whatever the cores: an agent on a host whose cores
    // are its workloads'. Asked through the fleet engine (--connect), then as a Flight SQL
    // client asks (ADBC's driver: GetFlightInfo, then DoGet).
    let trace = dir.path().join("served");
    let argv = straced(&trace);
    let mut strace = std::process::Command::new(&argv[0]);
    strace
        .args(&argv[1..])
        .args(["--netns", &ns.name, "serve", "--listen", "127.0.0.1:0"]);
    common::without_settings(&mut strace);
    let mut server = common::Kid::spawn(strace.stderr(std::process::Stdio::piped()));
    // Declared after `server`, so dropped (the server killed) before strace is reaped.
    let traced = common::Traced(format!("netsql --netns {} serve", ns.name));
    let log = common::Lines::of(server.stderr.take().unwrap());
    let first = log.next_within(std::time::Duration::from_secs(60));
    let (_, addr) = first
        .rsplit_once("://")
        .unwrap_or_else(|| panic!("the server's first line: {first}"));
    let count = "SELECT count(*) AS n FROM sockets WHERE proto IN ('tcp', 'tcp6')";
    let out = common::netsql()
        .args(["--connect", &format!("grpc://{addr}"), "--format", "ndjson"])
        .args(["-e", count])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(number(&ndjson(&out.stdout)[0], "n"), Some(21_002));
    let answers = if common::have_adbc() {
        let answer = common::adbc(&format!("grpc://{addr}"), None, &["query", count], &[]);
        assert_eq!(answer["rows"], serde_json::json!([[21_002]]), "{answer}");
        2
    } else {
        1
    };
    // strace writes each line before the traced call returns: all are there.
    drop(traced);
    drop(server);
    let (named, numbered) = tcp_dumps(&trace);
    let requests = [named, numbered].concat();
    assert_eq!(
        requests.len(),
        answers,
        "one walk for each of a server's {answers} answers, {cores} cores: {requests:#?}"
    );
    drop(holders);
}

/// strace following every thread of netsql's netlink requests (sendto, sendmsg) into
/// `trace`: the command line up to netsql's own arguments.
fn straced(trace: &std::path::Path) -> Vec<String> {
    let strace = ["strace", "-f", "-qq", "-e", "trace=sendto,sendmsg", "-o"];
    let mut argv: Vec<String> = strace.map(String::from).to_vec();
    argv.push(trace.to_str().unwrap().into());
    argv.push(env!("CARGO_BIN_EXE_netsql").into());
    argv
}

/// The TCP dump requests (both families' TCPDIAG_GETSOCK, type 18) in a trace, as
/// (named, numbered): strace names the type for a socket in its own namespace and prints
/// the number for one made after setns. netsql sends no other request of type 18
/// (RTM_GETLINK is 18 too) for these queries.
fn tcp_dumps(trace: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(trace).unwrap();
    let lines = |what: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(what))
            .map(String::from)
            .collect()
    };
    (
        lines("nlmsg_type=TCPDIAG_GETSOCK,"),
        lines("nlmsg_type=0x12 "),
    )
}

/// IPv6 sockets with v4-mapped ends (a dual-stack listener's accepted connection, a
/// dual-stack UDP socket connected to an IPv4 peer): `<>`, `NOT IN` and `NOT (=)` on an
/// IPv4 address keep them, as their text differs; the kernel's IPv4 address test also
/// holds for them, so such a filter must not reach it negated. Each filter against the
/// same test over every row, both sources; `ss` shows the v4-mapped sockets.
#[test]
fn v4_mapped_sockets_pass_a_negated_ipv4_filter() {
    let Some(ns) = Netns::create("mapped", &["ss"]) else {
        return;
    };
    let held = ns.within(|| {
        use socket2::{Domain, Socket, Type};
        let any6: std::net::SocketAddr = "[::]:7130".parse().unwrap();
        let listener = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        listener.set_only_v6(false).unwrap();
        listener.bind(&any6.into()).unwrap();
        listener.listen(4).unwrap();
        let client = std::net::TcpStream::connect("127.0.0.1:7130").unwrap();
        let accepted = listener.accept().unwrap().0;
        let peer = std::net::UdpSocket::bind("127.0.0.1:7132").unwrap();
        let udp = Socket::new(Domain::IPV6, Type::DGRAM, None).unwrap();
        udp.set_only_v6(false).unwrap();
        udp.bind(&"[::]:7131".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        udp.connect(
            &"[::ffff:127.0.0.1]:7132"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        (listener, client, accepted, peer, udp)
    });
    let mapped = ns
        .exec_ok(&["ss", "-Htuan"])
        .lines()
        .filter(|l| l.contains("[::ffff:127.0.0.1]"))
        .count();
    assert_eq!(
        mapped, 2,
        "ss shows the accepted tcp6 and the connected udp6 sockets"
    );
    let key = |r: &Row| {
        format!(
            "{:?} {:?}:{:?} {:?}:{:?}",
            text(r, "proto"),
            text(r, "local_address"),
            number(r, "local_port"),
            text(r, "remote_address"),
            number(r, "remote_port")
        )
    };
    let not_lo = |a: Option<String>| a.as_deref() != Some("127.0.0.1");
    let filters: [Filter; 4] = [
        ("local_address <> '127.0.0.1'", &|r: &Row| {
            not_lo(text(r, "local_address"))
        }),
        (
            "remote_address NOT IN ('127.0.0.1', '10.9.9.9')",
            &|r: &Row| {
                not_lo(text(r, "remote_address"))
                    && text(r, "remote_address").as_deref() != Some("10.9.9.9")
            },
        ),
        ("NOT (remote_address = '127.0.0.1')", &|r: &Row| {
            not_lo(text(r, "remote_address"))
        }),
        (
            "local_address <> '127.0.0.1' AND local_port IN (7130, 7131)",
            &|r: &Row| {
                not_lo(text(r, "local_address"))
                    && matches!(number(r, "local_port"), Some(7130 | 7131))
            },
        ),
    ];
    for source in ["netlink", "proc"] {
        let all = query(&ns, source, "SELECT * FROM sockets WHERE proto <> 'unix'");
        for (filter, keep) in filters {
            let want: Vec<String> =
                sorted(&all.iter().filter(|r| keep(r)).map(key).collect::<Vec<_>>());
            let got: Vec<String> = sorted(
                &query(
                    &ns,
                    source,
                    &format!("SELECT * FROM sockets WHERE {filter}"),
                )
                .iter()
                .map(key)
                .collect::<Vec<_>>(),
            );
            assert!(
                want.iter()
                    .filter(|k| k.contains("::ffff:127.0.0.1"))
                    .count()
                    >= 2,
                "{filter}: {want:?}"
            );
            assert_eq!(got, want, "--source {source} WHERE {filter}");
        }
    }
    drop(held);
}
