//! `multicast_groups`: multicast group memberships per interface (`netstat -g`).

use datafusion::error::DataFusionError;

use super::columns::{uint32, utf8, utf8_owned};
use super::{Column, Kind, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::igmp::{self, Membership};

pub type Groups = super::netns::PerNs<Membership>;

pub static SPEC: TableSpec<Groups> = TableSpec {
    name: "multicast_groups",
    doc: "Multicast group memberships from /proc/net/igmp and /proc/net/igmp6",
    columns: &[
        Column {
            name: "interface",
            kind: Kind::Utf8,
            doc: "Interface name (U+FFFD for bytes that are not UTF-8, so two such names may read alike)",
            needs: &[],
            build: |s, range| utf8(&s.rows[range.clone()], |m| Some(&m.interface)),
        },
        Column {
            name: "interface_index",
            kind: Kind::UInt32,
            doc: "Interface index",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |m| Some(m.index)),
        },
        Column {
            name: "family",
            kind: Kind::Utf8,
            doc: "inet or inet6",
            needs: &[],
            build: |s, range| {
                utf8(&s.rows[range.clone()], |m| {
                    Some(if m.group.is_ipv4() { "inet" } else { "inet6" })
                })
            },
        },
        Column {
            name: "group_address",
            kind: Kind::Utf8,
            doc: "Multicast group address",
            needs: &[],
            build: |s, range| utf8_owned(&s.rows[range.clone()], |m| Some(m.group.to_string())),
        },
        Column {
            name: "users",
            kind: Kind::UInt32,
            doc: "Memberships of the group on this interface (netstat's RefCnt)",
            needs: &[],
            build: |s, range| uint32(&s.rows[range.clone()], |m| Some(m.users)),
        },
        Column {
            name: super::netns::NETNS,
            kind: Kind::UInt64,
            doc: super::netns::NETNS_DOC,
            needs: &[],
            build: super::netns::inode_column::<Groups>,
        },
        Column {
            name: super::netns::NETNS_NAME,
            kind: Kind::Utf8,
            doc: super::netns::NETNS_NAME_DOC,
            needs: &[],
            build: super::netns::name_column::<Groups>,
        },
    ],
};

pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Groups, DataFusionError> {
    super::netns::per_namespace(config, scan, |root, _| igmp::read(root))
}
