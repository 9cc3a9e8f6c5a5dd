//! `struct tcp_info` (include/uapi/linux/tcp.h) as the kernel sends it in INET_DIAG_INFO,
//! read by offset and by length: each kernel version appends fields, so a field past the
//! end of what this kernel sent is `None`, never a misread. Hand-written because
//! `netlink-packet-sock-diag` 0.5's decoder rejects any struct shorter than its own.

/// The raw struct as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpInfo(pub Box<[u8]>);

/// Bits of `tcpi_options`.
const OPTIONS: [(u8, &str); 5] = [
    (1, "ts"),        // TCPI_OPT_TIMESTAMPS
    (2, "sack"),      // TCPI_OPT_SACK
    (8, "ecn"),       // TCPI_OPT_ECN
    (16, "ecnseen"),  // TCPI_OPT_ECN_SEEN
    (32, "fastopen"), // TCPI_OPT_SYN_DATA
];
const TCPI_OPT_WSCALE: u8 = 4;

/// Byte offsets of the fields the tables show.
pub mod at {
    pub const BACKOFF: usize = 4;
    pub const OPTIONS: usize = 5;
    pub const WSCALE: usize = 6;
    pub const APP_LIMITED: usize = 7;
    pub const RTO: usize = 8;
    pub const ATO: usize = 12;
    pub const SND_MSS: usize = 16;
    pub const RCV_MSS: usize = 20;
    pub const UNACKED: usize = 24;
    pub const SACKED: usize = 28;
    pub const LOST: usize = 32;
    pub const RETRANS: usize = 36;
    pub const LAST_DATA_SENT: usize = 44;
    pub const LAST_DATA_RECV: usize = 52;
    pub const LAST_ACK_RECV: usize = 56;
    pub const PMTU: usize = 60;
    pub const RCV_SSTHRESH: usize = 64;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const SND_SSTHRESH: usize = 76;
    pub const SND_CWND: usize = 80;
    pub const ADVMSS: usize = 84;
    pub const REORDERING: usize = 88;
    pub const RCV_RTT: usize = 92;
    pub const RCV_SPACE: usize = 96;
    pub const TOTAL_RETRANS: usize = 100;
    pub const PACING_RATE: usize = 104;
    pub const MAX_PACING_RATE: usize = 112;
    pub const BYTES_ACKED: usize = 120;
    pub const BYTES_RECEIVED: usize = 128;
    pub const SEGS_OUT: usize = 136;
    pub const SEGS_IN: usize = 140;
    pub const NOTSENT_BYTES: usize = 144;
    pub const MIN_RTT: usize = 148;
    pub const DATA_SEGS_IN: usize = 152;
    pub const DATA_SEGS_OUT: usize = 156;
    pub const DELIVERY_RATE: usize = 160;
    pub const BUSY_TIME: usize = 168;
    pub const RWND_LIMITED: usize = 176;
    pub const SNDBUF_LIMITED: usize = 184;
    pub const DELIVERED: usize = 192;
    pub const DELIVERED_CE: usize = 196;
    pub const BYTES_SENT: usize = 200;
    pub const BYTES_RETRANS: usize = 208;
    pub const DSACK_DUPS: usize = 216;
    pub const REORD_SEEN: usize = 220;
    pub const RCV_OOOPACK: usize = 224;
    pub const SND_WND: usize = 228;
    pub const RCV_WND: usize = 232;
}

impl TcpInfo {
    pub fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }

    pub fn u32(&self, at: usize) -> Option<u32> {
        let bytes = self.0.get(at..at + 4)?;
        Some(u32::from_ne_bytes(bytes.try_into().ok()?))
    }

    pub fn u64(&self, at: usize) -> Option<u64> {
        let bytes = self.0.get(at..at + 8)?;
        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
    }

    /// A field in microseconds, in milliseconds (rto, ato: ss prints them so).
    pub fn ms_of_us(&self, at: usize) -> Option<u32> {
        self.u32(at).map(|us| us / 1000)
    }

    /// The option names `ss -i` prints: ts, sack, ecn, ecnseen, fastopen (wscale is
    /// its own two columns).
    pub fn options(&self) -> Option<Vec<String>> {
        let bits = self.u8(at::OPTIONS)?;
        Some(
            OPTIONS
                .iter()
                .filter(|(bit, _)| bits & bit != 0)
                .map(|(_, name)| name.to_string())
                .collect(),
        )
    }

    /// Send and receive window scale, when window scaling was negotiated.
    pub fn wscale(&self) -> Option<(u8, u8)> {
        let options = self.u8(at::OPTIONS)?;
        let packed = self.u8(at::WSCALE)?;
        (options & TCPI_OPT_WSCALE != 0).then_some((packed & 0x0f, packed >> 4))
    }

    pub fn app_limited(&self) -> Option<bool> {
        self.u8(at::APP_LIMITED).map(|b| b & 1 != 0)
    }

    /// What `ss -i` prints as `send`: cwnd x mss x 8 / rtt, in bits per second; `None`
    /// with no rtt measured yet (or a rate past 2^64 bits/s, which no link has).
    pub fn send_rate_bps(&self) -> Option<u64> {
        let rtt_us = self.u32(at::RTT).filter(|&r| r > 0)?;
        let cwnd = u128::from(self.u32(at::SND_CWND)?);
        let mss = u128::from(self.u32(at::SND_MSS)?);
        // Rounded to the nearest, as ss prints the quotient with no decimals.
        let rtt_us = u128::from(rtt_us);
        let bps = (cwnd * mss * 8 * 1_000_000 + rtt_us / 2) / rtt_us;
        u64::try_from(bps).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A struct as kernel 6.18 sends it: 248 bytes, with marked values.
    fn full() -> Vec<u8> {
        let mut raw = vec![0u8; 248];
        raw[at::BACKOFF] = 2;
        raw[at::OPTIONS] = 1 | 2 | 4; // ts sack wscale
        raw[at::WSCALE] = 7 | (9 << 4);
        raw[at::APP_LIMITED] = 1;
        raw[at::RTO..at::RTO + 4].copy_from_slice(&204_000u32.to_ne_bytes());
        raw[at::RTT..at::RTT + 4].copy_from_slice(&1_000u32.to_ne_bytes());
        raw[at::SND_CWND..at::SND_CWND + 4].copy_from_slice(&10u32.to_ne_bytes());
        raw[at::SND_MSS..at::SND_MSS + 4].copy_from_slice(&1_448u32.to_ne_bytes());
        raw[at::BYTES_ACKED..at::BYTES_ACKED + 8].copy_from_slice(&(5u64 << 32).to_ne_bytes());
        raw[at::RCV_WND..at::RCV_WND + 4].copy_from_slice(&65_535u32.to_ne_bytes());
        raw
    }

    #[test]
    fn a_full_struct_gives_every_field() {
        let info = TcpInfo(full().into());
        assert_eq!(info.u8(at::BACKOFF), Some(2));
        assert_eq!(
            info.options(),
            Some(vec!["ts".to_string(), "sack".to_string()])
        );
        assert_eq!(info.wscale(), Some((7, 9)));
        assert_eq!(info.app_limited(), Some(true));
        assert_eq!(info.ms_of_us(at::RTO), Some(204));
        assert_eq!(info.u64(at::BYTES_ACKED), Some(5 << 32));
        assert_eq!(info.u32(at::RCV_WND), Some(65_535));
        // 10 x 1448 bytes x 8 per 1 ms.
        assert_eq!(info.send_rate_bps(), Some(115_840_000));
    }

    #[test]
    fn a_truncated_struct_gives_none_past_its_end() {
        // Linux 4.x sent 192 bytes: no delivered, bytes_sent, snd_wnd, rcv_wnd.
        let mut raw = full();
        raw.truncate(192);
        let info = TcpInfo(raw.into());
        assert_eq!(info.u32(at::RTT), Some(1_000));
        assert_eq!(info.u64(at::SNDBUF_LIMITED), Some(0));
        assert_eq!(info.u32(at::DELIVERED), None);
        assert_eq!(info.u64(at::BYTES_SENT), None);
        assert_eq!(info.u32(at::RCV_WND), None);
        // A field cut in half is not read either.
        let info = TcpInfo(full()[..at::RCV_WND + 2].to_vec().into());
        assert_eq!(info.u32(at::SND_WND), Some(0));
        assert_eq!(info.u32(at::RCV_WND), None);
    }

    #[test]
    fn garbage_gives_nulls_not_a_panic() {
        for raw in [vec![], vec![0xff; 3], vec![0xff; 7]] {
            let short = raw.len() <= at::WSCALE;
            let info = TcpInfo(raw.into());
            assert_eq!(info.u32(at::RTO), None);
            assert_eq!(info.send_rate_bps(), None);
            // What the bytes there say is read, and nothing past them.
            assert_eq!(info.wscale(), (!short).then_some((15, 15)));
        }
        // Without wscale negotiated the packed byte means nothing.
        let mut raw = full();
        raw[at::OPTIONS] = 0;
        assert_eq!(TcpInfo(raw.into()).wscale(), None);
        // All ones: big numbers, still no panic (rtt > 0, no overflow in u64 math).
        let info = TcpInfo(vec![0xff; 248].into());
        assert!(info.send_rate_bps().is_some());
    }
}
