//! The kernel's floor for a conntrack dump: sends the ctnetlink request netsql sends for
//! `SELECT * FROM conntrack` and walks the reply messages without decoding them. Usage:
//!
//!   conntrack_floor [raw|decode] [mark VALUE]
//!
//! `raw` (the default) only counts the messages; `decode` reads them through netsql's
//! collector (`Ctnetlink::dump`: netlink-packet-netfilter and the hand-decoded
//! attributes) and drops each entry, what a query costs before Arrow and DataFusion.
//! `mark VALUE` asks the kernel for the entries with that mark only, as a pushed
//! `WHERE mark = VALUE` does. Prints the number of entries to stderr.

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use netsql::collect::conntrack::{wire, Ctnetlink, Filter};

fn main() {
    let mut decode = false;
    let mut filter = Filter::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "raw" => decode = false,
            "decode" => decode = true,
            "mark" => {
                let mark = args
                    .next()
                    .and_then(|m| m.parse().ok())
                    .expect("mark VALUE");
                filter.mark = Some((mark, u32::MAX));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let entries = if decode {
        let mut ctnetlink = Ctnetlink::open().expect("ctnetlink socket");
        let mut entries = 0u64;
        ctnetlink
            .dump(&filter, &mut |_| {
                entries += 1;
                true
            })
            .expect("dump");
        entries
    } else {
        raw(&filter)
    };
    eprintln!("{entries} entries");
}

/// One dump, its messages counted.
fn raw(filter: &Filter) -> u64 {
    let mut socket = Socket::new(NETLINK_NETFILTER).expect("netlink socket");
    socket.bind_auto().expect("bind");
    socket.connect(&SocketAddr::new(0, 0)).expect("connect");
    let _ = socket.set_rx_buf_sz(1 << 20);
    socket
        .send(&wire::dump_request(filter, 1), 0)
        .expect("send");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut entries = 0u64;
    loop {
        buf.clear();
        socket.recv(&mut buf, 0).expect("recv");
        // Walk the netlink headers: u32 length, u16 type.
        let mut at = 0;
        while at + 16 <= buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
            match kind {
                NLMSG_DONE => return entries,
                NLMSG_ERROR => panic!("the kernel refused the dump"),
                _ => entries += 1,
            }
            at += (len.max(16) + 3) & !3;
        }
    }
}
