//! A netlink receive buffer from sock_diag: split into messages, each decoded as an
//! inet_diag_msg (TCP and UDP) and a unix_diag_msg, attributes and all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::sockdiag::wire::{self, Reply};
use netsql::collect::socket::Protocol;

fuzz_target!(|data: &[u8]| {
    for reply in wire::replies(data) {
        if let Ok(Reply::Socket(payload)) = reply {
            let _ = wire::decode_inet(payload, Protocol::Tcp);
            let _ = wire::decode_inet(payload, Protocol::Udp);
            let _ = wire::decode_unix(payload);
        }
    }
    // A payload on its own, too: the decoders must not trust its length.
    let _ = wire::decode_inet(data, Protocol::Tcp);
    let _ = wire::decode_unix(data);
});
