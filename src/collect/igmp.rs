//! Multicast group memberships: `/proc/net/igmp` (a device line, then one tab-indented
//! line per group) and `/proc/net/igmp6` (one line per group), as `netstat -g` reads them.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{parse_optional, CollectError, ParseFail, Root};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub interface: String,
    pub index: u32,
    pub group: IpAddr,
    /// Sockets (users) joined to the group on this interface.
    pub users: u32,
}

pub fn read(root: &Root) -> Result<Vec<Membership>, CollectError> {
    let mut groups = parse_optional(root, "net/igmp", parse_igmp)?;
    groups.extend(parse_optional(root, "net/igmp6", parse_igmp6)?);
    Ok(groups)
}

/// `Idx\tDevice : Count Querier ...` lines, each followed by `\t\t\t\tGROUP USERS ...`.
pub fn parse_igmp(reader: impl BufRead) -> Result<Vec<Membership>, ParseFail> {
    const FILE: &str = "/proc/net/igmp";
    let mut groups = Vec::new();
    let mut device: Option<(u32, String)> = None;
    for (index, line) in super::text_lines(reader).enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        let n = index + 1;
        if index == 0 || line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        if !line.starts_with('\t') {
            let idx = fields.next().unwrap_or_default();
            let idx = idx
                .parse()
                .map_err(|e| ParseFail::line(FILE, n, "Idx", format!("{idx:?}: {e}")))?;
            let name = fields.next().unwrap_or_default().trim_end_matches(':');
            device = Some((idx, name.to_string()));
            continue;
        }
        let Some((idx, name)) = &device else {
            return Err(ParseFail::line(
                FILE,
                n,
                "Group",
                "a group before any device".into(),
            ));
        };
        let (Some(group), Some(users)) = (fields.next(), fields.next()) else {
            return Err(ParseFail::line(
                FILE,
                n,
                "Group",
                "not `GROUP USERS`".into(),
            ));
        };
        let group = u32::from_str_radix(group, 16)
            .map_err(|e| ParseFail::line(FILE, n, "Group", format!("{group:?}: {e}")))?;
        groups.push(Membership {
            interface: name.clone(),
            index: *idx,
            group: IpAddr::V4(Ipv4Addr::from(u32::from_be(group))),
            users: users
                .parse()
                .map_err(|e| ParseFail::line(FILE, n, "Users", format!("{users:?}: {e}")))?,
        });
    }
    Ok(groups)
}

/// `idx device group(hex) users flags timer`.
pub fn parse_igmp6(reader: impl BufRead) -> Result<Vec<Membership>, ParseFail> {
    const FILE: &str = "/proc/net/igmp6";
    let mut groups = Vec::new();
    for (index, line) in super::text_lines(reader).enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        let n = index + 1;
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 4 {
            return Err(ParseFail::line(
                FILE,
                n,
                "line",
                format!("{} fields of 4", f.len()),
            ));
        }
        groups.push(Membership {
            index: f[0]
                .parse()
                .map_err(|e| ParseFail::line(FILE, n, "index", format!("{:?}: {e}", f[0])))?,
            interface: f[1].to_string(),
            group: IpAddr::V6(Ipv6Addr::from(u128::from_str_radix(f[2], 16).map_err(
                |e| ParseFail::line(FILE, n, "group", format!("{:?}: {e}", f[2])),
            )?)),
            users: f[3]
                .parse()
                .map_err(|e| ParseFail::line(FILE, n, "users", format!("{:?}: {e}", f[3])))?,
        });
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn igmp_groups_belong_to_the_device_above() {
        let text = "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n\
1\tlo        :     1      V3\n\
\t\t\t\t010000E0     1 0:00000000\t\t0\n\
4\teth0      :     2      V3\n\
\t\t\t\tFB0000E0     2 0:00000000\t\t0\n\
\t\t\t\t010000E0     1 0:00000000\t\t0\n";
        let found = parse_igmp(text.as_bytes()).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(
            (found[0].interface.as_str(), found[0].group.to_string()),
            ("lo", "224.0.0.1".into())
        );
        assert_eq!(
            (
                found[1].interface.as_str(),
                found[1].group.to_string(),
                found[1].users
            ),
            ("eth0", "224.0.0.251".into(), 2)
        );
        assert!(parse_igmp("h\n\t\t010000E0 1\n".as_bytes()).is_err());
    }

    #[test]
    fn igmp6_lines() {
        let text = "4    eth0            ff0200000000000000000001ff000002     1 00000004 0\n";
        let found = parse_igmp6(text.as_bytes()).unwrap();
        assert_eq!(found[0].group.to_string(), "ff02::1:ff00:2");
        assert_eq!((found[0].index, found[0].users), (4, 1));
        assert!(parse_igmp6("4 eth0 zz 1\n".as_bytes()).is_err());
    }
}
