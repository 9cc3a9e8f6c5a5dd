//! `routes`: the IPv4 and IPv6 routing tables (`netstat -r`, `ip route`).

use datafusion::error::DataFusionError;

use super::columns::{int64, uint32, uint64, utf8, utf8_owned};
use super::{Column, Kind, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::routes::{self, Route};

pub type Routes = super::netns::PerNs<Route>;

pub static SPEC: TableSpec<Routes> = TableSpec {
    name: "routes",
    doc: "The routes the kernel's /proc files list, as netstat -r shows them: IPv4's main \
          table (/proc/net/route; a multipath route by its first next hop) and every IPv6 \
          table (/proc/net/ipv6_route: main, local, policy tables, and each table's \
          unreachable ::/0 placeholder with flags 0x200200 and metric 4294967295 on lo), \
          with no column saying which table: `ip route show table all` says",
    columns: &[
        Column {
            name: "family",
            kind: Kind::Utf8,
            doc: "inet or inet6",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |r| Some(r.family)),
        },
        Column {
            name: "destination",
            kind: Kind::Utf8,
            doc: "Destination network (0.0.0.0 or :: for the default route)",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| Some(r.destination.to_string()))
            },
        },
        Column {
            name: "prefix_len",
            kind: Kind::UInt32,
            doc: "Destination prefix length (from the IPv4 netmask)",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| Some(u32::from(r.prefix_len))),
        },
        Column {
            name: "netmask",
            kind: Kind::Utf8,
            doc: "IPv4 netmask (netstat's Genmask); NULL for IPv6",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| {
                    (r.family == "inet").then(|| {
                        let bits = u32::MAX
                            .checked_shl(32 - u32::from(r.prefix_len))
                            .unwrap_or(0);
                        std::net::Ipv4Addr::from(bits).to_string()
                    })
                })
            },
        },
        Column {
            name: "gateway",
            kind: Kind::Utf8,
            doc: "Next hop (0.0.0.0 or :: when directly connected)",
            needs: &[],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |r| Some(r.gateway.to_string())),
        },
        Column {
            name: "interface",
            kind: Kind::Utf8,
            doc: "Outgoing interface (U+FFFD for bytes that are not UTF-8, so two such names may read alike)",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |r| Some(&r.interface)),
        },
        Column {
            name: "flags",
            kind: Kind::UInt32,
            doc: "RTF_* bits: 0x1 U(p), 0x2 G(ateway), 0x4 H(ost), 0x200 reject, ...",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| Some(r.flags)),
        },
        Column {
            name: "metric",
            kind: Kind::UInt32,
            doc: "Route metric",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| Some(r.metric)),
        },
        Column {
            name: "ref_count",
            kind: Kind::Int64,
            doc: "References to the route",
            needs: &[],
            build: |s, range| int64(&s.rows[range.clone()], |r| Some(r.ref_count)),
        },
        Column {
            name: "use_count",
            kind: Kind::UInt64,
            doc: "Lookups of the route",
            needs: &[],
            build: |s, range| uint64(&s.rows[range.clone()], |r| Some(r.use_count)),
        },
        Column {
            name: "mtu",
            kind: Kind::UInt32,
            doc: "IPv4: netstat's MSS: the route's advmss + 40 when it has one, else 0 (not \
                  its `mtu`); NULL for IPv6",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.mtu),
        },
        Column {
            name: "window",
            kind: Kind::UInt32,
            doc: "IPv4: TCP window clamp; NULL for IPv6",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.window),
        },
        Column {
            name: "irtt",
            kind: Kind::UInt32,
            doc: "IPv4: initial round trip time (ms, `ip route ... rtt`); NULL for IPv6",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.irtt),
        },
        Column {
            name: super::netns::NETNS,
            kind: Kind::UInt64,
            doc: super::netns::NETNS_DOC,
            needs: &[],
            build: super::netns::inode_column::<Routes>,
        },
        Column {
            name: super::netns::NETNS_NAME,
            kind: Kind::Utf8,
            doc: super::netns::NETNS_NAME_DOC,
            needs: &[],
            build: super::netns::name_column::<Routes>,
        },
    ],
};

pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Routes, DataFusionError> {
    super::netns::per_namespace(config, scan, |root, _| routes::read(root))
}
