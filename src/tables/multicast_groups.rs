//! `multicast_groups`: multicast group memberships per interface (`netstat -g`).

use datafusion::error::DataFusionError;

use super::columns::{uint32, utf8, utf8_owned};
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::igmp::{self, Membership};

pub struct Groups(Vec<Membership>);

impl Snapshot for Groups {
    fn num_rows(&self) -> usize {
        self.0.len()
    }
}

pub static SPEC: TableSpec<Groups> = TableSpec {
    name: "multicast_groups",
    doc: "Multicast group memberships from /proc/net/igmp and /proc/net/igmp6",
    columns: &[
        Column {
            name: "interface",
            kind: Kind::Utf8,
            doc: "Interface name",
            build: |s, range| utf8(&s.0[range.clone()], |m| Some(&m.interface)),
        },
        Column {
            name: "interface_index",
            kind: Kind::UInt32,
            doc: "Interface index",
            build: |s, range| uint32(&s.0[range.clone()], |m| Some(m.index)),
        },
        Column {
            name: "family",
            kind: Kind::Utf8,
            doc: "inet or inet6",
            build: |s, range| {
                utf8(&s.0[range.clone()], |m| {
                    Some(if m.group.is_ipv4() { "inet" } else { "inet6" })
                })
            },
        },
        Column {
            name: "group_address",
            kind: Kind::Utf8,
            doc: "Multicast group address",
            build: |s, range| utf8_owned(&s.0[range.clone()], |m| Some(m.group.to_string())),
        },
        Column {
            name: "users",
            kind: Kind::UInt32,
            doc: "Memberships of the group on this interface (netstat's RefCnt)",
            build: |s, range| uint32(&s.0[range.clone()], |m| Some(m.users)),
        },
    ],
};

pub fn collect(config: &TablesConfig, _scan: &Scan) -> Result<Groups, DataFusionError> {
    Ok(Groups(igmp::read(&config.root).map_err(external)?))
}
