//! /proc/net/dev, route, ipv6_route, snmp, netstat, snmp6, igmp, igmp6: any bytes, parsed
//! as each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::{igmp, netdev, routes, snmp};

fuzz_target!(|data: &[u8]| {
    let _ = netdev::parse(data);
    let _ = routes::parse_v4(data);
    let _ = routes::parse_v6(data);
    let _ = snmp::parse_pairs("snmp", data);
    let _ = snmp::parse_snmp6(data);
    let _ = igmp::parse_igmp(data);
    let _ = igmp::parse_igmp6(data);
});
