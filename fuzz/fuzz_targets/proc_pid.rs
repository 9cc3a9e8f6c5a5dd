//! /proc/<pid>/stat and status (parsed by procfs, as netsql reads them), cgroup, and
//! /proc/stat's btime.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::processes;
use procfs::FromRead;

fuzz_target!(|data: &[u8]| {
    if let Ok(stat) = procfs::process::Stat::from_read(data) {
        let _ = processes::tty_name(stat.tty_nr);
    }
    let _ = procfs::process::Status::from_read(data);
    let _ = processes::parse_cgroup(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = processes::parse_btime(text);
    }
});
