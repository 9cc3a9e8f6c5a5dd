//! `DELETE FROM conntrack WHERE ...`: removing the tracked connections a WHERE selects,
//! as `conntrack -D` does (a stale NAT mapping after a backend moved), under the rules of
//! `DELETE FROM sockets`. Each entry is named by its original tuple, zone and id, so one
//! made since with the same tuple is left alone.

use std::collections::BTreeMap;
use std::net::IpAddr;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, UInt32Type, UInt64Type};

use crate::collect::conntrack::{self, Ctnetlink, Deleted, Flow, Tuple, ZoneDir};
use crate::collect::netns::{self, Access};
use crate::collect::{CollectError, Root};
use crate::error::Error;

/// The columns a listing shows.
pub const LISTED: &[&str] = &[
    "netns",
    "netns_name",
    "proto",
    "state",
    "orig_src",
    "orig_sport",
    "orig_dst",
    "orig_dport",
    "nat",
    "post_nat_dst",
    "mark",
    "zone",
    "zone_dir",
    "id",
];

/// The columns that name an entry to the kernel.
pub const IDENTITY: &[&str] = &[
    "netns",
    "family",
    "proto",
    "orig_src",
    "orig_dst",
    "orig_sport",
    "orig_dport",
    "icmp_type",
    "icmp_code",
    "icmp_id",
    "zone",
    "zone_dir",
    "id",
];

/// What removing went like.
#[derive(Debug, Default)]
pub struct Tally {
    pub deleted: u64,
    pub gone: u64,
    pub denied: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
}

impl Tally {
    /// Adds another namespace's counts; the first failure stays the first.
    fn add(&mut self, part: Tally) {
        self.deleted += part.deleted;
        self.gone += part.gone;
        self.denied += part.denied;
        self.failed += part.failed;
        self.first_failure = self.first_failure.take().or(part.first_failure);
    }
}

/// Each row of `batch` (the IDENTITY columns) as the namespace and entry to delete.
pub fn entries(batch: &RecordBatch) -> Result<Vec<(u64, Flow)>, Error> {
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| {
            Error::Usage(format!(
                "DELETE FROM conntrack: no column {name} in its input"
            ))
        })
    };
    let text = |name: &str| Ok::<_, Error>(cast(column(name)?, &DataType::Utf8)?);
    let int = |name: &str| Ok::<_, Error>(cast(column(name)?, &DataType::Int32)?);
    let netns = cast(column("netns")?, &DataType::UInt64)?;
    let netns = netns.as_primitive::<UInt64Type>();
    let (family, proto) = (text("family")?, text("proto")?);
    let (src, dst) = (text("orig_src")?, text("orig_dst")?);
    let (family, proto) = (family.as_string::<i32>(), proto.as_string::<i32>());
    let (src, dst) = (src.as_string::<i32>(), dst.as_string::<i32>());
    let ints: Vec<_> = [
        "orig_sport",
        "orig_dport",
        "icmp_type",
        "icmp_code",
        "icmp_id",
    ]
    .into_iter()
    .map(int)
    .collect::<Result<_, _>>()?;
    let ints: Vec<_> = ints.iter().map(|a| a.as_primitive::<Int32Type>()).collect();
    let zone = cast(column("zone")?, &DataType::UInt32)?;
    let zone = zone.as_primitive::<UInt32Type>();
    let zone_dir = text("zone_dir")?;
    let zone_dir = zone_dir.as_string::<i32>();
    let id = cast(column("id")?, &DataType::UInt32)?;
    let id = id.as_primitive::<UInt32Type>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let value = |i: usize| ints[i].is_valid(row).then(|| ints[i].value(row));
        let address = |a: &datafusion::arrow::array::StringArray| -> Option<IpAddr> {
            a.is_valid(row).then(|| a.value(row).parse().ok()).flatten()
        };
        let family = match family.is_valid(row).then(|| family.value(row)) {
            Some("inet6") => libc::AF_INET6 as u8,
            _ => libc::AF_INET as u8,
        };
        let orig = Tuple {
            src: address(src),
            dst: address(dst),
            proto: proto
                .is_valid(row)
                .then(|| conntrack::proto_number(proto.value(row)))
                .flatten()
                .unwrap_or(0),
            sport: value(0).and_then(|p| u16::try_from(p).ok()),
            dport: value(1).and_then(|p| u16::try_from(p).ok()),
            icmp_type: value(2).and_then(|v| u8::try_from(v).ok()),
            icmp_code: value(3).and_then(|v| u8::try_from(v).ok()),
            icmp_id: value(4).and_then(|v| u16::try_from(v).ok()),
        };
        out.push((
            if netns.is_valid(row) {
                netns.value(row)
            } else {
                0
            },
            Flow {
                family,
                orig,
                zone: zone
                    .is_valid(row)
                    .then(|| u16::try_from(zone.value(row)).ok())
                    .flatten(),
                zone_dir: ZoneDir::from_name(zone_dir.is_valid(row).then(|| zone_dir.value(row)))
                    .ok_or_else(|| {
                    Error::Usage(format!(
                        "DELETE FROM conntrack: zone_dir {:?}",
                        zone_dir.value(row)
                    ))
                })?,
                id: id.is_valid(row).then(|| id.value(row)),
                ..Flow::default()
            },
        ));
    }
    Ok(out)
}

/// Deletes each namespace's entries inside it.
pub fn delete_all(root: &Root, by_namespace: BTreeMap<u64, Vec<Flow>>) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    for (ns, flows) in super::namespaces_of(root, by_namespace)? {
        let Some(ns) = ns else {
            tally.gone += flows.len() as u64;
            continue;
        };
        let visited = netns::visit(root, vec![ns], |_, access| match access {
            Access::Current | Access::Entered => delete(&flows),
            Access::Files => Err(CollectError::Netns("cannot enter".into())),
        });
        match visited {
            Ok(visited) => {
                for (_, part) in visited.read {
                    tally.add(part);
                }
                if !visited.invisible.is_empty() {
                    tally.denied += flows.len() as u64;
                }
            }
            Err(CollectError::Netns(_)) => tally.denied += flows.len() as u64,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(tally)
}

/// Deletes `flows` in the calling thread's namespace, one request each.
fn delete(flows: &[Flow]) -> Result<Tally, CollectError> {
    let mut tally = Tally::default();
    // Opening needs no privilege (requests do): a failure here is no denial.
    let mut ct = Ctnetlink::open()?;
    for flow in flows {
        match ct.delete(flow) {
            Ok(Deleted::Yes) => tally.deleted += 1,
            Ok(Deleted::Gone) => tally.gone += 1,
            Ok(Deleted::Denied) => tally.denied += 1,
            Err(err) => {
                tally.failed += 1;
                tally.first_failure.get_or_insert_with(|| err.to_string());
            }
        }
    }
    Ok(tally)
}

/// The one line a DELETE prints.
pub fn summary(matched: u64, tally: &Tally) -> String {
    let noun = if matched == 1 { "entry" } else { "entries" };
    let mut text = format!(
        "deleted {} of {matched} matching conntrack {noun}",
        tally.deleted
    );
    let mut why = Vec::new();
    if tally.gone > 0 {
        why.push(format!("{} already gone", tally.gone));
    }
    if tally.denied > 0 {
        why.push(format!(
            "{} not permitted (deleting needs CAP_NET_ADMIN in the entry's namespace)",
            tally.denied
        ));
    }
    if tally.failed > 0 {
        why.push(format!(
            "{} failed: {}",
            tally.failed,
            tally.first_failure.as_deref().unwrap_or("unknown error")
        ));
    }
    if !why.is_empty() {
        text.push_str("; ");
        text.push_str(&why.join(", "));
    }
    text
}
