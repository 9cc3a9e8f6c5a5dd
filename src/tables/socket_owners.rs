//! `socket_owners`: every process holding every socket (after fork a socket has several).

use datafusion::error::DataFusionError;
use std::collections::{HashMap, HashSet};

use super::columns::{int32, uint64, utf8};
use super::{external, Column, Kind, Need, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::owners::{self, Owner, SharedWalk};
use crate::collect::{CollectError, Root};

#[derive(Default)]
pub struct Owners {
    pub owners: Vec<Owner>,
    pub programs: HashMap<i32, String>,
}

impl Snapshot for Owners {
    fn num_rows(&self) -> usize {
        self.owners.len()
    }
}

pub static SPEC: TableSpec<Owners> = TableSpec {
    name: "socket_owners",
    doc: "Every (socket, process, descriptor) triple: who holds which socket, from /proc/<pid>/fd",
    columns: &[
        Column {
            name: "inode",
            kind: Kind::UInt64,
            doc: "Socket inode (joins sockets.inode)",
            needs: &[],
            build: |s, range| uint64(&s.owners[range.clone()], |o| Some(o.inode)),
        },
        Column {
            name: "pid",
            kind: Kind::Int32,
            doc: "Process holding the socket",
            needs: &[],
            build: |s, range| int32(&s.owners[range.clone()], |o| Some(o.pid)),
        },
        Column {
            name: "fd",
            kind: Kind::Int32,
            doc: "Descriptor number in that process",
            needs: &[],
            build: |s, range| int32(&s.owners[range.clone()], |o| Some(o.fd)),
        },
        Column {
            name: "program",
            kind: Kind::Utf8,
            doc: "Command name (comm) of that process; NULL if it has exited since",
            needs: &[Need::Programs],
            build: |s, range| {
                utf8(&s.owners[range.clone()], |o| {
                    s.programs.get(&o.pid).map(String::as_str)
                })
            },
        },
    ],
};

/// Walks every process's descriptors; programs only when projected.
pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Owners, DataFusionError> {
    let walk = SharedWalk::walk_all(
        scan.session.get_extension::<SharedWalk>().as_deref(),
        &config.root,
    )
    .map_err(external)?;
    super::warn_unidentified(walk.denied);
    let owners = walk.into_owners();
    let programs = if SPEC.needed(scan).has(Need::Programs) {
        programs(&config.root, owners.iter().map(|o| o.pid)).map_err(external)?
    } else {
        HashMap::new()
    };
    Ok(Owners { owners, programs })
}

/// comm of each distinct pid; a process gone since the walk has none.
pub fn programs(
    root: &Root,
    pids: impl Iterator<Item = i32>,
) -> Result<HashMap<i32, String>, CollectError> {
    let pids: HashSet<i32> = pids.collect();
    let mut found = HashMap::with_capacity(pids.len());
    for pid in pids {
        if let Some(comm) = owners::comm(root, pid)? {
            found.insert(pid, comm);
        }
    }
    Ok(found)
}
