//! `conntrack`: the kernel's connection-tracking table, one row per tracked connection
//! in each namespace read (`conntrack -L -o extended,id`), with what NAT did to it.

use std::net::{IpAddr, SocketAddr};

use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};

use super::columns::{int32, ip_text, text_list, timestamp_us, uint32, uint64, utf8, utf8_owned};
use super::literals::{address_literal, cast_int_literal, column_name};
use super::netns::{self, PerNs, Spans};
use super::{Column, Kind, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::conntrack::{self, Ctnetlink, Filter, Flow};
use crate::collect::netns::Access;
use crate::collect::CollectError;

pub type Flows = PerNs<Flow>;

const IPS_SRC_NAT: u32 = 1 << 4;
const IPS_DST_NAT: u32 = 1 << 5;

/// A tuple's endpoint as text: `addr:port`, `[v6]:port`, or the address alone for
/// protocols without ports.
fn endpoint(address: Option<IpAddr>, port: Option<u16>) -> Option<String> {
    let address = address?;
    Some(match port {
        Some(port) => SocketAddr::new(address, port).to_string(),
        None => address.to_string(),
    })
}

fn port(p: Option<u16>) -> Option<i32> {
    p.map(i32::from)
}

fn nat_done(flow: &Flow, bit: u32) -> bool {
    flow.status & bit != 0
}

macro_rules! address_column {
    ($name:literal, $dir:ident, $field:ident, $doc:literal) => {
        Column {
            name: $name,
            kind: Kind::Utf8,
            doc: $doc,
            needs: &[],
            build: |s, range| ip_text(&s.rows[range.clone()], |r| r.$dir.$field),
        }
    };
}

macro_rules! port_column {
    ($name:literal, $dir:ident, $field:ident, $doc:literal) => {
        Column {
            name: $name,
            kind: Kind::Int32,
            doc: $doc,
            needs: &[],
            build: |s, range| int32(&s.rows[range.clone()], |r| port(r.$dir.$field)),
        }
    };
}

macro_rules! counter_column {
    ($name:literal, $dir:ident, $field:ident, $doc:literal) => {
        Column {
            name: $name,
            kind: Kind::UInt64,
            doc: $doc,
            needs: &[],
            build: |s, range| uint64(&s.rows[range.clone()], |r| r.$dir.and_then(|c| c.$field)),
        }
    };
}

pub static SPEC: TableSpec<Flows> = TableSpec {
    name: "conntrack",
    doc: "Connections the kernel tracks for netfilter (conntrack -L): both directions' \
          tuples, so what NAT changed (ctnetlink; needs CAP_NET_ADMIN)",
    columns: &[
        Column {
            name: "family",
            kind: Kind::Utf8,
            doc: "inet or inet6",
            needs: &[],
            build: |s, range| {
                utf8(&s.rows[range.clone()], |r| {
                    Some(match i32::from(r.family) {
                        libc::AF_INET => "inet",
                        libc::AF_INET6 => "inet6",
                        _ => "other",
                    })
                })
            },
        },
        Column {
            name: "proto",
            kind: Kind::Utf8,
            doc: "Layer 4 protocol as sockets.proto names it (tcp, udp6, ...); icmp, icmpv6, \
                  sctp, gre, dccp, or the number",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| {
                    Some(conntrack::proto_name(r.orig.proto, r.family))
                })
            },
        },
        address_column!(
            "orig_src",
            orig,
            src,
            "Source address of the original (first packet's) direction"
        ),
        address_column!(
            "orig_dst",
            orig,
            dst,
            "Destination address of the original direction: the one the client used"
        ),
        port_column!(
            "orig_sport",
            orig,
            sport,
            "Source port of the original direction; GRE's key there (conntrack's srckey/dstkey); NULL for protocols without ports"
        ),
        port_column!(
            "orig_dport",
            orig,
            dport,
            "Destination port of the original direction; GRE's key there (conntrack's srckey/dstkey); NULL for protocols without ports"
        ),
        address_column!(
            "reply_src",
            reply,
            src,
            "Source address of the reply direction: who really answers"
        ),
        address_column!(
            "reply_dst",
            reply,
            dst,
            "Destination address of the reply direction"
        ),
        port_column!(
            "reply_sport",
            reply,
            sport,
            "Source port of the reply direction; GRE's key there (conntrack's srckey/dstkey); NULL for protocols without ports"
        ),
        port_column!(
            "reply_dport",
            reply,
            dport,
            "Destination port of the reply direction; GRE's key there (conntrack's srckey/dstkey); NULL for protocols without ports"
        ),
        Column {
            name: "icmp_type",
            kind: Kind::Int32,
            doc: "ICMP/ICMPv6 type of the original direction; NULL for other protocols",
            needs: &[],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.orig.icmp_type.map(i32::from)),
        },
        Column {
            name: "icmp_code",
            kind: Kind::Int32,
            doc: "ICMP/ICMPv6 code of the original direction",
            needs: &[],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.orig.icmp_code.map(i32::from)),
        },
        Column {
            name: "icmp_id",
            kind: Kind::Int32,
            doc: "ICMP/ICMPv6 echo id of the original direction",
            needs: &[],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.orig.icmp_id.map(i32::from)),
        },
        Column {
            name: "state",
            kind: Kind::Utf8,
            doc: "TCP's conntrack state (SYN_SENT ... TIME_WAIT, CLOSE), as conntrack names it; \
                  NULL for other protocols",
            needs: &[],
            build: |s, range| {
                utf8(&s.rows[range.clone()], |r| {
                    r.tcp_state.map(conntrack::tcp_state_name)
                })
            },
        },
        Column {
            name: "status",
            kind: Kind::Utf8List,
            doc: "Status flags set (ASSURED, SEEN_REPLY, CONFIRMED, SRC_NAT, DST_NAT, ...)",
            needs: &[],
            build: |s, range| {
                text_list(&s.rows[range.clone()], |r| {
                    Some(conntrack::status_names(r.status))
                })
            },
        },
        Column {
            name: "timeout_s",
            kind: Kind::UInt32,
            doc: "Seconds until the entry expires unless traffic renews it; NULL when offloaded",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.timeout),
        },
        Column {
            name: "mark",
            kind: Kind::UInt32,
            doc: "Connection mark (iptables CONNMARK)",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.mark),
        },
        Column {
            name: "zone",
            kind: Kind::UInt32,
            doc: "Conntrack zone (0 unless a CT target set one), whichever directions it holds for",
            needs: &[],
            build: |s, range| {
                uint32(&s.rows[range.clone()], |r| {
                    Some(u32::from(r.zone.unwrap_or(0)))
                })
            },
        },
        Column {
            name: "zone_dir",
            kind: Kind::Utf8,
            doc: "'orig' or 'reply' for a zone of that direction only (conntrack's zone-orig=, \
                  zone-reply=); NULL when it holds for both",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.zone_dir.name()),
        },
        Column {
            name: "id",
            kind: Kind::UInt32,
            doc: "The entry's id, as conntrack -o id prints it",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.id),
        },
        Column {
            name: "use",
            kind: Kind::UInt32,
            doc: "References held on the entry",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.use_count),
        },
        counter_column!(
            "orig_packets",
            orig_counters,
            packets,
            "Packets in the original direction; NULL when net.netfilter.nf_conntrack_acct was off as the entry was made"
        ),
        counter_column!(
            "orig_bytes",
            orig_counters,
            bytes,
            "Bytes in the original direction; NULL when nf_conntrack_acct was off as the entry was made"
        ),
        counter_column!(
            "reply_packets",
            reply_counters,
            packets,
            "Packets in the reply direction; NULL when nf_conntrack_acct was off as the entry was made"
        ),
        counter_column!(
            "reply_bytes",
            reply_counters,
            bytes,
            "Bytes in the reply direction; NULL when nf_conntrack_acct was off as the entry was made"
        ),
        Column {
            name: "start",
            kind: Kind::Timestamp,
            doc: "When the entry was made (UTC); NULL when net.netfilter.nf_conntrack_timestamp \
                  was off then",
            needs: &[],
            build: |s, range| {
                timestamp_us(&s.rows[range.clone()], |r| {
                    r.start_ns.map(|ns| (ns / 1000) as i64)
                })
            },
        },
        Column {
            name: "stop",
            kind: Kind::Timestamp,
            doc: "When the entry ended (UTC; only on ended entries); NULL otherwise",
            needs: &[],
            build: |s, range| {
                timestamp_us(&s.rows[range.clone()], |r| {
                    r.stop_ns.map(|ns| (ns / 1000) as i64)
                })
            },
        },
        Column {
            name: "labels",
            kind: Kind::Utf8List,
            doc: "Connection labels set (iptables connlabel), by bit number; NULL when none",
            needs: &[],
            build: |s, range| text_list(&s.rows[range.clone()], |r| r.labels.clone()),
        },
        Column {
            name: "helper",
            kind: Kind::Utf8,
            doc: "The conntrack helper attached (ftp, sip, ...); NULL when none",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.helper.as_deref()),
        },
        Column {
            name: "nat",
            kind: Kind::Utf8,
            doc: "What NAT did: 'snat', 'dnat', 'both', or NULL",
            needs: &[],
            build: |s, range| {
                utf8(&s.rows[range.clone()], |r| {
                    match (nat_done(r, IPS_SRC_NAT), nat_done(r, IPS_DST_NAT)) {
                        (true, true) => Some("both"),
                        (true, false) => Some("snat"),
                        (false, true) => Some("dnat"),
                        (false, false) => None,
                    }
                })
            },
        },
        Column {
            name: "pre_nat_dst",
            kind: Kind::Utf8,
            doc: "With DNAT: the destination the client used (addr:port); NULL without DNAT",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| {
                    nat_done(r, IPS_DST_NAT)
                        .then(|| endpoint(r.orig.dst, r.orig.dport))
                        .flatten()
                })
            },
        },
        Column {
            name: "post_nat_dst",
            kind: Kind::Utf8,
            doc: "With DNAT: where the connection really goes (addr:port); NULL without DNAT",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| {
                    nat_done(r, IPS_DST_NAT)
                        .then(|| endpoint(r.reply.src, r.reply.sport))
                        .flatten()
                })
            },
        },
        Column {
            name: "pre_nat_src",
            kind: Kind::Utf8,
            doc: "With SNAT: the source the client sent from (addr:port); NULL without SNAT",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| {
                    nat_done(r, IPS_SRC_NAT)
                        .then(|| endpoint(r.orig.src, r.orig.sport))
                        .flatten()
                })
            },
        },
        Column {
            name: "post_nat_src",
            kind: Kind::Utf8,
            doc: "With SNAT: the source the server sees (addr:port); NULL without SNAT",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.rows[range.clone()], |r| {
                    nat_done(r, IPS_SRC_NAT)
                        .then(|| endpoint(r.reply.dst, r.reply.dport))
                        .flatten()
                })
            },
        },
        Column {
            name: netns::NETNS,
            kind: Kind::UInt64,
            doc: netns::NETNS_DOC,
            needs: &[],
            build: netns::inode_column::<Flows>,
        },
        Column {
            name: netns::NETNS_NAME,
            kind: Kind::Utf8,
            doc: netns::NETNS_NAME_DOC,
            needs: &[],
            build: netns::name_column::<Flows>,
        },
    ],
};

/// One filter the dump can apply: what [`pushdown`] calls `Exact`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Mark(u32),
    Zone(u16),
    /// A status bit set: `array_has(status, 'ASSURED')`.
    Status(u32),
    OrigSrc(IpAddr),
    OrigDst(IpAddr),
}

fn condition(expr: &Expr) -> Option<Condition> {
    match expr {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            let (column, value) = match (column_name(&b.left), column_name(&b.right)) {
                (Some(c), None) => (c, b.right.as_ref()),
                (None, Some(c)) => (c, b.left.as_ref()),
                _ => return None,
            };
            match column {
                "mark" => Some(Condition::Mark(
                    u32::try_from(cast_int_literal(value)?).ok()?,
                )),
                "zone" => Some(Condition::Zone(
                    u16::try_from(cast_int_literal(value)?).ok()?,
                )),
                "orig_src" => Some(Condition::OrigSrc(address_literal(value)?)),
                "orig_dst" => Some(Condition::OrigDst(address_literal(value)?)),
                _ => None,
            }
        }
        Expr::ScalarFunction(f) if f.name() == "array_has" => match f.args.as_slice() {
            [list, item] if column_name(list) == Some("status") => Some(Condition::Status(
                conntrack::status_bit(super::literals::literal(item)?)?,
            )),
            _ => None,
        },
        _ => None,
    }
}

/// The filters the dump applies exactly (the kernel where it can, netsql for the rest):
/// `mark = N`, `zone = N`, `array_has(status, 'NAME')`, `orig_src = 'addr'`,
/// `orig_dst = 'addr'`, and those on the namespace columns.
pub fn pushdown(expr: &Expr) -> TableProviderFilterPushDown {
    if let Some(pushdown) = netns::namespace_pushdown(expr) {
        return pushdown;
    }
    match condition(expr) {
        Some(_) => TableProviderFilterPushDown::Exact,
        None => TableProviderFilterPushDown::Unsupported,
    }
}

/// The dump filter a scan's filters make; `None` when no row can pass them (one field
/// asked to equal two values).
fn dump_filter(filters: &[Expr]) -> Option<Filter> {
    let mut filter = Filter::default();
    fn set<T: PartialEq>(slot: &mut Option<T>, value: T) -> bool {
        match slot {
            Some(old) => *old == value,
            None => {
                *slot = Some(value);
                true
            }
        }
    }
    for condition in filters.iter().filter_map(condition) {
        let possible = match condition {
            Condition::Mark(mark) => set(&mut filter.mark, (mark, u32::MAX)),
            Condition::Zone(zone) => set(&mut filter.zone, zone),
            Condition::Status(bit) => {
                let (value, mask) = filter.status.unwrap_or((0, 0));
                filter.status = Some((value | bit, mask | bit));
                true
            }
            Condition::OrigSrc(address) => set(&mut filter.orig_src, address),
            Condition::OrigDst(address) => set(&mut filter.orig_dst, address),
        };
        if !possible {
            return None;
        }
    }
    let families: Vec<u8> = [filter.orig_src, filter.orig_dst]
        .into_iter()
        .flatten()
        .map(|a| match a {
            IpAddr::V4(_) => libc::AF_INET as u8,
            IpAddr::V6(_) => libc::AF_INET6 as u8,
        })
        .collect();
    if let Some(&first) = families.first() {
        if families.iter().any(|&f| f != first) {
            return None;
        }
        filter.family = Some(first);
    }
    Some(filter)
}

/// What a scan asks ctnetlink for, as EXPLAIN shows it.
pub fn kernel_request(_: &TableSpec<Flows>, scan: &Scan) -> String {
    match dump_filter(&scan.filters) {
        None => "conntrack: nothing (the filters exclude every row)".to_string(),
        Some(f) => {
            let mut parts = vec!["IPCTNL_MSG_CT_GET dump".to_string()];
            if let Some(family) = f.family {
                parts.push(format!("family={family}"));
            }
            if let Some((value, mask)) = f.mark {
                parts.push(format!("mark={value}/{mask:#x}"));
            }
            if let Some((value, mask)) = f.status {
                parts.push(format!("status={value:#x}/{mask:#x}"));
            }
            if let Some(zone) = f.zone {
                parts.push(format!("zone={zone}"));
            }
            // An IPv6 address is checked by netsql (wire::kernel_matches).
            let shown = |name: &str, address: IpAddr| {
                if conntrack::wire::kernel_matches(&address) {
                    format!("{name}={address}")
                } else {
                    format!("then {name}={address} in netsql")
                }
            };
            let addresses = [("orig_src", f.orig_src), ("orig_dst", f.orig_dst)];
            for (name, address) in addresses {
                if let Some(address) = address {
                    parts.push(shown(name, address));
                }
            }
            format!("conntrack: {}", parts.join(" "))
        }
    }
}

/// ctnetlink is reached only from inside a namespace.
pub fn entered(access: Access) -> Result<(), CollectError> {
    match access {
        Access::Files => Err(CollectError::Conntrack(
            "conntrack: a namespace that cannot be entered has no conntrack table to read \
             (ctnetlink answers only inside it)"
                .into(),
        )),
        Access::Current | Access::Entered => Ok(()),
    }
}

pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Flows, DataFusionError> {
    let Some(filter) = dump_filter(&scan.filters) else {
        return Ok(PerNs {
            rows: Vec::new(),
            spans: Spans::default(),
        });
    };
    let limit = scan.limit.unwrap_or(usize::MAX);
    netns::per_namespace(config, scan, |_, access| {
        entered(access)?;
        let mut rows = Vec::new();
        if limit == 0 {
            return Ok(rows);
        }
        Ctnetlink::open()?.dump(&filter, &mut |flow| {
            rows.push(flow);
            rows.len() < limit
        })?;
        Ok(rows)
    })
}
