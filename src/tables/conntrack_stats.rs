//! `conntrack_stats`: connection tracking's per-CPU counters (`conntrack -S`) and each
//! namespace's entry count and limit (`conntrack -C`, `nf_conntrack_max`).
//!
//! Every value appears once: a CPU's counters on that CPU's row (`count` and `max`
//! NULL), the namespace's count and limit on its row with `cpu` NULL (counters NULL), so
//! `sum(drop)` and `sum(count)` both add up without double counting.

use datafusion::error::DataFusionError;

use super::columns::{int32, uint32};
use super::netns::{self, PerNs};
use super::{Column, Kind, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::conntrack::{Ctnetlink, CPU_COUNTERS};

/// One CPU's counters, or (with `cpu` `None`) the namespace's count and limit.
#[derive(Debug, Clone, Default)]
pub struct StatRow {
    pub cpu: Option<u16>,
    /// By ctnetlink's attribute number less one; `None` where the kernel sent none.
    pub counters: [Option<u32>; CPU_COUNTERS.len()],
    pub count: Option<u32>,
    pub max: Option<u32>,
}

pub type Stats = PerNs<StatRow>;

macro_rules! counter {
    ($index:literal, $doc:literal) => {
        Column {
            name: CPU_COUNTERS[$index].1,
            kind: Kind::UInt32,
            doc: $doc,
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.counters[$index]),
        }
    };
}

pub static SPEC: TableSpec<Stats> = TableSpec {
    name: "conntrack_stats",
    doc: "Connection tracking's counters per CPU (conntrack -S) and each namespace's entry \
          count and limit (conntrack -C, nf_conntrack_max) on a row with cpu NULL",
    columns: &[
        Column {
            name: "cpu",
            kind: Kind::Int32,
            doc: "The CPU these counters are of; NULL on the namespace's count/max row",
            needs: &[],
            build: |s, range| int32(&s.rows[range.clone()], |r| r.cpu.map(i32::from)),
        },
        counter!(0, "Lookups (kernels before 5.x; NULL after)"),
        counter!(1, "Lookups that found an entry"),
        counter!(2, "Entries added (kernels before 5.x; NULL after)"),
        counter!(
            3,
            "Packets conntrack could not track (malformed, out of window)"
        ),
        counter!(
            4,
            "Packets already tracked (kernels before 5.x; NULL after)"
        ),
        counter!(5, "Entries deleted (kernels before 5.x; NULL after)"),
        counter!(
            6,
            "Entries put on the dying list (kernels before 5.x; NULL after)"
        ),
        counter!(7, "Entries inserted"),
        counter!(8, "Insertions that failed (a clash with an existing entry)"),
        counter!(
            9,
            "Packets dropped because an entry could not be made (table full)"
        ),
        counter!(10, "Entries evicted early to make room (table full)"),
        counter!(11, "Packets an ICMP error or protocol helper rejected"),
        counter!(
            12,
            "Lookups restarted because a hash table resize raced them"
        ),
        counter!(13, "Clashes resolved by reusing the existing entry"),
        counter!(14, "Insertions refused because a hash chain was too long"),
        Column {
            name: "count",
            kind: Kind::UInt32,
            doc: "Entries in the namespace's table (conntrack -C); only on the cpu NULL row",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.count),
        },
        Column {
            name: "max",
            kind: Kind::UInt32,
            doc: "The table's limit (net.netfilter.nf_conntrack_max); only on the cpu NULL row",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |r| r.max),
        },
        Column {
            name: netns::NETNS,
            kind: Kind::UInt64,
            doc: netns::NETNS_DOC,
            needs: &[],
            build: netns::inode_column::<Stats>,
        },
        Column {
            name: netns::NETNS_NAME,
            kind: Kind::Utf8,
            doc: netns::NETNS_NAME_DOC,
            needs: &[],
            build: netns::name_column::<Stats>,
        },
    ],
};

pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Stats, DataFusionError> {
    netns::per_namespace(config, scan, |root, access| {
        super::conntrack::entered(access)?;
        let mut ct = Ctnetlink::open()?;
        let mut rows: Vec<StatRow> = ct
            .stats_per_cpu()?
            .into_iter()
            .map(|(cpu, values)| {
                let mut row = StatRow {
                    cpu: Some(cpu),
                    ..StatRow::default()
                };
                for (kind, value) in values {
                    if let Some(slot) = usize::from(kind)
                        .checked_sub(1)
                        .and_then(|i| row.counters.get_mut(i))
                    {
                        *slot = Some(value);
                    }
                }
                row
            })
            .collect();
        let (count, max) = ct.count(root)?;
        rows.push(StatRow {
            count,
            max,
            ..StatRow::default()
        });
        Ok(rows)
    })
}
