//! `sockets`: one row per socket in the current network namespace.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use datafusion::error::DataFusionError;

use super::netns::{HasSpans, Spans};
use super::socket_owners::programs;
use super::{external, Need, Needed, Snapshot, TableSpec, TablesConfig};
use crate::catalog::{Scan, BATCH_ROWS};
use crate::collect::netns::{self, Access};
use crate::collect::owners::{self, Owner, SharedWalk};
use crate::collect::sockdiag::wire::Extensions;
use crate::collect::sockets::{self, Rows, SharedDump, Source, Walks};
use crate::collect::{cgroups, passwd, proc_unix};

// A moment's shared TCP dump is kept in parts of a query's batch, each handed on whole.
const _: () = assert!(sockets::SHARED_PART == BATCH_ROWS);

/// One scan of the socket table.
#[derive(Default)]
pub struct Sockets {
    /// A moment's scans read its shared TCP rows in place (see [`sockets::Rows`]).
    pub rows: Rows,
    /// Which namespace each run of rows is from.
    pub spans: Spans,
    /// The lookups below are shared by every part of a scan read in parts.
    ///
    /// The lowest-pid holder of each socket, sorted by inode (one per inode), when an
    /// owner column is projected. A sorted list, not a map: half the memory at 100k.
    pub owners: Arc<Vec<Owner>>,
    /// pid -> comm of those owners.
    pub programs: Arc<HashMap<i32, String>>,
    /// uid -> user name, when `user` is projected.
    pub users: Arc<HashMap<u32, String>>,
    /// Unix inode -> (RefCount, Flags) from /proc/net/unix, when either is projected.
    /// RefCount by inode, from /proc/net/unix.
    pub unix: Arc<HashMap<u64, u32>>,
    /// cgroup id -> path, when `cgroup` is projected.
    pub cgroups: Arc<HashMap<u64, String>>,
    /// `socket_events` only: when each row's event arrived (µs since the epoch, UTC).
    pub times: Vec<i64>,
    /// Each row's place in `owners`, found once for the pid, program and fd columns.
    pub owner_at: OwnerSlots,
}

/// A cache [`Sockets`] fills when an owner column is first built; made empty.
#[derive(Default)]
pub struct OwnerSlots(OnceLock<Vec<u32>>);

impl Sockets {
    /// Where each row's owner is in `owners`, over `range`.
    fn owner_slots(&self, range: Range<usize>) -> &[u32] {
        let slots = self
            .owner_at
            .0
            .get_or_init(|| owners::slots(&self.rows, &self.owners));
        &slots[range]
    }

    /// The owner in `slot`; none for [`owners::NO_OWNER`], which is past the end.
    fn owner(&self, slot: u32) -> Option<&Owner> {
        self.owners.get(slot as usize)
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

/// The column names, declared once (in [`super::socket_names`]).
pub use super::socket_names as col;

/// Each column, declared once: `sockets` lists them all and `tcp_info` starts with the
/// identity ones, so both tables name and type them alike.
pub mod column {
    use super::super::columns::{
        int32, int64, ip_text, text_list, uint32, uint64, utf8, utf8_owned,
    };
    use super::super::{Column, Kind, Need};
    use super::{col, port, Sockets};
    use crate::collect::proc_unix;
    use crate::collect::socket_row::{sockopt_names, Family, State};

    pub const PROTO: Column<Sockets> = Column {
        name: col::PROTO,
        kind: Kind::Utf8,
        doc: "netstat's Proto: tcp, tcp6, udp, udp6, udplite, udplite6, raw, raw6, unix",
        needs: &[],
        build: |s, range| {
            utf8(&s.rows[range.clone()], |r| {
                Some(r.protocol.proto_name(r.family))
            })
        },
    };
    pub const FAMILY: Column<Sockets> = Column {
        name: col::FAMILY,
        kind: Kind::Utf8,
        doc: "Address family: inet, inet6, unix",
        needs: &[],
        build: |s, range| utf8(&s.rows[range.clone()], |r| Some(r.family.name())),
    };
    pub const TYPE: Column<Sockets> = Column {
        name: col::TYPE,
        kind: Kind::Utf8,
        doc: "Socket type: stream, dgram, seqpacket, raw",
        needs: &[],
        build: |s, range| utf8_owned(&s.rows[range.clone()], |r| Some(r.sock_type.name())),
    };
    pub const STATE: Column<Sockets> = Column {
            name: col::STATE,
            kind: Kind::Utf8,
            doc: "Kernel socket state: LISTEN, ESTABLISHED, SYN_SENT, ..., CLOSE for unconnected UDP/raw/unix",
            needs: &[],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| Some(r.state.name())),
    };
    pub const LOCAL_ADDRESS: Column<Sockets> = Column {
        name: col::LOCAL_ADDRESS,
        kind: Kind::Utf8,
        doc: "Local IP address (0.0.0.0 or :: for a wildcard bind); NULL for unix",
        needs: &[],
        build: |s, range| ip_text(&s.rows[range.clone()], |r| r.local.map(|a| a.ip())),
    };
    pub const LOCAL_PORT: Column<Sockets> = Column {
        name: col::LOCAL_PORT,
        kind: Kind::Int32,
        doc: "Local port, 0 when unbound; for raw sockets the IP protocol number; NULL for unix",
        needs: &[],
        build: |s, range| int32(&s.rows[range.clone()], |r| port(r.local)),
    };
    pub const REMOTE_ADDRESS: Column<Sockets> = Column {
        name: col::REMOTE_ADDRESS,
        kind: Kind::Utf8,
        doc: "Remote IP address (0.0.0.0 or :: when unconnected); NULL for unix",
        needs: &[],
        build: |s, range| ip_text(&s.rows[range.clone()], |r| r.remote.map(|a| a.ip())),
    };
    pub const REMOTE_PORT: Column<Sockets> = Column {
        name: col::REMOTE_PORT,
        kind: Kind::Int32,
        doc: "Remote port, 0 when unconnected; NULL for unix",
        needs: &[],
        build: |s, range| int32(&s.rows[range.clone()], |r| port(r.remote)),
    };
    pub const RECV_Q: Column<Sockets> = Column {
            name: col::RECV_Q,
            kind: Kind::UInt64,
            doc: "Receive queue in bytes (UDP: memory charged); LISTEN: connections waiting to be accepted. NULL for unix from /proc",
            needs: &[],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.recv_q),
    };
    pub const SEND_Q: Column<Sockets> = Column {
            name: col::SEND_Q,
            kind: Kind::UInt64,
            doc: "Send queue in bytes (TCP: not yet acknowledged); LISTEN: backlog limit, NULL from /proc (not there); NULL for unix from /proc",
            needs: &[],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.send_q),
    };
    pub const UID: Column<Sockets> = Column {
        name: col::UID,
        kind: Kind::UInt32,
        doc: "Owning user id; NULL for unix sockets from /proc (not there)",
        needs: &[],
        build: |s, range| uint32(&s.rows[range.clone()], |r| r.uid),
    };
    pub const USER: Column<Sockets> = Column {
        name: col::USER,
        kind: Kind::Utf8,
        doc: "Owning user's name from /etc/passwd; NULL if none",
        needs: &[Need::UserNames],
        build: |s, range| {
            utf8(&s.rows[range.clone()], |r| {
                r.uid.and_then(|uid| s.users.get(&uid)).map(String::as_str)
            })
        },
    };
    pub const INODE: Column<Sockets> = Column {
        name: col::INODE,
        kind: Kind::UInt64,
        doc: "Socket inode; 0 for TIME_WAIT, request and not-yet-accepted sockets",
        needs: &[],
        build: |s, range| uint64(&s.rows[range.clone()], |r| Some(r.inode)),
    };
    pub const PID: Column<Sockets> = Column {
        name: col::PID,
        kind: Kind::Int32,
        doc:
            "Lowest pid of a process holding the socket; NULL when none or not visible to us, and \
                for one held only in a thread's own descriptor table (unshare(CLONE_FILES)), \
                as for ss -p",
        needs: &[Need::Owners],
        build: |s, range| int32(s.owner_slots(range), |&at| s.owner(at).map(|o| o.pid)),
    };
    pub const PROGRAM: Column<Sockets> = Column {
        name: col::PROGRAM,
        kind: Kind::Utf8,
        doc: "Command name (comm) of that process; NULL when unknown",
        needs: &[Need::Owners, Need::Programs],
        build: |s, range| {
            utf8(s.owner_slots(range), |&at| {
                s.owner(at)
                    .and_then(|o| s.programs.get(&o.pid))
                    .map(String::as_str)
            })
        },
    };
    pub const FD: Column<Sockets> = Column {
        name: col::FD,
        kind: Kind::Int32,
        doc:
            "File descriptor number in that process (its lowest for this socket); NULL when unknown",
        needs: &[Need::Owners],
        build: |s, range| int32(s.owner_slots(range), |&at| s.owner(at).map(|o| o.fd)),
    };
    pub const PATH: Column<Sockets> = Column {
        name: col::PATH,
        kind: Kind::Utf8,
        doc: "Unix only: bound path, @name for the abstract namespace (a byte that is not UTF-8 written \\xNN, so a path holding that text itself reads alike), NULL when unnamed",
        needs: &[],
        build: |s, range| utf8(&s.rows[range.clone()], |r| r.path.as_deref()),
    };
    pub const PEER_INODE: Column<Sockets> = Column {
            name: col::PEER_INODE,
            kind: Kind::UInt64,
            doc: "Unix only: inode of the connected peer; NULL when unconnected or from /proc (not there)",
            needs: &[],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.peer_inode),
    };
    pub const UNIX_REFCNT: Column<Sockets> = Column {
            name: col::UNIX_REFCNT,
            kind: Kind::UInt32,
            doc: "Unix only: reference count as /proc/net/unix shows it (netstat -x RefCnt); NULL if gone from there, or if two records there disagree (a socket's path can print a made-up one)",
            needs: &[Need::UnixExtras],
            build: |s, range| uint32(&s.rows[range.clone()], |r| s.unix.get(&r.inode).filter(|_| r.family == Family::Unix).copied()),
    };
    pub const UNIX_FLAGS: Column<Sockets> = Column {
            name: col::UNIX_FLAGS,
            kind: Kind::UInt32,
            doc: "Unix only: socket flags as /proc/net/unix shows them (0x10000 __SO_ACCEPTCON: listening; netstat's [ ACC ])",
            needs: &[],
            // The kernel prints __SO_ACCEPTCON for a listener and nothing else
            // (unix_seq_show): the state says it, and a made-up record cannot.
            build: |s, range| uint32(&s.rows[range.clone()], |r| (r.family == Family::Unix).then_some(if r.state == State::Listen { proc_unix::SO_ACCEPTCON } else { 0 })),
    };
    pub const TIMER: Column<Sockets> = Column {
            name: col::TIMER,
            kind: Kind::Utf8,
            doc: "Pending timer as netstat -o names it: off, on (retransmit), keepalive, timewait, probe; NULL for unix",
            needs: &[],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| r.timer.map(|t| t.timer.name())),
    };
    pub const TIMER_EXPIRES_MS: Column<Sockets> = Column {
        name: col::TIMER_EXPIRES_MS,
        kind: Kind::Int64,
        doc: "Milliseconds until the timer fires (10 ms steps from /proc); NULL for unix",
        needs: &[],
        build: |s, range| int64(&s.rows[range.clone()], |r| r.timer.map(|t| t.expires_ms)),
    };
    pub const RETRANSMITS: Column<Sockets> = Column {
            name: col::RETRANSMITS,
            kind: Kind::Int32,
            doc: "Unanswered retransmissions in a row (icsk_retransmits: netstat -o's second number, ss -o's for the `on` timer); NULL for unix",
            needs: &[Need::TimerCounters],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.timer.and_then(|t| t.retransmits)),
    };
    pub const PROBES: Column<Sockets> = Column {
            name: col::PROBES,
            kind: Kind::Int32,
            doc: "Unanswered keepalive or zero-window probes (icsk_probes_out: netstat -o's third number, ss -o's for keepalive and persist); NULL for unix",
            needs: &[Need::TimerCounters],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.timer.and_then(|t| t.probes)),
    };
    pub const NETNS: Column<Sockets> = Column {
        name: col::NETNS,
        kind: Kind::UInt64,
        doc: super::super::netns::NETNS_DOC,
        needs: &[],
        build: super::super::netns::inode_column::<Sockets>,
    };
    pub const NETNS_NAME: Column<Sockets> = Column {
        name: col::NETNS_NAME,
        kind: Kind::Utf8,
        doc: super::super::netns::NETNS_NAME_DOC,
        needs: &[],
        build: super::super::netns::name_column::<Sockets>,
    };

    fn extras(
        r: &crate::collect::socket_row::SocketRow,
    ) -> Option<&crate::collect::socket_row::Extras> {
        r.extras.as_deref()
    }

    macro_rules! skmem {
        ($i:literal, $doc:literal) => {
            Column {
                name: col::SKMEM[$i],
                kind: Kind::UInt64,
                doc: $doc,
                needs: &[Need::SocketMemory],
                build: |s, range| {
                    uint64(&s.rows[range.clone()], |r| {
                        extras(r)?.skmem[$i].map(u64::from)
                    })
                },
            }
        };
    }

    pub const CGROUP_ID: Column<Sockets> = Column {
        name: col::CGROUP_ID,
        kind: Kind::UInt64,
        doc: "cgroup v2 id of the socket (INET_DIAG_CGROUP_ID: the cgroup of the process that made it); NULL for unix, TIME_WAIT, request sockets and --source proc",
        needs: &[Need::CgroupId],
        build: |s, range| uint64(&s.rows[range.clone()], |r| extras(r)?.cgroup_id),
    };
    pub const CGROUP: Column<Sockets> = Column {
        name: col::CGROUP,
        kind: Kind::Utf8,
        doc: "That cgroup's path, as ss --cgroup prints it (the cgroup2 directory whose inode is the id); NULL when none is found",
        needs: &[Need::CgroupId, Need::CgroupPaths],
        build: |s, range| utf8(&s.rows[range.clone()], |r| s.cgroups.get(&extras(r)?.cgroup_id?).map(String::as_str)),
    };
    pub const SHUTDOWN: Column<Sockets> = Column {
        name: col::SHUTDOWN,
        kind: Kind::Utf8,
        doc: "Halves shut down (shutdown(2) or a FIN): rd, wr, rdwr; NULL when neither is, or not known (TIME_WAIT, request sockets, --source proc)",
        needs: &[Need::Shutdown],
        build: |s, range| utf8(&s.rows[range.clone()], |r| match extras(r)?.shutdown? & 3 {
            1 => Some("rd"),
            2 => Some("wr"),
            3 => Some("rdwr"),
            _ => None,
        }),
    };
    pub const TOS: Column<Sockets> = Column {
        name: col::TOS,
        kind: Kind::UInt32,
        doc: "IPv4 TOS byte, IPv6 traffic class (ss -e's tos:/tclass:); NULL for unix and --source proc",
        needs: &[Need::Tos],
        build: |s, range| uint32(&s.rows[range.clone()], |r| extras(r)?.tos.map(u32::from)),
    };
    pub const MARK: Column<Sockets> = Column {
        name: col::MARK,
        kind: Kind::UInt32,
        doc: "SO_MARK; the kernel tells it only to CAP_NET_ADMIN: NULL otherwise, and for unix",
        needs: &[Need::Mark],
        build: |s, range| uint32(&s.rows[range.clone()], |r| extras(r)?.mark),
    };
    pub const SOCKOPT: Column<Sockets> = Column {
        name: col::SOCKOPT,
        kind: Kind::Utf8List,
        doc: "Socket options set, as ss --inet-sockopt names them (recverr, is_icsk, freebind, hdrincl, mc_loop, transparent, mc_all, nodefrag, bind_address_no_port, recverr_rfc4884, defer_connect); NULL for unix, TIME_WAIT, request sockets, --source proc and kernels before 5.10",
        needs: &[Need::SocketOptions],
        build: |s, range| text_list(&s.rows[range.clone()], |r| extras(r)?.sockopt.map(sockopt_names)),
    };
    pub const SKMEM_RMEM_ALLOC: Column<Sockets> =
        skmem!(0, "Receive memory allocated, bytes (ss -m r)");
    pub const SKMEM_RCVBUF: Column<Sockets> = skmem!(1, "Receive buffer size, bytes (ss -m rb)");
    pub const SKMEM_WMEM_ALLOC: Column<Sockets> =
        skmem!(2, "Send memory allocated, bytes (ss -m t)");
    pub const SKMEM_SNDBUF: Column<Sockets> = skmem!(3, "Send buffer size, bytes (ss -m tb)");
    pub const SKMEM_FWD_ALLOC: Column<Sockets> =
        skmem!(4, "Memory reserved ahead, bytes (ss -m f)");
    pub const SKMEM_WMEM_QUEUED: Column<Sockets> = skmem!(5, "Send queue memory, bytes (ss -m w)");
    pub const SKMEM_OPTMEM: Column<Sockets> = skmem!(6, "Option memory, bytes (ss -m o)");
    pub const SKMEM_BACKLOG: Column<Sockets> = skmem!(7, "Backlog queue, bytes (ss -m bl)");
    pub const DROPS: Column<Sockets> = Column {
        name: col::DROPS,
        kind: Kind::UInt64,
        doc: "Packets dropped (ss -m d; /proc/net/udp's drops under --source proc, where TCP's is NULL)",
        needs: &[Need::SocketMemory],
        build: |s, range| uint64(&s.rows[range.clone()], |r| extras(r)?.skmem[8].map(u64::from)),
    };
    pub const COOKIE: Column<Sockets> = Column {
        name: col::COOKIE,
        kind: Kind::UInt64,
        doc: "The kernel's socket cookie (ss -e sk:, in hex there): one socket for its whole life, where addresses and ports may be reused; NULL for --source proc",
        needs: &[],
        build: |s, range| uint64(&s.rows[range.clone()], |r| (r.cookie != 0).then_some(r.cookie)),
    };
    pub const BOUND_IFINDEX: Column<Sockets> = Column {
        name: col::BOUND_IFINDEX,
        kind: Kind::UInt32,
        doc: "Index of the interface the socket is bound to (SO_BINDTODEVICE; ss's %dev after the address); NULL when unbound or unknown",
        needs: &[],
        build: |s, range| uint32(&s.rows[range.clone()], |r| (r.bound_if != 0).then_some(r.bound_if)),
    };
}

pub static SPEC: TableSpec<Sockets> = TableSpec {
    name: "sockets",
    doc: "One row per socket (TCP, UDP, UDP-Lite, raw, unix) in the current network namespace, or those `netsql.netns` or a netns filter selects",
    columns: &[
        column::PROTO,
        column::FAMILY,
        column::TYPE,
        column::STATE,
        column::LOCAL_ADDRESS,
        column::LOCAL_PORT,
        column::REMOTE_ADDRESS,
        column::REMOTE_PORT,
        column::RECV_Q,
        column::SEND_Q,
        column::UID,
        column::USER,
        column::INODE,
        column::PID,
        column::PROGRAM,
        column::FD,
        column::PATH,
        column::PEER_INODE,
        column::UNIX_REFCNT,
        column::UNIX_FLAGS,
        column::TIMER,
        column::TIMER_EXPIRES_MS,
        column::RETRANSMITS,
        column::PROBES,
        column::NETNS,
        column::NETNS_NAME,
        column::CGROUP_ID,
        column::CGROUP,
        column::SHUTDOWN,
        column::TOS,
        column::MARK,
        column::SOCKOPT,
        column::SKMEM_RMEM_ALLOC,
        column::SKMEM_RCVBUF,
        column::SKMEM_WMEM_ALLOC,
        column::SKMEM_SNDBUF,
        column::SKMEM_FWD_ALLOC,
        column::SKMEM_WMEM_QUEUED,
        column::SKMEM_OPTMEM,
        column::SKMEM_BACKLOG,
        column::DROPS,
        column::COOKIE,
        column::BOUND_IFINDEX,
    ],
};

pub use super::sockets_filter::pushdown;

/// What a scan of `spec` (sockets or tcp_info) asks of sock_diag and /proc/net/unix:
/// what its projected columns declare they need, so `SELECT state, count(*)` sends the
/// bare request.
pub fn needs(spec: &TableSpec<Sockets>, scan: &Scan) -> sockets::Needs {
    let needed = spec.needed(scan);
    sockets::Needs {
        ext: extensions(needed),
        // Socket inodes are host-wide: one walk after the namespaces serves them all.
        owners: false,
        unix_extras: needed.has(Need::UnixExtras),
    }
}

/// The sock_diag attributes that columns needing `needed` are made from.
pub fn extensions(needed: Needed) -> Extensions {
    Extensions {
        counters: needed.has(Need::TimerCounters),
        tcp_info: needed.has(Need::TcpInfo),
        congestion: needed.has(Need::Congestion),
        skmem: needed.has(Need::SocketMemory),
        tos: needed.has(Need::Tos),
        shutdown: needed.has(Need::Shutdown),
        mark: needed.has(Need::Mark),
        cgroup_id: needed.has(Need::CgroupId),
        sockopt: needed.has(Need::SocketOptions),
    }
}

/// What a scan of `spec` asks sock_diag for beyond the bare rows, as EXPLAIN shows it:
/// `sock_diag_extensions=tcp_info,congestion`, or `=none`.
pub fn kernel_request(spec: &TableSpec<Sockets>, scan: &Scan) -> String {
    let names = needs(spec, scan).ext.names();
    let names = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    };
    format!("sock_diag_extensions={names}")
}

/// Dumps the sockets of each namespace the scan selects; owners, user names and unix
/// extras only when projected.
pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Sockets, DataFusionError> {
    collect_for(
        &SPEC,
        config,
        scan,
        &super::sockets_filter::socket_filter(&scan.filters),
    )
}

/// [`collect`], handed on in parts as the kernel's dump is read.
pub fn collect_parts(
    config: &TablesConfig,
    scan: &Scan,
    part: &mut dyn FnMut(Sockets) -> bool,
) -> Result<(), DataFusionError> {
    let filter = super::sockets_filter::socket_filter(&scan.filters);
    collect_parts_for(&SPEC, config, scan, &filter, part)
}

/// The scan behind `sockets` and `tcp_info`, in parts of [`BATCH_ROWS`] rows as they are
/// read when one namespace is read, ours: the lookups a projection needs (owners, user
/// names, cgroup paths, /proc/net/unix) are made first, as `ss -p` walks /proc before
/// its dump, and shared by every part. Several namespaces come as [`collect_for`]'s one
/// part.
pub fn collect_parts_for(
    spec: &TableSpec<Sockets>,
    config: &TablesConfig,
    scan: &Scan,
    filter: &sockets::SocketFilter,
    part: &mut dyn FnMut(Sockets) -> bool,
) -> Result<(), DataFusionError> {
    let namespaces = super::netns::namespaces(config, scan)?;
    let ns = match namespaces.as_slice() {
        [only] if only.is_current => only.clone(),
        _ => {
            part(collect_in(spec, config, scan, filter, namespaces)?);
            return Ok(());
        }
    };
    let ns = &ns;
    let needs = needs(spec, scan);
    let root = &config.root;
    let needed = spec.needed(scan);
    let mut lookups = Sockets::default();
    if needed.has(Need::Owners) {
        // Every socket's lowest-pid holder, found before the dump: the walk cannot stop
        // early without the dump's inodes, but the rows need not wait for it.
        let walk =
            SharedWalk::walk_all(scan.session.get_extension::<SharedWalk>().as_deref(), root)
                .map_err(external)?;
        super::warn_unidentified(walk.denied);
        // Sorted by inode, then pid and fd: the first of each inode is its lowest holder.
        let mut owners = walk.into_owners();
        owners.dedup_by_key(|o| o.inode);
        lookups.owners = Arc::new(owners);
    }
    lookups.fill(root, needed, needs.unix_extras)?;
    let mut hand = |rows: Rows| {
        let mut spans = Spans::default();
        spans.push(rows.len(), ns);
        part(Sockets {
            rows,
            spans,
            owners: lookups.owners.clone(),
            programs: lookups.programs.clone(),
            users: lookups.users.clone(),
            unix: lookups.unix.clone(),
            cgroups: lookups.cgroups.clone(),
            times: Vec::new(),
            owner_at: OwnerSlots::default(),
        })
    };
    let mut sink = sockets::RowSink::parts(BATCH_ROWS, &mut hand);
    sockets::collect_into(
        root,
        config.source,
        filter,
        needs.ext,
        walks(config, 1),
        scan.session.get_extension::<SharedDump>().as_deref(),
        &mut sink,
    )
    .map_err(external)?;
    sink.finish();
    Ok(())
}

impl Sockets {
    /// Reads the lookups the projection needs besides owners: their programs, user
    /// names, cgroup paths, and /proc/net/unix when `unix_extras`.
    fn fill(
        &mut self,
        root: &crate::collect::Root,
        needed: Needed,
        unix_extras: bool,
    ) -> Result<(), DataFusionError> {
        if needed.has(Need::Programs) {
            self.programs =
                Arc::new(programs(root, self.owners.iter().map(|o| o.pid)).map_err(external)?);
        }
        if needed.has(Need::UserNames) {
            self.users = Arc::new(passwd::read_names(root).map_err(external)?);
        }
        if needed.has(Need::CgroupPaths) {
            self.cgroups = Arc::new(cgroups::paths(root).map_err(external)?);
        }
        if unix_extras {
            self.unix = Arc::new(proc_unix::extras(root).map_err(external)?);
        }
        Ok(())
    }
}

/// How a scan of `namespaces` read together walks each one's TCP table: a second walk
/// of a namespace pays only with a core of its own (namespaces read together take a core
/// each), and a split walks the table twice.
fn walks(config: &TablesConfig, namespaces: usize) -> Walks {
    match netns::cores_each(namespaces) {
        0 | 1 => Walks::Serial,
        _ => config.walks,
    }
}

/// The scan behind `sockets` and `tcp_info`.
pub fn collect_for(
    spec: &TableSpec<Sockets>,
    config: &TablesConfig,
    scan: &Scan,
    filter: &sockets::SocketFilter,
) -> Result<Sockets, DataFusionError> {
    let namespaces = super::netns::namespaces(config, scan)?;
    collect_in(spec, config, scan, filter, namespaces)
}

/// [`collect_for`] over `namespaces`, already selected.
fn collect_in(
    spec: &TableSpec<Sockets>,
    config: &TablesConfig,
    scan: &Scan,
    filter: &sockets::SocketFilter,
    namespaces: Vec<crate::collect::netns::Namespace>,
) -> Result<Sockets, DataFusionError> {
    let needed = spec.needed(scan);
    let root = &config.root;
    let needs = needs(spec, scan);
    let moment = scan.session.get_extension::<SharedDump>();
    let walks = walks(config, namespaces.len());
    let visited = netns::visit(root, namespaces, |ns_root, access| {
        // Outside a namespace we could not enter, sock_diag would answer for ours.
        let source = match access {
            Access::Files => Source::Proc,
            Access::Current | Access::Entered => config.source,
        };
        sockets::scan(ns_root, source, filter, needs, walks, moment.as_deref())
    })
    .map_err(external)?;
    netns::warn_invisible(&visited.invisible);
    let mut all = Sockets::default();
    let mut unix = HashMap::new();
    for (ns, scanned) in visited.read {
        if all.rows.is_empty() {
            all.rows = Rows::Own(scanned.rows);
        } else {
            all.rows.to_mut().extend(scanned.rows);
        }
        unix.extend(scanned.unix);
        all.spans.push(all.rows.len(), &ns);
    }
    all.unix = Arc::new(unix);
    if needed.has(Need::Owners) {
        let (owners, denied) = sockets::lowest_owners(root, &all.rows).map_err(external)?;
        super::warn_unidentified(denied);
        all.owners = Arc::new(owners);
    }
    // Each namespace's /proc/net/unix came with its scan.
    all.fill(root, needed, false)?;
    Ok(all)
}
