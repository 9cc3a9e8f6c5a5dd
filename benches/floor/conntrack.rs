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

use netlink_sys::protocols::NETLINK_NETFILTER;
use netsql::collect::conntrack::{wire, Ctnetlink, Filter};

mod replies;

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
        replies::count(NETLINK_NETFILTER, &wire::dump_request(&filter, 1))
    };
    eprintln!("{entries} entries");
}
