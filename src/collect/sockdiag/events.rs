//! sock_diag's destroy groups: a message for each TCP and UDP socket the kernel frees, as
//! `ss -E` prints them, with the `struct tcp_info` a TCP socket had at the end.
//!
//! A subscription belongs to the network namespace the thread that opened it was in, and
//! keeps reading that namespace wherever it is read from. The kernel drops messages when
//! the receive buffer is full and says so once with ENOBUFS; the exact number dropped is
//! the socket's drop counter (SO_MEMINFO's SK_MEMINFO_DROPS), which [`Subscription::lost`]
//! reports.

use std::os::fd::{AsRawFd, RawFd};

use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use super::wire::{self, Extensions};
use crate::collect::netlink;
use crate::collect::socket_row::{Protocol, SocketRow};
use crate::collect::CollectError;

/// SKNLGRP_INET_TCP_DESTROY, _INET_UDP_, _INET6_TCP_, _INET6_UDP_ (1 to 4), as the bits
/// of a netlink bind.
const DESTROY_GROUPS: u32 = 0b1111;

/// `INET_DIAG_PROTOCOL`: which protocol a destroy message is about.
const INET_DIAG_PROTOCOL: u16 = 10;

/// How much the kernel may queue for us: 10,000 closes a second at ~400 bytes each
/// (~1 KiB of buffer accounting) is ~10 MiB a second; a 16 MiB buffer rides out a
/// reader that stalls for a second. Only root may go past `net.core.rmem_max`.
const RECEIVE_BUFFER: i32 = 16 << 20;

/// `SOCK_DIAG_BY_FAMILY`: what a destroy message is.
const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// One namespace's subscription to the destroy groups, non-blocking.
pub struct Subscription(netlink::Subscription);

impl Subscription {
    /// Subscribes in the calling thread's network namespace.
    pub fn open() -> Result<Subscription, CollectError> {
        netlink::Subscription::open(NETLINK_SOCK_DIAG, DESTROY_GROUPS, RECEIVE_BUFFER)
            .map(Subscription)
            .map_err(|errno| CollectError::NetlinkRefused {
                what: "sock_diag destroy events".into(),
                errno,
            })
    }

    /// Decodes the destroy messages queued now into `rows` (TCP rows with their
    /// tcp_info), up to about `most`, and returns how many (see
    /// [`netlink::Subscription::drain`]).
    pub fn drain(&mut self, rows: &mut Vec<SocketRow>, most: usize) -> Result<usize, CollectError> {
        self.0
            .drain(rows, most, |m| {
                (m.kind == SOCK_DIAG_BY_FAMILY)
                    .then(|| decode(m.payload))
                    .flatten()
            })
            .map_err(|e| CollectError::Netlink(format!("recv destroy event: {e}")))
    }

    /// ENOBUFS seen: the kernel dropped messages at least once.
    pub fn overflowed(&self) -> bool {
        self.0.overflowed
    }

    /// Messages the kernel dropped because our buffer was full, since the subscription
    /// began; `None` where SO_MEMINFO is missing (before Linux 4.12).
    pub fn lost(&self) -> Option<u64> {
        self.0.lost()
    }
}

impl AsRawFd for Subscription {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// One destroy message: an `inet_diag_msg` whose protocol travels as INET_DIAG_PROTOCOL.
pub fn decode(payload: &[u8]) -> Option<SocketRow> {
    let attributes = payload.get(wire::INET_DIAG_MSG_LEN..)?;
    let protocol = netlink_packet_core::NlasIterator::new(attributes)
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == INET_DIAG_PROTOCOL)
        .and_then(|nla| nla.value().first().copied());
    let protocol = match i32::from(protocol?) {
        libc::IPPROTO_TCP => Protocol::Tcp,
        libc::IPPROTO_UDP => Protocol::Udp,
        libc::IPPROTO_UDPLITE => Protocol::UdpLite,
        _ => return None,
    };
    let want = Extensions {
        tcp_info: protocol == Protocol::Tcp,
        ..Extensions::default()
    };
    wire::decode_inet(payload, protocol, want).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destroy message as the kernel builds it: header, then INET_DIAG_PROTOCOL.
    fn message(protocol: u8, extra: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; wire::INET_DIAG_MSG_LEN];
        m[0] = libc::AF_INET as u8;
        m[1] = 7; // CLOSE
        m[4..6].copy_from_slice(&8080u16.to_be_bytes());
        m[6..8].copy_from_slice(&443u16.to_be_bytes());
        m[8..12].copy_from_slice(&[127, 0, 0, 1]);
        m[24..28].copy_from_slice(&[127, 0, 0, 2]);
        m.extend_from_slice(&5u16.to_ne_bytes());
        m.extend_from_slice(&INET_DIAG_PROTOCOL.to_ne_bytes());
        m.extend_from_slice(&[protocol, 0, 0, 0]);
        m.extend_from_slice(extra);
        m
    }

    #[test]
    fn a_udp_destroy_message_decodes_to_its_endpoints() {
        let row = decode(&message(libc::IPPROTO_UDP as u8, &[])).expect("decodes");
        assert_eq!(row.protocol, Protocol::Udp);
        assert_eq!(row.local.unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(row.remote.unwrap().to_string(), "127.0.0.2:443");
    }

    #[test]
    fn tcp_keeps_its_tcp_info_and_garbage_is_skipped() {
        let mut info = vec![0u8; 4 + 232];
        info[..2].copy_from_slice(&236u16.to_ne_bytes());
        info[2..4].copy_from_slice(&2u16.to_ne_bytes()); // INET_DIAG_INFO
        let row = decode(&message(libc::IPPROTO_TCP as u8, &info)).expect("decodes");
        assert!(row.extras.unwrap().tcp_info.is_some());
        // No protocol attribute, an unknown protocol, a short header: no row, no panic.
        assert!(decode(&[0u8; 10]).is_none());
        assert!(decode(&[0u8; wire::INET_DIAG_MSG_LEN]).is_none());
        assert!(decode(&message(99, &[])).is_none());
    }
}
