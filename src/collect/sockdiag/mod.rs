//! Socket dumps through NETLINK_SOCK_DIAG (inet_diag, unix_diag): what `ss` reads.

pub mod bytecode;
pub mod destroy;
pub mod events;
pub mod wire;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use super::socket_row::{Family, Protocol, SocketRow};
use super::{netlink, CollectError};

/// One netlink socket reused for every dump of a scan.
pub struct Dumper {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
}

/// A NETLINK_SOCK_DIAG socket talking to the kernel of the calling thread's namespace,
/// with a 1 MiB receive buffer (each recv then holds many sockets, or many acks).
pub(crate) fn connected() -> Result<Socket, CollectError> {
    // A refusal (a seccomp filter, a kernel without sock_diag) may be read from /proc
    // instead; running out of descriptors or memory may not: /proc's rows lack columns.
    let refused = |errno: std::io::Error| {
        if super::exhausted(&errno) {
            CollectError::Socket {
                what: "a NETLINK_SOCK_DIAG socket",
                source: errno,
            }
        } else {
            CollectError::NetlinkRefused {
                what: "NETLINK_SOCK_DIAG".into(),
                errno,
            }
        }
    };
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(refused)?;
    socket.bind_auto().map_err(refused)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(refused)?;
    let _ = socket.set_rx_buf_sz(1 << 20);
    Ok(socket)
}

impl Dumper {
    pub fn open() -> Result<Dumper, CollectError> {
        let socket = connected()?;
        Ok(Dumper {
            socket,
            buf: Vec::with_capacity(64 * 1024),
            seq: 0,
        })
    }

    /// Sends `request` and hands each socket message of the reply to `each`, until the
    /// dump ends or `each` answers `false` (the rest of the reply is left unread).
    fn dump(
        &mut self,
        request: &[u8],
        what: &str,
        mut each: impl FnMut(&[u8]) -> Result<bool, String>,
    ) -> Result<(), CollectError> {
        let answered = netlink::converse(&mut self.socket, &mut self.buf, request, |m| {
            match m.kind {
                // SOCK_DIAG_BY_FAMILY, and TCPDIAG_GETSOCK's replies.
                20 | 18 => each(m.payload),
                _ => Ok(true),
            }
        });
        answered.map_err(|failure| match failure {
            netlink::Failure::Refused(errno) => CollectError::NetlinkRefused {
                what: what.to_string(),
                errno,
            },
            netlink::Failure::Broken(why) => CollectError::Netlink(format!("{what}: {why}")),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Every socket of one inet protocol and family whose state bit is in `states` (and
    /// that `bytecode`, an INET_DIAG filter program, accepts), each handed to `push`
    /// until it answers `false`.
    pub fn inet(
        &mut self,
        protocol: Protocol,
        family: Family,
        states: u32,
        bytecode: Option<&[u8]>,
        ext: wire::Extensions,
        push: &mut dyn FnMut(SocketRow) -> bool,
    ) -> Result<(), CollectError> {
        let seq = self.next_seq();
        let request = wire::inet_request(protocol, family, states, bytecode, ext, seq);
        let what = protocol.proto_name(family);
        self.dump(&request, what, |payload| {
            Ok(push(wire::decode_inet(payload, protocol, ext)?))
        })
    }

    /// Every TCP socket of both families whose state bit is in `states` (and that
    /// `bytecode` accepts), in one walk of the kernel's table, handed to `push` until it
    /// answers `false`: IPv4 rows as they come, then IPv6 ones, the order of two dumps by
    /// family.
    pub fn tcp_both_families(
        &mut self,
        states: u32,
        bytecode: Option<&[u8]>,
        ports: [u16; 2],
        ext: wire::Extensions,
        push: &mut dyn FnMut(SocketRow) -> bool,
    ) -> Result<(), CollectError> {
        let seq = self.next_seq();
        let request = wire::tcp_request_both_families(states, bytecode, ports, ext, seq);
        let mut inet6 = Vec::new();
        let mut more = true;
        self.dump(&request, "tcp", |payload| {
            let row = wire::decode_inet(payload, Protocol::Tcp, ext)?;
            match row.family {
                Family::Inet6 => inet6.push(row),
                _ => more = push(row),
            }
            Ok(more)
        })?;
        for row in inet6 {
            if !more {
                break;
            }
            more = push(row);
        }
        Ok(())
    }

    /// Every unix socket whose state bit is in `states`, each handed to `push` until it
    /// answers `false`.
    pub fn unix(
        &mut self,
        states: u32,
        ext: wire::Extensions,
        push: &mut dyn FnMut(SocketRow) -> bool,
    ) -> Result<(), CollectError> {
        let seq = self.next_seq();
        let request = wire::unix_request(states, ext, seq);
        self.dump(&request, "unix", |payload| {
            Ok(push(wire::decode_unix(payload, ext)?))
        })
    }
}
