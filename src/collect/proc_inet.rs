//! `/proc/net/{tcp,udp,udplite,raw}{,6}`: the fallback inet socket source.
//!
//! All eight files share one layout (net/ipv4/tcp_ipv4.c `get_tcp4_sock`, udp.c
//! `udp4_format_sock`, raw.c `raw_sock_seq_show`). We parse them here rather than with the
//! procfs crate because its `TcpNetEntry`/`UdpNetEntry` drop the timer fields
//! (`tr`, `tm->when`, `retrnsmt`) that netstat -o shows, it has no reader for the raw and
//! udplite files, and one bad line fails its whole file.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::socket_row::{Extras, Family, Protocol, SocketRow, State, Timer, TimerInfo};
use super::{open_optional, CollectError, ParseFail, Root};

/// The files of one protocol and family, in the order netstat reads them.
pub const FILES: [(&str, Protocol, Family); 8] = [
    ("net/tcp", Protocol::Tcp, Family::Inet),
    ("net/tcp6", Protocol::Tcp, Family::Inet6),
    ("net/udp", Protocol::Udp, Family::Inet),
    ("net/udp6", Protocol::Udp, Family::Inet6),
    ("net/udplite", Protocol::UdpLite, Family::Inet),
    ("net/udplite6", Protocol::UdpLite, Family::Inet6),
    ("net/raw", Protocol::Raw, Family::Inet),
    ("net/raw6", Protocol::Raw, Family::Inet6),
];

/// Reads one protocol's file. A file that does not exist (protocol not built into this
/// kernel, or IPv6 disabled) holds no sockets and is not an error.
pub fn read(
    root: &Root,
    rel: &str,
    protocol: Protocol,
    family: Family,
    clk_tck: u64,
) -> Result<Vec<SocketRow>, CollectError> {
    let path = root.proc_path(rel);
    let Some(reader) = open_optional(&path)? else {
        return Ok(Vec::new());
    };
    parse(
        reader,
        &path.display().to_string(),
        protocol,
        family,
        clk_tck,
    )
    .map_err(|err| err.at(&path))
}

/// Parses a whole file (header line first). `clk_tck` converts `tm->when`, which the
/// kernel prints in clock ticks (`jiffies_delta_to_clock_t`), to milliseconds.
pub fn parse(
    mut reader: impl BufRead,
    file: &str,
    protocol: Protocol,
    family: Family,
    clk_tck: u64,
) -> Result<Vec<SocketRow>, ParseFail> {
    let mut rows = Vec::new();
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(ParseFail::Io)? == 0 {
            return Ok(rows);
        }
        number += 1;
        if number == 1 || line.trim().is_empty() {
            continue; // the column header
        }
        let row = parse_line(&line, protocol, family, clk_tck).map_err(|(field, reason)| {
            ParseFail::Line(CollectError::Parse {
                file: file.to_string(),
                line: number,
                field,
                reason,
            })
        })?;
        rows.push(row);
    }
}

type FieldError = (&'static str, String);

/// Parses one data line:
/// `sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`
pub fn parse_line(
    line: &str,
    protocol: Protocol,
    family: Family,
    clk_tck: u64,
) -> Result<SocketRow, FieldError> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |name: &'static str| fields.next().ok_or((name, "missing".to_string()));
    let _slot = next("sl")?;
    let local = parse_endpoint(next("local_address")?, family).map_err(|e| ("local_address", e))?;
    let remote = parse_endpoint(next("rem_address")?, family).map_err(|e| ("rem_address", e))?;
    let state = hex_u8(next("st")?).map_err(|e| ("st", e))?;
    let (tx, rx) = split_pair(next("tx_queue:rx_queue")?)
        .ok_or(("tx_queue:rx_queue", "expected two hex numbers".to_string()))?;
    let tx_queue = hex_u64(tx).map_err(|e| ("tx_queue", e))?;
    let rx_queue = hex_u64(rx).map_err(|e| ("rx_queue", e))?;
    let (tr, when) = split_pair(next("tr:tm->when")?)
        .ok_or(("tr:tm->when", "expected two hex numbers".to_string()))?;
    let timer = hex_u8(tr).map_err(|e| ("tr", e))?;
    // jiffies_delta_to_clock_t clamps an expired timer to 0, so this is never negative.
    let when = hex_u64(when)
        .map_err(|e| ("tm->when", e))?
        .min(i64::MAX as u64) as i64;
    let retransmits = hex_u64(next("retrnsmt")?).map_err(|e| ("retrnsmt", e))?;
    let uid = dec::<u32>(next("uid")?).map_err(|e| ("uid", e))?;
    // The kernel prints icsk_probes_out here, in decimal (net/ipv4/tcp_ipv4.c).
    let probes = dec::<i32>(next("timeout")?).map_err(|e| ("timeout", e))?;
    let inode = dec::<u64>(next("inode")?).map_err(|e| ("inode", e))?;
    // Datagram and raw lines go on `ref pointer drops` (net/ipv4/udp.c, raw.c); TCP's
    // have no drops. Old kernels without the field give none.
    let drops = if protocol == Protocol::Tcp {
        None
    } else {
        let _refs = fields.next();
        let _pointer = fields.next();
        match fields.next() {
            Some(text) => Some(dec::<u32>(text).map_err(|e| ("drops", e))?),
            None => None,
        }
    };

    let state = State::from_kernel(state);
    let is_listener = protocol == Protocol::Tcp && state == State::Listen;
    Ok(SocketRow {
        protocol,
        family,
        sock_type: protocol.inet_sock_type(),
        state,
        local: Some(local),
        remote: Some(remote),
        recv_q: Some(rx_queue),
        // For a listener the kernel prints 0 here; the backlog limit ss shows as Send-Q
        // is only in inet_diag, so this source cannot know it.
        send_q: if is_listener { None } else { Some(tx_queue) },
        uid: Some(uid),
        inode,
        timer: Some(TimerInfo {
            timer: Timer::from_kernel(timer),
            expires_ms: when.saturating_mul(1000) / clk_tck.max(1) as i64,
            retransmits: Some(retransmits.min(i32::MAX as u64) as i32),
            probes: Some(probes),
        }),
        extras: drops.map(|drops| {
            let mut extras = Extras::default();
            extras.skmem[8] = Some(drops);
            Box::new(extras)
        }),
        ..SocketRow::default()
    })
}

fn split_pair(field: &str) -> Option<(&str, &str)> {
    field.split_once(':')
}

fn hex_u64(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text, 16).map_err(|e| format!("{text:?} is not hex ({e})"))
}

fn hex_u8(text: &str) -> Result<u8, String> {
    u8::from_str_radix(text, 16).map_err(|e| format!("{text:?} is not a hex byte ({e})"))
}

fn dec<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| format!("{text:?} is not a number ({e})"))
}

/// `0100007F:0016` (IPv4) or 32 hex digits `:port` (IPv6). The address is the kernel's
/// in-memory `__be32` words printed as host-order integers, so each 8-digit word is turned
/// back into bytes with the host's byte order.
fn parse_endpoint(text: &str, family: Family) -> Result<SocketAddr, String> {
    let (addr, port) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} has no ':'"))?;
    let port = u16::from_str_radix(port, 16).map_err(|e| format!("port {port:?}: {e}"))?;
    // Checked first so that slicing the IPv6 words below is always at char boundaries.
    if !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{addr:?} is not hex"));
    }
    let ip = match (family, addr.len()) {
        (Family::Inet, 8) => {
            let word = u32::from_str_radix(addr, 16).map_err(|e| format!("{addr:?}: {e}"))?;
            IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes()))
        }
        (Family::Inet6, 32) => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let hex = &addr[i * 8..i * 8 + 8];
                let word = u32::from_str_radix(hex, 16).map_err(|e| format!("{addr:?}: {e}"))?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => {
            return Err(format!(
                "{addr:?} has the wrong length for {}",
                family.name()
            ))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::socket_row::SockType;

    /// Found by `cargo fuzz run proc_net_sockets`: a 32-byte IPv6 address holding a
    /// two-byte UTF-8 character was sliced inside it, and panicked.
    #[test]
    fn fuzz_crash_multibyte_address_is_an_error() {
        let line = "   0: 0000000\u{410}00000+0000000000p000000:01B8 00r0000e";
        let err = parse_line(line, Protocol::Tcp, Family::Inet6, 100).unwrap_err();
        assert_eq!(err.0, "local_address");
        let file = b"000:01 e\n   0: 0000000\xd0\x9000000+0000000000p000000:01B8 \t 00r0000e";
        assert!(parse(&file[..], "fuzz", Protocol::Tcp, Family::Inet6, 100).is_err());
    }

    // Two lines in get_tcp4_sock's layout: a listener on 127.0.0.1:7000 with one connection
    // in its accept queue, then an ESTABLISHED socket of uid 1000 with 1000 unacknowledged
    // bytes, its retransmit timer due in 45 ticks after 3 retransmissions.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1B58 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 43121 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A2C4 0100007F:1B5B 01 000003E8:00000000 01:0000002D 00000003  1000        0 43125 2 0000000000000000 20 4 30 10 -1
";

    fn is_le() -> bool {
        cfg!(target_endian = "little")
    }

    #[test]
    fn parses_tcp_listener_and_established() {
        if !is_le() {
            return; // the captured words are little-endian
        }
        let rows = parse(TCP.as_bytes(), "tcp", Protocol::Tcp, Family::Inet, 100).unwrap();
        assert_eq!(rows.len(), 2);
        let listen = &rows[0];
        assert_eq!(listen.state, State::Listen);
        assert_eq!(listen.local, Some("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(listen.remote, Some("0.0.0.0:0".parse().unwrap()));
        assert_eq!(listen.recv_q, Some(1));
        assert_eq!(listen.send_q, None, "backlog limit is not in /proc");
        assert_eq!(listen.inode, 43121);
        let est = &rows[1];
        assert_eq!(est.state, State::Established);
        assert_eq!(est.local, Some("127.0.0.1:41668".parse().unwrap()));
        assert_eq!(est.remote, Some("127.0.0.1:7003".parse().unwrap()));
        assert_eq!(est.send_q, Some(1000));
        assert_eq!(est.uid, Some(1000));
        let timer = est.timer.unwrap();
        assert_eq!(timer.timer, Timer::On);
        assert_eq!(timer.expires_ms, 450); // 0x2d = 45 ticks at 100 Hz
        assert_eq!((timer.retransmits, timer.probes), (Some(3), Some(0)));
    }

    #[test]
    fn parses_ipv6_words_in_host_order() {
        if !is_le() {
            return;
        }
        // ::1 port 7011 and ::ffff:127.0.0.1 port 80, as /proc/net/tcp6 prints them.
        let line = "   0: 00000000000000000000000001000000:1B63 0000000000000000FFFF00000100007F:0050 01 00000000:00000000 02:000AFC7A 00000000     0        0 9 1 0000000000000000 20 4 0 10 -1";
        let row = parse_line(line, Protocol::Tcp, Family::Inet6, 100).unwrap();
        assert_eq!(row.local, Some("[::1]:7011".parse().unwrap()));
        assert_eq!(row.remote, Some("[::ffff:127.0.0.1]:80".parse().unwrap()));
        assert_eq!(row.timer.unwrap().timer, Timer::KeepAlive);
    }

    #[test]
    fn raw_and_udp_lines() {
        if !is_le() {
            return;
        }
        // raw ICMP socket: the "port" is the protocol number; udp: a queued datagram.
        let raw = "   1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5555 2 0000000000000000 0";
        let row = parse_line(raw, Protocol::Raw, Family::Inet, 100).unwrap();
        assert_eq!(row.local.unwrap().port(), 1);
        assert_eq!(row.state, State::Close);
        assert_eq!(row.sock_type, SockType::Raw);
        let udp = "  100: 00000000:1B6C 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 6666 2 0000000000000000 0";
        let row = parse_line(udp, Protocol::Udp, Family::Inet, 100).unwrap();
        assert_eq!(row.recv_q, Some(0x300));
        assert_eq!(row.sock_type, SockType::Dgram);
    }

    #[test]
    fn malformed_lines_name_the_field() {
        let header = "  sl  local_address rem_address   st\n";
        let cases = [
            ("   0: 0100007F:1B58\n", "rem_address"),
            ("   0: 0100007G:1B58 00000000:0000 0A\n", "local_address"),
            (
                "   0: 0100007F:1B58 00000000:0000 ZZ 0:0 0:0 0 0 0 1\n",
                "st",
            ),
            (
                "   0: 0100007F:1B58 00000000:0000 0A 00000000 00:0 0 0 0 1\n",
                "tx_queue:rx_queue",
            ),
            (
                "   0: 0100007F:1B58 00000000:0000 0A 0:0 00:0 0 x 0 1\n",
                "uid",
            ),
            (
                "   0: 0100007F:1B58 00000000:0000 0A 0:0 00:0 0 0 0\n",
                "inode",
            ),
            (
                "   0: 01007F:1B58 00000000:0000 0A 0:0 00:0 0 0 0 1\n",
                "local_address",
            ),
        ];
        for (line, field) in cases {
            let text = format!("{header}{line}");
            match parse(text.as_bytes(), "net/tcp", Protocol::Tcp, Family::Inet, 100) {
                Err(ParseFail::Line(CollectError::Parse {
                    field: f, line: 2, ..
                })) => {
                    assert_eq!(f, field, "{line}")
                }
                other => panic!("{line}: expected a parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn empty_and_header_only_files_have_no_rows() {
        assert!(parse(&b""[..], "t", Protocol::Tcp, Family::Inet, 100)
            .unwrap()
            .is_empty());
        let header = "  sl  local_address rem_address   st\n";
        assert!(
            parse(header.as_bytes(), "t", Protocol::Tcp, Family::Inet, 100)
                .unwrap()
                .is_empty()
        );
    }
}
