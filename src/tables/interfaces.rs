//! `interfaces`: network interfaces with their counters (`netstat -i`, `ip -s link`).

use datafusion::error::DataFusionError;

use super::columns::{uint32, uint64, utf8, utf8_list};
use super::{Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::netdev::{self, Interface};
use crate::collect::netns::Access;

pub struct Interfaces {
    rows: Vec<Interface>,
    flag_names: Vec<Option<Vec<String>>>,
    spans: super::netns::Spans,
}

impl super::netns::HasSpans for Interfaces {
    fn spans(&self) -> &super::netns::Spans {
        &self.spans
    }
}

impl Snapshot for Interfaces {
    fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

/// `IFF_*` bits by the names `ip link` prints.
const FLAG_NAMES: [(u32, &str); 16] = [
    (0x1, "UP"),
    (0x2, "BROADCAST"),
    (0x4, "DEBUG"),
    (0x8, "LOOPBACK"),
    (0x10, "POINTOPOINT"),
    (0x20, "NOTRAILERS"),
    (0x40, "RUNNING"),
    (0x80, "NOARP"),
    (0x100, "PROMISC"),
    (0x200, "ALLMULTI"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x1000, "MULTICAST"),
    (0x2000, "PORTSEL"),
    (0x4000, "AUTOMEDIA"),
    (0x8000, "DYNAMIC"),
];

macro_rules! counter {
    ($name:literal, $doc:literal, $side:ident, $i:literal) => {
        Column {
            name: $name,
            kind: Kind::UInt64,
            doc: $doc,
            needs: &[],
            build: |s, range| uint64(&s.rows[range.clone()], |r| Some(r.$side[$i])),
        }
    };
}

pub static SPEC: TableSpec<Interfaces> = TableSpec {
    name: "interfaces",
    doc:
        "Network interfaces of the scanned namespaces with their counters (/proc/net/dev) and flags",
    columns: &[
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "Interface name (U+FFFD for bytes that are not UTF-8, so two such names may read alike)",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |r| Some(&r.name)),
        },
        Column {
            name: "mtu",
            kind: Kind::UInt32,
            doc: "MTU in bytes; NULL if the interface vanished while being read",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.mtu),
        },
        Column {
            name: "flags",
            kind: Kind::UInt32,
            doc: "IFF_* flag bits as SIOCGIFFLAGS reports them (0x1 UP, 0x40 RUNNING, ...)",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.flags),
        },
        Column {
            name: "flag_names",
            kind: Kind::Utf8List,
            doc: "Those flags by name: UP, BROADCAST, LOOPBACK, RUNNING, MULTICAST, ...",
            needs: &[],
            build: |s, range| utf8_list(&s.flag_names[range.clone()], |f| f.as_deref()),
        },
        counter!("rx_bytes", "Bytes received", rx, 0),
        counter!("rx_packets", "Packets received (netstat's RX-OK)", rx, 1),
        counter!("rx_errors", "Receive errors (RX-ERR)", rx, 2),
        counter!("rx_dropped", "Received packets dropped (RX-DRP)", rx, 3),
        counter!("rx_fifo", "Receive FIFO overruns (RX-OVR)", rx, 4),
        counter!("rx_frame", "Receive framing errors", rx, 5),
        counter!("rx_compressed", "Compressed packets received", rx, 6),
        counter!("rx_multicast", "Multicast packets received", rx, 7),
        counter!("tx_bytes", "Bytes sent", tx, 0),
        counter!("tx_packets", "Packets sent (TX-OK)", tx, 1),
        counter!("tx_errors", "Transmit errors (TX-ERR)", tx, 2),
        counter!("tx_dropped", "Packets dropped on transmit (TX-DRP)", tx, 3),
        counter!("tx_fifo", "Transmit FIFO overruns (TX-OVR)", tx, 4),
        counter!("tx_collisions", "Collisions", tx, 5),
        counter!("tx_carrier", "Carrier losses", tx, 6),
        counter!("tx_compressed", "Compressed packets sent", tx, 7),
        Column {
            name: super::netns::NETNS,
            kind: Kind::UInt64,
            doc: super::netns::NETNS_DOC,
            needs: &[],
            build: super::netns::inode_column::<Interfaces>,
        },
        Column {
            name: super::netns::NETNS_NAME,
            kind: Kind::Utf8,
            doc: super::netns::NETNS_NAME_DOC,
            needs: &[],
            build: super::netns::name_column::<Interfaces>,
        },
    ],
};

pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Interfaces, DataFusionError> {
    // The ioctls describe the live host, and only the namespace this thread is in.
    let live = config.root.proc == std::path::Path::new("/proc");
    let super::netns::PerNs { rows, spans } =
        super::netns::per_namespace(config, scan, |root, access| {
            netdev::read(root, live && access != Access::Files)
        })?;
    let flag_names = rows
        .iter()
        .map(|r| {
            r.flags.map(|flags| {
                FLAG_NAMES
                    .iter()
                    .filter(|(bit, _)| flags & bit != 0)
                    .map(|(_, name)| name.to_string())
                    .collect()
            })
        })
        .collect();
    Ok(Interfaces {
        rows,
        flag_names,
        spans,
    })
}
