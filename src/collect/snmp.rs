//! Protocol counters: `/proc/net/snmp` and `/proc/net/netstat` (pairs of lines: a
//! `Proto: names...` header, then `Proto: values...`) and `/proc/net/snmp6` (`name value`
//! lines), in file order, as `netstat -s` reads them.

use std::io::BufRead;

use super::{parse_optional, CollectError, ParseFail, Root};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// `snmp`, `netstat` or `snmp6`: the file under /proc/net.
    pub file: &'static str,
    /// The section: Ip, Icmp, Tcp, TcpExt, ...; for snmp6 the name's prefix up to its
    /// `6` (Ip6, Icmp6, Udp6, UdpLite6).
    pub protocol: String,
    /// The counter's name within its section (InReceives, ...).
    pub name: String,
    /// Signed: Tcp MaxConn is -1.
    pub value: i64,
}

pub const FILES: [&str; 3] = ["snmp", "netstat", "snmp6"];

/// Every counter of the three files; a missing file gives none.
pub fn read(root: &Root) -> Result<Vec<Counter>, CollectError> {
    let mut counters = Vec::new();
    for file in FILES {
        let rel = format!("net/{file}");
        counters.extend(if file == "snmp6" {
            parse_optional(root, &rel, parse_snmp6)?
        } else {
            parse_optional(root, &rel, |reader| parse_pairs(file, reader))?
        });
    }
    Ok(counters)
}

fn value(file: &'static str, line: usize, text: &str) -> Result<i64, ParseFail> {
    text.parse::<i64>()
        .or_else(|_| text.parse::<u64>().map(|v| v as i64))
        .map_err(|e| ParseFail::line(file, line, "value", format!("{text:?}: {e}")))
}

/// Header/value line pairs of `/proc/net/snmp` or `/proc/net/netstat`.
pub fn parse_pairs(file: &'static str, reader: impl BufRead) -> Result<Vec<Counter>, ParseFail> {
    let mut counters = Vec::new();
    let mut lines = super::text_lines(reader).enumerate();
    while let Some((index, header)) = lines.next() {
        let header = header.map_err(ParseFail::Io)?;
        if header.trim().is_empty() {
            continue;
        }
        let Some((index2, values)) = lines.next() else {
            return Err(ParseFail::line(
                file,
                index + 1,
                "values",
                "header without values".into(),
            ));
        };
        let values = values.map_err(ParseFail::Io)?;
        let (protocol, names) = header
            .split_once(':')
            .ok_or_else(|| ParseFail::line(file, index + 1, "header", "no ':'".into()))?;
        let (protocol2, numbers) = values
            .split_once(':')
            .ok_or_else(|| ParseFail::line(file, index2 + 1, "values", "no ':'".into()))?;
        if protocol != protocol2 {
            return Err(ParseFail::line(
                file,
                index2 + 1,
                "values",
                format!("{protocol2:?} values after a {protocol:?} header"),
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let numbers: Vec<&str> = numbers.split_whitespace().collect();
        if names.len() != numbers.len() {
            return Err(ParseFail::line(
                file,
                index2 + 1,
                "values",
                format!("{} values for {} names", numbers.len(), names.len()),
            ));
        }
        for (name, number) in names.iter().zip(numbers) {
            counters.push(Counter {
                file,
                protocol: protocol.to_string(),
                name: name.to_string(),
                value: value(file, index2 + 1, number)?,
            });
        }
    }
    Ok(counters)
}

/// `Ip6InReceives 2` lines of `/proc/net/snmp6`.
pub fn parse_snmp6(reader: impl BufRead) -> Result<Vec<Counter>, ParseFail> {
    let mut counters = Vec::new();
    for (index, line) in super::text_lines(reader).enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        let mut fields = line.split_whitespace();
        let (Some(key), Some(number)) = (fields.next(), fields.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseFail::line(
                "snmp6",
                index + 1,
                "line",
                "not `name value`".into(),
            ));
        };
        let split = key.find('6').map_or(key.len(), |i| i + 1);
        counters.push(Counter {
            file: "snmp6",
            protocol: key[..split].to_string(),
            name: key[split..].to_string(),
            value: value("snmp6", index + 1, number)?,
        });
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_file_order_and_signs() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n";
        let found = parse_pairs("snmp", text.as_bytes()).unwrap();
        let got: Vec<(&str, &str, i64)> = found
            .iter()
            .map(|c| (c.protocol.as_str(), c.name.as_str(), c.value))
            .collect();
        assert_eq!(
            got,
            [
                ("Ip", "Forwarding", 2),
                ("Ip", "DefaultTTL", 64),
                ("Tcp", "RtoAlgorithm", 1),
                ("Tcp", "MaxConn", -1)
            ]
        );
        assert!(parse_pairs("snmp", "Ip: A B\nIp: 1\n".as_bytes()).is_err());
        assert!(parse_pairs("snmp", "Ip: A\nTcp: 1\n".as_bytes()).is_err());
        assert!(parse_pairs("snmp", "Ip: A\n".as_bytes()).is_err());
        assert!(parse_pairs("snmp", "Ip: A\nIp: x\n".as_bytes()).is_err());
    }

    #[test]
    fn snmp6_names_split_at_the_six() {
        let text = "Ip6InReceives                   \t2\nIcmp6InMsgs 5\nUdpLite6InErrors 0\n";
        let found = parse_snmp6(text.as_bytes()).unwrap();
        assert_eq!(
            (
                found[0].protocol.as_str(),
                found[0].name.as_str(),
                found[0].value
            ),
            ("Ip6", "InReceives", 2)
        );
        assert_eq!(found[1].protocol, "Icmp6");
        assert_eq!(
            (found[2].protocol.as_str(), found[2].name.as_str()),
            ("UdpLite6", "InErrors")
        );
        assert!(parse_snmp6("Ip6InReceives\n".as_bytes()).is_err());
    }
}
