//! The sockets the tests compare: each made in the namespace for one thing to show.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Bytes the bulk transfer sends.
pub const BULK: usize = 3_000_000;

/// What the test made, held open while it compares.
pub struct Made {
    pub _held: Vec<OwnedFd>,
    pub bulk_client_port: u16,
    /// The reno connection's client port, or why the kernel would not make one.
    pub reno_port: Result<u16, String>,
    pub udp_port: u16,
    pub marked_port: u16,
    /// The sender whose peer stopped reading: data queued, a zero window.
    pub stalled_port: u16,
}

pub fn setsockopt_str(fd: &impl AsRawFd, level: i32, name: i32, value: &[u8]) -> bool {
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

pub fn setsockopt_int(fd: &impl AsRawFd, level: i32, name: i32, value: i32) {
    let ok = setsockopt_str(fd, level, name, &value.to_ne_bytes());
    assert!(
        ok,
        "setsockopt {level}/{name}: {}",
        std::io::Error::last_os_error()
    );
}

pub fn build() -> Made {
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

    // reno: built into every kernel, but only where setting it works is it a thing ss
    // can show (probed by doing it, not by the advertised list).
    let reno_port = {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if setsockopt_str(&socket, libc::IPPROTO_TCP, libc::TCP_CONGESTION, b"reno") {
            let listener = TcpListener::bind("127.0.0.1:7303").unwrap();
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
            Ok(port)
        } else {
            Err(format!(
                "the kernel refused TCP_CONGESTION reno: {}",
                std::io::Error::last_os_error()
            ))
        }
    };

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
    // Two socket options beyond the defaults, for the sockopt column.
    setsockopt_int(&marked, libc::IPPROTO_IP, libc::IP_RECVERR, 1);
    setsockopt_int(&marked, libc::IPPROTO_IP, libc::IP_FREEBIND, 1);
    // A pacing limit: 1,000,000 bytes/s, which ss prints as `pacing_rate X/8Mbps` (every
    // other socket's limit is the kernel's "unlimited", ~0, shown by ss as nothing).
    setsockopt_int(
        &marked,
        libc::SOL_SOCKET,
        libc::SO_MAX_PACING_RATE,
        1_000_000,
    );
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

    // A zero window: the peer never reads, the sender writes until it cannot.
    let stall_listener = TcpListener::bind("127.0.0.1:7306").unwrap();
    let sender = TcpStream::connect("127.0.0.1:7306").unwrap();
    let (receiver, _) = stall_listener.accept().unwrap();
    setsockopt_int(&receiver, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
    sender.set_nonblocking(true).unwrap();
    let chunk = vec![3u8; 65536];
    let mut quiet = 0;
    while quiet < 20 {
        match (&sender).write(&chunk) {
            Ok(n) if n > 0 => quiet = 0,
            Ok(_) => quiet += 1,
            Err(_) => {
                quiet += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    let stalled_port = sender.local_addr().unwrap().port();
    held.extend([stall_listener.into(), sender.into(), receiver.into()]);

    // A connection whose "ms since" fields differ by more than any two reads take: the
    // client sent a byte, and only once the kernel says that was 300 ms ago did it
    // receive one (fields swapped, or in the wrong unit, show).
    let chatty_listener = TcpListener::bind("127.0.0.1:7307").unwrap();
    let mut chatty = TcpStream::connect("127.0.0.1:7307").unwrap();
    let (mut chatty_server, _) = chatty_listener.accept().unwrap();
    chatty.write_all(b"x").unwrap();
    chatty_server.read_exact(&mut [0u8; 1]).unwrap();
    crate::common::wait_until(
        "the byte sent 300 ms ago",
        std::time::Duration::from_secs(30),
        || crate::common::tcp_info(&chatty).tcpi_last_data_sent >= 300,
    );
    chatty_server.write_all(b"y").unwrap();
    chatty.read_exact(&mut [0u8; 1]).unwrap();
    held.extend([chatty_listener.into(), chatty.into(), chatty_server.into()]);

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
        stalled_port,
    }
}
