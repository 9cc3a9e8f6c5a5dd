//! What both floors do with a dump: send netsql's request on a netlink socket of the
//! given protocol and count the reply's messages without decoding them.

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::{Socket, SocketAddr};

/// Sends `request` and counts the messages of the reply up to its NLMSG_DONE.
pub fn count(protocol: isize, request: &[u8]) -> u64 {
    let mut socket = Socket::new(protocol).expect("netlink socket");
    socket.bind_auto().expect("bind");
    socket.connect(&SocketAddr::new(0, 0)).expect("connect");
    let _ = socket.set_rx_buf_sz(1 << 20);
    socket.send(request, 0).expect("send");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut messages = 0u64;
    loop {
        buf.clear();
        socket.recv(&mut buf, 0).expect("recv");
        // Walk the netlink headers: u32 length, u16 type.
        let mut at = 0;
        while at + 16 <= buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
            match kind {
                NLMSG_DONE => return messages,
                NLMSG_ERROR => panic!("the kernel refused the dump"),
                _ => messages += 1,
            }
            at += (len.max(16) + 3) & !3;
        }
    }
}
