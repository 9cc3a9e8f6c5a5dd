//! `protocol_stats`: every kernel protocol counter (`netstat -s`, `nstat`).

use datafusion::error::DataFusionError;

use super::columns::{int64, utf8};
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::snmp::{self, Counter};

pub struct Stats(Vec<Counter>);

impl Snapshot for Stats {
    fn num_rows(&self) -> usize {
        self.0.len()
    }
}

pub static SPEC: TableSpec<Stats> = TableSpec {
    name: "protocol_stats",
    doc: "Every counter of /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6, in file order",
    columns: &[
        Column {
            name: "file",
            kind: Kind::Utf8,
            doc: "The file under /proc/net: snmp, netstat or snmp6",
            build: |s, range| utf8(&s.0[range.clone()], |c| Some(c.file)),
        },
        Column {
            name: "protocol",
            kind: Kind::Utf8,
            doc: "Section: Ip, Icmp, IcmpMsg, Tcp, Udp, UdpLite, TcpExt, IpExt, ..., Ip6, Icmp6, Udp6",
            build: |s, range| utf8(&s.0[range.clone()], |c| Some(&c.protocol)),
        },
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "Counter name within the section (InReceives, ActiveOpens, ...)",
            build: |s, range| utf8(&s.0[range.clone()], |c| Some(&c.name)),
        },
        Column {
            name: "value",
            kind: Kind::Int64,
            doc: "Counter value (signed: Tcp MaxConn is -1)",
            build: |s, range| int64(&s.0[range.clone()], |c| Some(c.value)),
        },
    ],
};

pub fn collect(config: &TablesConfig, _scan: &Scan) -> Result<Stats, DataFusionError> {
    Ok(Stats(snmp::read(&config.root).map_err(external)?))
}
