//! `sockets`: one row per socket in the current network namespace.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;

use super::columns::{int32, int64, uint32, uint64, utf8, utf8_owned};
use super::{Column, Kind, Snapshot, TableSpec};
use crate::catalog::{LiveTable, Scan};
use crate::collect::socket::SocketRow;
use crate::collect::sockets::{self, SocketFilter, Source};
use crate::collect::{netns, Root};

/// One scan of the socket table.
pub struct Sockets {
    pub rows: Vec<SocketRow>,
    pub netns: Option<u64>,
}

impl Snapshot for Sockets {
    fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

fn port(addr: Option<std::net::SocketAddr>) -> Option<i32> {
    addr.map(|a| i32::from(a.port()))
}

pub static SPEC: TableSpec<Sockets> = TableSpec {
    name: "sockets",
    doc: "One row per socket (TCP, UDP, UDP-Lite, raw, unix) in the current network namespace",
    columns: &[
        Column {
            name: "proto",
            kind: Kind::Utf8,
            doc: "netstat's Proto: tcp, tcp6, udp, udp6, udplite, udplite6, raw, raw6, unix",
            build: |s| utf8(&s.rows, |r| Some(r.protocol.proto_name(r.family))),
        },
        Column {
            name: "family",
            kind: Kind::Utf8,
            doc: "Address family: inet, inet6, unix",
            build: |s| utf8(&s.rows, |r| Some(r.family.name())),
        },
        Column {
            name: "type",
            kind: Kind::Utf8,
            doc: "Socket type: stream, dgram, seqpacket, raw",
            build: |s| utf8_owned(&s.rows, |r| Some(r.sock_type.name())),
        },
        Column {
            name: "state",
            kind: Kind::Utf8,
            doc: "Kernel socket state: LISTEN, ESTABLISHED, SYN_SENT, ..., CLOSE for unconnected UDP/raw/unix",
            build: |s| utf8_owned(&s.rows, |r| Some(r.state.name())),
        },
        Column {
            name: "local_address",
            kind: Kind::Utf8,
            doc: "Local IP address (0.0.0.0 or :: for a wildcard bind); NULL for unix",
            build: |s| utf8_owned(&s.rows, |r| r.local.map(|a| a.ip().to_string())),
        },
        Column {
            name: "local_port",
            kind: Kind::Int32,
            doc: "Local port, 0 when unbound; for raw sockets the IP protocol number; NULL for unix",
            build: |s| int32(&s.rows, |r| port(r.local)),
        },
        Column {
            name: "remote_address",
            kind: Kind::Utf8,
            doc: "Remote IP address (0.0.0.0 or :: when unconnected); NULL for unix",
            build: |s| utf8_owned(&s.rows, |r| r.remote.map(|a| a.ip().to_string())),
        },
        Column {
            name: "remote_port",
            kind: Kind::Int32,
            doc: "Remote port, 0 when unconnected; NULL for unix",
            build: |s| int32(&s.rows, |r| port(r.remote)),
        },
        Column {
            name: "recv_q",
            kind: Kind::UInt64,
            doc: "Receive queue in bytes (UDP: memory charged); LISTEN: connections waiting to be accepted. NULL for unix from /proc",
            build: |s| uint64(&s.rows, |r| r.recv_q),
        },
        Column {
            name: "send_q",
            kind: Kind::UInt64,
            doc: "Send queue in bytes (TCP: not yet acknowledged); LISTEN: backlog limit, NULL from /proc (not there); NULL for unix from /proc",
            build: |s| uint64(&s.rows, |r| r.send_q),
        },
        Column {
            name: "uid",
            kind: Kind::UInt32,
            doc: "Owning user id; NULL for unix sockets from /proc (not there)",
            build: |s| uint32(&s.rows, |r| r.uid),
        },
        Column {
            name: "user",
            kind: Kind::Utf8,
            doc: "Owning user's name from /etc/passwd; NULL if none",
            build: |s| utf8(&s.rows, |_| None),
        },
        Column {
            name: "inode",
            kind: Kind::UInt64,
            doc: "Socket inode; 0 for TIME_WAIT, request and not-yet-accepted sockets",
            build: |s| uint64(&s.rows, |r| Some(r.inode)),
        },
        Column {
            name: "pid",
            kind: Kind::Int32,
            doc: "Lowest pid of a process holding the socket; NULL when unknown",
            build: |s| int32(&s.rows, |_| None),
        },
        Column {
            name: "program",
            kind: Kind::Utf8,
            doc: "Command name (comm) of that process; NULL when unknown",
            build: |s| utf8(&s.rows, |_| None),
        },
        Column {
            name: "fd",
            kind: Kind::Int32,
            doc: "File descriptor number in that process; NULL when unknown",
            build: |s| int32(&s.rows, |_| None),
        },
        Column {
            name: "path",
            kind: Kind::Utf8,
            doc: "Unix only: bound path, @name for the abstract namespace, NULL when unnamed",
            build: |s| utf8(&s.rows, |r| r.path.as_deref()),
        },
        Column {
            name: "peer_inode",
            kind: Kind::UInt64,
            doc: "Unix only: inode of the connected peer; NULL when unconnected or from /proc (not there)",
            build: |s| uint64(&s.rows, |r| r.peer_inode),
        },
        Column {
            name: "timer",
            kind: Kind::Utf8,
            doc: "Pending timer as netstat -o names it: off, on (retransmit), keepalive, timewait, probe; NULL for unix",
            build: |s| utf8_owned(&s.rows, |r| r.timer.map(|t| t.timer.name())),
        },
        Column {
            name: "timer_expires_ms",
            kind: Kind::Int64,
            doc: "Milliseconds until the timer fires (10 ms steps from /proc); NULL for unix",
            build: |s| int64(&s.rows, |r| r.timer.map(|t| t.expires_ms)),
        },
        Column {
            name: "retransmits",
            kind: Kind::Int32,
            doc: "Retransmissions (keepalive/probe: probes sent) of the pending timer; NULL for unix",
            build: |s| int32(&s.rows, |r| r.timer.map(|t| t.retransmits)),
        },
        Column {
            name: "netns",
            kind: Kind::UInt64,
            doc: "Inode of the socket's network namespace (as in /proc/<pid>/ns/net)",
            build: |s| uint64(&s.rows, |_| s.netns),
        },
    ],
};

#[derive(Debug)]
pub struct SocketsTable {
    root: Root,
    source: Source,
    schema: SchemaRef,
}

impl SocketsTable {
    pub fn new(root: Root, source: Source) -> Self {
        SocketsTable {
            root,
            source,
            schema: SPEC.schema(),
        }
    }
}

impl LiveTable for SocketsTable {
    fn name(&self) -> &'static str {
        SPEC.name
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn collect(&self, scan: &Scan) -> Result<RecordBatch, DataFusionError> {
        let filter = SocketFilter::default();
        let rows = sockets::collect(&self.root, self.source, &filter)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let wants_netns = scan
            .projection
            .iter()
            .any(|&i| SPEC.columns[i].name == "netns");
        let netns = if wants_netns {
            netns::current(&self.root).ok()
        } else {
            None
        };
        let snapshot = Sockets { rows, netns };
        Ok(SPEC.batch(scan.schema.clone(), &scan.projection, &snapshot)?)
    }
}
