//! Routing tables: `/proc/net/route` (IPv4) and `/proc/net/ipv6_route`, as `netstat -r`
//! and `route -n` read them.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{parse_optional, CollectError, ParseFail, Root};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: &'static str,
    pub interface: String,
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub gateway: IpAddr,
    /// `RTF_*` bits.
    pub flags: u32,
    pub metric: u32,
    pub ref_count: i64,
    pub use_count: u64,
    /// IPv4 only: MTU (netstat's MSS column), window and initial RTT.
    pub mtu: Option<u32>,
    pub window: Option<u32>,
    pub irtt: Option<u32>,
}

/// Both tables, IPv4 first; a missing file (no IPv6) is no rows.
pub fn read(root: &Root) -> Result<Vec<Route>, CollectError> {
    let mut routes = parse_optional(root, "net/route", parse_v4)?;
    routes.extend(parse_optional(root, "net/ipv6_route", parse_v6)?);
    Ok(routes)
}

fn hex32(file: &str, line: usize, field: &'static str, text: &str) -> Result<u32, ParseFail> {
    u32::from_str_radix(text, 16)
        .map_err(|e| ParseFail::line(file, line, field, format!("{text:?}: {e}")))
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT`, addresses
/// as the kernel's in-memory (network order) u32 printed in hex.
pub fn parse_v4(reader: impl BufRead) -> Result<Vec<Route>, ParseFail> {
    const FILE: &str = "/proc/net/route";
    let mut routes = Vec::new();
    for (index, line) in super::text_lines(reader).enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        let n = index + 1;
        if index == 0 || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 11 {
            return Err(ParseFail::line(
                FILE,
                n,
                "line",
                format!("{} fields of 11", f.len()),
            ));
        }
        let addr =
            |field, text| hex32(FILE, n, field, text).map(|v| Ipv4Addr::from(u32::from_be(v)));
        let dec = |field: &'static str, text: &str| {
            text.parse::<i64>()
                .map_err(|e| ParseFail::line(FILE, n, field, format!("{text:?}: {e}")))
        };
        let mask = addr("Mask", f[7])?;
        routes.push(Route {
            family: "inet",
            interface: f[0].to_string(),
            destination: IpAddr::V4(addr("Destination", f[1])?),
            prefix_len: u32::from(mask).leading_ones() as u8,
            gateway: IpAddr::V4(addr("Gateway", f[2])?),
            flags: hex32(FILE, n, "Flags", f[3])?,
            ref_count: dec("RefCnt", f[4])?,
            use_count: dec("Use", f[5])? as u64,
            metric: dec("Metric", f[6])? as u32,
            mtu: Some(dec("MTU", f[8])? as u32),
            window: Some(dec("Window", f[9])? as u32),
            irtt: Some(dec("IRTT", f[10])? as u32),
        });
    }
    Ok(routes)
}

/// `dest dest_len src src_len nexthop metric refcnt use flags iface`, all hex.
pub fn parse_v6(reader: impl BufRead) -> Result<Vec<Route>, ParseFail> {
    const FILE: &str = "/proc/net/ipv6_route";
    let mut routes = Vec::new();
    for (index, line) in super::text_lines(reader).enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        let n = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 10 {
            return Err(ParseFail::line(
                FILE,
                n,
                "line",
                format!("{} fields of 10", f.len()),
            ));
        }
        let addr = |field: &'static str, text: &str| {
            u128::from_str_radix(text, 16)
                .map(Ipv6Addr::from)
                .map_err(|e| ParseFail::line(FILE, n, field, format!("{text:?}: {e}")))
        };
        routes.push(Route {
            family: "inet6",
            interface: f[9].to_string(),
            destination: IpAddr::V6(addr("dest", f[0])?),
            prefix_len: hex32(FILE, n, "dest_len", f[1])?.min(128) as u8,
            gateway: IpAddr::V6(addr("nexthop", f[4])?),
            metric: hex32(FILE, n, "metric", f[5])?,
            ref_count: i64::from(hex32(FILE, n, "refcnt", f[6])?),
            use_count: u64::from(hex32(FILE, n, "use", f[7])?),
            flags: hex32(FILE, n, "flags", f[8])?,
            mtu: None,
            window: None,
            irtt: None,
        });
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_routes_in_network_order() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t5\t100\t00FFFFFF\t1500\t0\t0\n";
        let routes = parse_v4(text.as_bytes()).unwrap();
        assert_eq!(routes[0].gateway, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(routes[0].prefix_len, 0);
        assert_eq!(
            routes[1].destination,
            "192.0.2.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            (routes[1].prefix_len, routes[1].metric, routes[1].use_count),
            (24, 100, 5)
        );
        assert_eq!(routes[1].mtu, Some(1500));
        assert!(parse_v4("h\neth0 zz 0 0 0 0 0 0 0 0 0\n".as_bytes()).is_err());
    }

    #[test]
    fn ipv6_routes() {
        let text = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n";
        let routes = parse_v6(text.as_bytes()).unwrap();
        assert_eq!(routes[0].destination, "fe80::".parse::<IpAddr>().unwrap());
        assert_eq!(
            (routes[0].prefix_len, routes[0].metric, routes[0].ref_count),
            (64, 256, 2)
        );
        assert_eq!(routes[0].interface, "eth0");
    }
}
