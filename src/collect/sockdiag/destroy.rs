//! SOCK_DESTROY: closing sockets by their sock_diag identity, as `ss -K` does.
//!
//! Each request names one socket by protocol, family, both endpoints, bound interface and
//! cookie; the kernel (CONFIG_INET_DIAG_DESTROY) looks it up and aborts it (the peer of a
//! TCP connection gets a reset, local readers ECONNABORTED). Because the cookie is part of
//! the name, a socket that closed since it was listed, and whose ports were reused, is
//! not found (ENOENT) rather than the newcomer killed. Requests travel many to a `send`
//! (the kernel handles each message of a datagram in turn and acks each), where ss sends
//! one and waits for its answer.
//!
//! A listener or an unconnected UDP socket that shares its port with others through
//! SO_REUSEPORT is not always found by its own identity: the kernel's lookup picks one
//! member of the group by a hash of the request's remote end, and the cookie check then
//! refuses any other (so `ss -K` closes one member and reports nothing for the rest).
//! Such a socket, still listed by a dump after its ENOENT, is asked for again with other
//! remote ports, each a new hash, until the lookup lands on it; the cookie still
//! guarantees no other socket is closed.

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::{SockDiagDestroy, SockDiagMessage};

use super::wire;
use crate::collect::socket_row::{Family, Protocol};
use crate::collect::CollectError;

/// One socket to close, named as sock_diag named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    pub family: Family,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bound_if: u32,
    pub cookie: u64,
}

/// What happened to the sockets of one or more destroy runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub closed: u64,
    /// Not found under that identity: closed on its own meanwhile (ENOENT).
    pub gone: u64,
    /// Still there, but never reached by the kernel's lookup: a member of an SO_REUSEPORT
    /// group that [`ROUNDS`] other remote ports did not land on.
    pub unreached: u64,
    /// The kernel cannot (no CONFIG_INET_DIAG_DESTROY, or not for this protocol).
    pub unsupported: u64,
    /// No CAP_NET_ADMIN in the socket's namespace (EPERM, EACCES).
    pub denied: u64,
    /// Anything else, with the first such error.
    pub failed: u64,
    pub first_failure: Option<String>,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.closed += other.closed;
        self.gone += other.gone;
        self.unreached += other.unreached;
        self.unsupported += other.unsupported;
        self.denied += other.denied;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn count(&mut self, errno: i32) {
        match errno {
            0 => self.closed += 1,
            libc::ENOENT => self.gone += 1,
            libc::EOPNOTSUPP | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT => self.unsupported += 1,
            libc::EPERM | libc::EACCES => self.denied += 1,
            other => {
                self.failed += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(std::io::Error::from_raw_os_error(other).to_string());
                }
            }
        }
    }
}

/// Requests per `send`: their acks (36 bytes each, a few hundred of socket buffer) must
/// fit the receive buffer before we read them.
const BATCH: usize = 256;

/// The SOCK_DESTROY message for `target`, with sequence number `seq`.
pub fn request(target: &Target, seq: u32) -> Vec<u8> {
    let (af, mut id) = match target.family {
        Family::Inet6 => (libc::AF_INET6 as u8, SocketId::new_v6()),
        _ => (libc::AF_INET as u8, SocketId::new_v4()),
    };
    id.source_port = target.local.port();
    id.destination_port = target.remote.port();
    id.source_address = widen(target.family, target.local.ip());
    id.destination_address = widen(target.family, target.remote.ip());
    id.interface_id = target.bound_if;
    // The two u32 halves, low first, as the dump gave them (see wire::decode_inet).
    let low = (target.cookie as u32).to_ne_bytes();
    let high = ((target.cookie >> 32) as u32).to_ne_bytes();
    id.cookie = [
        low[0], low[1], low[2], low[3], high[0], high[1], high[2], high[3],
    ];
    let request = InetRequest {
        family: af,
        protocol: target.protocol.ipproto().unwrap_or(0),
        extensions: ExtensionFlags::empty(),
        states: StateFlags::from_bits_retain(wire::ALL_STATES),
        socket_id: id,
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = seq;
    let payload = SockDiagDestroy::new(SockDiagMessage::InetRequest(request));
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// An IPv4 address in an IPv6 socket's request is written v4-mapped.
fn widen(family: Family, ip: IpAddr) -> IpAddr {
    match (family, ip) {
        (Family::Inet6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => ip,
    }
}

/// Whether SOCK_DESTROY can name sockets of `protocol` (raw needs the raw protocol
/// number, which sock_diag's dump does not give back; unix has no destroy at all).
pub fn can_destroy(protocol: Protocol) -> bool {
    matches!(protocol, Protocol::Tcp | Protocol::Udp | Protocol::UdpLite)
}

/// How many other remote ports a socket of an SO_REUSEPORT group is asked for under:
/// the lookup picks a member uniformly, so one of a group of 64 is missed by all of them
/// with a chance of (63/64)^1024, about one in 10^7.
pub const ROUNDS: u16 = 1024;

/// Closes each of `targets` in the calling thread's network namespace.
pub fn destroy(targets: &[Target]) -> Result<Tally, CollectError> {
    let socket = super::connected()?;
    // Error acks would echo each request back; the errno is all we read.
    let _ = socket.set_cap_ack(true);
    let mut tally = Tally::default();
    let mut missed = Vec::new();
    for (target, errno) in targets.iter().zip(answers(&socket, targets, None)?) {
        if errno == libc::ENOENT && target.remote.ip().is_unspecified() && target.remote.port() == 0
        {
            missed.push(target.clone());
        } else {
            tally.count(errno);
        }
    }
    if missed.is_empty() {
        return Ok(tally);
    }
    // Those still listed share their port: gone ones are gone.
    let alive = listed(&missed)?;
    let (mut left, gone): (Vec<Target>, Vec<Target>) =
        missed.into_iter().partition(|t| alive.contains(&t.cookie));
    tally.gone += gone.len() as u64;
    for port in 1..=ROUNDS {
        if left.is_empty() {
            break;
        }
        let errnos = answers(&socket, &left, Some(port))?;
        let mut next = Vec::new();
        for (target, errno) in left.into_iter().zip(errnos) {
            match errno {
                libc::ENOENT => next.push(target),
                other => tally.count(other),
            }
        }
        left = next;
    }
    tally.unreached += left.len() as u64;
    Ok(tally)
}

/// The errno each target's SOCK_DESTROY was answered with (0: closed), in order; with
/// `remote_port`, each asked for as if its remote end had that port.
fn answers(
    socket: &netlink_sys::Socket,
    targets: &[Target],
    remote_port: Option<u16>,
) -> Result<Vec<i32>, CollectError> {
    let mut errnos = vec![0; targets.len()];
    let mut out = Vec::with_capacity(BATCH * 72);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut seq = 0u32;
    for (n, chunk) in targets.chunks(BATCH).enumerate() {
        out.clear();
        let first = seq.wrapping_add(1);
        for target in chunk {
            seq = seq.wrapping_add(1);
            match remote_port {
                None => out.extend_from_slice(&request(target, seq)),
                Some(port) => {
                    let mut asked = target.clone();
                    asked.remote.set_port(port);
                    out.extend_from_slice(&request(&asked, seq));
                }
            }
        }
        socket
            .send(&out, 0)
            .map_err(|e| CollectError::Netlink(format!("send SOCK_DESTROY: {e}")))?;
        let mut answered = 0;
        while answered < chunk.len() {
            buf.clear();
            match socket.recv(&mut buf, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CollectError::Netlink(format!("recv SOCK_DESTROY ack: {e}"))),
            }
            for (seq_of, errno) in acks(&buf) {
                // An ack for an earlier batch cannot arrive: each is read in full.
                let i = seq_of.wrapping_sub(first) as usize;
                if i >= chunk.len() {
                    continue;
                }
                errnos[n * BATCH + i] = errno;
                answered += 1;
            }
        }
    }
    Ok(errnos)
}

/// The cookies of those of `targets` a dump of their protocols and families still lists
/// (the kernel returns only sockets on their local ports: the same filter as `sport = :P`).
fn listed(targets: &[Target]) -> Result<std::collections::HashSet<u64>, CollectError> {
    use super::bytecode::{compile, Clause, Cmp, Side, Test};
    let mut kinds: Vec<(Protocol, Family)> = Vec::new();
    let mut ports: Vec<Test> = Vec::new();
    for target in targets {
        let kind = (target.protocol, target.family);
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
        let port = Test::Port {
            side: Side::Local,
            cmp: Cmp::Eq,
            value: i64::from(target.local.port()),
        };
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    // A program of a few hundred ports at most (each ORed test is 12 bytes, and the
    // attribute holding it at most 64 KiB); more, and the whole table is walked.
    let on_their_ports = if ports.len() <= 256 {
        compile(&[Clause(ports)])
    } else {
        None
    };
    let wanted: std::collections::HashSet<u64> = targets.iter().map(|t| t.cookie).collect();
    let mut alive = std::collections::HashSet::new();
    let mut dumper = super::Dumper::open()?;
    for (protocol, family) in kinds {
        dumper.inet(
            protocol,
            family,
            wire::ALL_STATES,
            on_their_ports.as_deref(),
            wire::Extensions::default(),
            &mut |row| {
                if wanted.contains(&row.cookie) {
                    alive.insert(row.cookie);
                }
                true
            },
        )?;
    }
    Ok(alive)
}

/// Each NLMSG_ERROR in `buf` as (sequence number, errno), 0 for success; a truncated
/// message ends the walk.
pub fn acks(buf: &[u8]) -> Vec<(u32, i32)> {
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|v| u32::from_ne_bytes(v.try_into().expect("4 bytes")))
    };
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some(length) = u32_at(buf, offset).map(|n| n as usize) {
        let Some(message) = buf.get(offset..offset + length).filter(|_| length >= 20) else {
            break;
        };
        if u16::from_ne_bytes([message[4], message[5]]) == netlink_packet_core::NLMSG_ERROR {
            let seq = u32_at(message, 8).expect("within 20 bytes");
            let code = u32_at(message, 16).expect("within 20 bytes") as i32;
            out.push((seq, code.saturating_neg()));
        }
        offset += (length + 3) & !3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            protocol: Protocol::Tcp,
            family: Family::Inet,
            local: "10.0.0.1:80".parse().unwrap(),
            remote: "10.0.0.2:40000".parse().unwrap(),
            bound_if: 3,
            cookie: 0x1122_3344_5566_7788,
        }
    }

    #[test]
    fn a_request_names_the_socket_by_endpoints_interface_and_cookie() {
        let buf = request(&target(), 7);
        assert_eq!(buf.len(), 16 + 56);
        // nlmsghdr: type SOCK_DESTROY, REQUEST|ACK, seq.
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 21);
        assert_eq!(u16::from_ne_bytes([buf[6], buf[7]]), 0x5);
        assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().unwrap()), 7);
        let req = &buf[16..];
        assert_eq!(req[0], libc::AF_INET as u8);
        assert_eq!(req[1], libc::IPPROTO_TCP as u8);
        // inet_diag_sockid at 8: ports big-endian, addresses, if, cookie halves.
        assert_eq!(&req[8..10], &80u16.to_be_bytes());
        assert_eq!(&req[10..12], &40000u16.to_be_bytes());
        assert_eq!(&req[12..16], &[10, 0, 0, 1]);
        assert_eq!(&req[28..32], &[10, 0, 0, 2]);
        assert_eq!(u32::from_ne_bytes(req[44..48].try_into().unwrap()), 3);
        assert_eq!(
            u32::from_ne_bytes(req[48..52].try_into().unwrap()),
            0x5566_7788
        );
        assert_eq!(
            u32::from_ne_bytes(req[52..56].try_into().unwrap()),
            0x1122_3344
        );
    }

    #[test]
    fn an_ipv4_peer_of_an_ipv6_socket_is_written_mapped() {
        let mut t = target();
        t.family = Family::Inet6;
        let req = &request(&t, 1)[16..];
        assert_eq!(req[0], libc::AF_INET6 as u8);
        assert_eq!(
            &req[12..28],
            &"::ffff:10.0.0.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
    }

    #[test]
    fn acks_are_read_with_their_sequence_numbers() {
        let ack = |seq: u32, code: i32| {
            let mut m = Vec::new();
            m.extend_from_slice(&36u32.to_ne_bytes());
            m.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(&code.to_ne_bytes());
            m.extend_from_slice(&[0; 16]);
            m
        };
        let mut buf = ack(1, 0);
        buf.extend(ack(2, -libc::ENOENT));
        buf.extend(ack(3, -libc::EOPNOTSUPP));
        assert_eq!(
            acks(&buf),
            vec![(1, 0), (2, libc::ENOENT), (3, libc::EOPNOTSUPP)]
        );
        // Truncated garbage ends the walk, never panics.
        assert_eq!(acks(&buf[..40]), vec![(1, 0)]);
        assert!(acks(&[0xff; 7]).is_empty());
        let mut tally = Tally::default();
        for (_, errno) in acks(&buf) {
            tally.count(errno);
        }
        assert_eq!((tally.closed, tally.gone, tally.unsupported), (1, 1, 1));
    }
}
