//! The kernel's connection-tracking table through ctnetlink (NETLINK_NETFILTER), what
//! `conntrack -L`, `-S` and `-C` read, in the calling thread's network namespace.

pub mod events;
pub mod wire;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

pub use wire::{Counters, Event, Filter, Flow, Tuple, ZoneDir};

use super::netlink::{self, Failure};
use super::{CollectError, Root};

/// What asking the kernel to delete an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Yes,
    /// No such entry (any more).
    Gone,
    /// Not without CAP_NET_ADMIN.
    Denied,
}

/// One ctnetlink socket, reused for a scan's requests.
pub struct Ctnetlink {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
}

/// What a refusal means for conntrack, in the words an operator acts on.
pub(crate) fn refused(what: &str, errno: std::io::Error) -> CollectError {
    if super::exhausted(&errno) {
        return CollectError::Socket {
            what: "a NETLINK_NETFILTER socket",
            source: errno,
        };
    }
    let why = match errno.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => "needs CAP_NET_ADMIN in the namespace",
        Some(libc::EPROTONOSUPPORT | libc::ENOENT | libc::EOPNOTSUPP) => {
            "is the nf_conntrack_netlink module loaded?"
        }
        _ => "the kernel refused it",
    };
    CollectError::Conntrack(format!("{what}: {errno} ({why})"))
}

/// What a failed `request` means. EINVAL to a request of nothing but its headers
/// (netlink's 16 bytes, nfnetlink's 4) is nfnetlink's answer for a subsystem it does not
/// have: ctnetlink itself finds nothing to reject in it. That is a kernel with nfnetlink
/// but without nf_conntrack_netlink (which nfnetlink could not load on demand).
fn failed(what: &str, request: &[u8], failure: Failure) -> CollectError {
    match failure {
        Failure::Refused(errno)
            if errno.raw_os_error() == Some(libc::EINVAL) && request.len() <= BARE =>
        {
            CollectError::Conntrack(format!(
                "{what}: {errno} (nfnetlink has no conntrack subsystem: is the nf_conntrack_netlink module loaded?)"
            ))
        }
        Failure::Refused(errno) => refused(what, errno),
        Failure::Broken(why) => CollectError::Conntrack(format!("{what}: {why}")),
    }
}

/// A netlink header and an nfnetlink one, without attributes.
const BARE: usize = 16 + 4;

impl Ctnetlink {
    /// A ctnetlink socket in the calling thread's network namespace.
    pub fn open() -> Result<Ctnetlink, CollectError> {
        let open = || -> std::io::Result<Socket> {
            let mut socket = Socket::new(NETLINK_NETFILTER)?;
            socket.bind_auto()?;
            socket.connect(&SocketAddr::new(0, 0))?;
            let _ = socket.set_rx_buf_sz(1 << 20);
            Ok(socket)
        };
        let socket = open().map_err(|e| refused("conntrack", e))?;
        Ok(Ctnetlink {
            socket,
            buf: Vec::with_capacity(64 * 1024),
            seq: 0,
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Every tracked connection `filter` accepts (the kernel filters what it can; the
    /// rest is checked here), each handed to `push` until it answers `false`.
    pub fn dump(
        &mut self,
        filter: &Filter,
        push: &mut dyn FnMut(Flow) -> bool,
    ) -> Result<(), CollectError> {
        let request = wire::dump_request(filter, self.next_seq());
        netlink::converse(&mut self.socket, &mut self.buf, &request, |m| {
            if m.kind != wire::CT_NEW {
                return Ok(true);
            }
            let flow = wire::decode_flow(m.kind, m.payload)?;
            Ok(!filter.accepts(&flow) || push(flow))
        })
        .map_err(|f| failed("conntrack dump", &request, f))
    }

    /// Deletes the entry `flow` names (its original tuple, zone and id).
    pub fn delete(&mut self, flow: &Flow) -> Result<Deleted, CollectError> {
        let request = wire::delete_request(flow, self.next_seq());
        match netlink::converse(&mut self.socket, &mut self.buf, &request, |_| Ok(true)) {
            Ok(()) => Ok(Deleted::Yes),
            Err(Failure::Refused(errno)) => match errno.raw_os_error() {
                Some(libc::ENOENT) => Ok(Deleted::Gone),
                Some(libc::EPERM | libc::EACCES) => Ok(Deleted::Denied),
                _ => Err(refused("conntrack delete", errno)),
            },
            Err(failure) => Err(failed("conntrack delete", &request, failure)),
        }
    }

    /// Each possible CPU's counters.
    pub fn stats_per_cpu(&mut self) -> Result<Vec<wire::CpuCounters>, CollectError> {
        let request = wire::stats_cpu_request(self.next_seq());
        let mut cpus = Vec::new();
        netlink::converse(&mut self.socket, &mut self.buf, &request, |m| {
            if m.kind == wire::CT_GET_STATS_CPU {
                cpus.push(wire::decode_stats_cpu(m.payload)?);
            }
            Ok(true)
        })
        .map_err(|f| failed("conntrack statistics", &request, f))?;
        Ok(cpus)
    }

    /// The entry count and limit as the kernel answers them (the limit only on newer
    /// kernels): the smallest request ctnetlink answers, which also shows it is there.
    /// `what` names the request in an error: what the user asked for.
    fn kernel_count(&mut self, what: &str) -> Result<(Option<u32>, Option<u32>), CollectError> {
        let request = wire::stats_request(self.next_seq());
        let mut answer = (None, None);
        netlink::converse(&mut self.socket, &mut self.buf, &request, |m| {
            if m.kind == wire::CT_GET_STATS {
                answer = wire::decode_stats(m.payload)?;
            }
            Ok(true)
        })
        .map_err(|f| failed(what, &request, f))?;
        Ok(answer)
    }

    /// The namespace's entry count and limit (the limit from the kernel's answer where it
    /// gives one, else `net.netfilter.nf_conntrack_max` as this thread sees it).
    pub fn count(&mut self, root: &Root) -> Result<(Option<u32>, Option<u32>), CollectError> {
        let mut answer = self.kernel_count("conntrack count")?;
        if answer.1.is_none() {
            let path = root.proc_path("sys/net/netfilter/nf_conntrack_max");
            answer.1 = super::read_or_none(&path, std::fs::read_to_string)?
                .and_then(|text| text.trim().parse().ok());
        }
        Ok(answer)
    }
}

/// `struct ip_conntrack_stat`'s counters as ctnetlink numbers them
/// (`enum ctattr_stats_cpu`), with the names `conntrack -S` prints.
pub const CPU_COUNTERS: [(u16, &str); 15] = [
    (1, "searched"),
    (2, "found"),
    (3, "new"),
    (4, "invalid"),
    (5, "ignore"),
    (6, "delete"),
    (7, "delete_list"),
    (8, "insert"),
    (9, "insert_failed"),
    (10, "drop"),
    (11, "early_drop"),
    (12, "error"),
    (13, "search_restart"),
    (14, "clash_resolve"),
    (15, "chaintoolong"),
];

/// conntrack's names for TCP's states (`enum tcp_conntrack`); what it prints for the
/// kernel's internal values past them.
pub fn tcp_state_name(state: u8) -> &'static str {
    const NAMES: [&str; 10] = [
        "NONE",
        "SYN_SENT",
        "SYN_RECV",
        "ESTABLISHED",
        "FIN_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
        "TIME_WAIT",
        "CLOSE",
        "SYN_SENT2",
    ];
    NAMES.get(usize::from(state)).copied().unwrap_or("NONE")
}

/// The `IPS_*` status bits by name (include/uapi/linux/netfilter/nf_conntrack_common.h).
pub const STATUS_BITS: [&str; 16] = [
    "EXPECTED",
    "SEEN_REPLY",
    "ASSURED",
    "CONFIRMED",
    "SRC_NAT",
    "DST_NAT",
    "SEQ_ADJUST",
    "SRC_NAT_DONE",
    "DST_NAT_DONE",
    "DYING",
    "FIXED_TIMEOUT",
    "TEMPLATE",
    "NAT_CLASH",
    "HELPER",
    "OFFLOAD",
    "HW_OFFLOAD",
];

/// The names of the bits set in `status`, lowest first; a bit without a name as `BIT<n>`.
pub fn status_names(status: u32) -> Vec<std::borrow::Cow<'static, str>> {
    (0..32)
        .filter(|bit| status & (1 << bit) != 0)
        .map(|bit| match STATUS_BITS.get(bit) {
            Some(name) => (*name).into(),
            None => format!("BIT{bit}").into(),
        })
        .collect()
}

/// The bit a status name stands for.
pub fn status_bit(name: &str) -> Option<u32> {
    STATUS_BITS
        .iter()
        .position(|n| *n == name)
        .map(|bit| 1 << bit)
}

/// The protocol number a [`proto_name`] names.
pub fn proto_number(name: &str) -> Option<u8> {
    Some(match name {
        "tcp" | "tcp6" => 6,
        "udp" | "udp6" => 17,
        "udplite" | "udplite6" => 136,
        "icmp" => 1,
        "icmpv6" => 58,
        "sctp" => 132,
        "gre" => 47,
        "dccp" => 33,
        number => return number.parse().ok(),
    })
}

/// A layer 4 protocol's name as `sockets.proto` spells it for TCP, UDP and UDP-Lite
/// (`tcp6` for IPv6), and as conntrack does for the rest.
pub fn proto_name(proto: u8, family: u8) -> std::borrow::Cow<'static, str> {
    let v6 = i32::from(family) == libc::AF_INET6;
    let name = match (proto, v6) {
        (6, false) => "tcp",
        (6, true) => "tcp6",
        (17, false) => "udp",
        (17, true) => "udp6",
        (136, false) => "udplite",
        (136, true) => "udplite6",
        (1, _) => "icmp",
        (58, _) => "icmpv6",
        (132, _) => "sctp",
        (47, _) => "gre",
        (33, _) => "dccp",
        (other, _) => return other.to_string().into(),
    };
    name.into()
}

#[cfg(test)]
mod refusals {
    use super::*;

    fn einval() -> Failure {
        Failure::Refused(std::io::Error::from_raw_os_error(libc::EINVAL))
    }

    #[test]
    fn einval_to_a_bare_request_names_the_missing_module() {
        for request in [
            wire::stats_request(1),
            wire::stats_cpu_request(1),
            wire::dump_request(&Filter::default(), 1),
        ] {
            assert_eq!(request.len(), BARE, "{request:?}");
            let err = failed("conntrack", &request, einval()).to_string();
            assert!(err.contains("nf_conntrack_netlink module"), "{err}");
        }
        // With attributes of ours in it, EINVAL may be about them: no guess.
        let filter = Filter {
            mark: Some((1, u32::MAX)),
            ..Filter::default()
        };
        let request = wire::dump_request(&filter, 1);
        let err = failed("conntrack dump", &request, einval()).to_string();
        assert!(err.contains("the kernel refused it"), "{err}");
    }
}
