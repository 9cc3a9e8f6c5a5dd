//! `netsql netstat FLAGS` against net-tools `netstat FLAGS`, run on the same sockets in a
//! namespace of our own: every TCP state, UDP, UDP-Lite, raw and unix sockets, held by
//! this process and by a child whose argv[0] is a path, and a listener no process holds.
//! Lines are compared as multisets, trailing blanks aside, and for the TCP views also in
//! order (netstat prints the kernel's hash order, which netsql keeps); timers are masked
//! for -o (their values are compared in netns_timers.rs). Every /etc file either tool
//! reads is the test's own, overlaid by `ip netns exec`.

#[path = "common/mod.rs"]
mod common;
#[path = "netns_sockets/made.rs"]
mod made;

use common::{Kid, Lines, Netns};
use std::collections::BTreeMap;

/// Lines without trailing blanks, masked, counted.
fn lines(text: &str, mask: fn(&str) -> String) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        *counts.entry(mask(line.trim_end())).or_insert(0) += 1;
    }
    counts
}

fn keep(line: &str) -> String {
    line.to_string()
}

/// `off (0.00/0/0)` -> `off (#)`: the time left moves between runs.
fn mask_timer(line: &str) -> String {
    match (line.rfind(" ("), line.ends_with(')')) {
        (Some(at), true) => format!("{} (#)", &line[..at]),
        _ => line.to_string(),
    }
}

/// How two outputs must agree: the same lines, or the same lines in the same order.
#[derive(Clone, Copy, PartialEq)]
enum Agree {
    Lines,
    InOrder,
}

/// Runs both and compares; on a difference the two outputs are shown whole.
fn compare(ns: &Netns, flags: &str, mask: fn(&str) -> String, agree: Agree) -> Result<(), String> {
    let argv: Vec<&str> = flags.split_whitespace().collect();
    let mut theirs = vec!["netstat"];
    theirs.extend(&argv);
    let netstat = ns.exec(&theirs);
    assert!(
        netstat.status.success(),
        "netstat {flags}: {}",
        String::from_utf8_lossy(&netstat.stderr)
    );
    let mut ours = vec!["netstat"];
    ours.extend(&argv);
    let netsql = ns.netsql(&ours);
    assert!(
        netsql.status.success() && netsql.stderr == netstat.stderr,
        "netsql netstat {flags}: {}\nnetstat said: {}",
        String::from_utf8_lossy(&netsql.stderr),
        String::from_utf8_lossy(&netstat.stderr)
    );
    let (a, b) = (
        String::from_utf8_lossy(&netstat.stdout).into_owned(),
        String::from_utf8_lossy(&netsql.stdout).into_owned(),
    );
    let in_order =
        |text: &str| -> Vec<String> { text.lines().map(|l| mask(l.trim_end())).collect() };
    let same = match agree {
        Agree::Lines => lines(&a, mask) == lines(&b, mask),
        Agree::InOrder => in_order(&a) == in_order(&b),
    };
    if same {
        return Ok(());
    }
    Err(format!(
        "netstat {flags} differs\n--- netstat\n{a}--- netsql netstat\n{b}"
    ))
}

/// Compares, allowing one more try: a socket can change state between the two runs
/// (a retransmitted SYN, an expiring TIME_WAIT). A real difference shows twice.
fn check(ns: &Netns, flags: &str, mask: fn(&str) -> String) {
    check_as(ns, flags, mask, Agree::Lines)
}

fn check_as(ns: &Netns, flags: &str, mask: fn(&str) -> String, agree: Agree) {
    if compare(ns, flags, mask, agree).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Err(diff) = compare(ns, flags, mask, agree) {
            panic!("{diff}");
        }
    }
}

/// A child holding a listener, run by its full path so netstat -p shows its basename.
/// Also a listener on an address longer than netstat's 22-character column, and one no
/// process holds: its only reference travels in a unix socket's queue (SCM_RIGHTS), so
/// both tools show it without an owner.
fn sleeper(ns: &Netns) -> Kid {
    let mut command = ns.command(&["python3", "-c"]);
    command
        .arg(
            "import socket, time\n\
             s = socket.socket(socket.AF_INET6)\n\
             s.bind(('::', 7300)); s.listen(1)\n\
             w = socket.socket(socket.AF_INET6)\n\
             w.bind((LONG, 7301)); w.listen(1)\n\
             u = socket.socket(socket.AF_UNIX)\n\
             u.bind('\\0netsql-sleeper'); u.listen(1)\n\
             o = socket.socket(socket.AF_INET)\n\
             o.bind(('127.0.0.1', 7302)); o.listen(1)\n\
             a, b = socket.socketpair()\n\
             socket.send_fds(a, [b'x'], [o.fileno()]); o.close()\n\
             print('ready', flush=True)\n\
             time.sleep(120)\n"
                .replace("LONG", &format!("'{LONG_ADDRESS}'")),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    Kid::spawn(&mut command)
}

/// 31 characters: cut to 22 without -W.
const LONG_ADDRESS: &str = "fd00:1234:5678:9abc:def0::4321";

/// Every file the name lookups of either tool read, so that nothing of the host's
/// /etc decides a name. nsswitch.conf keeps both to files (and DNS for hosts, which
/// the resolv.conf sends to a port where nothing listens).
const ETC: &[(&str, &str)] = &[
    (
        "nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\n\
         protocols: files\nservices: files\n",
    ),
    (
        "resolv.conf",
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    ),
    (
        "hosts",
        "127.0.0.1 localhost\n::1 ip6-localhost ip6-loopback\n\
         fd00:1234:5678:9abc:def0::4321 long-six.test\n10.9.0.254 gw.test\n",
    ),
    (
        "services",
        "first-name 7000/tcp\nlast-name 7000/tcp\nudp-name 7020/udp\nhttp 80/tcp\n",
    ),
    (
        "protocols",
        "ip 0 IP\nicmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\nicmp-six 58 IPv6-ICMP\nlite-proto 136 UDPLite\n",
    ),
    ("networks", "loopnet 127.0.0.0\nlinklocal 169.254.0.0\n"),
    (
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n\
         netsql-test:x:4242:4242::/:/bin/false\n",
    ),
];

#[test]
fn netstat_views_match_net_tools() {
    let Some(ns) = Netns::create("netstat", &["iptables", "netstat", "python3"]) else {
        return;
    };
    // Names this test controls: a resolver that answers at once (nothing listens on
    // port 53), hosts for both loopbacks, and a port named twice (netstat shows the last).
    ns.etc(ETC);
    ns.exec_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{LONG_ADDRESS}/64"),
        "dev",
        "lo",
        "nodad",
    ]);
    let mut child = sleeper(&ns);
    Lines::of(child.stdout.take().unwrap()).expect("ready");
    let dir = tempfile::tempdir().unwrap();
    let made = {
        let name = ns.name.clone();
        let dir = dir.path().to_path_buf();
        ns.within(move || made::build(name, dir))
    };

    for flags in [
        "-tan",
        "-tln",
        "-uan",
        "-wan",
        "-xa",
        "-tanp",
        "-tlnp",
        "-tanpe",
        "-ta",
        "-ua",
        "-an",
        "-lnp",
        "-x",
        "-tn",
        "-4an",
        "-6an",
        "-tanW",
        "-uanp",
        "-xap",
        "-tane",
        "-lntu",
        // Names: users (-e without -n), protocols for raw sockets, UDP-Lite, the long
        // forms of -n, families by name.
        "-tae",
        "-uae",
        "-wa",
        "-Uan",
        "-Ua",
        "-ta --numeric-hosts",
        "-ta --numeric-ports",
        "-tae --numeric-users",
        "-tae --numeric-hosts --numeric-ports",
        "--inet -an",
        "--inet6 -an",
        "--unix -a",
        "-A inet -an",
        "-A inet6 -a",
        "-A unix -ap",
        "-A inet,unix -an",
        "-tlW",
        "-tl",
    ] {
        check(&ns, flags, keep);
    }
    // The long address is there: without -W cut so that address, colon and port fill
    // the 23-character column (net-tools' netstat.c), whole with -W.
    let cut = ns.netsql(&["netstat", "-tln"]);
    let cut = String::from_utf8_lossy(&cut.stdout);
    assert!(
        cut.contains(&format!(" {}:7301 ", &LONG_ADDRESS[..22 - "7301".len()])),
        "{cut}"
    );
    let wide = ns.netsql(&["netstat", "-tlnW"]);
    let wide = String::from_utf8_lossy(&wide.stdout);
    assert!(wide.contains(&format!(" {LONG_ADDRESS}:7301 ")), "{wide}");
    // The TCP views row for row: netstat's order, owners (-p) or not, with the ownerless
    // listener and TIME_WAIT sockets among owned ones.
    for flags in ["-tan", "-tanp", "-tanpe", "-tlnp"] {
        check_as(&ns, flags, keep, Agree::InOrder);
    }
    let ownerless = ns.netsql(&["netstat", "-tlnp"]);
    let ownerless = String::from_utf8_lossy(&ownerless.stdout);
    assert!(
        ownerless
            .lines()
            .any(|l| l.contains(" 127.0.0.1:7302 ") && l.trim_end().ends_with(" -")),
        "the listener in flight has no owner: {ownerless}"
    );
    check(&ns, "-tano", mask_timer);
    check(&ns, "-uano", mask_timer);
    check(&ns, "-g", keep);
    check(&ns, "-gn", keep);
    drop(made);
    drop(child);
}

/// -r, -i and -s in a quiet namespace (nothing retransmits there) with routes of several
/// kinds on loopback.
#[test]
fn netstat_tables_match_net_tools() {
    let Some(ns) = Netns::create("netstat-quiet", &["netstat"]) else {
        return;
    };
    ns.etc(ETC);
    ns.exec_ok(&["ip", "addr", "add", "10.9.0.1/24", "dev", "lo"]);
    ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.9.0.254",
        "dev",
        "lo",
    ]);
    ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "169.254.0.0/16",
        "dev",
        "lo",
        "metric",
        "7",
    ]);
    ns.exec_ok(&["ip", "route", "add", "10.10.0.5", "dev", "lo"]);
    // The largest metric, which net-tools reads into a C int: -1.
    ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "10.203.0.0/16",
        "dev",
        "lo",
        "metric",
        "4294967295",
    ]);
    ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "127.0.0.2/32",
        "via",
        "10.9.0.254",
        "dev",
        "lo",
    ]);
    // Some traffic, so that counters are not all zero: a TCP connection and a datagram.
    ns.exec_ok(&[
        "python3",
        "-c",
        "import socket\n\
         l = socket.create_server(('127.0.0.1', 7400)); c = socket.create_connection(('127.0.0.1', 7400))\n\
         a, _ = l.accept(); c.sendall(b'x' * 100); a.recv(100); c.close(); a.close()\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'y', ('127.0.0.1', 7401))\n",
    ]);

    // An interface marked dynamic (netstat -i's 'd'), down: shown by -ia.
    ns.exec_ok(&[
        "ip", "link", "add", "dyn0", "type", "veth", "peer", "name", "dyn1",
    ]);
    ns.exec_ok(&["ip", "link", "set", "dyn0", "dynamic", "on"]);

    // -C: the routing cache, empty since Linux 3.6, with its heading; -F after it wins.
    for flags in [
        "-rn", "-r", "-rne", "-re", "-rnee", "-rnC", "-rCe", "-rnCee", "-rnCF",
    ] {
        check(&ns, flags, keep);
    }
    // -s reports one family: naming two, or unix, is an error in both.
    for flags in ["-s46", "-s -6 -4", "-sx"] {
        let argv: Vec<&str> = std::iter::once("netstat")
            .chain(flags.split_whitespace())
            .collect();
        let (theirs, ours) = (ns.exec(&argv), ns.netsql(&argv));
        assert!(
            !theirs.status.success() && !ours.status.success(),
            "{flags}"
        );
        let said = String::from_utf8_lossy(&theirs.stdout).into_owned()
            + &String::from_utf8_lossy(&theirs.stderr);
        let why = said.trim().trim_start_matches("netstat: ");
        assert!(why.starts_with("No statistics support"), "{flags}: {said}");
        let told = String::from_utf8_lossy(&ours.stderr);
        assert!(told.contains(why), "{flags}: {told} (netstat: {said})");
        assert!(ours.stdout.is_empty(), "{flags}");
    }
    // Nothing moves in this namespace between the two runs: the counters must agree.
    for flags in [
        "-i", "-ia", "-s", "-st", "-su", "-sw", "-s6", "-s -6", "-su -6",
    ] {
        check(&ns, flags, keep);
    }
}
