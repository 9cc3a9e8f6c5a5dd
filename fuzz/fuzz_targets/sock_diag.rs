//! A netlink receive buffer from sock_diag: split into messages, each decoded as an
//! inet_diag_msg (TCP and UDP) and a unix_diag_msg, attributes and all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::sockdiag::wire::{self, Extensions, Reply};
use netsql::collect::socket_row::Protocol;

/// Every optional attribute decoded.
const EVERY: Extensions = Extensions {
    counters: true,
    tcp_info: true,
    congestion: true,
    skmem: true,
    tos: true,
    shutdown: true,
    mark: true,
    cgroup_id: true,
    sockopt: true,
};

fuzz_target!(|data: &[u8]| {
    for reply in wire::replies(data) {
        if let Ok(Reply::Socket(payload)) = reply {
            let _ = wire::decode_inet(payload, Protocol::Tcp, EVERY);
            let _ = wire::decode_inet(payload, Protocol::Udp, EVERY);
            let _ = wire::decode_unix(payload, EVERY);
        }
    }
    // A payload on its own, too: the decoders must not trust its length.
    let _ = wire::decode_inet(data, Protocol::Tcp, EVERY);
    let _ = wire::decode_unix(data, EVERY);
});
