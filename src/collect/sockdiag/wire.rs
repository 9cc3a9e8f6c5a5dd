//! NETLINK_SOCK_DIAG wire format: requests out, responses in. Pure functions over bytes.
//!
//! Requests are built with `netlink-packet-sock-diag` and framed by `netlink-packet-core`.
//! Response headers are decoded here by hand because that crate's `InetResponseHeader`
//! drops `idiag_expires` for TIME_WAIT sockets and `idiag_retrans` for keepalive and probe
//! timers (both shown by netstat -o), and its unix attributes lack `UNIX_DIAG_UID`. The
//! headers are fixed layouts (include/uapi/linux/inet_diag.h, unix_diag.h); attributes are
//! walked with netlink-packet-core's `NlasIterator`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NlasIterator, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::{
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    unix::{ShowFlags, StateFlags as UnixStateFlags, UnixRequest},
    SockDiagMessage,
};

use crate::collect::netlink;
use crate::collect::socket_row::{
    abstract_name, Extras, Family, Protocol, SockType, SocketRow, State, Timer, TimerInfo,
};
use crate::collect::tcp_info::TcpInfo;

/// `sizeof(struct inet_diag_msg)`.
pub const INET_DIAG_MSG_LEN: usize = 72;
/// `sizeof(struct unix_diag_msg)`.
pub const UNIX_DIAG_MSG_LEN: usize = 16;

/// inet_diag attributes (include/uapi/linux/inet_diag.h). A request's `idiag_ext` asks
/// for attribute N with bit `1 << (N - 1)`; SHUTDOWN, MARK and CGROUP_ID come unasked
/// (MARK only to CAP_NET_ADMIN), TIME_WAIT and request sockets carry none.
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_CONG: u16 = 4;
const INET_DIAG_TOS: u16 = 5;
const INET_DIAG_TCLASS: u16 = 6;
const INET_DIAG_SKMEMINFO: u16 = 7;
const INET_DIAG_SHUTDOWN: u16 = 8;
const INET_DIAG_MARK: u16 = 15;
const INET_DIAG_CGROUP_ID: u16 = 21;
const INET_DIAG_SOCKOPT: u16 = 22;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const UNIX_DIAG_SHUTDOWN: u16 = 6;
const UNIX_DIAG_UID: u16 = 7;
const UDIAG_SHOW_MEMINFO: u32 = 0x20;
/// `UDIAG_SHOW_UID` (Linux 5.3); older kernels ignore the bit.
const UDIAG_SHOW_UID: u32 = 0x40;

/// Which optional attributes a dump asks the kernel for and keeps: each costs the kernel
/// bytes per socket and us a decode, so only what a query projects or filters on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions {
    /// INET_DIAG_INFO for its two timer counters (retransmits, probes) alone.
    pub counters: bool,
    /// INET_DIAG_INFO, the whole `struct tcp_info` kept.
    pub tcp_info: bool,
    /// INET_DIAG_CONG.
    pub congestion: bool,
    /// INET_DIAG_SKMEMINFO / UNIX_DIAG_MEMINFO.
    pub skmem: bool,
    /// INET_DIAG_TOS and INET_DIAG_TCLASS.
    pub tos: bool,
    /// Unasked attributes, decoded only when wanted.
    pub shutdown: bool,
    pub mark: bool,
    pub cgroup_id: bool,
    pub sockopt: bool,
}

impl Extensions {
    /// `idiag_ext` for a request of `protocol` in `family`.
    pub fn idiag_ext(self, protocol: Protocol, family: Family) -> u8 {
        let bit = |attribute: u16| 1u8 << (attribute - 1);
        let tcp = protocol == Protocol::Tcp;
        let mut ext = 0;
        if tcp && (self.counters || self.tcp_info) {
            ext |= bit(INET_DIAG_INFO);
        }
        if tcp && self.congestion {
            ext |= bit(INET_DIAG_CONG);
        }
        if self.skmem {
            ext |= bit(INET_DIAG_SKMEMINFO);
        }
        if self.tos {
            ext |= match family {
                Family::Inet6 => bit(INET_DIAG_TCLASS),
                _ => bit(INET_DIAG_TOS),
            };
        }
        ext
    }

    /// What is asked of the kernel, by name, for EXPLAIN.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.counters || self.tcp_info, "tcp_info"),
            (self.congestion, "congestion"),
            (self.skmem, "skmem"),
            (self.tos, "tos"),
        ]
        .iter()
        .filter(|(asked, _)| *asked)
        .map(|(_, name)| *name)
        .collect()
    }

    /// Both asks together.
    pub fn union(self, other: Extensions) -> Extensions {
        Extensions {
            counters: self.counters || other.counters,
            tcp_info: self.tcp_info || other.tcp_info,
            congestion: self.congestion || other.congestion,
            skmem: self.skmem || other.skmem,
            tos: self.tos || other.tos,
            shutdown: self.shutdown || other.shutdown,
            mark: self.mark || other.mark,
            cgroup_id: self.cgroup_id || other.cgroup_id,
            sockopt: self.sockopt || other.sockopt,
        }
    }

    /// Whether a dump that asked for `other` kept everything this asks for.
    pub fn within(self, other: Extensions) -> bool {
        self.union(other) == other
    }

    /// Whether any attribute is kept in the row's extras.
    pub fn keeps(self) -> bool {
        self.tcp_info
            || self.congestion
            || self.skmem
            || self.tos
            || self.shutdown
            || self.mark
            || self.cgroup_id
            || self.sockopt
    }
}

/// struct inet_diag_sockopt's two bytes of one-bit fields as bits 0..16 in field order.
/// C bit-fields fill each byte from its low bit on little-endian targets and from its
/// high bit on big-endian ones (the header has no byte-order variant).
fn sockopt_bits(bytes: [u8; 2]) -> u16 {
    let in_order = |b: u8| {
        if cfg!(target_endian = "big") {
            b.reverse_bits()
        } else {
            b
        }
    };
    u16::from(in_order(bytes[0])) | (u16::from(in_order(bytes[1])) << 8)
}

/// Every TCP state bit, including TCP_NEW_SYN_RECV (12) so request sockets are dumped,
/// as `ss -a` asks.
pub const ALL_STATES: u32 = (1 << 13) - 1;

/// A dump request for one inet protocol and family, `states` a bitmask of `1 << sk_state`.
/// `bytecode`, if any, travels as the INET_DIAG_REQ_BYTECODE attribute; `ext` says which
/// attributes to send with each socket.
pub fn inet_request(
    protocol: Protocol,
    family: Family,
    states: u32,
    bytecode: Option<&[u8]>,
    ext: Extensions,
    seq: u32,
) -> Vec<u8> {
    let (af, socket_id) = match family {
        Family::Inet6 => (libc::AF_INET6 as u8, SocketId::new_v6()),
        _ => (libc::AF_INET as u8, SocketId::new_v4()),
    };
    let request = InetRequest {
        family: af,
        protocol: protocol.ipproto().unwrap_or(0),
        extensions: ExtensionFlags::from_bits_retain(ext.idiag_ext(protocol, family)),
        states: StateFlags::from_bits_retain(states),
        socket_id,
    };
    let mut buf = frame(SockDiagMessage::InetRequest(request), seq);
    if let Some(code) = bytecode {
        append_bytecode(&mut buf, code);
    }
    buf
}

/// `TCPDIAG_GETSOCK`: the original inet_diag request type, which the kernel still serves.
const TCPDIAG_GETSOCK: u16 = 18;
/// `sizeof(struct inet_diag_req)`, that request's body.
const INET_DIAG_REQ_LEN: usize = 60;

/// A dump request for every TCP socket of both families in one walk of the kernel's
/// socket hash, where a `SOCK_DIAG_BY_FAMILY` request per family walks it twice (the
/// table is shared by IPv4 and IPv6, and by every namespace). It is the original
/// `TCPDIAG_GETSOCK` request, whose dumps the kernel runs with the family unspecified;
/// `ports` ([`super::bytecode::fixed_ports`]) lets the kernel skip sockets early.
/// `netlink-packet-sock-diag` only builds the newer request, so it is laid out here
/// (struct inet_diag_req, include/uapi/linux/inet_diag.h). Replies are the same
/// `inet_diag_msg`s, with this request's message type.
pub fn tcp_request_both_families(
    states: u32,
    bytecode: Option<&[u8]>,
    ports: [u16; 2],
    ext: Extensions,
    seq: u32,
) -> Vec<u8> {
    let total = 16 + INET_DIAG_REQ_LEN;
    let mut buf = Vec::with_capacity(total + bytecode.map_or(0, |b| b.len() + 8));
    // struct nlmsghdr: length, type, flags, sequence, port id (0: the kernel).
    buf.extend_from_slice(&(total as u32).to_ne_bytes());
    buf.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // idiag_family (AF_UNSPEC), idiag_src_len, idiag_dst_len, idiag_ext: both families'
    // attributes (TOS for IPv4, TCLASS for IPv6; the decoder keeps the family's own).
    let ext_bits =
        ext.idiag_ext(Protocol::Tcp, Family::Inet) | ext.idiag_ext(Protocol::Tcp, Family::Inet6);
    buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, ext_bits]);
    // struct inet_diag_sockid: the local and remote port (big-endian; 0 is any), then
    // addresses and interface 0 (any), no cookie.
    buf.extend_from_slice(&ports[0].to_be_bytes());
    buf.extend_from_slice(&ports[1].to_be_bytes());
    buf.extend_from_slice(&[0; 16 + 16 + 4]);
    buf.extend_from_slice(&[0xff; 8]);
    // idiag_states, idiag_dbs.
    buf.extend_from_slice(&states.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    if let Some(code) = bytecode {
        append_bytecode(&mut buf, code);
    }
    buf
}

/// Appends an INET_DIAG_REQ_BYTECODE attribute to a framed request: struct nlattr
/// { u16 nla_len; u16 nla_type = 1 }, then the program, padded to 4; nlmsg_len (the
/// first u32) grows to match.
fn append_bytecode(buf: &mut Vec<u8>, code: &[u8]) {
    let nla_len = u16::try_from(4 + code.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&nla_len.to_ne_bytes());
    buf.extend_from_slice(&1u16.to_ne_bytes());
    buf.extend_from_slice(code);
    buf.resize(buf.len().next_multiple_of(4), 0);
    let total = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[..4].copy_from_slice(&total.to_ne_bytes());
}

/// A dump request for every unix socket with its name, peer, queue lengths and owner,
/// and its memory when `ext.skmem`.
pub fn unix_request(states: u32, ext: Extensions, seq: u32) -> Vec<u8> {
    let mut show =
        ShowFlags::NAME.bits() | ShowFlags::PEER.bits() | ShowFlags::RQLEN.bits() | UDIAG_SHOW_UID;
    if ext.skmem {
        show |= UDIAG_SHOW_MEMINFO;
    }
    let request = UnixRequest {
        state_flags: UnixStateFlags::from_bits_retain(states),
        inode: 0,
        show_flags: ShowFlags::from_bits_retain(show),
        cookie: [0xff; 8],
    };
    frame(SockDiagMessage::UnixRequest(request), seq)
}

fn frame(message: SockDiagMessage, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, message.into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// What one netlink message in a dump reply says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A `SOCK_DIAG_BY_FAMILY` message: one socket.
    Socket(&'a [u8]),
    /// The end of the dump.
    Done,
    /// `NLMSG_ERROR` (or a failed `NLMSG_DONE`) with a positive errno.
    Error(i32),
    /// Anything else (NLMSG_NOOP): skipped.
    Other,
}

/// Splits one `recv` worth of bytes into netlink messages, read as sock_diag's.
pub fn replies(buf: &[u8]) -> impl Iterator<Item = Result<Reply<'_>, String>> + '_ {
    netlink::replies(buf).map(|reply| {
        reply.map(|reply| match reply {
            // SOCK_DIAG_BY_FAMILY, and TCPDIAG_GETSOCK's replies.
            netlink::Reply::Message(m) if m.kind == 20 || m.kind == TCPDIAG_GETSOCK => {
                Reply::Socket(m.payload)
            }
            netlink::Reply::Done => Reply::Done,
            netlink::Reply::Error(errno) => Reply::Error(errno),
            _ => Reply::Other,
        })
    })
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Decodes one `struct inet_diag_msg` and the INET_DIAG_INFO attribute, if present.
///
/// `idiag_retrans` means different counters for different timers (net/ipv4/inet_diag.c):
/// `icsk_retransmits` for the retransmit timer, `icsk_probes_out` for keepalive and zero
/// window probes, 0 otherwise. /proc/net/tcp and netstat give both counters, so each is
/// taken from the header where it is that counter, and from `tcp_info` (tcpi_retransmits,
/// tcpi_probes) when the request asked for it. Sockets without one (TIME_WAIT, request
/// sockets, UDP, raw) have no other counter than the header's.
pub fn decode_inet(
    payload: &[u8],
    protocol: Protocol,
    want: Extensions,
) -> Result<SocketRow, String> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(format!(
            "inet_diag_msg: {} bytes, need {INET_DIAG_MSG_LEN}",
            payload.len()
        ));
    }
    let family = match i32::from(payload[0]) {
        libc::AF_INET => Family::Inet,
        libc::AF_INET6 => Family::Inet6,
        other => return Err(format!("inet_diag_msg: idiag_family {other} is not inet")),
    };
    let state = State::from_kernel(payload[1]);
    let timer = Timer::from_kernel(payload[2]);
    let retransmits = payload[3];
    // struct inet_diag_sockid: ports and addresses in network byte order.
    let sport = u16::from_be_bytes([payload[4], payload[5]]);
    let dport = u16::from_be_bytes([payload[6], payload[7]]);
    let src = address(family, &payload[8..24]);
    let dst = address(family, &payload[24..40]);
    let bound_if = u32_at(payload, 40);
    let cookie = u64::from(u32_at(payload, 44)) | u64::from(u32_at(payload, 48)) << 32;
    let expires = u32_at(payload, 52);
    let rqueue = u32_at(payload, 56);
    let wqueue = u32_at(payload, 60);
    let uid = u32_at(payload, 64);
    let inode = u32_at(payload, 68);
    let header = i32::from(retransmits);
    let (mut retransmits, mut probes) = match (protocol, timer, state) {
        (Protocol::Tcp, Timer::On, State::SynRecv) => (Some(header), Some(0)),
        (Protocol::Tcp, Timer::On, _) => (Some(header), None),
        (Protocol::Tcp, Timer::KeepAlive | Timer::Probe, _) => (None, Some(header)),
        (Protocol::Tcp, Timer::TimeWait, _) => (Some(0), Some(0)),
        (Protocol::Tcp, _, _) => (None, None),
        // No timers: the kernel keeps both at 0.
        _ => (Some(0), Some(0)),
    };
    let mut extras = Extras::default();
    for nla in NlasIterator::new(&payload[INET_DIAG_MSG_LEN..]) {
        let nla = nla.map_err(|e| format!("inet_diag attribute: {e}"))?;
        let value = nla.value();
        match nla.kind() {
            // struct tcp_info starts: state, ca_state, retransmits, probes (all __u8).
            INET_DIAG_INFO if protocol == Protocol::Tcp => {
                if value.len() < 4 {
                    return Err(format!(
                        "INET_DIAG_INFO: {} bytes is too short",
                        value.len()
                    ));
                }
                retransmits = Some(i32::from(value[2]));
                probes = Some(i32::from(value[3]));
                if want.tcp_info {
                    extras.tcp_info = Some(TcpInfo(value.into()));
                }
            }
            INET_DIAG_CONG if want.congestion => {
                let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
                extras.congestion = Some(String::from_utf8_lossy(&value[..end]).into_owned());
            }
            INET_DIAG_SKMEMINFO if want.skmem => extras.skmem = skmem(value),
            // A dump of both families asks for both; each keeps its family's own.
            INET_DIAG_TOS if want.tos && family == Family::Inet => {
                extras.tos = value.first().copied()
            }
            INET_DIAG_TCLASS if want.tos && family == Family::Inet6 => {
                extras.tos = value.first().copied()
            }
            INET_DIAG_SHUTDOWN if want.shutdown => extras.shutdown = value.first().copied(),
            INET_DIAG_MARK if want.mark && value.len() >= 4 => extras.mark = Some(u32_at(value, 0)),
            INET_DIAG_SOCKOPT if want.sockopt && value.len() >= 2 => {
                extras.sockopt = Some(sockopt_bits([value[0], value[1]]))
            }
            INET_DIAG_CGROUP_ID if want.cgroup_id && value.len() >= 8 => {
                extras.cgroup_id = Some(u64::from_ne_bytes(value[..8].try_into().expect("8 bytes")))
            }
            _ => {}
        }
    }
    Ok(SocketRow {
        extras: want.keeps().then(|| Box::new(extras)),
        protocol,
        family,
        sock_type: protocol.inet_sock_type(),
        state,
        local: Some(SocketAddr::new(src, sport)),
        remote: Some(SocketAddr::new(dst, dport)),
        recv_q: Some(u64::from(rqueue)),
        send_q: Some(u64::from(wqueue)),
        uid: Some(uid),
        inode: u64::from(inode),
        cookie,
        bound_if,
        timer: Some(TimerInfo {
            timer,
            // inet_diag reports expiry only while a timer is pending.
            expires_ms: if timer == Timer::Off {
                0
            } else {
                i64::from(expires)
            },
            retransmits,
            probes,
        }),
        ..SocketRow::default()
    })
}

fn address(family: Family, bytes: &[u8]) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        _ => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes[..16]);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    }
}

/// `SK_MEMINFO_*` u32s, as many as the kernel sent (at most the nine ss -m shows).
fn skmem(value: &[u8]) -> [Option<u32>; 9] {
    let mut out = [None; 9];
    for (slot, chunk) in out.iter_mut().zip(value.chunks_exact(4)) {
        *slot = Some(u32_at(chunk, 0));
    }
    out
}

/// Decodes one `struct unix_diag_msg` with the attributes [`unix_request`] asks for.
pub fn decode_unix(payload: &[u8], want: Extensions) -> Result<SocketRow, String> {
    if payload.len() < UNIX_DIAG_MSG_LEN {
        return Err(format!(
            "unix_diag_msg: {} bytes, need {UNIX_DIAG_MSG_LEN}",
            payload.len()
        ));
    }
    if i32::from(payload[0]) != libc::AF_UNIX {
        return Err(format!(
            "unix_diag_msg: udiag_family {} is not AF_UNIX",
            payload[0]
        ));
    }
    let mut row = SocketRow {
        protocol: Protocol::Unix,
        family: Family::Unix,
        sock_type: SockType::from_raw(u16::from(payload[1])),
        state: State::from_kernel(payload[2]),
        inode: u64::from(u32_at(payload, 4)),
        cookie: u64::from(u32_at(payload, 8)) | u64::from(u32_at(payload, 12)) << 32,
        ..SocketRow::default()
    };
    for nla in NlasIterator::new(&payload[UNIX_DIAG_MSG_LEN..]) {
        let nla = nla.map_err(|e| format!("unix_diag attribute: {e}"))?;
        let value = nla.value();
        match nla.kind() {
            UNIX_DIAG_NAME => row.path = Some(unix_name(value)),
            UNIX_DIAG_PEER if value.len() >= 4 => {
                row.peer_inode = Some(u64::from(u32_at(value, 0)))
            }
            UNIX_DIAG_RQLEN if value.len() >= 8 => {
                row.recv_q = Some(u64::from(u32_at(value, 0)));
                row.send_q = Some(u64::from(u32_at(value, 4)));
            }
            UNIX_DIAG_UID if value.len() >= 4 => row.uid = Some(u32_at(value, 0)),
            UNIX_DIAG_MEMINFO if want.skmem => row.extras_mut().skmem = skmem(value),
            UNIX_DIAG_SHUTDOWN if want.shutdown => {
                row.extras_mut().shutdown = value.first().copied()
            }
            UNIX_DIAG_PEER | UNIX_DIAG_RQLEN | UNIX_DIAG_UID => {
                return Err(format!(
                    "unix_diag attribute {}: {} bytes is too short",
                    nla.kind(),
                    value.len()
                ));
            }
            _ => {}
        }
    }
    Ok(row)
}

/// `sun_path` as bound: a leading NUL marks the abstract namespace; a filesystem path
/// carries its terminating NUL.
fn unix_name(raw: &[u8]) -> String {
    match raw.split_first() {
        Some((0, name)) => abstract_name(name),
        _ => {
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            crate::collect::socket_row::path_text(&raw[..end])
        }
    }
}

#[cfg(test)]
mod tests;
