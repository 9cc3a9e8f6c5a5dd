//! `conntrack` and `conntrack_stats` against conntrack-tools on the same namespaces: two
//! "hosts" on a veth pair, the server publishing a port through DNAT, the client
//! SNATing what it sends, plain TCP, UDP and ICMP flows beside them.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::seccomp::{seccomp, Deny};
use common::{ndjson_rows, Netns, Row, RunExt};

/// Two namespaces joined by a veth pair, flows between them held open.
struct Hosts {
    client: Netns,
    server: Netns,
    _held: Vec<Box<dyn Send>>,
}

/// `a` sends an ICMP echo request to `to` from a raw socket (the kernel answers it).
fn ping(to: [u8; 4], id: u16) {
    // SAFETY: plain socket calls on a descriptor this function owns and closes.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let mut packet = [8u8, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 1];
        let sum = packet
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(to),
            },
            sin_zero: [0; 8],
        };
        let sent = libc::sendto(
            fd,
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        assert_eq!(sent, 8, "sendto: {}", std::io::Error::last_os_error());
        let mut reply = [0u8; 128];
        libc::recv(fd, reply.as_mut_ptr().cast(), reply.len(), 0);
        libc::close(fd);
    }
}

fn setup(tag: &str) -> Option<Hosts> {
    let client = Netns::create(&format!("{tag}c"), &["iptables", "ip6tables", "conntrack"])?;
    let server = Netns::create(&format!("{tag}s"), &["iptables", "conntrack"])?;
    client.exec_ok(&[
        "ip",
        "link",
        "add",
        "ct0",
        "type",
        "veth",
        "peer",
        "name",
        "ct0",
        "netns",
        &server.name,
    ]);
    for (ns, addrs) in [
        (&client, &["10.77.0.1/24", "10.77.0.11/24"][..]),
        (&server, &["10.77.0.2/24"][..]),
    ] {
        // No IPv6 on the link: its router solicitations would add flows at random times.
        ns.exec_ok(&["sysctl", "-qw", "net.ipv6.conf.ct0.disable_ipv6=1"]);
        for addr in addrs {
            ns.exec_ok(&["ip", "addr", "add", addr, "dev", "ct0"]);
        }
        ns.exec_ok(&["ip", "link", "set", "ct0", "up"]);
    }
    // The server publishes 8081 as its 8080 (a container's published port).
    server.exec_ok(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        "8081",
        "-j",
        "DNAT",
        "--to-destination",
        "10.77.0.2:8080",
    ]);
    // The client sends TCP from its second address; UDP is masqueraded (its address
    // stays, so no NAT shows); UDP to 9999 is marked 7.
    client.exec_ok(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-o",
        "ct0",
        "-p",
        "tcp",
        "-j",
        "SNAT",
        "--to-source",
        "10.77.0.11",
    ]);
    client.exec_ok(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-o",
        "ct0",
        "-p",
        "udp",
        "-j",
        "MASQUERADE",
    ]);
    client.exec_ok(&[
        "iptables",
        "-t",
        "mangle",
        "-A",
        "OUTPUT",
        "-p",
        "udp",
        "--dport",
        "9999",
        "-j",
        "CONNMARK",
        "--set-mark",
        "7",
    ]);
    // Any ip6tables rule that asks for conntrack makes the namespace track IPv6 too.
    client.exec_ok(&[
        "ip6tables",
        "-A",
        "OUTPUT",
        "-m",
        "conntrack",
        "--ctstate",
        "NEW,ESTABLISHED",
        "-j",
        "ACCEPT",
    ]);
    client.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"]);
    client.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1"]);
    server.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=0"]);
    server.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=0"]);

    let mut held: Vec<Box<dyn Send>> = Vec::new();
    let (listener, echo) = server.within(|| {
        let listener = TcpListener::bind("10.77.0.2:8080").unwrap();
        let echo = UdpSocket::bind("10.77.0.2:9999").unwrap();
        (listener, echo)
    });
    let (published, lo_v4, lo_v6, udp) = client.within(|| {
        let mut published = TcpStream::connect("10.77.0.2:8081").unwrap();
        published.write_all(b"hello").unwrap();
        let local = TcpListener::bind("127.0.0.1:0").unwrap();
        let lo_v4 = TcpStream::connect(local.local_addr().unwrap()).unwrap();
        let local6 = TcpListener::bind("[::1]:0").unwrap();
        let lo_v6 = TcpStream::connect(local6.local_addr().unwrap()).unwrap();
        let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
        udp.send_to(b"ping", "10.77.0.2:9999").unwrap();
        ping([10, 77, 0, 2], 0x4242);
        (published, (local, lo_v4), (local6, lo_v6), udp)
    });
    let (mut accepted, _) = listener.accept().unwrap();
    let mut got = [0u8; 5];
    accepted.read_exact(&mut got).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = echo.recv_from(&mut buf).unwrap();
    echo.send_to(&buf[..n], from).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.recv_from(&mut buf).unwrap();
    held.push(Box::new((
        listener, echo, accepted, published, lo_v4, lo_v6, udp,
    )));
    Some(Hosts {
        client,
        server,
        _held: held,
    })
}

/// One `conntrack -L -o extended,id` line, split: the keyed fields of each tuple, the
/// tags, and the keys after the tuples.
#[derive(Debug, Default)]
struct Listed {
    family: String,
    proto: String,
    timeout: Option<u64>,
    state: Option<String>,
    orig: BTreeMap<String, String>,
    reply: BTreeMap<String, String>,
    tags: Vec<String>,
    rest: BTreeMap<String, String>,
}

const TUPLE_KEYS: [&str; 9] = [
    "src", "dst", "sport", "dport", "type", "code", "id", "packets", "bytes",
];

fn conntrack_list(ns: &Netns, extra: &[&str]) -> BTreeMap<u64, Listed> {
    let mut argv = vec!["conntrack", "-L", "-o", "extended,id"];
    argv.extend_from_slice(extra);
    let text = ns.exec_ok(&argv);
    let mut all = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut listed = Listed {
            family: words[0].to_string(),
            proto: words[2].to_string(),
            ..Listed::default()
        };
        let mut srcs = 0;
        for word in &words[4..] {
            if let Some((key, value)) = word.split_once('=') {
                if key == "src" {
                    srcs += 1;
                }
                // A tuple's keys; `id` is one only in ICMP's (after its `type`).
                let in_tuple = |tuple: &BTreeMap<String, String>| {
                    TUPLE_KEYS.contains(&key)
                        && !tuple.contains_key(key)
                        && (key != "id" || tuple.contains_key("type"))
                };
                let side = match srcs {
                    1 => &mut listed.orig,
                    2 if in_tuple(&listed.reply) => &mut listed.reply,
                    _ => &mut listed.rest,
                };
                side.insert(key.to_string(), value.to_string());
            } else if word.starts_with('[') {
                listed.tags.push(word.trim_matches(['[', ']']).to_string());
            } else if let Ok(timeout) = word.parse() {
                listed.timeout = Some(timeout);
            } else {
                listed.state = Some(word.to_string());
            }
        }
        // conntrack's id is the last `id=` (ICMP tuples have ids of their own).
        let id = line
            .rsplit_once(" id=")
            .map(|(_, id)| id.parse().expect("id"))
            .expect("an id");
        all.insert(id, listed);
    }
    all
}

fn rows_by_id(ns: &Netns, sql: &str) -> BTreeMap<u64, Row> {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_netsql")])
        .args(["--format", "ndjson", "-e", sql]);
    ndjson_rows(&mut command)
        .into_iter()
        .map(|row| (common::number(&row, "id").expect("id"), row))
        .collect()
}

fn text(row: &Row, column: &str) -> Option<String> {
    common::text(row, column)
}

fn list(row: &Row, column: &str) -> Vec<String> {
    match row.get(column) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Every field of every row equals conntrack's line with the same id, and each has one.
fn same_as_conntrack(ns: &Netns, acct: bool) -> BTreeMap<u64, Row> {
    let listed = conntrack_list(ns, &[]);
    let rows = rows_by_id(ns, "SELECT * FROM conntrack");
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        listed.keys().collect::<Vec<_>>(),
        "ids differ: conntrack -L {listed:#?}"
    );
    assert!(listed.len() >= 3, "too few flows to compare: {listed:#?}");
    for (id, l) in &listed {
        let row = &rows[id];
        let family = match l.family.as_str() {
            "ipv4" => "inet",
            "ipv6" => "inet6",
            other => panic!("family {other}"),
        };
        assert_eq!(text(row, "family").as_deref(), Some(family), "{id}");
        let proto = text(row, "proto").unwrap();
        assert_eq!(
            proto.trim_end_matches('6'),
            l.proto.trim_end_matches('6'),
            "{id}"
        );
        for (side, tuple) in [("orig", &l.orig), ("reply", &l.reply)] {
            assert_eq!(
                text(row, &format!("{side}_src")),
                tuple.get("src").cloned(),
                "{id}"
            );
            assert_eq!(
                text(row, &format!("{side}_dst")),
                tuple.get("dst").cloned(),
                "{id}"
            );
            assert_eq!(
                text(row, &format!("{side}_sport")),
                tuple.get("sport").cloned(),
                "{id}"
            );
            assert_eq!(
                text(row, &format!("{side}_dport")),
                tuple.get("dport").cloned(),
                "{id}"
            );
            let (packets, bytes) = (tuple.get("packets").cloned(), tuple.get("bytes").cloned());
            assert_eq!(
                text(row, &format!("{side}_packets")),
                packets,
                "{id} {side}"
            );
            assert_eq!(text(row, &format!("{side}_bytes")), bytes, "{id} {side}");
            assert_eq!(packets.is_some(), acct, "{id}: acct {acct} but {tuple:?}");
        }
        if l.proto == "icmp" {
            assert_eq!(text(row, "icmp_type"), l.orig.get("type").cloned(), "{id}");
            assert_eq!(text(row, "icmp_code"), l.orig.get("code").cloned(), "{id}");
            assert_eq!(text(row, "icmp_id"), l.orig.get("id").cloned(), "{id}");
        }
        assert_eq!(text(row, "state"), l.state, "{id}");
        let status = list(row, "status");
        assert_eq!(
            status.contains(&"ASSURED".to_string()),
            l.tags.contains(&"ASSURED".to_string()),
            "{id}: {status:?} vs {:?}",
            l.tags
        );
        assert_eq!(
            !status.contains(&"SEEN_REPLY".to_string()),
            l.tags.contains(&"UNREPLIED".to_string()),
            "{id}: {status:?} vs {:?}",
            l.tags
        );
        assert_eq!(text(row, "mark"), l.rest.get("mark").cloned(), "{id}");
        // A zone of both directions prints as zone=, one of a direction inside its
        // tuple as zone-orig= or zone-reply=.
        let (zone, zone_dir) = match (
            l.rest.get("zone"),
            l.orig.get("zone-orig"),
            l.rest.get("zone-reply"),
        ) {
            (Some(zone), None, None) => (zone.clone(), None),
            (None, Some(zone), None) => (zone.clone(), Some("orig".to_string())),
            (None, None, Some(zone)) => (zone.clone(), Some("reply".to_string())),
            (None, None, None) => ("0".to_string(), None),
            other => panic!("{id}: zones {other:?}"),
        };
        assert_eq!(text(row, "zone"), Some(zone), "{id}");
        assert_eq!(text(row, "zone_dir"), zone_dir, "{id}");
        assert_eq!(text(row, "use"), l.rest.get("use").cloned(), "{id}");
        let timeout: u64 = text(row, "timeout_s").unwrap().parse().unwrap();
        let listed_timeout = l.timeout.expect("a timeout");
        assert!(
            timeout.abs_diff(listed_timeout) <= 2,
            "{id}: {timeout} vs {listed_timeout}"
        );
        // NAT read off the tuples as conntrack printed them.
        let dnat =
            l.orig.get("dst") != l.reply.get("src") || l.orig.get("dport") != l.reply.get("sport");
        let snat =
            l.orig.get("src") != l.reply.get("dst") || l.orig.get("sport") != l.reply.get("dport");
        let nat = match (snat, dnat) {
            (true, true) => Some("both"),
            (true, false) => Some("snat"),
            (false, true) => Some("dnat"),
            (false, false) => None,
        };
        assert_eq!(text(row, "nat").as_deref(), nat, "{id}: {l:?}");
    }
    rows
}

#[test]
fn every_entry_equals_conntrack_list() {
    let Some(hosts) = setup("ctl") else { return };
    // The client: accounting and timestamps on, SNAT, plain loopback TCP (v4 and v6),
    // a marked UDP flow and an ICMP echo.
    let rows = same_as_conntrack(&hosts.client, true);
    let protos: Vec<String> = rows.values().map(|r| text(r, "proto").unwrap()).collect();
    for wanted in ["tcp", "tcp6", "udp", "icmp"] {
        assert!(
            protos.iter().any(|p| p == wanted),
            "no {wanted} flow in {protos:?}"
        );
    }
    let snat = rows
        .values()
        .find(|r| text(r, "nat").as_deref() == Some("snat"))
        .expect("the SNATed connection");
    assert_eq!(
        text(snat, "pre_nat_src").unwrap().split(':').next(),
        Some("10.77.0.1")
    );
    assert_eq!(
        text(snat, "post_nat_src").unwrap().split(':').next(),
        Some("10.77.0.11")
    );
    assert!(
        rows.values().all(|r| text(r, "start").is_some()),
        "timestamps are on"
    );
    let marked: Vec<&Row> = rows
        .values()
        .filter(|r| text(r, "mark").as_deref() == Some("7"))
        .collect();
    assert_eq!(marked.len(), 1, "one UDP flow to 9999 is marked");

    // The server: accounting and timestamps off (NULL, never 0), the published port.
    let rows = same_as_conntrack(&hosts.server, false);
    let published = rows
        .values()
        .find(|r| text(r, "orig_dport").as_deref() == Some("8081"))
        .expect("the published port's connection");
    assert_eq!(text(published, "nat").as_deref(), Some("dnat"));
    assert_eq!(
        text(published, "pre_nat_dst").as_deref(),
        Some("10.77.0.2:8081")
    );
    assert_eq!(
        text(published, "post_nat_dst").as_deref(),
        Some("10.77.0.2:8080")
    );
    assert_eq!(text(published, "orig_src").as_deref(), Some("10.77.0.11"));
    assert!(
        rows.values().all(|r| text(r, "start").is_none()),
        "timestamps are off"
    );
}

/// Both namespaces in one query: each row carries its namespace, and the rows of each
/// are that namespace's.
#[test]
fn netns_all_reads_each_namespaces_table() {
    let Some(hosts) = setup("cta") else { return };
    let sql = format!(
        "SELECT netns_name, count(*) AS n FROM conntrack WHERE netns_name IN ('{}', '{}') \
         GROUP BY netns_name ORDER BY netns_name",
        hosts.client.name, hosts.server.name
    );
    let rows = ndjson_rows(common::netsql().args(["--format", "ndjson", "-e", &sql]));
    let counts: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                text(r, "netns_name").unwrap(),
                common::number(r, "n").unwrap(),
            )
        })
        .collect();
    for ns in [&hosts.client, &hosts.server] {
        let listed = conntrack_list(ns, &[]).len() as u64;
        assert_eq!(
            counts.get(&ns.name),
            Some(&listed),
            "{}: {counts:?}",
            ns.name
        );
    }
}

/// `conntrack -S` and `-C` say what `conntrack_stats` says, CPU by CPU.
#[test]
fn stats_equal_conntrack_s_and_c() {
    let Some(hosts) = setup("cts") else { return };
    let ns = &hosts.client;
    let stats = ns.exec_ok(&["conntrack", "-S"]);
    let count = ns.exec_ok(&["conntrack", "-C"]);
    let rows = rows_by_cpu(ns);
    let listed_cpus = stats.lines().count();
    assert_eq!(rows.len(), listed_cpus + 1, "{stats}");
    for line in stats.lines() {
        let mut words = line.split_whitespace();
        let cpu = words.next().unwrap().trim_start_matches("cpu=");
        let row = &rows[&Some(cpu.parse().unwrap())];
        for pair in words {
            let (name, value) = pair.split_once('=').unwrap();
            assert_eq!(text(row, name).as_deref(), Some(value), "cpu {cpu} {name}");
        }
    }
    let total = &rows[&None];
    assert_eq!(text(total, "count"), Some(count.trim().to_string()));
    let max = ns.exec_ok(&["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]);
    assert_eq!(text(total, "max"), Some(max.trim().to_string()));
    assert_eq!(text(total, "found"), None, "counters only on CPU rows");
}

fn rows_by_cpu(ns: &Netns) -> BTreeMap<Option<u64>, Row> {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_netsql")])
        .args(["--format", "ndjson", "-e", "SELECT * FROM conntrack_stats"]);
    ndjson_rows(&mut command)
        .into_iter()
        .map(|row| (common::number(&row, "cpu"), row))
        .collect()
}

/// Bytes netsql read from netlink for `sql`, as strace saw its recvfrom calls return,
/// and the rows it printed.
fn traced(ns: &Netns, sql: &str) -> (u64, usize) {
    let log = std::env::temp_dir().join(format!("netsql-ct-strace-{}", std::process::id()));
    let out = ns.exec(&[
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=recvfrom,recvmsg",
        "-o",
        log.to_str().unwrap(),
        env!("CARGO_BIN_EXE_netsql"),
        "--format",
        "ndjson",
        "-e",
        sql,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let bytes = trace
        .lines()
        .filter_map(|l| {
            l.rsplit_once("= ")
                .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        })
        .sum();
    (bytes, common::ndjson(&out.stdout).len())
}

/// A pushed filter reaches the kernel: what it sends back shrinks with it.
#[test]
fn pushed_filters_shrink_what_the_kernel_sends() {
    let Some(hosts) = setup("ctp") else { return };
    let ns = &hosts.client;
    // 300 unanswered UDP flows on loopback, none marked, none assured.
    let _flows = ns.within(|| {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        for port in 20000..20300 {
            udp.send_to(b"x", ("127.0.0.1", port)).unwrap();
        }
        udp
    });
    if !common::have("strace") {
        panic!("strace is not installed (.ci/run installs it)");
    }
    let (all_bytes, all_rows) = traced(ns, "SELECT id FROM conntrack");
    assert!(all_rows >= 300, "{all_rows} rows");
    for (sql, witness) in [
        (
            "SELECT id FROM conntrack WHERE mark = 7",
            vec!["--mark", "7"],
        ),
        (
            "SELECT id FROM conntrack WHERE array_has(status, 'ASSURED')",
            vec!["--status", "ASSURED"],
        ),
        (
            "SELECT id FROM conntrack WHERE orig_dst = '10.77.0.2'",
            vec!["--orig-dst", "10.77.0.2"],
        ),
        // The kernel's IPv6 address filter is inverted: the family is pushed and the
        // address matched by netsql (it gave no rows while it was pushed).
        (
            "SELECT id FROM conntrack WHERE orig_src = '::1'",
            vec!["--orig-src", "::1"],
        ),
    ] {
        let (bytes, rows) = traced(ns, sql);
        let listed = conntrack_list(ns, &witness).len();
        assert_eq!(
            rows, listed,
            "{sql}: conntrack -L {witness:?} lists {listed}"
        );
        assert!(rows > 0 && rows < 10, "{sql}: {rows} rows");
        assert!(
            bytes * 10 < all_bytes,
            "{sql}: the kernel sent {bytes} bytes, {all_bytes} for every row"
        );
    }
}

/// Without CAP_NET_ADMIN: one line that says so, exit 2; conntrack fails there too.
#[test]
fn without_cap_net_admin_one_line() {
    let Some(hosts) = setup("ctn") else { return };
    let ns = &hosts.client;
    assert!(!ns.exec_as_nobody(&["conntrack", "-L"]).status.success());
    for table in ["conntrack", "conntrack_stats", "conntrack_events"] {
        // conntrack_events would listen until --for if it did not fail at once.
        let out = ns.exec_as_nobody(&[
            env!("CARGO_BIN_EXE_netsql"),
            "--for",
            "5s",
            "-e",
            &format!("SELECT count(*) FROM {table}"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{table}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{table}: {stderr}");
        // Named for the table asked, as a collector's error (not "during planning").
        let what = match table {
            "conntrack" => "dump",
            "conntrack_stats" => "statistics",
            _ => "events",
        };
        assert!(
            stderr.starts_with(&format!(
                "netsql: conntrack {what}: Operation not permitted"
            )) && stderr.contains("CAP_NET_ADMIN"),
            "{table}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// A kernel without nfnetlink (the module absent, none loadable) refuses the socket
/// itself: `socket(AF_NETLINK, _, NETLINK_NETFILTER)` fails with EPROTONOSUPPORT. This
/// kernel has it built in, so a seccomp filter gives that answer instead, and
/// conntrack-tools under the same filter is the witness that it is what "no module"
/// looks like from user space. Then a kernel with nfnetlink but not ctnetlink, for
/// `conntrack_events`.
#[test]
fn without_the_module_one_line() {
    let Some(hosts) = setup("ctm") else { return };
    const NO_NFNETLINK: Deny = Deny {
        syscall: libc::SYS_socket,
        args: &[
            (0, u32::MAX, libc::AF_NETLINK as u32),
            (2, u32::MAX, libc::NETLINK_NETFILTER as u32),
        ],
        errno: libc::EPROTONOSUPPORT,
    };
    let ns = &hosts.client;
    let mut conntrack = ns.command(&["conntrack", "-L"]);
    let witness = seccomp(&mut conntrack, NO_NFNETLINK).run();
    // conntrack-tools' words when it cannot open its netlink socket.
    assert!(
        String::from_utf8_lossy(&witness.stderr).contains("Can't open handler"),
        "{witness:?}"
    );
    for table in ["conntrack", "conntrack_stats", "conntrack_events"] {
        let sql = format!("SELECT count(*) FROM {table}");
        let mut netsql = ns.command(&[env!("CARGO_BIN_EXE_netsql"), "--for", "5s", "-e", &sql]);
        let out = seccomp(&mut netsql, NO_NFNETLINK).run();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{table}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{table}: {stderr}");
        assert!(
            stderr.contains("nf_conntrack_netlink") && stderr.contains("Protocol not supported"),
            "{table}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // A kernel with nfnetlink but without ctnetlink takes a subscription to ctnetlink's
    // groups all the same, and no event ever comes. conntrack_events asks ctnetlink once
    // before it listens: when that request fails (here the filter fails the sending of
    // every bare request, 20 bytes; that kernel would answer it with EINVAL, the unit
    // tests' case), the query ends at once with one line, not at --for with no rows.
    const NO_BARE_REQUEST: Deny = Deny {
        syscall: libc::SYS_sendto,
        args: &[(2, u32::MAX, 20)],
        errno: libc::EINVAL,
    };
    let sql = "SELECT count(*) FROM conntrack_events";
    let mut netsql = ns.command(&[env!("CARGO_BIN_EXE_netsql"), "--for", "10s", "-e", sql]);
    let out = seccomp(&mut netsql, NO_BARE_REQUEST).run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("conntrack events: send request"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// The `conntrack_near_full` audit against `conntrack -C` and the limit: a threshold
/// under the namespace's fill finds it, one over passes. Without CAP_NET_ADMIN it cannot
/// run: ERROR with the reason, exit 2, and every other audit still runs.
#[test]
fn conntrack_near_full_audits_the_fill() {
    let Some(hosts) = setup("ctf") else { return };
    let ns = &hosts.client;
    let count = || -> u64 { ns.exec_ok(&["conntrack", "-C"]).trim().parse().unwrap() };
    let before = count();
    assert!(before >= 2, "the set-up's flows are tracked");
    let max: u64 = ns
        .exec_ok(&["cat", "/proc/sys/net/netfilter/nf_conntrack_max"])
        .trim()
        .parse()
        .unwrap();
    let fill = 100.0 * before as f64 / max as f64;
    let audit = |percent: f64, finds: bool| -> serde_json::Value {
        let out = ns.netsql(&[
            "--format",
            "json",
            "audit",
            "conntrack_near_full",
            "-p",
            &format!("percent={percent}"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let audits: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        assert_eq!(out.status.code(), Some(i32::from(finds)), "{stderr}");
        audits[0].clone()
    };
    let under = audit(fill / 2.0, true);
    assert_eq!(under["status"], "fail", "{under}");
    let findings = under["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{under}");
    let found = findings[0]["count"].as_u64().unwrap();
    let after = count();
    assert!(
        found == before || found == after,
        "{found}: {before} {after}"
    );
    assert_eq!(findings[0]["max"].as_u64(), Some(max));
    let over = audit(fill * 2.0, false);
    assert_eq!(over["status"], "pass", "{over}");

    // As nobody: the summary, JSON and JUnit each say it could not run, and why.
    let bin = env!("CARGO_BIN_EXE_netsql");
    let out = ns.exec_as_nobody(&[bin, "audit"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("ERROR high     conntrack_near_full: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lines[at + 1].starts_with("      could not run: ")
            && lines[at + 1].contains("CAP_NET_ADMIN"),
        "{text}"
    );
    let verdicts = lines
        .iter()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .count();
    assert_eq!(verdicts, 12, "{text}");
    assert!(
        lines.last().unwrap().ends_with(" failed, 1 could not run"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let junit = dir.path().join("audit.xml");
    let out = ns.exec_as_nobody(&[
        bin,
        "--format",
        "json",
        "audit",
        "conntrack_near_full",
        "udp_drops",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let audits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audits[0]["status"], "error", "{audits}");
    assert!(audits[0]["errors"][0]
        .as_str()
        .unwrap()
        .contains("CAP_NET_ADMIN"));
    assert_eq!(audits[1]["status"], "pass", "{audits}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"0\" errors=\"1\"")
            && xml.contains("<error message=\"could not run: conntrack statistics: "),
        "{xml}"
    );
}

/// `-q nat_translations` names the process behind a published port (the server's
/// socket, in the namespace that DNATed) and the one whose traffic was SNATed: both are
/// this test, which holds the sockets. A second published port leads to a dual-stack
/// listener (`[::]`, as nginx `listen [::]:80` or Go's `:80`): its socket is tcp6 with
/// v4-mapped addresses while conntrack's entry is IPv4, and it is named too.
#[test]
fn nat_translations_names_the_processes() {
    let Some(hosts) = setup("ctq") else { return };
    hosts.server.exec_ok(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        "8083",
        "-j",
        "DNAT",
        "--to-destination",
        "10.77.0.2:8082",
    ]);
    let dual = hosts.server.within(|| {
        let listener =
            socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).unwrap();
        listener.set_only_v6(false).unwrap();
        let any: std::net::SocketAddr = "[::]:8082".parse().unwrap();
        listener.bind(&any.into()).unwrap();
        listener.listen(4).unwrap();
        listener
    });
    let to_dual = hosts
        .client
        .within(|| TcpStream::connect("10.77.0.2:8083").unwrap());
    let dual_accepted = dual.accept().unwrap().0;
    let rows = ndjson_rows(common::netsql().args(["--format", "ndjson", "-q", "nat_translations"]));
    let ours = |ns: &Netns, nat: &str, pre_nat_dst: &str| -> Row {
        let mine: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                text(r, "netns_name").as_deref() == Some(ns.name.as_str())
                    && text(r, "pre_nat_dst").as_deref() == Some(pre_nat_dst)
            })
            .collect();
        assert_eq!(mine.len(), 1, "{} {pre_nat_dst}: {rows:?}", ns.name);
        assert_eq!(text(mine[0], "nat").as_deref(), Some(nat));
        mine[0].clone()
    };
    let me = std::process::id().to_string();
    for (port, to) in [(8081, 8080), (8083, 8082)] {
        let published = ours(&hosts.server, "dnat", &format!("10.77.0.2:{port}"));
        assert_eq!(
            text(&published, "post_nat_dst"),
            Some(format!("10.77.0.2:{to}"))
        );
        assert_eq!(
            text(&published, "server_pid"),
            Some(me.clone()),
            "{published:?}"
        );
        // ss sees the same socket answering there, held by this process.
        let ss = hosts.server.exec_ok(&[
            "ss",
            "-tnpH",
            "state",
            "established",
            "sport",
            &to.to_string(),
        ]);
        assert!(ss.contains(&format!("pid={me},")), "{ss}");
        if to == 8082 {
            assert!(ss.contains("[::ffff:10.77.0.2]:8082"), "{ss}");
        }
    }
    // The client's side of both: SNATed, each named.
    let sent: Vec<&Row> = rows
        .iter()
        .filter(|r| text(r, "netns_name").as_deref() == Some(hosts.client.name.as_str()))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for row in sent {
        assert_eq!(text(row, "nat").as_deref(), Some("snat"));
        assert_eq!(text(row, "client_pid"), Some(me.clone()));
        assert_eq!(
            text(row, "post_nat_src").unwrap().split(':').next(),
            Some("10.77.0.11")
        );
    }
    drop((dual, to_dual, dual_accepted));
}

/// `-q conntrack_usage`: per protocol, the entries conntrack lists; the total is
/// `conntrack -C`'s.
#[test]
fn conntrack_usage_adds_up() {
    let Some(hosts) = setup("ctu") else { return };
    let ns = &hosts.client;
    let rows = ndjson_rows(common::netsql().args(["--format", "ndjson", "-q", "conntrack_usage"]));
    let mine: Vec<&Row> = rows
        .iter()
        .filter(|r| text(r, "netns_name").as_deref() == Some(ns.name.as_str()))
        .collect();
    let listed = conntrack_list(ns, &[]);
    let entries: u64 = mine
        .iter()
        .map(|r| common::number(r, "entries").unwrap())
        .sum();
    assert_eq!(entries, listed.len() as u64, "{mine:?}");
    let count = ns.exec_ok(&["conntrack", "-C"]);
    for row in &mine {
        assert_eq!(text(row, "total"), Some(count.trim().to_string()));
    }
    let udp = mine
        .iter()
        .find(|r| text(r, "proto").as_deref() == Some("udp"))
        .expect("a udp row");
    let udp_listed = listed.values().filter(|l| l.proto == "udp").count();
    assert_eq!(common::number(udp, "entries"), Some(udp_listed as u64));
    assert_eq!(
        udp["top_sources"],
        serde_json::json!([format!("10.77.0.1 ({udp_listed})")]),
        "{udp:?}"
    );
}

/// An event: its name, the entry's id, the original direction's destination port.
type Seen = (String, u64, Option<u16>);

/// A conntrack event as `conntrack -E -o id` prints it.
fn their_event(line: &str) -> Option<Seen> {
    let event = line.split_whitespace().next()?.trim_matches(['[', ']']);
    let id = line
        .split_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix("id="))?
        .parse()
        .ok()?;
    let dport = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("dport="))
        .and_then(|p| p.parse().ok());
    Some((event.to_lowercase(), id, dport))
}

fn our_event(line: &str) -> Option<Seen> {
    let row: serde_json::Value = serde_json::from_str(line).ok()?;
    Some((
        row["event"].as_str()?.to_string(),
        row["id"].as_u64()?,
        row["orig_dport"].as_u64().map(|p| p as u16),
    ))
}

/// Reads `lines` until one parsed by `parse` has `dport`, returning everything read.
fn read_until(
    lines: &common::Lines,
    parse: fn(&str) -> Option<Seen>,
    dport: u16,
    poke: &dyn Fn(),
) -> Vec<Seen> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no event for port {dport}: {seen:?}"
        );
        poke();
        while let Some(line) = lines.try_next(Duration::from_millis(100)) {
            if let Some(event) = parse(&line) {
                let done = event.2 == Some(dport);
                seen.push(event);
                if done {
                    return seen;
                }
            }
        }
    }
}

/// `conntrack_events` over a scripted churn (TCP connections made and closed, UDP
/// datagrams, then a flush) is what `conntrack -E -o id` prints: every event once.
#[test]
fn events_equal_conntrack_e() {
    let Some(hosts) = setup("cte") else { return };
    let ns = &hosts.client;
    let mut ours = common::Kid::spawn(
        ns.command(&[
            env!("CARGO_BIN_EXE_netsql"),
            "--format",
            "ndjson",
            "-e",
            "SELECT event, id, proto, orig_dport FROM conntrack_events",
        ])
        .stdout(std::process::Stdio::piped()),
    );
    let mut theirs = common::Kid::spawn(
        ns.command(&["conntrack", "-E", "-o", "id"])
            .stdout(std::process::Stdio::piped()),
    );
    let our_lines = common::Lines::of(ours.stdout.take().unwrap());
    let their_lines = common::Lines::of(theirs.stdout.take().unwrap());
    // Both listen once each has seen a datagram to port 1, sent from a new socket (a new
    // entry, so a new event) until they have.
    let poke = |port: u16| {
        move || {
            ns.within(move || {
                let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
                sender.send_to(b"x", ("127.0.0.1", port)).unwrap();
            })
        }
    };
    read_until(&our_lines, our_event, 1, &poke(1));
    read_until(&their_lines, their_event, 1, &poke(1));

    let churn: Vec<u16> = ns.within(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        for _ in 0..10 {
            let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (server, _) = listener.accept().unwrap();
            drop(client);
            drop(server);
        }
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut ports = vec![port];
        for p in 30000..30010 {
            udp.send_to(b"x", ("127.0.0.1", p)).unwrap();
            ports.push(p);
        }
        ports
    });
    ns.exec_ok(&["conntrack", "-F"]);
    // Events come in order: once port 2's shows, the churn's have come.
    let mut mine = read_until(&our_lines, our_event, 2, &poke(2));
    let mut listed = read_until(&their_lines, their_event, 2, &poke(2));
    for events in [&mut mine, &mut listed] {
        events.retain(|e| e.2.is_some_and(|p| churn.contains(&p)));
        events.sort();
    }
    let destroys = listed.iter().filter(|e| e.0 == "destroy").count();
    assert!(
        destroys >= 20,
        "the flush destroyed every churned entry: {listed:?}"
    );
    assert!(listed.iter().any(|e| e.0 == "update"), "{listed:?}");
    assert_eq!(mine, listed);
}

/// `record --tables conntrack_events` writes each event once, tick by tick: the new
/// entries made while it records are there under the ids `conntrack -L` shows.
#[test]
fn record_writes_conntrack_events() {
    let Some(hosts) = setup("ctr") else { return };
    let ns = &hosts.client;
    let dir = tempfile::tempdir().unwrap();
    let kid = common::Kid::spawn(
        ns.command(&[env!("CARGO_BIN_EXE_netsql"), "record", "--to"])
            .arg(dir.path())
            .args([
                "--tables",
                "conntrack_events",
                "--every",
                "1s",
                "--host",
                "h1",
            ])
            .stderr(std::process::Stdio::piped()),
    );
    let history = |sql: &str| -> Vec<Row> {
        let mut command = common::netsql();
        command
            .arg("--history")
            .arg(dir.path())
            .args(["--format", "ndjson", "-e", sql]);
        common::ndjson(&command.run().stdout)
    };
    // Subscribed once a datagram to port 3 (from a new socket each time) is recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while history("SELECT id FROM history.conntrack_events WHERE orig_dport = 3").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the recorder wrote nothing"
        );
        ns.within(|| {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"x", "127.0.0.1:3").unwrap();
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    ns.within(|| {
        for port in 31000..31010 {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"x", ("127.0.0.1", port)).unwrap();
        }
    });
    let mut expected: Vec<u64> = conntrack_list(ns, &["-p", "udp"])
        .into_iter()
        .filter(|(_, l)| {
            l.orig
                .get("dport")
                .and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| (31000..31010).contains(&p))
        })
        .map(|(id, _)| id)
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 10);
    // SIGTERM ends the recording; what the kernel delivered before is written.
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGTERM) };
    let out = kid.finish_within(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<u64> = history(
        "SELECT id FROM history.conntrack_events WHERE host = 'h1' AND event = 'new' \
         AND orig_dport BETWEEN 31000 AND 31009 ORDER BY id",
    )
    .iter()
    .map(|r| common::number(r, "id").unwrap())
    .collect();
    assert_eq!(got, expected, "every new entry recorded once");
}

/// `DELETE FROM conntrack` removes exactly the entries its WHERE selects (conntrack -L
/// before and after), only with --allow-kill, never all without `=all`, never with LIMIT;
/// --dry-run lists them and removes nothing.
/// Runs `delete` with --allow-kill inside `ns`: its summary line.
fn deleted(ns: &Netns, delete: &str) -> String {
    let out = ns.exec(&[env!("CARGO_BIN_EXE_netsql"), "--allow-kill", "-e", delete]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr.trim().to_string()
}

#[test]
fn delete_removes_exactly_the_selected_entries() {
    let Some(hosts) = setup("ctd") else { return };
    let ns = &hosts.client;
    ns.within(|| {
        for port in 32000..32020 {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"x", ("127.0.0.1", port)).unwrap();
        }
    });
    let before = conntrack_list(ns, &[]);
    let selected: Vec<u64> = before
        .iter()
        .filter(|(_, l)| {
            l.orig
                .get("dport")
                .and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| (32000..32010).contains(&p))
        })
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(selected.len(), 10);
    let delete = "DELETE FROM conntrack WHERE proto = 'udp' AND orig_dport BETWEEN 32000 AND 32009";
    let run = |args: &[&str]| {
        let mut argv = vec![env!("CARGO_BIN_EXE_netsql")];
        argv.extend_from_slice(args);
        ns.exec(&argv)
    };
    let listed = run(&["--dry-run", "--format", "ndjson", "-e", delete]);
    assert!(listed.status.success());
    let mut ids: Vec<u64> = common::ndjson(&listed.stdout)
        .iter()
        .map(|r| common::number(r, "id").unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, selected, "--dry-run lists what would go");
    // Choosing namespaces alone is not narrowing (kept to ours, should the rule break).
    let every_namespace = format!(
        "DELETE FROM conntrack WHERE netns IS NOT NULL AND netns = {}",
        ns.inode()
    );
    for refused in [
        vec!["-e", delete],
        vec!["--allow-kill", "-e", "DELETE FROM conntrack"],
        vec!["--allow-kill", "-e", "DELETE FROM conntrack WHERE true"],
        vec!["--allow-kill", "-e", &every_namespace],
        vec!["--allow-kill", "-e", &format!("{delete} LIMIT 1")],
    ] {
        let out = run(&refused);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{refused:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{refused:?}: {stderr}");
        assert!(
            stderr.contains("--allow-kill") || stderr.contains("LIMIT"),
            "{stderr}"
        );
    }
    assert_eq!(
        conntrack_list(ns, &[]).keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "nothing removed by a listing or a refusal"
    );
    assert_eq!(
        deleted(ns, delete),
        "netsql: deleted 10 of 10 matching conntrack entries"
    );
    let after = conntrack_list(ns, &[]);
    let expected: Vec<&u64> = before.keys().filter(|id| !selected.contains(id)).collect();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        expected,
        "exactly the selected went"
    );
}

/// Zones set by a CT target for both directions, the original one or the reply one:
/// each row's zone equals conntrack's line, `zone = N` (pushed since 6.8) selects what
/// conntrack lists in zone N whatever the direction, and DELETE finds each entry (it
/// said "already gone" for a zone of one direction, and left the entry).
#[test]
fn zones_of_either_direction_are_read_selected_and_deleted() {
    let Some(hosts) = setup("ctz") else { return };
    let ns = &hosts.client;
    for (port, zone) in [
        ("9003", ["--zone-orig", "7"]),
        ("9004", ["--zone-reply", "7"]),
        ("9005", ["--zone", "5"]),
    ] {
        let mut rule = vec!["iptables", "-t", "raw", "-A", "OUTPUT", "-p", "udp"];
        rule.extend(["--dport", port, "-j", "CT"]);
        rule.extend(zone);
        ns.exec_ok(&rule);
    }
    ns.within(|| {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for port in [9003, 9004, 9005] {
            sender.send_to(b"x", ("127.0.0.1", port)).unwrap();
        }
    });
    let rows = same_as_conntrack(ns, true);
    let zoned = |dport: &str| {
        let row = rows
            .values()
            .find(|r| text(r, "orig_dport").as_deref() == Some(dport))
            .unwrap_or_else(|| panic!("no flow to {dport}"));
        (text(row, "zone"), text(row, "zone_dir"))
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(zoned("9003"), (some("7"), some("orig")));
    assert_eq!(zoned("9004"), (some("7"), some("reply")));
    assert_eq!(zoned("9005"), (some("5"), None));

    let listed = conntrack_list(ns, &[]);
    let in_zone = |zone: &str| -> Vec<u64> {
        listed
            .iter()
            .filter(|(_, l)| {
                let zones = [
                    l.rest.get("zone"),
                    l.orig.get("zone-orig"),
                    l.rest.get("zone-reply"),
                ];
                match zones.iter().flatten().next() {
                    Some(z) => z.as_str() == zone,
                    None => zone == "0",
                }
            })
            .map(|(id, _)| *id)
            .collect()
    };
    for zone in ["7", "5", "0"] {
        let sql = format!("SELECT id FROM conntrack WHERE zone = {zone}");
        let ids: Vec<u64> = rows_by_id(ns, &sql).into_keys().collect();
        assert_eq!(ids, in_zone(zone), "{sql}");
    }
    assert_eq!(in_zone("7").len(), 2);

    assert_eq!(
        deleted(ns, "DELETE FROM conntrack WHERE zone = 7"),
        "netsql: deleted 2 of 2 matching conntrack entries"
    );
    // The test's own flows only: the setup's may time out meanwhile on a slow run.
    let after = conntrack_list(ns, &[]);
    for id in in_zone("7") {
        assert!(!after.contains_key(&id), "{id} is still listed");
    }
    let kept = in_zone("5");
    assert_eq!(kept.len(), 1);
    assert!(after.contains_key(&kept[0]), "the zone 5 entry went too");
}

/// A reader that falls behind (nobody reads netsql's output during a churn of new
/// entries) is told exactly how many events the kernel dropped: each of the churn's new
/// entries is a row or counted lost. The kernel sends an entry's NEW event as the packet
/// that makes it passes, so once the churn's sends return, every event was offered.
#[test]
fn a_stalled_reader_is_told_how_many_events_were_lost() {
    let Some(hosts) = setup("ctx") else { return };
    let ns = &hosts.client;
    let mut kid = common::Kid::spawn(
        ns.command(&[
            env!("CARGO_BIN_EXE_netsql"),
            "--format",
            "csv",
            "-e",
            "SELECT orig_dport FROM conntrack_events WHERE event = 'new'",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped()),
    );
    // Subscribed once /proc/net/netlink shows a NETLINK_NETFILTER (12) socket in the three
    // conntrack groups: netsql's, the only listener in this namespace.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let table = ns.exec_ok(&["cat", "/proc/net/netlink"]);
        let subscribed = table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 4 && f[1] == "12" && f[3] == "00000007"
        });
        if subscribed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "netsql never listened: {table}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // From here nobody reads: netsql's pipe, its queue and the kernel's buffer fill.
    const CHURN: usize = 100_000;
    ns.within(|| {
        let senders = [
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        ];
        for i in 0..CHURN {
            let port = 1024 + (i % 60_000) as u16;
            senders[i / 60_000]
                .send_to(b"x", ("127.0.0.1", port))
                .unwrap();
        }
    });
    // Every send made an entry and none was evicted to make room (an early drop's
    // DESTROY would be lost too, and counted): conntrack's own count is the witness.
    let tracked: usize = ns
        .exec_ok(&["conntrack", "-C"])
        .trim()
        .parse()
        .expect("conntrack -C prints a count");
    assert!(tracked >= CHURN, "only {tracked} entries for {CHURN} flows");
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(kid.id() as i32, libc::SIGINT) };
    let mut stdout = String::new();
    kid.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let rows = stdout.lines().count().saturating_sub(1);
    let out = kid.finish_within(Duration::from_secs(30));
    assert!(out.status.success());
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
        "every new entry is a row or counted lost: {stderr}"
    );
}
