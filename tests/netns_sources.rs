//! Where rows come from, end to end: `--source auto` reading /proc when the kernel
//! refuses sock_diag (a seccomp filter refuses it here, as a locked-down container
//! would), and the owner walk happening only for queries that need owners.

mod common;
#[path = "netns_sockets/ss.rs"]
mod ss;

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::process::{Command, Output, Stdio};

use common::seccomp::{seccomp, Deny};
use common::{ndjson, Kid, Netns, RunExt};

/// `socket(AF_NETLINK, _, NETLINK_SOCK_DIAG)` -> EPERM, as a locked-down container has it.
const NO_SOCK_DIAG: Deny = Deny {
    syscall: libc::SYS_socket,
    args: &[
        (0, u32::MAX, libc::AF_NETLINK as u32),
        (2, u32::MAX, 4), // NETLINK_SOCK_DIAG
    ],
    errno: libc::EPERM,
};

/// Opening any directory -> EMFILE, as when a process runs out of descriptors.
const NO_DIRECTORIES: Deny = Deny {
    syscall: libc::SYS_openat,
    args: &[(2, libc::O_DIRECTORY as u32, libc::O_DIRECTORY as u32)],
    errno: libc::EMFILE,
};

fn rows(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = ndjson(&out.stdout)
        .iter()
        .map(|r| serde_json::Value::Object(r.clone()).to_string())
        .collect();
    rows.sort();
    rows
}

const SQL: &str = "SELECT proto, type, state, local_address, local_port, remote_address, \
                   remote_port, inode, path FROM sockets";

#[test]
fn auto_reads_proc_when_sock_diag_is_refused() {
    let Some(ns) = Netns::create("seccomp", &["ss"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (stream, datagram) = (
        dir.path().join("netsql-sources.sock"),
        dir.path().join("netsql-sources.dgram"),
    );
    // Every kind /proc and sock_diag both show: listeners, both ends of a connection,
    // bound and connected datagram sockets, IPv4 and IPv6, unix streams and datagrams.
    let _held = ns.within(move || {
        let tcp = TcpListener::bind("127.0.0.1:7900").unwrap();
        let client = TcpStream::connect("127.0.0.1:7900").unwrap();
        let (server, _) = tcp.accept().unwrap();
        let tcp6 = TcpListener::bind("[::1]:7902").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:7903").unwrap();
        let udp6 = UdpSocket::bind("[::1]:7904").unwrap();
        let connected = UdpSocket::bind("127.0.0.1:7905").unwrap();
        connected.connect("127.0.0.1:7903").unwrap();
        let unix = UnixListener::bind(&stream).unwrap();
        let unix_dgram = UnixDatagram::bind(&datagram).unwrap();
        (
            tcp, client, server, tcp6, udp, udp6, connected, unix, unix_dgram,
        )
    });
    let args = ["--format", "ndjson", "-e", SQL];
    let netsql = |source: &str, refused: bool| {
        let source = source.to_string();
        ns.within(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
            command.args(["--source", &source]).args(args);
            if refused {
                seccomp(&mut command, NO_SOCK_DIAG);
            }
            command.run()
        })
    };
    // The filter works: --source netlink is refused, in one line.
    let out = netsql("netlink", true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("netsql: ")
            && err.contains("sock_diag request refused")
            && err.contains("Operation not permitted")
            && err.lines().count() == 1,
        "{err}"
    );
    // auto falls back quietly and gives the rows ss sees (ss asks sock_diag, which
    // this process may use), and the rows each source gives when allowed.
    let ends = |rows: Vec<[String; 4]>| {
        let mut rows = rows;
        rows.sort();
        rows
    };
    let witness = ends(ss::ss_rows(&ns).iter().map(ss::SsRow::ends).collect());
    let fallback = netsql("auto", true);
    assert!(
        fallback.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&fallback.stderr)
    );
    assert_eq!(
        ends(ndjson(&fallback.stdout).iter().map(ss::ends).collect()),
        witness
    );
    assert_eq!(witness.len(), 9, "{witness:?}");
    let fallback = rows(&fallback);
    assert_eq!(fallback, rows(&netsql("proc", false)));
    assert_eq!(fallback, rows(&netsql("netlink", false)));
    assert!(fallback.iter().any(|r| r.contains("netsql-sources.sock")));
    assert!(fallback.iter().any(|r| r.contains("netsql-sources.dgram")));
}

/// The owner walk lists `<proc>/<pid>/fd` of every process. With `--proc` pointing at a
/// tree where one such `fd` is a file, not a folder, a walk cannot finish: so a query
/// that succeeds there did not walk, and one that needs owners fails naming the file.
#[test]
fn owners_are_walked_only_when_a_query_needs_them() {
    let Some(ns) = Netns::create("nowalk", &[]) else {
        return;
    };
    let held = ns.within(|| {
        let tcp = TcpListener::bind("127.0.0.1:7901").unwrap();
        let mut command = Command::new("sleep");
        command.arg("120").stdin(Stdio::null());
        common::inherit(&mut command, &[tcp.as_raw_fd()]);
        Kid::spawn(&mut command)
    });
    common::wait_for_argv0(held.id(), "sleep");
    let proc = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(proc.path().join("4242")).unwrap();
    std::fs::write(proc.path().join("4242/fd"), "not a folder").unwrap();
    let root = proc.path().to_str().unwrap();
    let query = |sql: &str| {
        ns.netsql(&[
            "--proc", root, "--source", "netlink", "--format", "csv", "-e", sql,
        ])
    };
    for sql in [
        "SELECT local_port FROM sockets WHERE proto = 'tcp'",
        "SELECT count(*) AS n FROM sockets WHERE proto = 'tcp'",
        "SELECT proto, state, local_address, local_port, remote_address, remote_port, recv_q, \
         send_q, uid, inode, timer FROM sockets WHERE proto = 'tcp'",
    ] {
        let out = query(sql);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            2,
            "{sql}"
        );
    }
    for sql in [
        "SELECT local_port, pid FROM sockets WHERE proto = 'tcp'",
        "SELECT program FROM sockets",
        "SELECT count(fd) FROM sockets",
    ] {
        let out = query(sql);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql}: {err}");
        assert!(
            err.contains("4242/fd") && err.lines().count() == 1,
            "{sql}: {err}"
        );
    }
    // And with the real /proc the same owner query finds the sleep.
    let out = ns.netsql(&[
        "--format",
        "csv",
        "-e",
        "SELECT local_port, pid FROM sockets WHERE proto = 'tcp'",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("local_port,pid\n7901,{}\n", held.id())
    );
}

/// Out of descriptors in the middle of the owner walk (every directory open fails with
/// EMFILE): a query that needs owners fails with one line, never silently NULL owners;
/// one that does not still answers.
#[test]
fn running_out_of_descriptors_fails_an_owner_query() {
    let Some(ns) = Netns::create("emfile", &[]) else {
        return;
    };
    let _held = ns.within(|| TcpListener::bind("127.0.0.1:7902").unwrap());
    // Started from a thread inside the namespace: `ip netns exec` itself lists folders.
    let run = |sql: &str| {
        let sql = sql.to_string();
        ns.within(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
            command.args(["--format", "csv", "-e", &sql]);
            seccomp(&mut command, NO_DIRECTORIES);
            command.run()
        })
    };
    let out = run("SELECT local_port FROM sockets");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "local_port\n7902\n");
    for sql in [
        "SELECT local_port, pid FROM sockets",
        "SELECT * FROM socket_owners",
    ] {
        out_of_descriptors(&run(sql), sql);
    }
}

/// Exit 2 with one "Too many open files" line and nothing on stdout.
fn out_of_descriptors(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.starts_with("netsql: ")
            && err.contains("Too many open files")
            && err.lines().count() == 1,
        "{what}: {err}"
    );
    assert!(out.stdout.is_empty(), "{what}");
}

/// Running out of descriptors where a column's lookup needs one: the query fails in one
/// line, where it used to answer with NULLs that read as facts ("no cgroup", "no MTU").
/// A socket the kernel will not give for another reason (ENOSYS from a filter, no IPv4)
/// still leaves its column NULL, and sock_diag refused that way still falls back to
/// /proc.
#[test]
fn running_out_of_descriptors_never_leaves_a_null() {
    let Some(ns) = Netns::create("emnull", &[]) else {
        return;
    };
    let _held = ns.within(|| TcpListener::bind("127.0.0.1:7906").unwrap());
    let run = |sql: &str, source: &str, deny: Deny| {
        let (sql, source) = (sql.to_string(), source.to_string());
        ns.within(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
            command.args(["--source", &source, "--format", "csv", "-e", &sql]);
            seccomp(&mut command, deny);
            command.run()
        })
    };
    let answer = |out: &Output| {
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sock_diag = |errno| Deny {
        syscall: libc::SYS_socket,
        args: &[
            (0, u32::MAX, libc::AF_NETLINK as u32),
            (2, u32::MAX, 4), // NETLINK_SOCK_DIAG
        ],
        errno,
    };
    let inet_datagram = |errno| Deny {
        syscall: libc::SYS_socket,
        args: &[
            (0, u32::MAX, libc::AF_INET as u32),
            (1, 0xf, libc::SOCK_DGRAM as u32),
        ],
        errno,
    };
    let ports = "SELECT local_port FROM sockets WHERE proto = 'tcp'";
    let mtu = "SELECT name, mtu, flag_names FROM interfaces";

    // sock_diag's socket: out of descriptors fails even under auto (/proc's rows would
    // lack columns); a kernel without it (ENOSYS) falls back.
    out_of_descriptors(&run(ports, "auto", sock_diag(libc::EMFILE)), "sock_diag");
    assert_eq!(
        answer(&run(ports, "auto", sock_diag(libc::ENOSYS))),
        "local_port\n7906\n"
    );
    // The interface ioctls' socket: out of descriptors fails; refused, MTU and flags are
    // NULL (and without a filter they are there: the filter is what made them NULL).
    out_of_descriptors(&run(mtu, "auto", inet_datagram(libc::EMFILE)), "ioctl");
    assert_eq!(
        answer(&run(mtu, "auto", inet_datagram(libc::EAFNOSUPPORT))),
        "name,mtu,flag_names\nlo,,\n"
    );
    assert_eq!(
        answer(&run(mtu, "auto", sock_diag(libc::ENOSYS))),
        "name,mtu,flag_names\nlo,65536,\"[\"\"UP\"\",\"\"LOOPBACK\"\",\"\"RUNNING\"\"]\"\n"
    );
    assert!(ns
        .exec_ok(&["ip", "-o", "link", "show", "lo"])
        .contains("<LOOPBACK,UP,LOWER_UP> mtu 65536"));
    // cgroup paths come from walking the cgroup2 tree: opening its folders fails.
    let cgroup = "SELECT local_port, cgroup FROM sockets WHERE proto = 'tcp'";
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    if !mounts
        .lines()
        .any(|l| l.split(' ').nth(2) == Some("cgroup2"))
    {
        eprintln!("skipped: cgroup paths: no cgroup2 mounted here (ss --cgroup has none)");
        return;
    }
    let mounted = answer(&run(cgroup, "netlink", inet_datagram(libc::EAFNOSUPPORT)));
    assert!(
        mounted.starts_with("local_port,cgroup\n7906,/"),
        "{mounted}"
    );
    out_of_descriptors(&run(cgroup, "netlink", NO_DIRECTORIES), "cgroup");
}

/// /proc/net/unix prints a path's bytes as they are: a path holding a newline split its
/// record in two and failed every query that reads the file ("bad Num"), and a name
/// holding a whole made-up record gave another socket its RefCount and Flags. Now the
/// newline is the path's, flags follow the socket's state, and a socket two records
/// disagree about has a NULL RefCount.
#[test]
fn a_path_holding_a_newline_or_a_record() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    let Some(ns) = Netns::create("unixnl", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nl\nfile");
    let bound = path.clone();
    // Bytes that are not UTF-8, in a path and in an abstract name.
    let binary = dir
        .path()
        .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bin\xff\xfe"));
    let binary_bound = binary.clone();
    let (held, victim) = ns.within(move || {
        let listener = UnixListener::bind(&bound).unwrap();
        let binary = UnixListener::bind(&binary_bound).unwrap();
        let name = SocketAddr::from_abstract_name(b"abs\xff-bin").unwrap();
        let binary_abstract = UnixListener::bind_addr(&name).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let victim = std::fs::metadata(format!("/proc/self/fd/{}", a.as_raw_fd()))
            .unwrap()
            .ino();
        let forged =
            format!("/netsql\n0000000000000000: 00000063 00000000 00010000 0005 01 {victim} /fake");
        let name = SocketAddr::from_abstract_name(forged.as_bytes()).unwrap();
        let forger = UnixListener::bind_addr(&name).unwrap();
        // A made-up record without a path, then a line that is no record.
        let name = SocketAddr::from_abstract_name(BROKEN).unwrap();
        let breaker = UnixListener::bind_addr(&name).unwrap();
        (
            (listener, a, b, forger, breaker, binary, binary_abstract),
            victim,
        )
    });
    let query = |source: &str| {
        let sql = "SELECT inode, path, unix_refcnt, unix_flags FROM sockets \
                   WHERE family = 'unix' ORDER BY inode";
        let given = source.to_string();
        let out = ns.within(move || {
            Command::new(env!("CARGO_BIN_EXE_netsql"))
                .args(["--source", &given, "--format", "ndjson", "-e", sql])
                .run()
        });
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ndjson(&out.stdout)
    };
    let rows = query("netlink");
    let by_path = |rows: &[common::Row], wanted: &str| {
        rows.iter()
            .find(|r| r["path"].as_str() == Some(wanted))
            .unwrap_or_else(|| panic!("no {wanted:?} in {rows:?}"))
            .clone()
    };
    let listener = by_path(&rows, path.to_str().unwrap());
    assert_eq!(listener["unix_flags"], 65536, "{listener:?}");
    let victim_row = rows
        .iter()
        .find(|r| r["inode"] == victim)
        .expect("the socket pair's end");
    // Its flags come from its state (the made-up record says listening); its RefCount
    // only /proc/net/unix knows, and two records there disagree.
    assert!(
        victim_row["unix_refcnt"].is_null() && victim_row["unix_flags"] == 0,
        "the forged record was believed: {victim_row:?}"
    );
    let broken = format!("@{}", std::str::from_utf8(BROKEN).unwrap());
    by_path(&rows, &broken);
    // A byte that is not UTF-8 reads \xNN in a path as in an abstract name, from either
    // source (U+FFFD would make two paths read alike).
    let escaped = format!("{}/bin\\xff\\xfe", dir.path().to_str().unwrap());
    by_path(&rows, &escaped);
    by_path(&rows, "@abs\\xff-bin");
    // Read from /proc alone, the paths are whole too.
    let rows = query("proc");
    let listener = by_path(&rows, path.to_str().unwrap());
    assert_eq!(listener["unix_flags"], 65536, "{listener:?}");
    by_path(&rows, &broken);
    by_path(&rows, &escaped);
    by_path(&rows, "@abs\\xff-bin");
    drop(held);
}

const BROKEN: &[u8] = b"netsql\n0000000000000000: 00000002 00000000 00000000 0001 01 5\nzzz junk";

/// Interface names any user may give in a namespace of their own: one that is not UTF-8
/// reads with U+FFFD in every table that names interfaces, and its MTU comes from the
/// kernel under its real name; one holding an EM SPACE (white space to Rust, not to the
/// kernel) is one field. Each failed those tables, and with them every namespace a query
/// read.
#[test]
fn an_interface_name_that_is_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let Some(ns) = Netns::create("badname", &[]) else {
        return;
    };
    let names: [(&[u8], &str, &str); 2] = [
        (b"bad\xff", "bad\u{fffd}", "10.44.0"),
        ("em\u{2003}sp".as_bytes(), "em\u{2003}sp", "10.45.0"),
    ];
    for (i, (raw, name, net)) in names.into_iter().enumerate() {
        let raw = OsStr::from_bytes(raw);
        let ip = |before: &[&str], after: &[&str]| {
            let out = ns.command(&["ip"]).args(before).arg(raw).args(after).run();
            assert!(
                out.status.success(),
                "ip {before:?} {raw:?} {after:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let peer = format!("peer{i}");
        ip(
            &["link", "add"],
            &["mtu", "1400", "type", "veth", "peer", "name", &peer],
        );
        ip(&["addr", "add", &format!("{net}.1/24"), "dev"], &[]);
        ip(&["link", "set"], &["up", "dynamic", "on"]);
        ns.exec_ok(&["ip", "link", "set", &peer, "up"]);
        // ip's own view: the multicast groups the device joined (inet and inet6 lines).
        let out = ns.command(&["ip", "maddr", "show", "dev"]).arg(raw).run();
        assert!(out.status.success());
        let groups = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.trim_start().starts_with("inet"))
            .count();
        assert!(groups > 0, "{}", String::from_utf8_lossy(&out.stdout));

        let query = |sql: &str| {
            let out = Command::new(env!("CARGO_BIN_EXE_netsql"))
                .args(["--netns", &ns.name, "--format", "ndjson", "-e", sql])
                .run();
            assert!(
                out.status.success(),
                "{sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ndjson(&out.stdout)
        };
        let found = query(&format!(
            "SELECT mtu, flag_names FROM interfaces WHERE name = '{name}'"
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["mtu"], 1400, "{found:?}");
        // The flags by ip's names; ip shows the link's state (LOWER_UP, ...) where the
        // ioctl's flags say RUNNING.
        let out = ns
            .command(&["ip", "-j", "link", "show", "dev"])
            .arg(raw)
            .run();
        let shown: serde_json::Value =
            serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let mut theirs: Vec<&str> = shown[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .filter(|f| !["LOWER_UP", "DORMANT", "ECHO", "M-DOWN"].contains(f))
            .collect();
        theirs.sort();
        let mut ours: Vec<&str> = found[0]["flag_names"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .filter(|f| *f != "RUNNING")
            .collect();
        ours.sort();
        assert_eq!(ours, theirs);
        assert!(ours.contains(&"DYNAMIC"), "{ours:?}");
        let found = query(&format!(
            "SELECT destination FROM routes WHERE interface = '{name}'"
        ));
        assert!(
            found
                .iter()
                .any(|r| r["destination"] == format!("{net}.0").as_str()),
            "{found:?}"
        );
        let found = query(&format!(
            "SELECT count(*) AS n FROM multicast_groups WHERE interface = '{name}'"
        ));
        assert_eq!(found[0]["n"], groups, "{found:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_netsql"))
        .args(["--netns", &ns.name, "netstat", "-i"])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
