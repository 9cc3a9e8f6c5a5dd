//! The pieces of netstat 2.10's layout: endpoints cut to its columns, names or numbers as
//! its flags say, timers, unix flags, interface and route flags.

use std::net::{IpAddr, Ipv4Addr};

use crate::output::table::escape_text;

/// An address as netstat prints a socket's: numeric, or its host name; `0.0.0.0` stays
/// and `::` is `[::]` when resolving; an IPv4-mapped IPv6 address shows as IPv4.
/// `name` is host_name()'s answer (none with -n).
pub fn host_text(address: &str, numeric: bool, name: Option<&str>) -> String {
    let Ok(ip) = address.parse::<IpAddr>() else {
        return address.to_string();
    };
    let text = match ip {
        IpAddr::V4(v4) if numeric || v4.is_unspecified() => v4.to_string(),
        IpAddr::V6(v6) if numeric => v6.to_string(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::]".to_string(),
        _ => name.map_or_else(|| ip.to_string(), str::to_string),
    };
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => unmap(&text),
        _ => text,
    }
}

/// netstat's fix for mapped addresses: from the last `:` before the first `.`.
fn unmap(text: &str) -> String {
    match text.find('.') {
        Some(dot) => match text[..dot].rfind(':') {
            Some(colon) => text[colon + 1..].to_string(),
            None => text.to_string(),
        },
        None => text.to_string(),
    }
}

/// A port: `*` for 0, else the service name for `proto` (tcp, udp, raw) unless numeric.
/// `name` is service_name()'s (or for raw sockets protocol_name()'s) answer, none
/// with -n.
pub fn port_text(port: i64, name: Option<&str>) -> String {
    match (port, name) {
        (0, _) => "*".into(),
        (_, Some(name)) => name.to_string(),
        (port, None) => port.to_string(),
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `address:port`, shortened to 23 characters without -W: the port keeps up to 18, the
/// address gives way.
pub fn endpoint(address: &str, port: &str, wide: bool) -> String {
    const SHORT: usize = 22;
    if !wide && address.len() + port.len() > SHORT {
        let port = cut(port, SHORT - 4);
        let address = cut(address, SHORT - port.len());
        format!("{address}:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// `PID/Program name`: `-` when no process is known, cut to 19 bytes, never raw control
/// characters.
pub fn program(pid: Option<i64>, command: Option<&str>) -> String {
    match pid {
        Some(pid) => {
            let text = format!("{pid}/{}", command.unwrap_or(""));
            escape_text(cut(&text, 19)).into_owned()
        }
        None => "-".into(),
    }
}

/// The kernel state number netstat prints for raw sockets.
pub fn state_number(state: &str) -> u8 {
    match state {
        "ESTABLISHED" => 1,
        "SYN_SENT" => 2,
        "SYN_RECV" => 3,
        "FIN_WAIT1" => 4,
        "FIN_WAIT2" => 5,
        "TIME_WAIT" => 6,
        "CLOSE" => 7,
        "CLOSE_WAIT" => 8,
        "LAST_ACK" => 9,
        "LISTEN" => 10,
        "CLOSING" => 11,
        other => other
            .strip_prefix("UNKNOWN(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// netstat -o's timer text: `off (0.00/0/0)`, `keepalive (7198.95/0/0)`. UDP and raw
/// sockets print `on1`/`on2` for a running timer and never a retransmit count.
pub fn timer_text(
    proto: &str,
    timer: Option<&str>,
    expires_ms: Option<i64>,
    retransmits: Option<i64>,
    probes: Option<i64>,
) -> String {
    let tcp = proto.starts_with("tcp");
    let (retr, probes) = if tcp {
        (retransmits.unwrap_or(0), probes.unwrap_or(0))
    } else {
        (0, 0)
    };
    let seconds = expires_ms.unwrap_or(0) as f64 / 1000.0;
    match timer.unwrap_or("off") {
        "off" => format!("off (0.00/{retr}/{probes})"),
        name if tcp => format!("{name} ({seconds:.2}/{retr}/{probes})"),
        _ => format!("on1 ({seconds:.2}/{retr}/{probes})"),
    }
}

/// `[ ACC ]`, `[ ]`: the unix flags netstat decodes.
pub fn unix_flags(flags: Option<i64>) -> String {
    const ACCEPTCON: i64 = 1 << 16;
    const WAITDATA: i64 = 1 << 17;
    const NOSPACE: i64 = 1 << 18;
    // sockets.unix_flags is never NULL for a unix socket (it follows the state).
    let flags = flags.unwrap_or(0);
    let mut text = String::from("[ ");
    for (bit, letter) in [(ACCEPTCON, "ACC "), (WAITDATA, "W "), (NOSPACE, "N ")] {
        if flags & bit != 0 {
            text.push_str(letter);
        }
    }
    text.push(']');
    text
}

/// The unix State column: the socket layer's state by netstat's names.
pub fn unix_state(state: &str) -> &'static str {
    match state {
        "LISTEN" => "LISTENING",
        "ESTABLISHED" => "CONNECTED",
        "CLOSE" => "",
        "SYN_SENT" => "CONNECTING",
        "CLOSING" => "DISCONNECTING",
        _ => "UNKNOWN",
    }
}

/// netstat -i's Flg letters from IFF_* bits.
pub fn interface_flags(flags: i64) -> String {
    if flags == 0 {
        return "[NO FLAGS]".into();
    }
    let letters = [
        (0x200, 'A'),  // ALLMULTI
        (0x2, 'B'),    // BROADCAST
        (0x4, 'D'),    // DEBUG
        (0x8, 'L'),    // LOOPBACK
        (0x1000, 'M'), // MULTICAST
        (0x8000, 'd'), // DYNAMIC
        (0x100, 'P'),  // PROMISC
        (0x20, 'N'),   // NOTRAILERS
        (0x80, 'O'),   // NOARP
        (0x10, 'P'),   // POINTOPOINT
        (0x800, 's'),  // SLAVE
        (0x400, 'm'),  // MASTER
        (0x40, 'R'),   // RUNNING
        (0x1, 'U'),    // UP
    ];
    letters
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, letter)| *letter)
        .collect()
}

/// netstat -r's Flags letters from RTF_* bits.
pub fn route_flags(flags: i64) -> String {
    let mut text = String::new();
    if flags & 0x1 != 0 {
        text.push('U');
    }
    if flags & 0x2 != 0 {
        text.push('G');
    }
    if flags & 0x200 != 0 {
        text = "!".into(); // RTF_REJECT replaces what came before
    }
    for (bit, letter) in [
        (0x4, 'H'),        // HOST
        (0x8, 'R'),        // REINSTATE
        (0x10, 'D'),       // DYNAMIC
        (0x20, 'M'),       // MODIFIED
        (0x10000, 'd'),    // DEFAULT
        (0x20000, 'a'),    // ALLONLINK
        (0x40000, 'c'),    // ADDRCONF
        (0x200000, 'o'),   // NONEXTHOP
        (0x400000, 'e'),   // EXPIRES
        (0x1000000, 'c'),  // CACHE
        (0x2000000, 'f'),  // FLOW
        (0x4000000, 'p'),  // POLICY
        (0x80000000, 'l'), // LOCAL
        (0x40, 'u'),       // MTU
        (0x80, 'w'),       // WINDOW
        (0x100, 'i'),      // IRTT
        (0x400, 'n'),      // NOTCACHED
    ] {
        if flags & bit != 0 {
            text.push(letter);
        }
    }
    text
}

/// A route destination: `default` for 0.0.0.0/0, a host name when host bits are set or the
/// route is a host route, else a name from /etc/networks; numeric with -n. Cut to 15.
pub fn route_destination(
    address: &str,
    netmask: &str,
    host_route: bool,
    numeric: bool,
    (host, network): (Option<&str>, Option<&str>),
) -> String {
    let (Ok(ip), Ok(mask)) = (address.parse::<Ipv4Addr>(), netmask.parse::<Ipv4Addr>()) else {
        return cut(address, 15).to_string();
    };
    let text = if numeric {
        ip.to_string()
    } else if ip.is_unspecified() {
        if mask.is_unspecified() {
            "default".into()
        } else {
            "0.0.0.0".into()
        }
    } else if u32::from(ip) & !u32::from(mask) != 0 || host_route {
        host.map_or_else(|| ip.to_string(), str::to_string)
    } else {
        network.map_or_else(|| ip.to_string(), str::to_string)
    };
    cut(&text, 15).to_string()
}

/// A gateway: numeric with -n, `0.0.0.0` for none, else its host name. Cut to 15.
/// `host` is host_name()'s answer (none with -n, none for 0.0.0.0).
pub fn route_gateway(address: &str, host: Option<&str>) -> String {
    cut(host.unwrap_or(address), 15).to_string()
}

/// A user for -e: its name unless numeric or unknown.
/// `name` is user_name()'s answer, none with -n.
pub fn user_text(uid: Option<i64>, name: Option<&str>) -> String {
    match (uid, name) {
        (None, _) => "-".into(),
        (_, Some(name)) => name.to_string(),
        (Some(uid), None) => uid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_shorten_like_netstat() {
        assert_eq!(endpoint("127.0.0.1", "8080", false), "127.0.0.1:8080");
        // 39 + 5 > 22: the address keeps 22 - 5 = 17 bytes.
        let v6 = "2001:db8:1234:5678:9abc:def0:1234:5678";
        assert_eq!(endpoint(v6, "55555", false), "2001:db8:1234:567:55555");
        assert_eq!(endpoint(v6, "55555", true), format!("{v6}:55555"));
        assert_eq!(
            endpoint("a", "a-very-long-service-name-indeed", false),
            "a:a-very-long-servic"
        );
    }

    #[test]
    fn names_for_numbers() {
        let localhost = Some("localhost");
        assert_eq!(host_text("127.0.0.1", false, localhost), "localhost");
        assert_eq!(host_text("127.0.0.1", false, None), "127.0.0.1");
        assert_eq!(host_text("127.0.0.1", true, None), "127.0.0.1");
        assert_eq!(host_text("0.0.0.0", false, None), "0.0.0.0");
        assert_eq!(host_text("::", false, None), "[::]");
        assert_eq!(host_text("::", true, None), "::");
        assert_eq!(host_text("::ffff:10.0.0.1", true, None), "10.0.0.1");
        assert_eq!(port_text(80, Some("http")), "http");
        assert_eq!(port_text(80, None), "80");
        assert_eq!(port_text(0, Some("reserved")), "*");
        assert_eq!(user_text(Some(0), Some("root")), "root");
        assert_eq!(user_text(Some(4242), None), "4242");
        assert_eq!(user_text(None, None), "-");
        let mask = "255.255.255.0";
        let names = (Some("a-host"), Some("loopnet"));
        assert_eq!(
            route_destination("127.0.0.0", mask, false, false, names),
            "loopnet"
        );
        assert_eq!(
            route_destination("127.0.0.5", mask, false, false, names),
            "a-host"
        );
        assert_eq!(
            route_destination("0.0.0.0", "0.0.0.0", false, false, names),
            "default"
        );
        assert_eq!(
            route_destination("127.0.0.0", mask, false, true, (None, None)),
            "127.0.0.0"
        );
        assert_eq!(route_gateway("10.9.0.254", Some("gw.test")), "gw.test");
        assert_eq!(route_gateway("0.0.0.0", None), "0.0.0.0");
    }

    #[test]
    fn owners_flags_and_timers() {
        assert_eq!(program(None, None), "-");
        assert_eq!(
            program(Some(12345), Some("a-rather-long-program")),
            "12345/a-rather-long"
        );
        assert_eq!(program(Some(7), Some("\x1b[2J")), "7/\\x1b[2J");
        assert_eq!(unix_flags(Some(1 << 16)), "[ ACC ]");
        assert_eq!(unix_flags(Some(0)), "[ ]");
        assert_eq!(
            timer_text("tcp", Some("keepalive"), Some(7198950), Some(0), Some(2)),
            "keepalive (7198.95/0/2)"
        );
        assert_eq!(
            timer_text("tcp", Some("on"), Some(1500), Some(3), None),
            "on (1.50/3/0)"
        );
        assert_eq!(
            timer_text("udp", Some("off"), None, Some(3), Some(1)),
            "off (0.00/0/0)"
        );
        assert_eq!(interface_flags(0x1043), "BMRU");
        assert_eq!(interface_flags(0x49), "LRU");
        assert_eq!(route_flags(0x3), "UG");
        assert_eq!(state_number("CLOSE"), 7);
    }

    #[test]
    fn route_names() {
        let none = (None, None);
        let link_local = (None, Some("link-local"));
        assert_eq!(
            route_destination("0.0.0.0", "0.0.0.0", false, false, none),
            "default"
        );
        assert_eq!(
            route_destination("0.0.0.0", "0.0.0.0", false, true, none),
            "0.0.0.0"
        );
        assert_eq!(
            route_destination("169.254.0.0", "255.255.0.0", false, false, link_local),
            "link-local"
        );
        assert_eq!(
            route_destination("192.0.2.0", "255.255.255.0", false, false, none),
            "192.0.2.0"
        );
        assert_eq!(route_gateway("0.0.0.0", None), "0.0.0.0");
    }
}
