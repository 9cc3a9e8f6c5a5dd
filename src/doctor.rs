//! `netsql doctor`: what this kernel offers netsql and what this user may do, one line
//! each, every line found by doing it (a dump, a destroy of a socket of our own, a
//! subscription that sees our own socket close, a mount's filesystem type, a ctnetlink
//! answer, a read of another user's `/proc/<pid>/fd`), never by a version number.
//!
//! Everything happens in the calling thread's network namespace (`ip netns exec NAME
//! netsql doctor` asks another). The only socket closed is one this module opened.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crate::collect::conntrack::Ctnetlink;
use crate::collect::sockdiag::destroy::{self, Target};
use crate::collect::sockdiag::wire::{Extensions, ALL_STATES};
use crate::collect::sockdiag::{events, Dumper};
use crate::collect::socket_row::{Family, Protocol, SocketRow, State};
use crate::collect::{capability, cgroups, CollectError, Root};

/// One line of the report: what was probed, and what was found (it starts with `yes`,
/// `no`, or a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: &'static str,
    pub found: String,
}

/// The capabilities netsql's features need, as `capability(7)` numbers them, with what
/// each one gives netsql.
const CAPABILITIES: [(&str, u32, &str); 3] = [
    (
        "CAP_NET_ADMIN",
        capability::NET_ADMIN,
        "DELETE FROM sockets and conntrack, the conntrack tables, socket marks",
    ),
    (
        "CAP_SYS_PTRACE",
        capability::SYS_PTRACE,
        "owners (pid, program) of other users' sockets",
    ),
    (
        "CAP_DAC_READ_SEARCH",
        capability::DAC_READ_SEARCH,
        "owners of other users' sockets when not root",
    ),
];

/// How long a destroy event for our own socket may take to arrive (the kernel sends it
/// from a work queue).
const EVENT_WAIT: Duration = Duration::from_secs(2);

/// Every probe, in the order the report prints them.
pub fn probe(root: &Root) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut say = |name: &'static str, text: String| found.push(Finding { name, found: text });
    say(
        "kernel",
        std::fs::read_to_string(root.proc_path("sys/kernel/osrelease"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})")),
    );
    say("sock_diag tcp", sock_diag(Protocol::Tcp));
    say("sock_diag udp", sock_diag(Protocol::Udp));
    say("sock_diag raw", sock_diag(Protocol::Raw));
    say("sock_diag unix", sock_diag(Protocol::Unix));
    let (destroyed, tcp_info) = destroy_own_listener();
    say("SOCK_DESTROY", destroyed);
    say("destroy events", destroy_events());
    say("tcp_info", tcp_info);
    say("cgroup v2", cgroup2(root));
    say("conntrack", conntrack(root));
    say(
        "conntrack accounting",
        setting(root, "nf_conntrack_acct", "packets and bytes are NULL"),
    );
    say(
        "conntrack timestamps",
        setting(root, "nf_conntrack_timestamp", "start and stop are NULL"),
    );
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    say(
        "user",
        format!("uid {uid}{}", if uid == 0 { " (root)" } else { "" }),
    );
    let effective = crate::collect::own_status(root).map(|status| status.capeff);
    for (name, bit, gives) in CAPABILITIES {
        say(
            name,
            match &effective {
                Ok(set) if set & (1 << bit) != 0 => "yes".to_string(),
                Ok(_) => format!("no (without it: no {gives})"),
                Err(e) => format!("unknown ({e})"),
            },
        );
    }
    say("other users' processes", other_users_fds(root, uid));
    say(
        "socket owners' iterator",
        match crate::collect::task_files::probe(root) {
            Ok(()) => "yes (serve, metrics, record, the REPL and netstat -c list every process's sockets in one read of the kernel's task_file iterator)".into(),
            Err(why) => format!("no: {why}; socket owners come from walking /proc"),
        },
    );
    found
}

/// Writes the report: `name: found`, one a line.
pub fn write(findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
    for finding in findings {
        writeln!(out, "{}: {}", finding.name, finding.found)?;
    }
    Ok(())
}

/// Whether the kernel answers a sock_diag dump of `protocol` (an empty answer is an
/// answer): what `--source netlink` needs, and what `auto` falls back to /proc without.
fn sock_diag(protocol: Protocol) -> String {
    let answered = Dumper::open().and_then(|mut dumper| match protocol {
        Protocol::Unix => dumper.unix(u32::MAX, Extensions::default(), &mut |_| false),
        _ => dumper.inet(
            protocol,
            Family::Inet,
            ALL_STATES,
            None,
            Extensions::default(),
            &mut |_| false,
        ),
    });
    match answered {
        Ok(()) => "yes".to_string(),
        Err(CollectError::NetlinkRefused { errno, .. }) => {
            // ENOENT: no handler for the protocol, and none could be loaded.
            let why = match (errno.raw_os_error(), protocol) {
                (Some(libc::ENOENT), Protocol::Raw) => "no raw_diag (CONFIG_INET_RAW_DIAG)",
                (Some(libc::ENOENT), Protocol::Udp) => "no udp_diag (CONFIG_INET_UDP_DIAG)",
                (Some(libc::ENOENT), Protocol::Unix) => "no unix_diag (CONFIG_UNIX_DIAG)",
                (Some(libc::ENOENT), Protocol::Tcp) => "no tcp_diag (CONFIG_INET_TCP_DIAG)",
                _ => "refused",
            };
            format!("no: {why}: {errno}; --source auto reads /proc instead")
        }
        Err(err) => format!("no: {err}"),
    }
}

/// Opens a TCP listener of our own, finds it in a sock_diag dump (with its tcp_info),
/// and closes it with SOCK_DESTROY as `ss -K` would; the effect is checked on the
/// listener itself (ECONNABORTED pending). Returns the SOCK_DESTROY line and the
/// tcp_info line.
fn destroy_own_listener() -> (String, String) {
    let listener = match TcpListener::bind("0.0.0.0:0") {
        Ok(listener) => listener,
        Err(e) => {
            let why = format!("untested: cannot open a TCP listener to probe with: {e}");
            return (why.clone(), why);
        }
    };
    let inode = match std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd())) {
        Ok(meta) => meta.ino(),
        Err(e) => {
            let why = format!("untested: cannot stat our listener: {e}");
            return (why.clone(), why);
        }
    };
    let mut ours: Option<SocketRow> = None;
    let want = Extensions {
        tcp_info: true,
        ..Extensions::default()
    };
    let dumped = Dumper::open().and_then(|mut dumper| {
        dumper.inet(
            Protocol::Tcp,
            Family::Inet,
            1 << State::Listen.kernel_value(),
            None,
            want,
            &mut |row| {
                let found = row.inode == inode;
                if found {
                    ours = Some(row);
                }
                !found
            },
        )
    });
    let row = match (dumped, ours) {
        (Ok(()), Some(row)) => row,
        (Ok(()), None) => {
            let why = "untested: our listener is missing from the sock_diag dump".to_string();
            return (why.clone(), why);
        }
        (Err(e), _) => {
            let why = format!("untested: no sock_diag dump of TCP ({e})");
            return (why.clone(), why);
        }
    };
    let tcp_info = match row.extras.as_ref().and_then(|e| e.tcp_info.as_ref()) {
        Some(info) => format!("{} bytes", info.0.len()),
        None => "no: the kernel sent no INET_DIAG_INFO for our listener".to_string(),
    };
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let target = Target {
        protocol: Protocol::Tcp,
        family: Family::Inet,
        local: row.local.unwrap_or(unspecified),
        remote: row.remote.unwrap_or(unspecified),
        bound_if: row.bound_if,
        cookie: row.cookie,
    };
    let destroyed = match destroy::destroy(&[target]) {
        Err(e) => format!("no: {e}"),
        Ok(tally) if tally.closed == 1 => match pending_error(&listener) {
            Some(libc::ECONNABORTED) => "yes (closed a listener of our own, as ss -K does)".into(),
            other => format!(
                "no: the kernel acknowledged, but our listener's pending error is {other:?}, not ECONNABORTED"
            ),
        },
        Ok(tally) if tally.unsupported > 0 => {
            "no: not supported (the kernel lacks CONFIG_INET_DIAG_DESTROY); DELETE FROM sockets cannot close".into()
        }
        Ok(tally) if tally.denied > 0 => {
            "no: not permitted (needs CAP_NET_ADMIN); DELETE FROM sockets cannot close".into()
        }
        Ok(tally) => format!(
            "no: {}",
            tally
                .first_failure
                .unwrap_or_else(|| "our listener was not found to close".into())
        ),
    };
    (destroyed, tcp_info)
}

/// SO_ERROR of a socket: the error a destroy leaves pending.
fn pending_error(socket: &impl AsRawFd) -> Option<i32> {
    let mut error: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes to `error`, which has them.
    let status = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut error as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (status == 0).then_some(error)
}

/// Subscribes to sock_diag's destroy groups (what `socket_events` reads), then closes a
/// UDP socket of our own and waits for its event.
fn destroy_events() -> String {
    let mut subscription = match events::Subscription::open() {
        Ok(subscription) => subscription,
        Err(e) => return format!("no: {e}; socket_events cannot run"),
    };
    let port = match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => return format!("untested: cannot open a UDP socket to close: {e}"),
    };
    let started = Instant::now();
    let mut rows = Vec::new();
    while started.elapsed() < EVENT_WAIT {
        if let Err(e) = subscription.drain(&mut rows, 256) {
            return format!("no: {e}");
        }
        let ours = rows.iter().any(|row| {
            row.protocol == Protocol::Udp && row.local.is_some_and(|a| a.port() == port)
        });
        if ours {
            return format!(
                "yes (saw our own UDP socket close after {} ms)",
                started.elapsed().as_millis()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    format!(
        "no: subscribed, but no event for our own UDP socket within {} s; socket_events sees nothing",
        EVENT_WAIT.as_secs()
    )
}

/// Where cgroup2 is mounted, confirmed by the mount's filesystem type.
fn cgroup2(root: &Root) -> String {
    let mount = match cgroups::mount(root) {
        Ok(mount) => mount,
        Err(err) => return format!("unknown ({err})"),
    };
    let Some(mount) = mount else {
        let filesystems =
            std::fs::read_to_string(root.proc_path("filesystems")).unwrap_or_default();
        let known = filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("cgroup2"));
        return if known {
            "no: the kernel has cgroup2 but nothing mounts it here; the cgroup column is NULL"
                .into()
        } else {
            "no: the kernel has no cgroup2; the cgroup column is NULL".into()
        };
    };
    #[allow(clippy::unnecessary_cast)] // the magic's width differs between targets.
    let cgroup2 = libc::CGROUP2_SUPER_MAGIC as i64;
    match crate::collect::filesystem_type(&mount) {
        Ok(t) if t == cgroup2 => format!("yes (cgroup2 at {})", mount.display()),
        Ok(other) => format!(
            "no: {} is listed as cgroup2 but its filesystem type is {other:#x}",
            mount.display()
        ),
        Err(e) => format!("no: {}: {e}", mount.display()),
    }
}

/// Whether ctnetlink answers a count request (as `conntrack -C` asks).
fn conntrack(root: &Root) -> String {
    match Ctnetlink::open().and_then(|mut ct| ct.count(root)) {
        Ok((count, max)) => {
            let number = |n: Option<u32>| n.map_or("?".to_string(), |n| n.to_string());
            format!(
                "yes (ctnetlink answers: {} entries, max {})",
                number(count),
                number(max)
            )
        }
        Err(e) => format!("no: {e}"),
    }
}

/// A conntrack sysctl of this namespace, on or off, and what off costs.
fn setting(root: &Root, name: &str, off: &str) -> String {
    let path = root.proc_path(&format!("sys/net/netfilter/{name}"));
    match std::fs::read_to_string(&path).map(|s| s.trim().to_string()) {
        Ok(value) if value == "0" => format!("off (net.netfilter.{name} = 0: {off})"),
        Ok(value) => format!("on (net.netfilter.{name} = {value})"),
        Err(e) => format!(
            "unknown: {}: {e} (nf_conntrack not loaded?)",
            path.display()
        ),
    }
}

/// Reads an fd link of a process of another user: what the owner columns need
/// (CAP_SYS_PTRACE, and CAP_DAC_READ_SEARCH or root).
fn other_users_fds(root: &Root, uid: u32) -> String {
    let Ok(pids) = crate::collect::owners::pids(root) else {
        return format!("untested: cannot list {}", root.proc.display());
    };
    for pid in pids {
        let Ok(owner) = std::fs::metadata(root.proc.join(pid.to_string())).map(|m| m.uid()) else {
            continue;
        };
        if owner == uid {
            continue;
        }
        // Listing the directory takes read permission; following a link (what tells a
        // socket's inode) takes ptrace access too (fs/proc/fd.c, proc_fd_link).
        let dir = root.proc.join(pid.to_string()).join("fd");
        let first = std::fs::read_dir(&dir)
            .and_then(|mut entries| entries.next().transpose())
            .and_then(|entry| entry.map(|e| std::fs::read_link(e.path())).transpose());
        match first {
            Ok(Some(_)) => return format!("yes (read the fd links of uid {owner}'s pid {pid})"),
            // No open file, or it exited meanwhile: try another.
            Ok(None) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return format!(
                    "no: {}: {e} (uid {owner}); their sockets' pid, program and fd are NULL",
                    dir.display()
                )
            }
        }
    }
    "untested: no process of another user to try".into()
}
