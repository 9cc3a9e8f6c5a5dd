//! /proc/net/{tcp,udp,udplite,raw}{,6} and /proc/net/unix: any bytes, parsed as each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::socket_row::{Family, Protocol};
use netsql::collect::{proc_inet, proc_unix};

fuzz_target!(|data: &[u8]| {
    for (protocol, family) in [
        (Protocol::Tcp, Family::Inet),
        (Protocol::Udp, Family::Inet6),
        (Protocol::Raw, Family::Inet),
    ] {
        let _ = proc_inet::parse(data, "fuzz", protocol, family, 100);
    }
    let _ = proc_unix::parse(data, "fuzz");
});
