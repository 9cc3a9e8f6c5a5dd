//! /etc/services, /etc/passwd, /etc/hosts, /etc/protocols and /etc/networks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::{hosts, netdb, passwd, services};

fuzz_target!(|data: &[u8]| {
    let _ = services::parse(data);
    if let Ok(users) = passwd::parse(data) {
        let _ = passwd::names(&users);
    }
    let _ = hosts::parse(data);
    let _ = netdb::parse(data);
});
