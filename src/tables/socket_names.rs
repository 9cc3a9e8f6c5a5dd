//! The names of the socket tables' columns, declared once: `sockets`' specs, the filters
//! the kernel applies and DELETE all use these, so a misspelling does not compile.

pub const PROTO: &str = "proto";
pub const FAMILY: &str = "family";
pub const TYPE: &str = "type";
pub const STATE: &str = "state";
pub const LOCAL_ADDRESS: &str = "local_address";
pub const LOCAL_PORT: &str = "local_port";
pub const REMOTE_ADDRESS: &str = "remote_address";
pub const REMOTE_PORT: &str = "remote_port";
pub const RECV_Q: &str = "recv_q";
pub const SEND_Q: &str = "send_q";
pub const UID: &str = "uid";
pub const USER: &str = "user";
pub const INODE: &str = "inode";
pub const PID: &str = "pid";
pub const PROGRAM: &str = "program";
pub const FD: &str = "fd";
pub const PATH: &str = "path";
pub const PEER_INODE: &str = "peer_inode";
pub const UNIX_REFCNT: &str = "unix_refcnt";
pub const UNIX_FLAGS: &str = "unix_flags";
pub const TIMER: &str = "timer";
pub const TIMER_EXPIRES_MS: &str = "timer_expires_ms";
pub const RETRANSMITS: &str = "retransmits";
pub const PROBES: &str = "probes";
pub const NETNS: &str = super::netns::NETNS;
pub const NETNS_NAME: &str = super::netns::NETNS_NAME;
pub const CGROUP_ID: &str = "cgroup_id";
pub const CGROUP: &str = "cgroup";
pub const SHUTDOWN: &str = "shutdown";
pub const TOS: &str = "tos";
pub const MARK: &str = "mark";
pub const SOCKOPT: &str = "sockopt";
pub const SKMEM: [&str; 8] = [
    "skmem_rmem_alloc",
    "skmem_rcvbuf",
    "skmem_wmem_alloc",
    "skmem_sndbuf",
    "skmem_fwd_alloc",
    "skmem_wmem_queued",
    "skmem_optmem",
    "skmem_backlog",
];
pub const DROPS: &str = "drops";
pub const COOKIE: &str = "cookie";
pub const BOUND_IFINDEX: &str = "bound_ifindex";

/// The `tcp_info` table.
pub const TCP_INFO: &str = "tcp_info";
/// `tcp_info`'s congestion algorithm column (INET_DIAG_CONG).
pub const CONGESTION: &str = "congestion";
