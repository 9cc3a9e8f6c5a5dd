//! `netstat -s`: counters from the `protocol_stats` view printed as net-tools netstat
//! 2.10 prints them. Its sentence tables are looked up by binary search, and some are
//! not sorted, so some counters miss and print as `Name: value` (only when non-zero):
//! [`lookup`] searches the same way so the same counters miss.

use std::io::Write;

use super::sentences::{Print::*, *};
use crate::collect::snmp::Counter;

/// Which sections `-s` shows: netstat's `-w` (Ip, Icmp), `-t`, `-u`; all without any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    pub raw: bool,
    pub tcp: bool,
    pub udp: bool,
    pub sctp: bool,
}

fn table_v4(title: &str, s: Sections) -> Option<(&'static [Entry], bool)> {
    Some(match title {
        "Ip" => (IPTAB, s.raw),
        "Icmp" => (ICMPTAB, s.raw),
        "Tcp" => (TCPTAB, s.tcp),
        "Udp" => (UDPTAB, s.udp),
        "Sctp" => (SCTPTAB, s.sctp),
        "TcpExt" => (TCPEXTTAB, s.tcp),
        _ => return None,
    })
}

fn table_v6(title: &str, s: Sections) -> Option<(&'static [Entry], bool)> {
    Some(match title {
        "Ip6" => (IP6TAB, s.raw),
        "Icmp6" => (ICMP6TAB, s.raw),
        "Udp6" => (UDP6TAB, s.udp),
        "Tcp6" => (TCPTAB, s.tcp),
        _ => return None,
    })
}

/// glibc's `bsearch` over a table in its declared order: on an unsorted table it misses
/// exactly where netstat's does.
fn lookup(table: &'static [Entry], key: &str) -> Option<&'static Entry> {
    let (mut low, mut high) = (0, table.len());
    while low < high {
        let middle = (low + high) / 2;
        match key.as_bytes().cmp(table[middle].0.as_bytes()) {
            std::cmp::Ordering::Less => high = middle,
            std::cmp::Ordering::Greater => low = middle + 1,
            std::cmp::Ordering::Equal => return Some(&table[middle]),
        }
    }
    None
}

/// Where the printer is: plain lines, or inside an ICMP histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Plain,
    In,
    Out,
}

impl Place {
    fn indent(self) -> usize {
        match self {
            Place::Plain => 4,
            Place::In | Place::Out => 8,
        }
    }
}

struct Printer<'a> {
    out: &'a mut (dyn Write + Send),
    place: Place,
}

impl Printer<'_> {
    /// A section header; `None` when the section is one netstat knows but was not asked for.
    fn section(
        &mut self,
        title: &str,
        known: Option<(&'static [Entry], bool)>,
    ) -> std::io::Result<(Option<&'static [Entry]>, bool)> {
        match known {
            Some((table, shown)) => {
                if shown {
                    writeln!(self.out, "{title}:")?;
                }
                self.place = Place::Plain;
                Ok((Some(table), shown))
            }
            // An unknown section is always shown, its counters as `Name: value`; the
            // indentation carries over from the section before, as in netstat.
            None => {
                writeln!(self.out, "{title}:")?;
                Ok((None, true))
            }
        }
    }

    fn value(
        &mut self,
        table: Option<&'static [Entry]>,
        key: &str,
        value: u64,
    ) -> std::io::Result<()> {
        let Some(&(_, sentence, kind)) = table.and_then(|t| lookup(t, key)) else {
            if value != 0 {
                writeln!(self.out, "{:w$}{key}: {value}", "", w = self.place.indent())?;
            }
            return Ok(());
        };
        if kind == Static || sentence.is_empty() {
            return Ok(());
        }
        let place = match kind {
            InHist => Place::In,
            OutHist => Place::Out,
            _ => Place::Plain,
        };
        if place != Place::Plain && self.place != place {
            let title = if place == Place::In {
                "ICMP input histogram:"
            } else {
                "ICMP output histogram:"
            };
            writeln!(self.out, "{:w$}{title}", "", w = self.place.indent())?;
        }
        let shown = match kind {
            Number => true,
            _ => value != 0,
        };
        if shown {
            let text = sentence.replacen("%llu", &value.to_string(), 1);
            writeln!(self.out, "{:w$}{text}", "", w = place.indent())?;
        }
        self.place = place;
        Ok(())
    }
}

/// Which table a section's counters are looked up in, and whether it is shown.
type Tables = fn(&str, Sections) -> Option<(&'static [Entry], bool)>;

impl Printer<'_> {
    /// Prints `counters`, a new section wherever the file or protocol changes. snmp6 keys
    /// its tables by the full name (`Ip6InReceives`), the others by the name alone.
    fn counters<'c>(
        &mut self,
        counters: impl Iterator<Item = &'c Counter>,
        sections: Sections,
        tables: Tables,
    ) -> std::io::Result<()> {
        let mut current: Option<(&str, &str)> = None;
        let mut table = (None, false);
        for counter in counters {
            let section = (counter.file, counter.protocol.as_str());
            if current != Some(section) {
                current = Some(section);
                table = self.section(&counter.protocol, tables(&counter.protocol, sections))?;
            }
            if table.1 {
                let key = if counter.file == "snmp6" {
                    format!("{}{}", counter.protocol, counter.name)
                } else {
                    counter.name.clone()
                };
                self.value(table.0, &key, counter.value as u64)?;
            }
        }
        Ok(())
    }
}

/// `netstat -s` for IPv4: /proc/net/snmp then /proc/net/netstat, section by section.
pub fn print_v4(
    counters: &[Counter],
    sections: Sections,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let mut printer = Printer {
        out,
        place: Place::Plain,
    };
    let v4 = counters
        .iter()
        .filter(|c| c.file == "snmp" || c.file == "netstat");
    printer.counters(v4, sections, table_v4)
}

/// `netstat -s -6`: /proc/net/snmp6, then the Tcp section of /proc/net/snmp.
pub fn print_v6(
    counters: &[Counter],
    sections: Sections,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let mut printer = Printer {
        out,
        place: Place::Plain,
    };
    let v6 = counters.iter().filter(|c| c.file == "snmp6");
    printer.counters(v6, sections, table_v6)?;
    let tcp = counters
        .iter()
        .filter(|c| c.file == "snmp" && c.protocol.starts_with("Tcp"));
    printer.counters(tcp, sections, table_v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(file: &'static str, protocol: &str, pairs: &[(&str, i64)]) -> Vec<Counter> {
        pairs
            .iter()
            .map(|(name, value)| Counter {
                file,
                protocol: protocol.into(),
                name: name.to_string(),
                value: *value,
            })
            .collect()
    }

    const ALL: Sections = Sections {
        raw: true,
        tcp: true,
        udp: true,
        sctp: true,
    };

    /// Expected text written by hand from netstat 2.10's rules (and checked against its
    /// output on this machine's counters).
    #[test]
    fn sentences_histograms_and_misses() {
        let mut rows = counters(
            "snmp",
            "Ip",
            &[
                ("Forwarding", 2),
                ("DefaultTTL", 64),
                ("InReceives", 11),
                ("FragOKs", 0),
            ],
        );
        rows.extend(counters(
            "snmp",
            "Icmp",
            &[
                ("InMsgs", 2),
                ("InDestUnreachs", 2),
                ("OutMsgs", 0),
                ("OutDestUnreachs", 0),
            ],
        ));
        rows.extend(counters("snmp", "IcmpMsg", &[("InType3", 2)]));
        rows.extend(counters(
            "snmp",
            "Tcp",
            &[("MaxConn", -1), ("ActiveOpens", 62)],
        ));
        rows.extend(counters(
            "netstat",
            "TcpExt",
            &[("TW", 18), ("TCPTimeouts", 3), ("TCPDSACKOldSent", 0)],
        ));
        let mut out = Vec::new();
        print_v4(&rows, ALL, &mut out).unwrap();
        let expected = "Ip:\n    Forwarding: 2\n    11 total packets received\n\
Icmp:\n    2 ICMP messages received\n    ICMP input histogram:\n        destination unreachable: 2\n    0 ICMP messages sent\n    ICMP output histogram:\n\
IcmpMsg:\n        InType3: 2\n\
Tcp:\n    62 active connection openings\n\
TcpExt:\n    18 TCP sockets finished time wait in fast timer\n    TCPTimeouts: 3\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn unasked_sections_are_silent_but_unknown_ones_show() {
        let mut rows = counters("snmp", "Ip", &[("InReceives", 11)]);
        rows.extend(counters("snmp", "Tcp", &[("ActiveOpens", 1)]));
        rows.extend(counters("snmp", "UdpLite", &[("InDatagrams", 0)]));
        let mut out = Vec::new();
        let tcp = Sections {
            raw: false,
            tcp: true,
            udp: false,
            sctp: false,
        };
        print_v4(&rows, tcp, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Tcp:\n    1 active connection openings\nUdpLite:\n"
        );
    }
}
