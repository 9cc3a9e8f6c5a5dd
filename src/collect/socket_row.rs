//! The socket row every socket source produces, and the vocabularies shared by them.

use std::borrow::Cow;

use std::net::SocketAddr;

/// Address family, as netstat groups sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    #[default]
    Inet,
    Inet6,
    Unix,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
            Family::Unix => "unix",
        }
    }
}

/// Transport protocol; with the family it gives netstat's `Proto` (`tcp6`, `udplite`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    UdpLite,
    Raw,
    Unix,
}

impl Protocol {
    /// The socket type an inet socket of this protocol has (TCP a stream, raw raw, UDP
    /// and UDP-Lite datagrams).
    pub fn inet_sock_type(self) -> SockType {
        match self {
            Protocol::Tcp => SockType::Stream,
            Protocol::Raw => SockType::Raw,
            _ => SockType::Dgram,
        }
    }

    /// The IP protocol number inet_diag is asked for (`IPPROTO_*`); `None` for unix.
    pub fn ipproto(self) -> Option<u8> {
        match self {
            Protocol::Tcp => Some(libc::IPPROTO_TCP as u8),
            Protocol::Udp => Some(libc::IPPROTO_UDP as u8),
            Protocol::UdpLite => Some(libc::IPPROTO_UDPLITE as u8),
            Protocol::Raw => Some(libc::IPPROTO_RAW as u8),
            Protocol::Unix => None,
        }
    }

    /// netstat's Proto column: the protocol with `6` appended for IPv6.
    pub fn proto_name(self, family: Family) -> &'static str {
        match (self, family) {
            (Protocol::Tcp, Family::Inet6) => "tcp6",
            (Protocol::Tcp, _) => "tcp",
            (Protocol::Udp, Family::Inet6) => "udp6",
            (Protocol::Udp, _) => "udp",
            (Protocol::UdpLite, Family::Inet6) => "udplite6",
            (Protocol::UdpLite, _) => "udplite",
            (Protocol::Raw, Family::Inet6) => "raw6",
            (Protocol::Raw, _) => "raw",
            (Protocol::Unix, _) => "unix",
        }
    }
}

/// Socket type (`SOCK_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SockType {
    #[default]
    Stream,
    Dgram,
    SeqPacket,
    Raw,
    Other(u16),
}

impl SockType {
    pub fn from_raw(value: u16) -> SockType {
        match i32::from(value) {
            libc::SOCK_STREAM => SockType::Stream,
            libc::SOCK_DGRAM => SockType::Dgram,
            libc::SOCK_SEQPACKET => SockType::SeqPacket,
            libc::SOCK_RAW => SockType::Raw,
            _ => SockType::Other(value),
        }
    }

    pub fn name(self) -> Cow<'static, str> {
        match self {
            SockType::Stream => "stream".into(),
            SockType::Dgram => "dgram".into(),
            SockType::SeqPacket => "seqpacket".into(),
            SockType::Raw => "raw".into(),
            SockType::Other(n) => format!("type{n}").into(),
        }
    }
}

/// The kernel's `sk_state` (include/net/tcp_states.h), used for every family: UDP, raw and
/// unix sockets reuse the TCP values (CLOSE when unconnected, ESTABLISHED when connected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum State {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    #[default]
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    Unknown(u8),
}

impl State {
    pub fn from_kernel(value: u8) -> State {
        match value {
            1 => State::Established,
            2 => State::SynSent,
            3 => State::SynRecv,
            4 => State::FinWait1,
            5 => State::FinWait2,
            6 => State::TimeWait,
            7 => State::Close,
            8 => State::CloseWait,
            9 => State::LastAck,
            10 => State::Listen,
            11 => State::Closing,
            // TCP_NEW_SYN_RECV: a request socket, which the kernel itself reports as SYN_RECV
            // to both /proc/net/tcp and inet_diag.
            12 => State::SynRecv,
            other => State::Unknown(other),
        }
    }

    /// The kernel number, the inverse of [`State::from_kernel`] (netstat shows it for raw).
    pub fn kernel_value(self) -> u8 {
        match self {
            State::Established => 1,
            State::SynSent => 2,
            State::SynRecv => 3,
            State::FinWait1 => 4,
            State::FinWait2 => 5,
            State::TimeWait => 6,
            State::Close => 7,
            State::CloseWait => 8,
            State::LastAck => 9,
            State::Listen => 10,
            State::Closing => 11,
            State::Unknown(n) => n,
        }
    }

    pub const NAMES: [&'static str; 11] = [
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];

    pub fn name(self) -> Cow<'static, str> {
        match self {
            State::Unknown(n) => format!("UNKNOWN({n})").into(),
            known => State::NAMES[usize::from(known.kernel_value()) - 1].into(),
        }
    }
}

/// Which timer is pending on a TCP socket (`idiag_timer`, or `tr` in /proc/net/tcp).
/// Names are netstat -o's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    Off,
    On,
    KeepAlive,
    TimeWait,
    Probe,
    Unknown(u8),
}

impl Timer {
    pub fn from_kernel(value: u8) -> Timer {
        match value {
            0 => Timer::Off,
            1 => Timer::On,
            2 => Timer::KeepAlive,
            3 => Timer::TimeWait,
            4 => Timer::Probe,
            other => Timer::Unknown(other),
        }
    }

    pub fn name(self) -> Cow<'static, str> {
        match self {
            Timer::Off => "off".into(),
            Timer::On => "on".into(),
            Timer::KeepAlive => "keepalive".into(),
            Timer::TimeWait => "timewait".into(),
            Timer::Probe => "probe".into(),
            Timer::Unknown(n) => format!("unkn-{n}").into(),
        }
    }
}

/// Timer details of an inet socket (netstat -o, ss -o). The two counters are the kernel's
/// `icsk_retransmits` and `icsk_probes_out`, as /proc/net/tcp prints them (retrnsmt and
/// timeout); `None` where the source did not say (see sockdiag::wire::decode_inet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerInfo {
    pub timer: Timer,
    pub expires_ms: i64,
    pub retransmits: Option<i32>,
    pub probes: Option<i32>,
}

/// One socket, as any source reports it. `None` means the source cannot know the value.
/// Readers fill what their source gives and leave the rest to `Default`, so a new field
/// touches only the reader that fills it (and the table spec).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketRow {
    pub protocol: Protocol,
    pub family: Family,
    pub sock_type: SockType,
    pub state: State,
    /// Local and remote endpoint of inet sockets; `None` for unix.
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub recv_q: Option<u64>,
    pub send_q: Option<u64>,
    pub uid: Option<u32>,
    pub inode: u64,
    /// Unix only: bound path, `@name` for the abstract namespace.
    pub path: Option<String>,
    pub peer_inode: Option<u64>,
    pub timer: Option<TimerInfo>,
    /// sock_diag's socket cookie (`ss -e`'s `sk:`), which names one socket for its whole
    /// life where a 4-tuple may be reused; 0 when the source gives none (/proc).
    pub cookie: u64,
    /// The interface an inet socket is bound to (SO_BINDTODEVICE), 0 for none.
    pub bound_if: u32,
    /// What sock_diag extensions (or /proc's drops) said, when a query asked: boxed, so
    /// a scan that asks for none pays one pointer a row.
    pub extras: Option<Box<Extras>>,
}

/// A socket's optional attributes, each `None` when not asked for or not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extras {
    /// `struct tcp_info` (INET_DIAG_INFO), full TCP sockets only.
    pub tcp_info: Option<super::tcp_info::TcpInfo>,
    /// INET_DIAG_CONG: the congestion control algorithm.
    pub congestion: Option<String>,
    /// SK_MEMINFO_* (INET_DIAG_SKMEMINFO, UNIX_DIAG_MEMINFO), in ss -m's order: rmem_alloc,
    /// rcvbuf, wmem_alloc, sndbuf, fwd_alloc, wmem_queued, optmem, backlog, drops. Under
    /// `--source proc` only drops, from /proc/net/udp.
    pub skmem: [Option<u32>; 9],
    /// sk_shutdown: bit 1 no more receives, bit 2 no more sends.
    pub shutdown: Option<u8>,
    /// IPv4 TOS (INET_DIAG_TOS) or IPv6 traffic class (INET_DIAG_TCLASS).
    pub tos: Option<u8>,
    /// SO_MARK (INET_DIAG_MARK): sent only to CAP_NET_ADMIN.
    pub mark: Option<u32>,
    /// The socket's cgroup v2 id (INET_DIAG_CGROUP_ID).
    pub cgroup_id: Option<u64>,
    /// INET_DIAG_SOCKOPT's flags (Linux 5.10+), bit i the i-th of [`SOCKOPT_NAMES`].
    pub sockopt: Option<u16>,
}

/// INET_DIAG_SOCKOPT's flags in bit order, named as `ss --inet-sockopt` prints them.
pub const SOCKOPT_NAMES: [&str; 11] = [
    "recverr",
    "is_icsk",
    "freebind",
    "hdrincl",
    "mc_loop",
    "transparent",
    "mc_all",
    "nodefrag",
    "bind_address_no_port",
    "recverr_rfc4884",
    "defer_connect",
];

/// The names of the flags set in INET_DIAG_SOCKOPT's `bits`.
pub fn sockopt_names(bits: u16) -> Vec<&'static str> {
    SOCKOPT_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, name)| *name)
        .collect()
}

impl SocketRow {
    /// A copy, with the extras only when `extras` (a scan that asked for none takes none
    /// of the ones another scan asked for).
    pub fn copy(&self, extras: bool) -> SocketRow {
        SocketRow {
            path: self.path.clone(),
            extras: if extras { self.extras.clone() } else { None },
            ..*self
        }
    }

    /// The extras, made on first use.
    pub fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }
}

/// Text for a unix socket's bound address: a path as is, an abstract name as `@name`.
/// The kernel shows NUL bytes inside abstract names as `@` in /proc/net/unix; ss does the
/// same, so the two sources agree.
pub fn abstract_name(raw: &[u8]) -> String {
    let mut name = String::with_capacity(raw.len() + 1);
    name.push('@');
    name.push_str(&path_text(raw).replace('\0', "@"));
    name
}

/// A unix path's bytes as text, a byte that is not UTF-8 written `\xNN` (as for abstract
/// names, whichever source read it): U+FFFD would make two paths read alike.
pub fn path_text(raw: &[u8]) -> String {
    let mut text = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_numbers_round_trip_to_netstat_names() {
        for value in 1..=11u8 {
            let state = State::from_kernel(value);
            assert_eq!(state.kernel_value(), value);
        }
        assert_eq!(State::from_kernel(10).name(), "LISTEN");
        assert_eq!(State::from_kernel(1).name(), "ESTABLISHED");
        assert_eq!(State::from_kernel(12).name(), "SYN_RECV");
        assert_eq!(State::from_kernel(42).name(), "UNKNOWN(42)");
    }

    #[test]
    fn abstract_names_show_nul_as_at() {
        assert_eq!(abstract_name(b"foo\0bar"), "@foo@bar");
        assert_eq!(abstract_name(b"\xff"), "@\\xff");
        assert_eq!(path_text(b"/run/a\xff\xfeb"), "/run/a\\xff\\xfeb");
    }
}
