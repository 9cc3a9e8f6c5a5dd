//! `processes`: one row per process, from /proc/<pid>.

use std::collections::HashMap;

use datafusion::error::DataFusionError;

use super::columns::{int32, int64, timestamp_us, uint32, uint64, utf8, utf8_list, utf8_owned};
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::passwd;
use crate::collect::processes::{self, Needs, ProcessRow};

#[derive(Default)]
pub struct Processes {
    pub rows: Vec<ProcessRow>,
    pub users: HashMap<u32, String>,
    /// Clock ticks per second: the unit of utime, stime and starttime.
    pub ticks: u64,
    pub page_size: u64,
    /// Boot time in microseconds since the epoch, for start_time.
    pub boot_us: Option<i64>,
}

impl Snapshot for Processes {
    fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

impl Processes {
    fn ticks_to_ms(&self, ticks: u64) -> i64 {
        (ticks.saturating_mul(1000) / self.ticks.max(1)) as i64
    }
}

pub static SPEC: TableSpec<Processes> = TableSpec {
    name: "processes",
    doc: "One row per process (/proc/<pid>); files another user's process hides from us are NULL",
    columns: &[
        Column {
            name: "pid",
            kind: Kind::Int32,
            doc: "Process id",
            build: |s, range| int32(&s.rows[range.clone()], |r| Some(r.pid)),
        },
        Column {
            name: "ppid",
            kind: Kind::Int32,
            doc: "Parent process id",
            build: |s, range| int32(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.ppid)),
        },
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "Command name (comm, at most 15 bytes)",
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.comm.as_str())),
        },
        Column {
            name: "cmdline",
            kind: Kind::Utf8,
            doc: "Command line, arguments joined by spaces; empty for kernel threads",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.args.as_ref().map(|a| a.join(" "))),
        },
        Column {
            name: "args",
            kind: Kind::Utf8List,
            doc: "Command line as a list (argv; args[1] is argv[0], as netstat -p shows it); empty for kernel threads",
            build: |s, range| utf8_list(&s.rows[range.clone()], |r| r.args.as_deref()),
        },
        Column {
            name: "exe",
            kind: Kind::Utf8,
            doc: "Executable path (' (deleted)' when replaced); NULL for kernel threads or when not ours to read",
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.exe.as_deref()),
        },
        Column {
            name: "state",
            kind: Kind::Utf8,
            doc: "State letter as ps shows it: R running, S sleeping, D disk sleep, Z zombie, T stopped, I idle",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.state.to_string())),
        },
        Column {
            name: "uid",
            kind: Kind::UInt32,
            doc: "Effective user id (owner of /proc/<pid>)",
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.uid),
        },
        Column {
            name: "user",
            kind: Kind::Utf8,
            doc: "User name of uid from /etc/passwd; NULL if none",
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.uid.and_then(|u| s.users.get(&u)).map(String::as_str)),
        },
        Column {
            name: "gid",
            kind: Kind::UInt32,
            doc: "Effective group id",
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.gid),
        },
        Column {
            name: "threads",
            kind: Kind::Int32,
            doc: "Number of threads",
            build: |s, range| int32(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.num_threads as i32)),
        },
        Column {
            name: "nice",
            kind: Kind::Int32,
            doc: "Nice value, -20 (favoured) to 19",
            build: |s, range| int32(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.nice as i32)),
        },
        Column {
            name: "rss_bytes",
            kind: Kind::UInt64,
            doc: "Resident memory in bytes",
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.rss * s.page_size)),
        },
        Column {
            name: "vsize_bytes",
            kind: Kind::UInt64,
            doc: "Virtual memory size in bytes",
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.vsize)),
        },
        Column {
            name: "utime",
            kind: Kind::Int64,
            doc: "CPU time spent in user mode, milliseconds",
            build: |s, range| int64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| s.ticks_to_ms(st.utime))),
        },
        Column {
            name: "stime",
            kind: Kind::Int64,
            doc: "CPU time spent in the kernel, milliseconds",
            build: |s, range| int64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| s.ticks_to_ms(st.stime))),
        },
        Column {
            name: "start_time",
            kind: Kind::Timestamp,
            doc: "When the process started (UTC)",
            build: |s, range| {
                timestamp_us(&s.rows[range.clone()], |r| {
                    let ms = s.ticks_to_ms(r.stat.as_ref()?.starttime);
                    Some(s.boot_us? + ms * 1000)
                })
            },
        },
        Column {
            name: "tty",
            kind: Kind::Utf8,
            doc: "Controlling terminal (pts/0, tty1); NULL if none",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| processes::tty_name(r.stat.as_ref()?.tty_nr)),
        },
        Column {
            name: "cgroup",
            kind: Kind::Utf8,
            doc: "cgroup path (the v2 hierarchy's when there is one)",
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.cgroup.as_deref()),
        },
        Column {
            name: "netns",
            kind: Kind::UInt64,
            doc: "Inode of the process's network namespace (joins sockets.netns); NULL when not ours to read",
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.netns),
        },
    ],
};

/// Which /proc files the projected columns need.
pub fn needs(wants: impl Fn(&str) -> bool) -> Needs {
    let from_stat = [
        "ppid",
        "name",
        "state",
        "threads",
        "nice",
        "rss_bytes",
        "vsize_bytes",
        "utime",
        "stime",
        "start_time",
        "tty",
    ];
    Needs {
        stat: from_stat.iter().any(|c| wants(c)),
        owner: wants("uid") || wants("gid") || wants("user"),
        cmdline: wants("cmdline") || wants("args"),
        exe: wants("exe"),
        cgroup: wants("cgroup"),
        netns: wants("netns"),
    }
}

/// Reads only the /proc files the projected columns need.
pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Processes, DataFusionError> {
    let wants = |name: &str| SPEC.wants(scan, name);
    let root = &config.root;
    let mut snapshot = Processes {
        rows: processes::scan(root, needs(wants)).map_err(external)?,
        ticks: procfs::ticks_per_second(),
        page_size: procfs::page_size(),
        ..Processes::default()
    };
    if wants("user") {
        snapshot.users = passwd::read_names(root).map_err(external)?;
    }
    if wants("start_time") {
        let boot = processes::boot_time(root).map_err(external)?;
        snapshot.boot_us = Some(boot as i64 * 1_000_000);
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_and_name_need_stat_alone() {
        let only = |names: &'static [&'static str]| needs(move |c| names.contains(&c));
        assert_eq!(
            only(&["pid", "name"]),
            Needs {
                stat: true,
                ..Needs::default()
            }
        );
        assert_eq!(only(&["pid"]), Needs::default());
        assert_eq!(
            only(&["cmdline"]),
            Needs {
                cmdline: true,
                ..Needs::default()
            }
        );
        assert_eq!(
            only(&["user"]),
            Needs {
                owner: true,
                ..Needs::default()
            }
        );
        // Every column is covered: each needs something, except pid.
        for column in SPEC.columns.iter().map(|c| c.name).filter(|c| *c != "pid") {
            assert_ne!(
                needs(|c| c == column),
                Needs::default(),
                "{column} reads nothing"
            );
        }
    }
}
