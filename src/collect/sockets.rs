//! Every socket of the current network namespace, from sock_diag or from /proc/net.

use super::sockdiag::bytecode::{self, Clause};
use super::sockdiag::{wire::ALL_STATES, Dumper};
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
    /// Ask for `struct tcp_info` with each TCP socket (for counters the sock_diag header
    /// carries only for some timers); the kernel then sends ~250 more bytes a socket.
    pub tcp_info: bool,
}

impl Default for SocketFilter {
    fn default() -> Self {
        SocketFilter {
            kinds: KINDS.to_vec(),
            states: ALL_STATES,
            clauses: Vec::new(),
            tcp_info: false,
        }
    }
}

/// Collects the sockets `filter` asks for from `source`.
pub fn collect(
    root: &Root,
    source: Source,
    filter: &SocketFilter,
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
                Protocol::Unix => dumper.unix(filter.states, &mut rows),
                _ => dumper.inet(
                    protocol,
                    family,
                    filter.states,
                    program.as_deref(),
                    filter.tcp_info && protocol == Protocol::Tcp,
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
        read_proc(root, protocol, family, filter.states, &mut rows)?;
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
    rows.extend(parsed.into_iter().filter(wanted));
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
        };
        let rows = collect(&root, Source::Proc, &SocketFilter::default()).unwrap();
        assert_eq!(rows.len(), 7, "fixtures/proc/ss.txt lists 7 sockets");
        let listeners = SocketFilter {
            states: 1 << 10,
            ..SocketFilter::default()
        };
        let rows = collect(&root, Source::Proc, &listeners).unwrap();
        assert_eq!(rows.len(), 3, "two tcp listeners and a unix one");
    }
}
