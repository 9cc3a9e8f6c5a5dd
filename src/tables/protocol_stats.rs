//! `protocol_stats`: every kernel protocol counter (`netstat -s`, `nstat`).

use datafusion::error::DataFusionError;

use super::columns::{int64, utf8};
use super::{Column, Kind, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::snmp::{self, Counter};

pub type Stats = super::netns::PerNs<Counter>;

pub static SPEC: TableSpec<Stats> = TableSpec {
    name: "protocol_stats",
    doc: "Every counter of /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6, in file order",
    columns: &[
        Column {
            name: "file",
            kind: Kind::Utf8,
            doc: "The file under /proc/net: snmp, netstat or snmp6",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |c| Some(c.file)),
        },
        Column {
            name: "protocol",
            kind: Kind::Utf8,
            doc: "Section: Ip, Icmp, IcmpMsg, Tcp, Udp, UdpLite, TcpExt, IpExt, ..., Ip6, Icmp6, Udp6",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |c| Some(&c.protocol)),
        },
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "Counter name within the section (InReceives, ActiveOpens, ...)",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |c| Some(&c.name)),
        },
        Column {
            name: "value",
            kind: Kind::Int64,
            doc: "Counter value (signed: Tcp MaxConn is -1)",
            needs: &[],
            build: |s, range| int64(&s.rows[range.clone()], |c| Some(c.value)),
        },
        Column {
            name: super::netns::NETNS,
            kind: Kind::UInt64,
            doc: super::netns::NETNS_DOC,
            needs: &[],
            build: super::netns::inode_column::<Stats>,
        },
        Column {
            name: super::netns::NETNS_NAME,
            kind: Kind::Utf8,
            doc: super::netns::NETNS_NAME_DOC,
            needs: &[],
            build: super::netns::name_column::<Stats>,
        },
    ],
};

pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Stats, DataFusionError> {
    super::netns::per_namespace(config, scan, |root, _| snmp::read(root))
}
