//! Every socket of the current network namespace, from sock_diag or from /proc/net.

use super::sockdiag::bytecode::{self, Clause};
use super::sockdiag::wire::{Extensions, ALL_STATES};
use super::sockdiag::Dumper;
use std::collections::{HashMap, HashSet};

use super::owners::{self, Owner, Want};
use super::socket::{Family, Protocol, SocketRow};
use super::{proc_inet, proc_unix, CollectError, Root};

/// Which kernel interface to read sockets from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// sock_diag, falling back to /proc/net for any dump the kernel refuses.
    #[default]
    Auto,
    /// sock_diag only, except for a protocol the kernel has no sock_diag handler for
    /// (ENOENT: e.g. raw sockets without CONFIG_INET_RAW_DIAG), which is read from
    /// /proc/net as `ss` does; any other refusal is an error.
    Netlink,
    Proc,
}

/// Every kind of socket the table holds, in netstat's order.
pub const KINDS: [(Protocol, Family); 9] = [
    (Protocol::Tcp, Family::Inet),
    (Protocol::Tcp, Family::Inet6),
    (Protocol::Udp, Family::Inet),
    (Protocol::Udp, Family::Inet6),
    (Protocol::UdpLite, Family::Inet),
    (Protocol::UdpLite, Family::Inet6),
    (Protocol::Raw, Family::Inet),
    (Protocol::Raw, Family::Inet6),
    (Protocol::Unix, Family::Unix),
];

/// What a scan needs: which kinds of socket, which states (bit `1 << sk_state`), and
/// port and address tests every row must pass. Narrowing it lets the kernel skip sockets
/// instead of us filtering them afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFilter {
    pub kinds: Vec<(Protocol, Family)>,
    pub states: u32,
    /// ANDed; sent to the kernel as INET_DIAG bytecode and applied to the rows again.
    pub clauses: Vec<Clause>,
}

/// What a scan needs besides the rows the filter selects; each costs a request
/// extension or a walk, so only what a query projects is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// sock_diag attributes to ask for and keep (tcp_info, congestion, memory, ...);
    /// each costs the kernel bytes per socket.
    pub ext: Extensions,
    /// The lowest-pid process holding each socket: a walk of every /proc/<pid>/fd.
    pub owners: bool,
    /// /proc/net/unix's RefCount and Flags of unix sockets (sock_diag has neither).
    pub unix_extras: bool,
}

/// One scan: the rows, and what [`Needs`] asked for besides.
#[derive(Debug, Default)]
pub struct Scanned {
    pub rows: Vec<SocketRow>,
    /// The lowest-pid holder of each socket that has one, sorted by inode.
    pub owners: Vec<Owner>,
    /// Processes whose descriptors could not be read (another user's, without root).
    pub denied: usize,
    /// Unix inode -> (RefCount, Flags).
    pub unix: HashMap<u64, (u32, u32)>,
}

/// Scans the sockets `filter` selects from `source`, with what `needs` asks for.
pub fn scan(
    root: &Root,
    source: Source,
    filter: &SocketFilter,
    needs: Needs,
) -> Result<Scanned, CollectError> {
    let rows = collect(root, source, filter, needs.ext)?;
    let mut scanned = Scanned::default();
    if needs.owners {
        (scanned.owners, scanned.denied) = lowest_owners(root, &rows)?;
    }
    if needs.unix_extras {
        scanned.unix = proc_unix::read(root)?
            .into_iter()
            .map(|e| (e.row.inode, (e.ref_count, e.flags)))
            .collect();
    }
    scanned.rows = rows;
    Ok(scanned)
}

/// The lowest-pid holder of each of `rows` that has one, sorted by inode, and how many
/// processes could not be looked at. Socket inodes are host-wide, so one walk serves
/// rows from every namespace.
pub fn lowest_owners(root: &Root, rows: &[SocketRow]) -> Result<(Vec<Owner>, usize), CollectError> {
    // TIME_WAIT and request sockets (inode 0) have no file, so no owner.
    let inodes: HashSet<u64> = rows.iter().map(|r| r.inode).filter(|&i| i != 0).collect();
    let walk = owners::walk(root, &Want::Lowest(inodes))?;
    // The walk sorts its owners, inode first.
    Ok((walk.owners, walk.denied))
}

impl Default for SocketFilter {
    fn default() -> Self {
        SocketFilter {
            kinds: KINDS.to_vec(),
            states: ALL_STATES,
            clauses: Vec::new(),
        }
    }
}

/// Collects the sockets `filter` asks for from `source`, with the attributes `ext` names
/// (sock_diag only; /proc has none of them but UDP's drops).
pub fn collect(
    root: &Root,
    source: Source,
    filter: &SocketFilter,
    ext: Extensions,
) -> Result<Vec<SocketRow>, CollectError> {
    let mut rows = Vec::new();
    let mut dumper = match source {
        Source::Proc => None,
        Source::Netlink => Some(Dumper::open()?),
        Source::Auto => match Dumper::open() {
            Ok(dumper) => Some(dumper),
            Err(CollectError::NetlinkRefused { .. }) => None,
            Err(other) => return Err(other),
        },
    };
    let program = bytecode::compile(&filter.clauses);
    for &(protocol, family) in &filter.kinds {
        // A port or address test never holds for a unix socket (it has neither).
        if protocol == Protocol::Unix && !filter.clauses.is_empty() {
            continue;
        }
        if let Some(dumper) = dumper.as_mut() {
            let before = rows.len();
            let result = match protocol {
                Protocol::Unix => dumper.unix(filter.states, ext, &mut rows),
                _ => dumper.inet(
                    protocol,
                    family,
                    filter.states,
                    program.as_deref(),
                    ext,
                    &mut rows,
                ),
            };
            match result {
                Ok(()) => continue,
                // Rows of a dump that failed part way would come again from /proc.
                Err(err) if may_fall_back(source, &err) => rows.truncate(before),
                Err(err) => return Err(err),
            }
        }
        read_proc(root, protocol, family, filter.states, ext, &mut rows)?;
    }
    // The definition of the tests: what the kernel let through (or /proc gave) is checked.
    if !filter.clauses.is_empty() {
        rows.retain(|row| filter.clauses.iter().all(|c| c.holds(row)));
    }
    Ok(rows)
}

/// Whether a failed dump may be read from /proc/net instead: any refusal under `auto`;
/// under `netlink` only a protocol the kernel has no sock_diag handler for (ENOENT).
fn may_fall_back(source: Source, err: &CollectError) -> bool {
    match err {
        CollectError::NetlinkRefused { errno, .. } => {
            source == Source::Auto || errno.raw_os_error() == Some(libc::ENOENT)
        }
        _ => false,
    }
}

fn read_proc(
    root: &Root,
    protocol: Protocol,
    family: Family,
    states: u32,
    ext: Extensions,
    rows: &mut Vec<SocketRow>,
) -> Result<(), CollectError> {
    let wanted = |row: &SocketRow| states & (1 << row.state.kernel_value().min(31)) != 0;
    if protocol == Protocol::Unix {
        rows.extend(
            proc_unix::read(root)?
                .into_iter()
                .map(|e| e.row)
                .filter(wanted),
        );
        return Ok(());
    }
    let (rel, _, _) = proc_inet::FILES
        .iter()
        .find(|(_, p, f)| *p == protocol && *f == family)
        .expect("every inet kind has a /proc/net file");
    let parsed = proc_inet::read(root, rel, protocol, family, procfs::ticks_per_second())?;
    // /proc has no extension but the drops of datagram sockets, which it always prints.
    let keep_drops = ext.skmem && protocol != Protocol::Tcp;
    rows.extend(parsed.into_iter().filter(wanted).map(|mut row| {
        if !keep_drops {
            row.extras = None;
        }
        row
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(errno: i32) -> CollectError {
        CollectError::NetlinkRefused {
            what: "raw".into(),
            errno: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn which_failures_fall_back_to_proc() {
        assert!(may_fall_back(Source::Auto, &refused(libc::EPERM)));
        assert!(may_fall_back(Source::Auto, &refused(libc::ENOENT)));
        assert!(may_fall_back(Source::Netlink, &refused(libc::ENOENT)));
        assert!(!may_fall_back(Source::Netlink, &refused(libc::EPERM)));
        let broken = CollectError::Netlink("bad reply".into());
        assert!(!may_fall_back(Source::Auto, &broken));
    }

    #[test]
    fn proc_source_reads_the_fixture_tree() {
        let root = Root {
            proc: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc").into(),
            etc: "/nonexistent".into(),
            run: "/nonexistent".into(),
        };
        let rows = collect(
            &root,
            Source::Proc,
            &SocketFilter::default(),
            Extensions::default(),
        )
        .unwrap();
        assert_eq!(rows.len(), 7, "fixtures/proc/ss.txt lists 7 sockets");
        let listeners = SocketFilter {
            states: 1 << 10,
            ..SocketFilter::default()
        };
        let rows = collect(&root, Source::Proc, &listeners, Extensions::default()).unwrap();
        assert_eq!(rows.len(), 3, "two tcp listeners and a unix one");
    }
}
