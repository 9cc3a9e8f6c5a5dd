//! `services`: service names for ports, from /etc/services.

use datafusion::error::DataFusionError;

use super::columns::{int32, utf8, utf8_list};
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::services::{self, Service};

pub struct Services(pub Vec<Service>);

impl Snapshot for Services {
    fn num_rows(&self) -> usize {
        self.0.len()
    }
}

pub static SPEC: TableSpec<Services> = TableSpec {
    name: "services",
    doc: "Service names for ports, one row per name and protocol in /etc/services",
    columns: &[
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "Official service name",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |e| Some(&e.name)),
        },
        Column {
            name: "port",
            kind: Kind::Int32,
            doc: "Port number (joins sockets.local_port)",
            needs: &[],
            build: |s, range| int32(&s.0[range.clone()], |e| Some(i32::from(e.port))),
        },
        Column {
            name: "protocol",
            kind: Kind::Utf8,
            doc: "Protocol: tcp, udp, sctp, ...",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |e| Some(&e.protocol)),
        },
        Column {
            name: "aliases",
            kind: Kind::Utf8List,
            doc: "Other names of the service",
            needs: &[],
            build: |s, range| utf8_list(&s.0[range.clone()], |e| Some(&e.aliases)),
        },
        Column {
            name: "comment",
            kind: Kind::Utf8,
            doc: "The comment after '#' on the line; NULL if none",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |e| e.comment.as_deref()),
        },
    ],
};

/// Reads /etc/services; malformed lines are skipped, and counted under NETSQL_DEBUG.
pub fn collect(config: &TablesConfig, _scan: &Scan) -> Result<Services, DataFusionError> {
    let read = services::read(&config.root).map_err(external)?;
    if read.skipped > 0 && std::env::var_os("NETSQL_DEBUG").is_some() {
        let file = config.root.etc.join("services");
        crate::warn!(
            "netsql: debug: skipped {} malformed lines of {}",
            read.skipped,
            file.display()
        );
    }
    Ok(Services(read.entries))
}
