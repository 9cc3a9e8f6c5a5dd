//! A netlink receive buffer from ctnetlink: split into messages, each decoded as a
//! tracked connection (dump entry or event), a CPU's counters and the entry count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::conntrack::wire;
use netsql::collect::netlink::{replies, Reply};

fuzz_target!(|data: &[u8]| {
    for reply in replies(data) {
        if let Ok(Reply::Message(m)) = reply {
            let _ = wire::decode_flow(m.kind, m.payload);
            let _ = wire::decode_stats_cpu(m.payload);
            let _ = wire::decode_stats(m.payload);
        }
    }
    // A payload on its own, too: the decoders must not trust its lengths.
    let _ = wire::decode_flow(wire::CT_NEW, data);
    let _ = wire::decode_flow(wire::CT_DELETE, data);
});
