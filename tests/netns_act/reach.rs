//! How far a DELETE reaches, each against `ss` and the owners: `--allow-kill=all` closes
//! every socket it can; `--netns all` closes in each namespace it selects and only
//! there; a partial close exits 0 saying what was left; a socket closed after it was
//! listed, its port reused meanwhile, is counted "already gone" and the newcomer lives.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{self, Kid, Netns, RunExt};
use crate::kill::{can_kill, client_ports};
use crate::{netsql_in, ss, Peer};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn allow_kill_all_closes_every_socket_it_can() {
    let Some(ns) = Netns::create("killall", &["ss", "python3"]) else {
        return;
    };
    if !can_kill(&ns) {
        return;
    }
    let _server = Peer::start(&ns, "allsrv", &["serve", "7311"]);
    let _client = Peer::start(&ns, "allcli", &["connect", "7311:3"]);
    let tcp_before = ss(&ns, &["-tan"]);
    // A listener, three connections and their three accepted ends.
    assert_eq!(tcp_before.len(), 7, "{tcp_before:?}");
    let inet = ss(&ns, &["-tuwan"]).len();
    let unix = ss(&ns, &["-xan"]).len();
    let everything = inet + unix;

    let out = netsql_in(
        &ns,
        &[
            "--allow-kill=all",
            "--format",
            "csv",
            "-e",
            "DELETE FROM sockets",
        ],
    )
    .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stderr);
    // Every socket ss showed was matched; each inet socket is closed, or gone when its
    // peer's abort reset it first; each unix socket is counted as not closable.
    // The number just before `label` in the line (0 when the line has no such part).
    let count = |label: &str| -> usize {
        line.split_once(label)
            .and_then(|(head, _)| head.split_whitespace().last())
            .map_or(0, |n| n.parse().expect("a count"))
    };
    assert!(
        line.starts_with(&format!(
            "netsql: closed {} of {everything} matching sockets",
            text(&out.stdout).lines().nth(1).unwrap_or("?")
        )),
        "{line}"
    );
    let closed = count(" of ");
    let gone = count(" already gone");
    assert_eq!(closed + gone, inet, "inet sockets ss listed: {line}");
    assert_eq!(
        count(" unix cannot"),
        unix,
        "unix sockets ss -x listed: {line}"
    );
    assert_eq!(
        ss(&ns, &["-tan"]),
        Vec::<String>::new(),
        "no TCP socket left"
    );
}

#[test]
fn delete_under_netns_all_closes_in_the_namespaces_selected() {
    let names = ["a", "b", "c"].map(|t| Netns::create(&format!("killns-{t}"), &["ss", "python3"]));
    let [Some(a), Some(b), Some(c)] = names else {
        return;
    };
    if !can_kill(&a) {
        return;
    }
    let mut peers = Vec::new();
    for ns in [&a, &b, &c] {
        peers.push(Peer::start(ns, "nssrv", &["serve", "7321"]));
        peers.push(Peer::start(ns, "nscli", &["connect", "7321:2"]));
        assert_eq!(client_ports(ns, 7321).len(), 2);
    }
    let sql = format!(
        "DELETE FROM sockets WHERE remote_port = 7321 AND netns IN ({}, {})",
        a.inode(),
        b.inode()
    );
    let out = common::netsql()
        .args([
            "--netns",
            "all",
            "--allow-kill",
            "--format",
            "csv",
            "-e",
            &sql,
        ])
        .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "count\n4\n", "{}", text(&out.stderr));
    assert!(client_ports(&a, 7321).is_empty(), "a's two are closed");
    assert!(client_ports(&b, 7321).is_empty(), "b's two are closed");
    assert_eq!(client_ports(&c, 7321).len(), 2, "c was not selected");
    // Closed inside their own namespaces: the owners there saw the abort.
    assert_eq!(peers[1].check(), "open=0 reset=0 aborted=2 eof=0");
    assert_eq!(peers[3].check(), "open=0 reset=0 aborted=2 eof=0");
    assert_eq!(peers[5].check(), "open=2 reset=0 aborted=0 eof=0");
}

#[test]
fn a_partial_close_exits_0_and_says_what_was_left() {
    let Some(ns) = Netns::create("partial", &["ss", "python3"]) else {
        return;
    };
    if !can_kill(&ns) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/holder.py");
    let mut holder = Kid::spawn(
        ns.command(&["python3", script, "7340"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let lines = common::Lines::of(holder.stdout.take().unwrap());
    lines.expect("ready");
    let pid = holder.id();
    // The holder's unix sockets, as ss sees them: sock_diag cannot close these.
    let owned = format!("pid={pid},");
    let unix = ss(&ns, &["-xap"])
        .iter()
        .filter(|l| l.contains(&owned))
        .count();
    assert_eq!(unix, 3, "a unix listener and a socketpair");
    let sql = format!(
        "DELETE FROM sockets WHERE (proto = 'tcp' AND state = 'ESTABLISHED' AND local_port = 7340) \
         OR (proto = 'unix' AND pid = {pid})"
    );
    let out = netsql_in(&ns, &["--allow-kill", "--format", "csv", "-e", &sql]).run();
    // Some closed, some not closable: exit 0, the one line says both.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "count\n1\n");
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "netsql: closed 1 of {} matching sockets; {unix} unix cannot be closed by sock_diag",
            1 + unix
        )
    );
    let established = ss(&ns, &["-tn", "state", "established", "sport = :7340"]);
    assert!(established.is_empty(), "{established:?}");
    let after = ss(&ns, &["-xap"])
        .iter()
        .filter(|l| l.contains(&owned))
        .count();
    assert_eq!(after, unix, "the unix sockets are untouched");
}

/// A connection from 127.0.0.1:`port` to `server`, closed with a reset (SO_LINGER 0) so
/// that no TIME_WAIT keeps the pair of ports from being reused at once.
fn connect_from(port: u16, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_linger(Some(Duration::ZERO))?;
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket.bind(&local.into())?;
    socket.connect(&server.into())?;
    Ok(socket.into())
}

/// "open" or what a non-blocking read says of a socket.
fn fate(stream: &TcpStream) -> String {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match std::io::Read::read(&mut &*stream, &mut byte) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => "open".into(),
        Ok(0) => "eof".into(),
        Ok(_) => "data".into(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// The cookie `ss -e` prints (`sk:HEX`) for the established socket from local `port`.
fn ss_cookie(ns: &Netns, port: u16) -> Option<String> {
    ss(
        ns,
        &["-tne", "state", "established", &format!("sport = :{port}")],
    )
    .iter()
    .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
    .find_map(|w| w.strip_prefix("sk:").map(str::to_string))
}

/// The DNS answer "no such name" to `query`.
fn nxdomain(query: &[u8]) -> Vec<u8> {
    let mut answer = query.to_vec();
    answer[2] |= 0x80; // QR: a response
    answer[3] = 0x80 | 3; // RA, RCODE 3 (NXDOMAIN)
    answer
}

#[test]
fn delete_by_cookie_spares_a_port_reused_meanwhile() {
    let Some(ns) = Netns::create("cookie", &["ss"]) else {
        return;
    };
    if !can_kill(&ns) {
        return;
    }
    // host_name() of 127.0.0.9 asks the resolver, which here is a socket of ours: its
    // question arrives after the DELETE's rows (cookies included) were read and before
    // anything is closed. That is the moment to close two of the listed connections,
    // and reuse one's pair of ports for a new connection.
    ns.etc(&[
        ("hosts", "127.0.0.1 localhost\n"),
        (
            "resolv.conf",
            "nameserver 127.0.0.1\noptions timeout:10 attempts:1\n",
        ),
        ("nsswitch.conf", "hosts: files dns\n"),
    ]);
    let server: SocketAddr = "127.0.0.9:7331".parse().unwrap();
    let (dns, listener) = ns.within(move || {
        (
            UdpSocket::bind("127.0.0.1:53").unwrap(),
            TcpListener::bind(server).unwrap(),
        )
    });
    dns.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let binary = env!("CARGO_BIN_EXE_netsql");
    // The resolver's wait is bounded (200 ms); should this machine stall past it before
    // the swap is done, netsql closed the old connection before the new one existed:
    // the attempt proves nothing and is made again on other ports.
    for attempt in 0..3u16 {
        let (reused, closed) = (41000 + 10 * attempt, 41001 + 10 * attempt);
        let (l, old) = (listener.try_clone().unwrap(), [reused, closed]);
        let held = ns.within(move || {
            old.map(|port| {
                let client = connect_from(port, server).unwrap();
                (client, l.accept().unwrap().0)
            })
        });
        let old_cookie = ss_cookie(&ns, reused).expect("ss shows the first connection");
        let sql = format!(
            "DELETE FROM sockets WHERE local_port IN ({reused}, {closed}) AND remote_port = 7331 \
             AND host_name(remote_address) IS NULL"
        );
        let kid = Kid::spawn(
            ns.command(&[binary, "--allow-kill", "--format", "csv", "-e", &sql])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let (dns_again, l) = (dns.try_clone().unwrap(), listener.try_clone().unwrap());
        let newcomer = ns.within(move || {
            let mut query = [0u8; 512];
            let (n, from) = dns_again
                .recv_from(&mut query)
                .expect("netsql asks for 127.0.0.9's name");
            drop(held);
            // Under load the kernel may not have let go of the pair of ports yet: then
            // this attempt cannot show anything (said below) and another is made.
            let reconnected = connect_from(reused, server);
            let newcomer = reconnected.map(|client| (client, l.accept().unwrap().0));
            let _ = dns_again.send_to(&nxdomain(&query[..n]), from);
            newcomer
        });
        let out = kid.finish_within(Duration::from_secs(30));
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let (client, accepted) = match newcomer {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("attempt {attempt}: the pair of ports was not free again: {e}");
                continue;
            }
        };
        let new_cookie = ss_cookie(&ns, reused);
        assert_eq!(
            (fate(&client), fate(&accepted)),
            ("open".to_string(), "open".to_string()),
            "the connection made after the listing is untouched: {stderr}"
        );
        if text(&out.stdout) != "count\n0\n" {
            eprintln!("attempt {attempt}: netsql closed before the ports were reused: {stderr}");
            continue;
        }
        assert!(
            new_cookie.is_some() && new_cookie.as_ref() != Some(&old_cookie),
            "ss: the pair of ports is in use by another socket ({old_cookie} -> {new_cookie:?})"
        );
        assert_eq!(
            stderr.trim(),
            "netsql: closed 0 of 2 matching sockets; 2 already gone"
        );
        let left: BTreeSet<String> = ss(&ns, &["-tn", "state", "established"])
            .iter()
            .map(|l| l.split(' ').nth(2).unwrap().to_string())
            .collect();
        assert!(left.contains(&format!("127.0.0.1:{reused}")), "{left:?}");
        assert!(!left.contains(&format!("127.0.0.1:{closed}")), "{left:?}");
        return;
    }
    panic!("three attempts in a row could not reuse the ports within the resolver's 200 ms");
}

/// A socket bound to 127.0.0.1:`port` with SO_REUSEPORT: a listener for TCP.
fn reuseport(kind: libc::c_int, port: u16) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; the address is a
    // zeroed sockaddr_in filled in below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, kind, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0, "SO_REUSEPORT: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let bound = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        if kind == libc::SOCK_STREAM {
            assert_eq!(libc::listen(fd, 8), 0);
        }
        owned
    }
}

/// SO_ERROR of a socket (what SOCK_DESTROY leaves: ECONNABORTED), cleared by reading.
fn so_error(fd: &std::os::fd::OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    let mut error: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int of the size it is told.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut error as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    error
}

/// Sockets sharing a port through SO_REUSEPORT: the kernel's lookup by identity lands
/// on one member of the group, and `ss -K` closes that one alone. Each selected member
/// is closed, and a member the WHERE leaves out is untouched.
#[test]
fn delete_closes_each_member_of_a_reuseport_group() {
    let Some(ns) = Netns::create("reuseport", &["ss"]) else {
        return;
    };
    if !can_kill(&ns) {
        return;
    }
    let (udp, tcp, spare) = ns.within(|| {
        let udp: Vec<_> = (0..4).map(|_| reuseport(libc::SOCK_DGRAM, 7410)).collect();
        let tcp: Vec<_> = (0..4).map(|_| reuseport(libc::SOCK_STREAM, 7411)).collect();
        (udp, tcp, reuseport(libc::SOCK_DGRAM, 7410))
    });
    let listening = |ns: &Netns| ss(ns, &["-tln", "sport = :7411"]).len();
    assert_eq!(listening(&ns), 4);
    assert_eq!(ss(&ns, &["-uan", "sport = :7410"]).len(), 5);
    let sql = format!(
        "DELETE FROM sockets WHERE local_port IN (7410, 7411) AND inode <> {}",
        common::ino(&spare)
    );
    let out = netsql_in(&ns, &["--allow-kill", "--format", "csv", "-e", &sql]).run();
    let line = text(&out.stderr);
    assert!(out.status.success(), "{line}");
    assert_eq!(line.trim(), "netsql: closed 8 of 8 matching sockets");
    assert_eq!(text(&out.stdout), "count\n8\n");
    let errors: Vec<i32> = udp.iter().chain(&tcp).map(so_error).collect();
    assert_eq!(
        errors,
        vec![libc::ECONNABORTED; 8],
        "each member was aborted"
    );
    assert_eq!(listening(&ns), 0, "no listener left");
    assert_eq!(so_error(&spare), 0, "the member left out is untouched");
}
