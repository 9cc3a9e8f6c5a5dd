//! `sockets`: one row per socket in the current network namespace.

use std::collections::HashMap;

use datafusion::error::DataFusionError;

use super::columns::{int32, int64, uint32, uint64, utf8, utf8_owned};
use super::netns::{HasSpans, Spans};
use super::socket_owners::programs;
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::netns::{self, Access};
use crate::collect::owners::Owner;
use crate::collect::passwd;
use crate::collect::socket::{Family, SocketRow};
use crate::collect::sockets::{self, Source};

/// One scan of the socket table.
#[derive(Default)]
pub struct Sockets {
    pub rows: Vec<SocketRow>,
    /// Which namespace each run of rows is from.
    pub spans: Spans,
    /// The lowest-pid holder of each socket, sorted by inode (one per inode), when an
    /// owner column is projected. A sorted list, not a map: half the memory at 100k.
    pub owners: Vec<Owner>,
    /// pid -> comm of those owners.
    pub programs: HashMap<i32, String>,
    /// uid -> user name, when `user` is projected.
    pub users: HashMap<u32, String>,
    /// Unix inode -> (RefCount, Flags) from /proc/net/unix, when either is projected.
    pub unix: HashMap<u64, (u32, u32)>,
}

impl Sockets {
    fn owner(&self, row: &SocketRow) -> Option<(i32, i32)> {
        let at = self
            .owners
            .binary_search_by_key(&row.inode, |o| o.inode)
            .ok()?;
        Some((self.owners[at].pid, self.owners[at].fd))
    }
}

impl HasSpans for Sockets {
    fn spans(&self) -> &Spans {
        &self.spans
    }
}

impl Snapshot for Sockets {
    fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

fn port(addr: Option<std::net::SocketAddr>) -> Option<i32> {
    addr.map(|a| i32::from(a.port()))
}

/// The column names, declared once: the spec below and every projection or filter test
/// that names a column use these, so a misspelling does not compile.
pub mod col {
    pub const PROTO: &str = "proto";
    pub const FAMILY: &str = "family";
    pub const TYPE: &str = "type";
    pub const STATE: &str = "state";
    pub const LOCAL_ADDRESS: &str = "local_address";
    pub const LOCAL_PORT: &str = "local_port";
    pub const REMOTE_ADDRESS: &str = "remote_address";
    pub const REMOTE_PORT: &str = "remote_port";
    pub const RECV_Q: &str = "recv_q";
    pub const SEND_Q: &str = "send_q";
    pub const UID: &str = "uid";
    pub const USER: &str = "user";
    pub const INODE: &str = "inode";
    pub const PID: &str = "pid";
    pub const PROGRAM: &str = "program";
    pub const FD: &str = "fd";
    pub const PATH: &str = "path";
    pub const PEER_INODE: &str = "peer_inode";
    pub const UNIX_REFCNT: &str = "unix_refcnt";
    pub const UNIX_FLAGS: &str = "unix_flags";
    pub const TIMER: &str = "timer";
    pub const TIMER_EXPIRES_MS: &str = "timer_expires_ms";
    pub const RETRANSMITS: &str = "retransmits";
    pub const PROBES: &str = "probes";
    pub const NETNS: &str = super::super::netns::NETNS;
    pub const NETNS_NAME: &str = super::super::netns::NETNS_NAME;
}

pub static SPEC: TableSpec<Sockets> = TableSpec {
    name: "sockets",
    doc: "One row per socket (TCP, UDP, UDP-Lite, raw, unix) in the current network namespace, or those `netsql.netns` or a netns filter selects",
    columns: &[
        Column {
            name: col::PROTO,
            kind: Kind::Utf8,
            doc: "netstat's Proto: tcp, tcp6, udp, udp6, udplite, udplite6, raw, raw6, unix",
            build: |s, range| utf8(&s.rows[range.clone()], |r| Some(r.protocol.proto_name(r.family))),
        },
        Column {
            name: col::FAMILY,
            kind: Kind::Utf8,
            doc: "Address family: inet, inet6, unix",
            build: |s, range| utf8(&s.rows[range.clone()], |r| Some(r.family.name())),
        },
        Column {
            name: col::TYPE,
            kind: Kind::Utf8,
            doc: "Socket type: stream, dgram, seqpacket, raw",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| Some(r.sock_type.name())),
        },
        Column {
            name: col::STATE,
            kind: Kind::Utf8,
            doc: "Kernel socket state: LISTEN, ESTABLISHED, SYN_SENT, ..., CLOSE for unconnected UDP/raw/unix",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| Some(r.state.name())),
        },
        Column {
            name: col::LOCAL_ADDRESS,
            kind: Kind::Utf8,
            doc: "Local IP address (0.0.0.0 or :: for a wildcard bind); NULL for unix",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.local.map(|a| a.ip())),
        },
        Column {
            name: col::LOCAL_PORT,
            kind: Kind::Int32,
            doc: "Local port, 0 when unbound; for raw sockets the IP protocol number; NULL for unix",
            build: |s, range| int32(&s.rows[range.clone()], |r| port(r.local)),
        },
        Column {
            name: col::REMOTE_ADDRESS,
            kind: Kind::Utf8,
            doc: "Remote IP address (0.0.0.0 or :: when unconnected); NULL for unix",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.remote.map(|a| a.ip())),
        },
        Column {
            name: col::REMOTE_PORT,
            kind: Kind::Int32,
            doc: "Remote port, 0 when unconnected; NULL for unix",
            build: |s, range| int32(&s.rows[range.clone()], |r| port(r.remote)),
        },
        Column {
            name: col::RECV_Q,
            kind: Kind::UInt64,
            doc: "Receive queue in bytes (UDP: memory charged); LISTEN: connections waiting to be accepted. NULL for unix from /proc",
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.recv_q),
        },
        Column {
            name: col::SEND_Q,
            kind: Kind::UInt64,
            doc: "Send queue in bytes (TCP: not yet acknowledged); LISTEN: backlog limit, NULL from /proc (not there); NULL for unix from /proc",
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.send_q),
        },
        Column {
            name: col::UID,
            kind: Kind::UInt32,
            doc: "Owning user id; NULL for unix sockets from /proc (not there)",
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.uid),
        },
        Column {
            name: col::USER,
            kind: Kind::Utf8,
            doc: "Owning user's name from /etc/passwd; NULL if none",
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.uid.and_then(|uid| s.users.get(&uid)).map(String::as_str)),
        },
        Column {
            name: col::INODE,
            kind: Kind::UInt64,
            doc: "Socket inode; 0 for TIME_WAIT, request and not-yet-accepted sockets",
            build: |s, range| uint64(&s.rows[range.clone()], |r| Some(r.inode)),
        },
        Column {
            name: col::PID,
            kind: Kind::Int32,
            doc: "Lowest pid of a process holding the socket; NULL when none or not visible to us",
            build: |s, range| int32(&s.rows[range.clone()], |r| s.owner(r).map(|(pid, _)| pid)),
        },
        Column {
            name: col::PROGRAM,
            kind: Kind::Utf8,
            doc: "Command name (comm) of that process; NULL when unknown",
            build: |s, range| utf8(&s.rows[range.clone()], |r| s.owner(r).and_then(|(pid, _)| s.programs.get(&pid)).map(String::as_str)),
        },
        Column {
            name: col::FD,
            kind: Kind::Int32,
            doc: "File descriptor number in that process (its lowest for this socket); NULL when unknown",
            build: |s, range| int32(&s.rows[range.clone()], |r| s.owner(r).map(|(_, fd)| fd)),
        },
        Column {
            name: col::PATH,
            kind: Kind::Utf8,
            doc: "Unix only: bound path, @name for the abstract namespace, NULL when unnamed",
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.path.as_deref()),
        },
        Column {
            name: col::PEER_INODE,
            kind: Kind::UInt64,
            doc: "Unix only: inode of the connected peer; NULL when unconnected or from /proc (not there)",
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.peer_inode),
        },
        Column {
            name: col::UNIX_REFCNT,
            kind: Kind::UInt32,
            doc: "Unix only: reference count as /proc/net/unix shows it (netstat -x RefCnt); NULL if gone from there",
            build: |s, range| uint32(&s.rows[range.clone()], |r| s.unix.get(&r.inode).filter(|_| r.family == Family::Unix).map(|u| u.0)),
        },
        Column {
            name: col::UNIX_FLAGS,
            kind: Kind::UInt32,
            doc: "Unix only: socket flags from /proc/net/unix (0x10000 __SO_ACCEPTCON: listening; netstat's [ ACC ])",
            build: |s, range| uint32(&s.rows[range.clone()], |r| s.unix.get(&r.inode).filter(|_| r.family == Family::Unix).map(|u| u.1)),
        },
        Column {
            name: col::TIMER,
            kind: Kind::Utf8,
            doc: "Pending timer as netstat -o names it: off, on (retransmit), keepalive, timewait, probe; NULL for unix",
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.timer.map(|t| t.timer.name())),
        },
        Column {
            name: col::TIMER_EXPIRES_MS,
            kind: Kind::Int64,
            doc: "Milliseconds until the timer fires (10 ms steps from /proc); NULL for unix",
            build: |s, range| int64(&s.rows[range.clone()], |r| r.timer.map(|t| t.expires_ms)),
        },
        Column {
            name: col::RETRANSMITS,
            kind: Kind::Int32,
            doc: "Unanswered retransmissions in a row (icsk_retransmits: netstat -o's second number, ss -o's for the `on` timer); NULL for unix",
            build: |s, range| int32(&s.rows[range.clone()], |r| r.timer.and_then(|t| t.retransmits)),
        },
        Column {
            name: col::PROBES,
            kind: Kind::Int32,
            doc: "Unanswered keepalive or zero-window probes (icsk_probes_out: netstat -o's third number, ss -o's for keepalive and persist); NULL for unix",
            build: |s, range| int32(&s.rows[range.clone()], |r| r.timer.and_then(|t| t.probes)),
        },
        Column {
            name: col::NETNS,
            kind: Kind::UInt64,
            doc: super::netns::NETNS_DOC,
            build: super::netns::inode_column::<Sockets>,
        },
        Column {
            name: col::NETNS_NAME,
            kind: Kind::Utf8,
            doc: super::netns::NETNS_NAME_DOC,
            build: super::netns::name_column::<Sockets>,
        },
    ],
};

pub use super::sockets_filter::pushdown;

/// Dumps the sockets of each namespace the scan selects; owners, user names and unix
/// extras only when projected.
pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Sockets, DataFusionError> {
    let wants = |name: &str| SPEC.wants(scan, name);
    let root = &config.root;
    // Filters DataFusion pushed down narrow the kernel request itself.
    let filter = super::sockets_filter::socket_filter(&scan.filters);
    let needs = sockets::Needs {
        // sock_diag's header carries each counter only for some timers; tcp_info has both.
        tcp_info: wants(col::RETRANSMITS) || wants(col::PROBES),
        // Socket inodes are host-wide: one walk below serves every namespace.
        owners: false,
        unix_extras: wants(col::UNIX_REFCNT) || wants(col::UNIX_FLAGS),
    };
    let namespaces = super::netns::namespaces(config, scan)?;
    let visited = netns::visit(root, namespaces, |ns_root, access| {
        // Outside a namespace we could not enter, sock_diag would answer for ours.
        let source = match access {
            Access::Files => Source::Proc,
            Access::Current | Access::Entered => config.source,
        };
        sockets::scan(ns_root, source, &filter, needs)
    })
    .map_err(external)?;
    netns::warn_invisible(&visited.invisible);
    let mut all = Sockets::default();
    for (ns, scanned) in visited.read {
        if all.rows.is_empty() {
            all.rows = scanned.rows;
        } else {
            all.rows.extend(scanned.rows);
        }
        all.unix.extend(scanned.unix);
        all.spans.push(all.rows.len(), &ns);
    }
    if wants(col::PID) || wants(col::PROGRAM) || wants(col::FD) {
        let (owners, denied) = sockets::lowest_owners(root, &all.rows).map_err(external)?;
        super::warn_unidentified(denied);
        all.owners = owners;
    }
    if wants(col::PROGRAM) {
        all.programs = programs(root, all.owners.iter().map(|o| o.pid));
    }
    if wants(col::USER) {
        all.users = passwd::read_names(root).map_err(external)?;
    }
    Ok(all)
}
