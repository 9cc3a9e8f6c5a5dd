//! `processes`: one row per process, from /proc/<pid>.

use std::collections::HashMap;

use datafusion::error::DataFusionError;

use super::columns::{int32, int64, timestamp_us, uint32, uint64, utf8, utf8_list, utf8_owned};
use super::{external, Column, Kind, Need, Needed, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::containers::of_cgroup;
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

/// The column names, declared once: the spec and the projection tests use these.
pub mod names {
    pub const PID: &str = "pid";
    pub const PPID: &str = "ppid";
    pub const NAME: &str = "name";
    pub const CMDLINE: &str = "cmdline";
    pub const ARGS: &str = "args";
    pub const EXE: &str = "exe";
    pub const STATE: &str = "state";
    pub const UID: &str = "uid";
    pub const USER: &str = "user";
    pub const GID: &str = "gid";
    pub const THREADS: &str = "threads";
    pub const NICE: &str = "nice";
    pub const RSS_BYTES: &str = "rss_bytes";
    pub const VSIZE_BYTES: &str = "vsize_bytes";
    pub const UTIME: &str = "utime";
    pub const STIME: &str = "stime";
    pub const START_TIME: &str = "start_time";
    pub const TTY: &str = "tty";
    pub const CGROUP: &str = "cgroup";
    pub const CONTAINER_ID: &str = "container_id";
    pub const RUNTIME: &str = "runtime";
    pub const NETNS: &str = "netns";
}

pub static SPEC: TableSpec<Processes> = TableSpec {
    name: "processes",
    doc: "One row per process (/proc/<pid>); files another user's process hides from us are NULL",
    columns: &[
        Column {
            name: names::PID,
            kind: Kind::Int32,
            doc: "Process id",
            needs: &[],
            build: |s, range| int32(&s.rows[range.clone()], |r| Some(r.pid)),
        },
        Column {
            name: names::PPID,
            kind: Kind::Int32,
            doc: "Parent process id",
            needs: &[Need::ProcStat],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.ppid)),
        },
        Column {
            name: names::NAME,
            kind: Kind::Utf8,
            doc: "Command name (comm: at most 15 bytes for a program, up to 63 for a kernel thread)",
            needs: &[Need::ProcStat],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.comm.as_str())),
        },
        Column {
            name: names::CMDLINE,
            kind: Kind::Utf8,
            doc: "Command line, arguments joined by spaces; empty for kernel threads",
            needs: &[Need::ProcCmdline],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.args.as_ref().map(|a| a.join(" "))),
        },
        Column {
            name: names::ARGS,
            kind: Kind::Utf8List,
            doc: "Command line as a list (argv; args[1] is argv[0], as netstat -p shows it); empty for kernel threads",
            needs: &[Need::ProcCmdline],
            build: |s, range| utf8_list(&s.rows[range.clone()], |r| r.args.as_deref()),
        },
        Column {
            name: names::EXE,
            kind: Kind::Utf8,
            doc: "Executable path (' (deleted)' when replaced); NULL for kernel threads or when not ours to read",
            needs: &[Need::ProcExe],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.exe.as_deref()),
        },
        Column {
            name: names::STATE,
            kind: Kind::Utf8,
            doc: "State letter as ps shows it: R running, S sleeping, D disk sleep, Z zombie, T stopped, I idle",
            needs: &[Need::ProcStat],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.state.to_string())),
        },
        Column {
            name: names::UID,
            kind: Kind::UInt32,
            doc: "Effective user id (owner of /proc/<pid>)",
            needs: &[Need::ProcStatus],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.uid),
        },
        Column {
            name: names::USER,
            kind: Kind::Utf8,
            doc: "User name of uid from /etc/passwd; NULL if none",
            needs: &[Need::ProcStatus, Need::UserNames],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.uid.and_then(|u| s.users.get(&u)).map(String::as_str)),
        },
        Column {
            name: names::GID,
            kind: Kind::UInt32,
            doc: "Effective group id",
            needs: &[Need::ProcStatus],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.gid),
        },
        Column {
            name: names::THREADS,
            kind: Kind::Int32,
            doc: "Number of threads",
            needs: &[Need::ProcStat],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.num_threads as i32)),
        },
        Column {
            name: names::NICE,
            kind: Kind::Int32,
            doc: "Nice value, -20 (favoured) to 19",
            needs: &[Need::ProcStat],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.nice as i32)),
        },
        Column {
            name: names::RSS_BYTES,
            kind: Kind::UInt64,
            doc: "Resident memory in bytes, as ps's RSS and VmRSS count it (/proc/<pid>/statm)",
            needs: &[Need::ProcStatm],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.resident_pages.map(|pages| pages * s.page_size)),
        },
        Column {
            name: names::VSIZE_BYTES,
            kind: Kind::UInt64,
            doc: "Virtual memory size in bytes",
            needs: &[Need::ProcStat],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| st.vsize)),
        },
        Column {
            name: names::UTIME,
            kind: Kind::Int64,
            doc: "CPU time spent in user mode, milliseconds",
            needs: &[Need::ProcStat],
            build: |s, range| int64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| s.ticks_to_ms(st.utime))),
        },
        Column {
            name: names::STIME,
            kind: Kind::Int64,
            doc: "CPU time spent in the kernel, milliseconds",
            needs: &[Need::ProcStat],
            build: |s, range| int64(&s.rows[range.clone()], |r| r.stat.as_ref().map(|st| s.ticks_to_ms(st.stime))),
        },
        Column {
            name: names::START_TIME,
            kind: Kind::Timestamp,
            doc: "When the process started (UTC)",
            needs: &[Need::ProcStat, Need::BootTime],
            build: |s, range| {
                timestamp_us(&s.rows[range.clone()], |r| {
                    let ms = s.ticks_to_ms(r.stat.as_ref()?.starttime);
                    Some(s.boot_us? + ms * 1000)
                })
            },
        },
        Column {
            name: names::TTY,
            kind: Kind::Utf8,
            doc: "Controlling terminal (pts/0, tty1); NULL if none",
            needs: &[Need::ProcStat],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| processes::tty_name(r.stat.as_ref()?.tty_nr)),
        },
        Column {
            name: names::CGROUP,
            kind: Kind::Utf8,
            doc: "cgroup path (the v2 hierarchy's; a v1 hierarchy's where only that one names a container; with cgroup v1 alone, systemd's named hierarchy's)",
            needs: &[Need::ProcCgroup],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.cgroup.as_deref()),
        },
        Column {
            name: names::CONTAINER_ID,
            kind: Kind::Utf8,
            doc: "Container id from the cgroup path (as net_namespaces.container_id); NULL when not a container's",
            needs: &[Need::ProcCgroup],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| Some(of_cgroup(r.cgroup.as_deref()?)?.id)),
        },
        Column {
            name: names::RUNTIME,
            kind: Kind::Utf8,
            doc: "Container runtime: docker, containerd, cri-o, podman, kubernetes, systemd-nspawn, libvirt-lxc, lxc; NULL when not a container's",
            needs: &[Need::ProcCgroup],
            build: |s, range| utf8(&s.rows[range.clone()], |r| Some(of_cgroup(r.cgroup.as_deref()?)?.runtime)),
        },
        Column {
            name: names::NETNS,
            kind: Kind::UInt64,
            doc: "Inode of the process's network namespace (joins sockets.netns); NULL when not ours to read",
            needs: &[Need::ProcNetns],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.netns),
        },
    ],
};

/// Which /proc files the columns `needed` declares need.
pub fn needs(needed: Needed) -> Needs {
    Needs {
        stat: needed.has(Need::ProcStat),
        owner: needed.has(Need::ProcStatus),
        statm: needed.has(Need::ProcStatm),
        cmdline: needed.has(Need::ProcCmdline),
        exe: needed.has(Need::ProcExe),
        cgroup: needed.has(Need::ProcCgroup),
        netns: needed.has(Need::ProcNetns),
    }
}

/// Reads only the /proc files the projected columns need.
pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Processes, DataFusionError> {
    let needed = SPEC.needed(scan);
    let root = &config.root;
    let mut snapshot = Processes {
        rows: processes::scan(root, needs(needed)).map_err(external)?,
        ticks: procfs::ticks_per_second(),
        page_size: procfs::page_size(),
        ..Processes::default()
    };
    if needed.has(Need::UserNames) {
        snapshot.users = passwd::read_names(root).map_err(external)?;
    }
    if needed.has(Need::BootTime) {
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
        let only = |names: &[&str]| {
            let at = |name: &&str| SPEC.columns.iter().position(|c| c.name == *name).unwrap();
            needs(SPEC.needed_by(names.iter().map(at)))
        };
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
            assert_ne!(only(&[column]), Needs::default(), "{column} reads nothing");
        }
    }
}
