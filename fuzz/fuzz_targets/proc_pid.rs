//! /proc/<pid>/stat (through netsql's guard) and status (procfs), cgroup, and
//! /proc/stat's btime.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsql::collect::{cgroups, processes};
use procfs::FromRead;

fuzz_target!(|data: &[u8]| {
    // netsql's own guard around procfs's stat parser, as the processes table uses it.
    if let Some(stat) = processes::parse_stat(data) {
        let _ = processes::tty_name(stat.tty_nr);
    }
    let _ = procfs::process::Status::from_read(data);
    let _ = cgroups::parse_cgroup(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = processes::parse_btime(text);
    }
});
