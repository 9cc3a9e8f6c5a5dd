//! The sockets the namespace test makes, and what it knows of each.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::common::ino;

/// The identity of a socket: what must match exactly, row for row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub proto: String,
    pub ty: String,
    pub state: String,
    pub local: String,
    pub remote: String,
    pub inode: u64,
    pub path: Option<String>,
    pub peer: Option<u64>,
}

/// What the test made: each socket's key, plus queue and timer facts where they are known.
#[derive(Default)]
pub struct Made {
    pub keys: Vec<Key>,
    /// (key, recv_q, send_q from sock_diag)
    pub queues: Vec<(Key, u64, u64)>,
    pub timers: Vec<(Key, &'static str)>,
    /// Sockets owned by someone other than root.
    pub uids: Vec<(Key, u64)>,
    pub fds: Vec<OwnedFd>,
}

impl Made {
    /// A loopback listener on `port` (backlog 4), its LISTEN row noted.
    fn listen(&mut self, port: u16) -> Socket {
        let lst = listener(&format!("127.0.0.1:{port}"), 4);
        self.keys.push(tcp_key(
            "tcp",
            "LISTEN",
            local(&lst),
            "0.0.0.0 0",
            ino(&lst),
        ));
        lst
    }

    /// Notes a socket's row and the timer it must show.
    fn note(&mut self, key: Key, timer: &'static str) {
        self.timers.push((key.clone(), timer));
        self.keys.push(key);
    }
}

fn tcp_key(proto: &str, state: &str, local: SocketAddr, remote: &str, inode: u64) -> Key {
    Key {
        proto: proto.into(),
        ty: if proto.starts_with("raw") {
            "raw"
        } else if proto.starts_with("tcp") {
            "stream"
        } else {
            "dgram"
        }
        .into(),
        state: state.into(),
        local: format!("{} {}", local.ip(), local.port()),
        remote: remote.into(),
        inode,
        path: None,
        peer: None,
    }
}

fn addr_text(addr: SocketAddr) -> String {
    format!("{} {}", addr.ip(), addr.port())
}

fn unix_key(ty: &str, state: &str, inode: u64, path: Option<&str>, peer: Option<u64>) -> Key {
    Key {
        proto: "unix".into(),
        ty: ty.into(),
        state: state.into(),
        local: String::new(),
        remote: String::new(),
        inode,
        path: path.map(str::to_string),
        peer,
    }
}

fn listener(addr: &str, backlog: i32) -> Socket {
    let addr: SocketAddr = addr.parse().unwrap();
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    if addr.is_ipv6() {
        socket.set_only_v6(true).unwrap();
    }
    socket.bind(&addr.into()).unwrap();
    socket.listen(backlog).unwrap();
    socket
}

fn iptables(ns: &str, rule: &str) {
    let mut argv = vec!["netns", "exec", ns, "iptables", "-w"];
    argv.extend(rule.split_whitespace());
    crate::common::run_ok("ip", &argv);
}

/// The kernel's TCP state numbers (include/net/tcp_states.h).
const ESTABLISHED: u8 = 1;
const SYN_SENT: u8 = 2;
const SYN_RECV: u8 = 3;
const FIN_WAIT1: u8 = 4;
const FIN_WAIT2: u8 = 5;
const TIME_WAIT: u8 = 6;
const CLOSE: u8 = 7;
const CLOSE_WAIT: u8 = 8;
const LAST_ACK: u8 = 9;
const CLOSING: u8 = 11;

/// Waits until this thread's namespace holds an IPv4 TCP socket from local port `from`
/// to remote port `to` in `state`, as /proc/thread-self/net/tcp shows it: the packets a
/// step sent have been through loopback (and the namespace's iptables). Loopback
/// delivers in the sender's system call only when its softirq runs inline; on a loaded
/// machine ksoftirqd delivers later.
fn wait_tcp(from: u16, to: u16, state: u8) {
    wait_proc("tcp", from, to, state, 0);
}

/// Waits until /proc/thread-self/net/`table` (tcp or udp) shows a socket from local port
/// `from` to remote port `to` in `state` with at least `queued` in its receive queue.
fn wait_proc(table: &str, from: u16, to: u16, state: u8, queued: u64) {
    crate::common::wait_until(
        &format!("{table} {from} -> {to} in state {state} with {queued} queued"),
        Duration::from_secs(30),
        || {
            crate::common::proc_sockets(table).iter().any(|s| {
                (s.local_port, s.remote_port, s.state) == (from, to, state) && s.rx_queue >= queued
            })
        },
    );
}

fn local(socket: &Socket) -> SocketAddr {
    socket.local_addr().unwrap().as_socket().unwrap()
}

/// A connected pair through `lst`: (client, accepted server side).
fn connect(lst: &Socket) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(local(lst)).unwrap();
    let (server, _) = lst.accept().unwrap();
    (client, server.into())
}

/// Builds every socket; runs on a thread inside the namespace.
pub fn build(ns: String, dir: std::path::PathBuf) -> Made {
    let mut m = Made::default();
    let lo = "127.0.0.1";

    // A listener with two connections waiting in its accept queue.
    let lst = listener("127.0.0.1:7000", 8);
    let k = tcp_key("tcp", "LISTEN", local(&lst), "0.0.0.0 0", ino(&lst));
    m.queues.push((k.clone(), 2, 8));
    m.timers.push((k.clone(), "off"));
    m.keys.push(k);
    for _ in 0..2 {
        let client = TcpStream::connect(local(&lst)).unwrap();
        let c = client.local_addr().unwrap();
        // The server's end exists once the client's ACK has been through.
        wait_tcp(7000, c.port(), ESTABLISHED);
        m.keys.push(tcp_key(
            "tcp",
            "ESTABLISHED",
            c,
            &format!("{lo} 7000"),
            ino(&client),
        ));
        // Not yet accepted: no file, so no inode.
        m.keys
            .push(tcp_key("tcp", "ESTABLISHED", local(&lst), &addr_text(c), 0));
        m.fds.push(client.into());
    }
    m.fds.push(lst.into());

    // ESTABLISHED with 100 unread bytes.
    let lst = m.listen(7001);
    let (mut client, server) = connect(&lst);
    client.write_all(&[7u8; 100]).unwrap();
    let c = client.local_addr().unwrap();
    wait_proc("tcp", 7001, c.port(), ESTABLISHED, 100);
    m.keys.push(tcp_key(
        "tcp",
        "ESTABLISHED",
        c,
        &format!("{lo} 7001"),
        ino(&client),
    ));
    let k = tcp_key(
        "tcp",
        "ESTABLISHED",
        local(&lst),
        &addr_text(c),
        ino(&server),
    );
    m.queues.push((k.clone(), 100, 0));
    m.timers.push((k.clone(), "off"));
    m.keys.push(k);
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // SYN_SENT: the SYN to 7002 is dropped.
    iptables(&ns, "-A INPUT -p tcp --dport 7002 --syn -j DROP");
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_nonblocking(true).unwrap();
    let _ = s.connect(&"127.0.0.1:7002".parse::<SocketAddr>().unwrap().into());
    wait_tcp(local(&s).port(), 7002, SYN_SENT);
    m.note(
        tcp_key("tcp", "SYN_SENT", local(&s), &format!("{lo} 7002"), ino(&s)),
        "on",
    );
    m.fds.push(s.into());

    // SYN_RECV: the client's final ACK to 7003 is dropped; the client thinks it is
    // connected, the server holds a request socket.
    iptables(
        &ns,
        "-A INPUT -p tcp --dport 7003 --tcp-flags SYN,ACK,FIN,RST ACK -j DROP",
    );
    let lst = m.listen(7003);
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_nonblocking(true).unwrap();
    let _ = s.connect(&local(&lst).into());
    let c = local(&s);
    wait_tcp(c.port(), 7003, ESTABLISHED);
    wait_tcp(7003, c.port(), SYN_RECV);
    m.keys.push(tcp_key(
        "tcp",
        "ESTABLISHED",
        c,
        &format!("{lo} 7003"),
        ino(&s),
    ));
    m.note(
        tcp_key("tcp", "SYN_RECV", local(&lst), &addr_text(c), 0),
        "on",
    );
    m.fds.extend([lst.into(), s.into()]);

    // FIN_WAIT1 and CLOSE_WAIT: the server's ACK of the client's FIN is dropped.
    let lst = m.listen(7004);
    let (client, server) = connect(&lst);
    iptables(&ns, "-A INPUT -p tcp --sport 7004 -j DROP");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let c = client.local_addr().unwrap();
    wait_tcp(7004, c.port(), CLOSE_WAIT);
    wait_tcp(c.port(), 7004, FIN_WAIT1);
    m.note(
        tcp_key("tcp", "FIN_WAIT1", c, &format!("{lo} 7004"), ino(&client)),
        "on",
    );
    m.keys.push(tcp_key(
        "tcp",
        "CLOSE_WAIT",
        local(&lst),
        &addr_text(c),
        ino(&server),
    ));
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // FIN_WAIT2 and CLOSE_WAIT: a half-close, nothing dropped.
    let lst = m.listen(7005);
    let (client, server) = connect(&lst);
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let c = client.local_addr().unwrap();
    wait_tcp(c.port(), 7005, FIN_WAIT2);
    wait_tcp(7005, c.port(), CLOSE_WAIT);
    m.keys.push(tcp_key(
        "tcp",
        "FIN_WAIT2",
        c,
        &format!("{lo} 7005"),
        ino(&client),
    ));
    m.note(
        tcp_key(
            "tcp",
            "CLOSE_WAIT",
            local(&lst),
            &addr_text(c),
            ino(&server),
        ),
        "off",
    );
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // LAST_ACK: after the client's FIN, the client's ACK of the server's FIN is dropped.
    // The client, having seen the server's FIN, is in TIME_WAIT.
    let lst = m.listen(7006);
    let (client, server) = connect(&lst);
    let c = client.local_addr().unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_tcp(c.port(), 7006, FIN_WAIT2);
    iptables(&ns, "-A INPUT -p tcp --dport 7006 -j DROP");
    server.shutdown(std::net::Shutdown::Write).unwrap();
    wait_tcp(c.port(), 7006, TIME_WAIT);
    wait_tcp(7006, c.port(), LAST_ACK);
    m.note(
        tcp_key("tcp", "LAST_ACK", local(&lst), &addr_text(c), ino(&server)),
        "on",
    );
    m.note(
        tcp_key("tcp", "TIME_WAIT", c, &format!("{lo} 7006"), 0),
        "timewait",
    );
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // CLOSING: both sides send FIN; everything from client to server is dropped, so the
    // client sees the server's FIN before any ACK of its own (simultaneous close) while
    // the server waits in FIN_WAIT1.
    let lst = m.listen(7007);
    let (client, server) = connect(&lst);
    let c = client.local_addr().unwrap();
    iptables(&ns, "-A INPUT -p tcp --dport 7007 -j DROP");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_tcp(c.port(), 7007, FIN_WAIT1);
    server.shutdown(std::net::Shutdown::Write).unwrap();
    wait_tcp(c.port(), 7007, CLOSING);
    wait_tcp(7007, c.port(), FIN_WAIT1);
    m.note(
        tcp_key("tcp", "CLOSING", c, &format!("{lo} 7007"), ino(&client)),
        "on",
    );
    m.keys.push(tcp_key(
        "tcp",
        "FIN_WAIT1",
        local(&lst),
        &addr_text(c),
        ino(&server),
    ));
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // TIME_WAIT: an ordinary close, client first.
    let lst = m.listen(7008);
    let (client, server) = connect(&lst);
    let c = client.local_addr().unwrap();
    drop(client);
    wait_tcp(c.port(), 7008, FIN_WAIT2);
    drop(server);
    wait_tcp(c.port(), 7008, TIME_WAIT);
    m.keys
        .push(tcp_key("tcp", "TIME_WAIT", c, &format!("{lo} 7008"), 0));
    m.fds.push(lst.into());

    // 1000 bytes the server never acknowledges.
    let lst = m.listen(7009);
    let (mut client, server) = connect(&lst);
    iptables(&ns, "-A INPUT -p tcp --dport 7009 -j DROP");
    // Sent, unacknowledged and timed as soon as the write returns.
    client.write_all(&[1u8; 1000]).unwrap();
    let c = client.local_addr().unwrap();
    let k = tcp_key("tcp", "ESTABLISHED", c, &format!("{lo} 7009"), ino(&client));
    m.queues.push((k.clone(), 0, 1000));
    m.timers.push((k.clone(), "on"));
    m.keys.push(k);
    m.keys.push(tcp_key(
        "tcp",
        "ESTABLISHED",
        local(&lst),
        &addr_text(c),
        ino(&server),
    ));
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // Wildcard and IPv6 listeners.
    for (addr, proto, remote) in [
        ("0.0.0.0:7010", "tcp", "0.0.0.0 0"),
        ("[::]:7011", "tcp6", ":: 0"),
        ("[::1]:7012", "tcp6", ":: 0"),
    ] {
        let lst = listener(addr, 4);
        m.keys
            .push(tcp_key(proto, "LISTEN", local(&lst), remote, ino(&lst)));
        m.fds.push(lst.into());
    }

    // UDP: unconnected with a queued datagram, connected, and on ::.
    let unconnected = UdpSocket::bind("0.0.0.0:7020").unwrap();
    let connected = UdpSocket::bind("127.0.0.1:7021").unwrap();
    connected.connect("127.0.0.1:7020").unwrap();
    connected.send(b"hello").unwrap();
    // UDP's rx_queue is memory charged, not bytes: any is the datagram.
    wait_proc("udp", 7020, 0, CLOSE, 1);
    let v6 = UdpSocket::bind("[::]:7022").unwrap();
    m.keys.push(tcp_key(
        "udp",
        "CLOSE",
        unconnected.local_addr().unwrap(),
        "0.0.0.0 0",
        ino(&unconnected),
    ));
    m.keys.push(tcp_key(
        "udp",
        "ESTABLISHED",
        connected.local_addr().unwrap(),
        &format!("{lo} 7020"),
        ino(&connected),
    ));
    m.keys.push(tcp_key(
        "udp6",
        "CLOSE",
        v6.local_addr().unwrap(),
        ":: 0",
        ino(&v6),
    ));
    m.fds
        .extend([unconnected.into(), connected.into(), v6.into()]);

    // A raw ICMP socket: its "port" is the protocol number, 1.
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::ICMPV4)).unwrap();
    let k = tcp_key(
        "raw",
        "CLOSE",
        "0.0.0.0:1".parse().unwrap(),
        "0.0.0.0 0",
        ino(&raw),
    );
    m.keys.push(k);
    m.fds.push(raw.into());

    // UDP-Lite, which ss does not list but sock_diag and /proc/net/udplite do.
    let lite = Socket::new(
        Domain::IPV4,
        Type::DGRAM,
        Some(socket2::Protocol::from(libc::IPPROTO_UDPLITE)),
    )
    .unwrap();
    lite.bind(&"127.0.0.1:7030".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    m.keys.push(tcp_key(
        "udplite",
        "CLOSE",
        local(&lite),
        "0.0.0.0 0",
        ino(&lite),
    ));
    m.fds.push(lite.into());

    // Sockets of another user. A socket's owner is the fsuid of the thread that made it,
    // and setfsuid (the raw syscall, not glibc's process-wide wrapper) is per thread.
    // SAFETY: setfsuid only changes this thread's filesystem uid.
    let previous = unsafe { libc::syscall(libc::SYS_setfsuid, 4242) };
    let theirs = listener("127.0.0.1:7013", 4);
    let their_unix = UnixDatagram::unbound().unwrap();
    unsafe { libc::syscall(libc::SYS_setfsuid, previous) };
    let k = tcp_key("tcp", "LISTEN", local(&theirs), "0.0.0.0 0", ino(&theirs));
    m.uids.push((k.clone(), 4242));
    m.keys.push(k);
    let k = unix_key("dgram", "CLOSE", ino(&their_unix), None, None);
    m.uids.push((k.clone(), 4242));
    m.keys.push(k);
    m.fds.extend([theirs.into(), their_unix.into()]);

    // unix: a stream listener with a path, a connection to it with 5 unread bytes.
    let path = dir.join("stream.sock");
    let path_text = path.to_str().unwrap().to_string();
    let lst = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    lst.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    lst.listen(5).unwrap();
    let mut client = UnixStream::connect(&path).unwrap();
    let (server, _) = lst.accept().unwrap();
    client.write_all(b"12345").unwrap();
    let k = unix_key("stream", "LISTEN", ino(&lst), Some(&path_text), None);
    m.queues.push((k.clone(), 0, 5));
    m.keys.push(k);
    m.keys.push(unix_key(
        "stream",
        "ESTABLISHED",
        ino(&client),
        None,
        Some(ino(&server)),
    ));
    let k = unix_key(
        "stream",
        "ESTABLISHED",
        ino(&server),
        Some(&path_text),
        Some(ino(&client)),
    );
    m.queues.push((k.clone(), 5, 0));
    m.keys.push(k);
    m.fds.extend([lst.into(), client.into(), server.into()]);

    // unix dgram with an abstract name, and one unnamed.
    use std::os::linux::net::SocketAddrExt;
    let name = std::os::unix::net::SocketAddr::from_abstract_name(b"netsql-test-dgram").unwrap();
    let abs = UnixDatagram::bind_addr(&name).unwrap();
    let unnamed = UnixDatagram::unbound().unwrap();
    m.keys.push(unix_key(
        "dgram",
        "CLOSE",
        ino(&abs),
        Some("@netsql-test-dgram"),
        None,
    ));
    m.keys
        .push(unix_key("dgram", "CLOSE", ino(&unnamed), None, None));
    m.fds.extend([abs.into(), unnamed.into()]);

    // A socketpair and a seqpacket listener.
    let (a, b) = UnixStream::pair().unwrap();
    m.keys.push(unix_key(
        "stream",
        "ESTABLISHED",
        ino(&a),
        None,
        Some(ino(&b)),
    ));
    m.keys.push(unix_key(
        "stream",
        "ESTABLISHED",
        ino(&b),
        None,
        Some(ino(&a)),
    ));
    m.fds.extend([a.into(), b.into()]);
    let seq_path = dir.join("seq.sock");
    let seq = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    seq.bind(&SockAddr::unix(&seq_path).unwrap()).unwrap();
    seq.listen(3).unwrap();
    let k = unix_key("seqpacket", "LISTEN", ino(&seq), seq_path.to_str(), None);
    m.queues.push((k.clone(), 0, 3));
    m.keys.push(k);
    m.fds.push(seq.into());
    m
}
