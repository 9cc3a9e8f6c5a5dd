//! Every socket of the current network namespace, from sock_diag or from /proc/net.

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

/// What a scan needs: which kinds of socket, and which states (bit `1 << sk_state`).
/// Narrowing it lets the kernel skip sockets instead of us filtering them afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFilter {
    pub kinds: Vec<(Protocol, Family)>,
    pub states: u32,
}

impl Default for SocketFilter {
    fn default() -> Self {
        SocketFilter {
            kinds: KINDS.to_vec(),
            states: ALL_STATES,
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
    for &(protocol, family) in &filter.kinds {
        if let Some(dumper) = dumper.as_mut() {
            let result = match protocol {
                Protocol::Unix => dumper.unix(filter.states, &mut rows),
                _ => dumper.inet(protocol, family, filter.states, &mut rows),
            };
            match result {
                Ok(()) => continue,
                Err(CollectError::NetlinkRefused { errno, .. })
                    if source == Source::Auto || errno.raw_os_error() == Some(libc::ENOENT) => {}
                Err(err) => return Err(err),
            }
        }
        read_proc(root, protocol, family, filter.states, &mut rows)?;
    }
    Ok(rows)
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
    let parsed = proc_inet::read(root, rel, protocol, family, clock_ticks())?;
    rows.extend(parsed.into_iter().filter(wanted));
    Ok(())
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `tm->when` in /proc/net/tcp.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}
