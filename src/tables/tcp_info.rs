//! `tcp_info`: per TCP socket, what the kernel's `struct tcp_info` (INET_DIAG_INFO) and
//! INET_DIAG_CONG say, as `ss -ti` prints it, one column a field, units in the names.
//! Scanned like `sockets` (same namespaces, same kernel filters) restricted to TCP.

use datafusion::error::DataFusionError;

use super::columns::{boolean, uint32, uint64, utf8, utf8_list};
use super::sockets::{column as id, Sockets};
use super::{Column, Kind, Need, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::socket_row::{Protocol, SocketRow, State};
use crate::collect::tcp_info::{at, TcpInfo};

pub use super::socket_names::CONGESTION;

/// The socket's tcp_info, for a field the kernel fills on a connection: a listener's
/// (tcp_get_info returns early for one) is zero there, which ss prints as nothing.
fn info(row: &SocketRow) -> Option<&TcpInfo> {
    match row.state {
        State::Listen => None,
        _ => every_state(row),
    }
}

/// The socket's tcp_info, for the fields the kernel fills in every state, listeners
/// included: pacing rates, reordering, cwnd, unacked.
fn every_state(row: &SocketRow) -> Option<&TcpInfo> {
    row.extras.as_deref()?.tcp_info.as_ref()
}

/// The kernel's TCP_INFINITE_SSTHRESH: no loss has set a threshold yet.
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// A kernel rate in bytes/s as bits/s; `None` for the kernel's "unlimited" (~0, which ss
/// prints as nothing) and for a rate whose bits do not fit: a saturated number would
/// make every sum and average over the column meaningless.
fn bits_per_second(bytes: u64) -> Option<u64> {
    bytes.checked_mul(8)
}

pub static SPEC: TableSpec<Sockets> = TableSpec {
    name: super::socket_names::TCP_INFO,
    doc: "One row per TCP socket of the scanned namespaces with the kernel's struct tcp_info and congestion control (ss -ti); NULL where the kernel sent none (TIME_WAIT, request sockets, --source proc), a field this kernel lacks, and for a listener every field but cwnd, reordering, unacked and the pacing rates (the kernel fills no other)",
    columns: &[
        id::PROTO,
        id::FAMILY,
        id::STATE,
        id::LOCAL_ADDRESS,
        id::LOCAL_PORT,
        id::REMOTE_ADDRESS,
        id::REMOTE_PORT,
        id::INODE,
        id::UID,
        id::NETNS,
        id::NETNS_NAME,
        id::COOKIE,
        Column {
            name: CONGESTION,
            kind: Kind::Utf8,
            doc: "Congestion control algorithm (INET_DIAG_CONG): cubic, reno, bbr, ...",
            needs: &[Need::Congestion],
            build: |s, range| utf8(&s.rows[range.clone()], |r| r.extras.as_deref()?.congestion.as_deref()),
        },
        Column {
            name: "options",
            kind: Kind::Utf8List,
            doc: "Options in use: ts, sack, ecn, ecnseen, fastopen (ss -i; wscale is its own columns)",
            needs: &[Need::TcpInfo],
            build: |s, range| {
                let options: Vec<Option<Vec<String>>> = s.rows[range.clone()].iter().map(|r| info(r)?.options()).collect();
                utf8_list(&options, |o| o.as_deref())
            },
        },
        Column {
            name: "snd_wscale",
            kind: Kind::UInt32,
            doc: "Send window scale (ss -i wscale:SND,RCV); NULL when window scaling is off",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.wscale().map(|w| u32::from(w.0))
            }),
        },
        Column {
            name: "rcv_wscale",
            kind: Kind::UInt32,
            doc: "Receive window scale; NULL when window scaling is off",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.wscale().map(|w| u32::from(w.1))
            }),
        },
        Column {
            name: "rto_ms",
            kind: Kind::UInt32,
            doc: "Retransmission timeout, ms (ss rto:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.ms_of_us(at::RTO)
            }),
        },
        Column {
            name: "ato_ms",
            kind: Kind::UInt32,
            doc: "Delayed-ACK timeout, ms (ss ato:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.ms_of_us(at::ATO)
            }),
        },
        Column {
            name: "backoff",
            kind: Kind::UInt32,
            doc: "Exponential backoff of the retransmission timer (ss backoff:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u8(at::BACKOFF).map(u32::from)
            }),
        },
        Column {
            name: "rtt_us",
            kind: Kind::UInt32,
            doc: "Smoothed round-trip time, µs (ss rtt: prints ms); NULL before the first sample (SYN_SENT: the kernel's 0, which ss prints as nothing)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RTT).filter(|&us| us != 0)
            }),
        },
        Column {
            name: "rttvar_us",
            kind: Kind::UInt32,
            doc: "Round-trip time variance, µs; NULL where rtt_us is",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RTT).filter(|&us| us != 0)?;
                i.u32(at::RTTVAR)
            }),
        },
        Column {
            name: "min_rtt_us",
            kind: Kind::UInt32,
            doc: "Lowest round-trip time seen, µs (ss minrtt:); NULL before the first sample (the kernel's ~0, which ss prints as nothing)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::MIN_RTT).filter(|&us| us != u32::MAX)
            }),
        },
        Column {
            name: "mss",
            kind: Kind::UInt32,
            doc: "Send MSS, bytes (ss mss:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::SND_MSS)
            }),
        },
        Column {
            name: "advmss",
            kind: Kind::UInt32,
            doc: "Advertised MSS, bytes (ss advmss:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::ADVMSS)
            }),
        },
        Column {
            name: "rcv_mss",
            kind: Kind::UInt32,
            doc: "Peer's MSS as estimated, bytes (ss rcvmss:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RCV_MSS)
            }),
        },
        Column {
            name: "pmtu",
            kind: Kind::UInt32,
            doc: "Path MTU, bytes (ss pmtu:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::PMTU)
            }),
        },
        Column {
            name: "cwnd",
            kind: Kind::UInt32,
            doc: "Congestion window, segments (ss cwnd:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = every_state(r)?;
                i.u32(at::SND_CWND)
            }),
        },
        Column {
            name: "ssthresh",
            kind: Kind::UInt32,
            doc: "Slow-start threshold, segments (ss ssthresh:); NULL while no loss has set one (the kernel's infinite 0x7fffffff, which ss prints as nothing)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::SND_SSTHRESH).filter(|&n| n != INFINITE_SSTHRESH)
            }),
        },
        Column {
            name: "reordering",
            kind: Kind::UInt32,
            doc: "Reordering degree seen, segments (ss reordering:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = every_state(r)?;
                i.u32(at::REORDERING)
            }),
        },
        Column {
            name: "rcv_rtt_us",
            kind: Kind::UInt32,
            doc: "Receiver's round-trip estimate, µs (ss rcv_rtt: prints ms)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RCV_RTT)
            }),
        },
        Column {
            name: "rcv_space",
            kind: Kind::UInt32,
            doc: "Receive space auto-tuning estimate, bytes (ss rcv_space:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RCV_SPACE)
            }),
        },
        Column {
            name: "rcv_ssthresh",
            kind: Kind::UInt32,
            doc: "Receive window clamp, bytes (ss rcv_ssthresh:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RCV_SSTHRESH)
            }),
        },
        Column {
            name: "snd_wnd",
            kind: Kind::UInt32,
            doc: "Peer's advertised window, bytes (ss snd_wnd:; Linux 5.4+)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::SND_WND)
            }),
        },
        Column {
            name: "rcv_wnd",
            kind: Kind::UInt32,
            doc: "Window we advertise, bytes (ss rcv_wnd:; Linux 6.2+)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RCV_WND)
            }),
        },
        Column {
            name: "bytes_sent",
            kind: Kind::UInt64,
            doc: "Bytes sent, retransmissions included (ss bytes_sent:; Linux 4.19+)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::BYTES_SENT)
            }),
        },
        Column {
            name: "bytes_acked",
            kind: Kind::UInt64,
            doc: "Bytes acknowledged by the peer (ss bytes_acked:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::BYTES_ACKED)
            }),
        },
        Column {
            name: "bytes_received",
            kind: Kind::UInt64,
            doc: "Bytes received in order (ss bytes_received:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::BYTES_RECEIVED)
            }),
        },
        Column {
            name: "bytes_retrans",
            kind: Kind::UInt64,
            doc: "Bytes retransmitted (ss bytes_retrans:; Linux 4.19+)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::BYTES_RETRANS)
            }),
        },
        Column {
            name: "segs_out",
            kind: Kind::UInt32,
            doc: "Segments sent (ss segs_out:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::SEGS_OUT)
            }),
        },
        Column {
            name: "segs_in",
            kind: Kind::UInt32,
            doc: "Segments received (ss segs_in:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::SEGS_IN)
            }),
        },
        Column {
            name: "data_segs_out",
            kind: Kind::UInt32,
            doc: "Segments sent carrying data (ss data_segs_out:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::DATA_SEGS_OUT)
            }),
        },
        Column {
            name: "data_segs_in",
            kind: Kind::UInt32,
            doc: "Segments received carrying data (ss data_segs_in:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::DATA_SEGS_IN)
            }),
        },
        Column {
            name: "unacked",
            kind: Kind::UInt32,
            doc: "Segments in flight, not yet acknowledged (ss unacked:); for a listener, connections waiting in its accept queue",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = every_state(r)?;
                i.u32(at::UNACKED)
            }),
        },
        Column {
            name: "sacked",
            kind: Kind::UInt32,
            doc: "Segments selectively acknowledged (ss sacked:); NULL for a listener, where the kernel puts its backlog limit in this field (sockets.send_q shows it)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                // tcp_get_info: a listener's tcpi_sacked is sk_max_ack_backlog (and
                // info() is None for a listener).
                let i = info(r)?;
                i.u32(at::SACKED)
            }),
        },
        Column {
            name: "lost",
            kind: Kind::UInt32,
            doc: "Segments presumed lost (ss lost:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::LOST)
            }),
        },
        Column {
            name: "retrans",
            kind: Kind::UInt32,
            doc: "Segments retransmitted and not yet acknowledged (ss retrans:N/...)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RETRANS)
            }),
        },
        Column {
            name: "total_retrans",
            kind: Kind::UInt32,
            doc: "Retransmissions over the connection's life (ss retrans:.../N)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::TOTAL_RETRANS)
            }),
        },
        Column {
            name: "delivered",
            kind: Kind::UInt32,
            doc: "Segments delivered, i.e. acknowledged (ss delivered:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::DELIVERED)
            }),
        },
        Column {
            name: "delivered_ce",
            kind: Kind::UInt32,
            doc: "Of those, ECN congestion-marked",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::DELIVERED_CE)
            }),
        },
        Column {
            name: "dsack_dups",
            kind: Kind::UInt32,
            doc: "Duplicate segments the peer reported by D-SACK (ss dsack_dups:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::DSACK_DUPS)
            }),
        },
        Column {
            name: "reord_seen",
            kind: Kind::UInt32,
            doc: "Reordering events seen (ss reord_seen:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::REORD_SEEN)
            }),
        },
        Column {
            name: "rcv_ooopack",
            kind: Kind::UInt32,
            doc: "Out-of-order packets received (ss rcv_ooopack:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::RCV_OOOPACK)
            }),
        },
        Column {
            name: "notsent_bytes",
            kind: Kind::UInt32,
            doc: "Bytes queued but not yet sent (ss notsent:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::NOTSENT_BYTES)
            }),
        },
        Column {
            name: "pacing_rate_bps",
            kind: Kind::UInt64,
            doc: "Pacing rate, bits/s (the kernel's bytes/s x 8, as ss pacing_rate prints); NULL when unlimited, as ss prints none",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = every_state(r)?;
                i.u64(at::PACING_RATE).and_then(bits_per_second)
            }),
        },
        Column {
            name: "max_pacing_rate_bps",
            kind: Kind::UInt64,
            doc: "SO_MAX_PACING_RATE, bits/s; NULL when unlimited (the default)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = every_state(r)?;
                i.u64(at::MAX_PACING_RATE).and_then(bits_per_second)
            }),
        },
        Column {
            name: "delivery_rate_bps",
            kind: Kind::UInt64,
            doc: "Most recent delivery rate, bits/s (ss delivery_rate)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::DELIVERY_RATE).and_then(bits_per_second)
            }),
        },
        Column {
            name: "delivery_rate_app_limited",
            kind: Kind::Boolean,
            doc: "Whether that rate was limited by the application, not the network (ss app_limited)",
            needs: &[Need::TcpInfo],
            build: |s, range| boolean(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.app_limited()
            }),
        },
        Column {
            name: "send_rate_bps",
            kind: Kind::UInt64,
            doc: "cwnd x mss x 8 / rtt, bits/s, as ss prints `send`; NULL before an rtt is measured",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.send_rate_bps()
            }),
        },
        Column {
            name: "busy_ms",
            kind: Kind::UInt64,
            doc: "Time spent with data in flight, ms (ss busy:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::BUSY_TIME).map(|us| us / 1000)
            }),
        },
        Column {
            name: "rwnd_limited_ms",
            kind: Kind::UInt64,
            doc: "Time limited by the peer's receive window, ms (ss rwnd_limited:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::RWND_LIMITED).map(|us| us / 1000)
            }),
        },
        Column {
            name: "sndbuf_limited_ms",
            kind: Kind::UInt64,
            doc: "Time limited by our send buffer, ms (ss sndbuf_limited:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint64(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u64(at::SNDBUF_LIMITED).map(|us| us / 1000)
            }),
        },
        Column {
            name: "last_send_ms",
            kind: Kind::UInt32,
            doc: "Since data was last sent, ms (ss lastsnd:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::LAST_DATA_SENT)
            }),
        },
        Column {
            name: "last_recv_ms",
            kind: Kind::UInt32,
            doc: "Since data was last received, ms (ss lastrcv:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::LAST_DATA_RECV)
            }),
        },
        Column {
            name: "last_ack_ms",
            kind: Kind::UInt32,
            doc: "Since an ACK was last received, ms (ss lastack:)",
            needs: &[Need::TcpInfo],
            build: |s, range| uint32(&s.rows[range.clone()], |r| {
                let i = info(r)?;
                i.u32(at::LAST_ACK_RECV)
            }),
        },
    ],
};

/// Dumps TCP sockets only, whatever the filters say of other protocols.
pub fn collect(config: &TablesConfig, scan: &Scan) -> Result<Sockets, DataFusionError> {
    super::sockets::collect_for(&SPEC, config, scan, &tcp_filter(scan))
}

/// [`collect`], handed on in parts as the kernel's dump is read.
pub fn collect_parts(
    config: &TablesConfig,
    scan: &Scan,
    part: &mut dyn FnMut(Sockets) -> bool,
) -> Result<(), DataFusionError> {
    super::sockets::collect_parts_for(&SPEC, config, scan, &tcp_filter(scan), part)
}

/// The scan's socket filter, narrowed to TCP.
fn tcp_filter(scan: &Scan) -> crate::collect::sockets::SocketFilter {
    let mut filter = super::sockets_filter::socket_filter(&scan.filters);
    filter
        .kinds
        .retain(|(protocol, _)| *protocol == Protocol::Tcp);
    filter
}
