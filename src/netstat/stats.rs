//! `netstat -s`: counters from the `protocol_stats` view printed as net-tools netstat
//! 2.10 prints them. Its sentence tables are looked up by binary search, and some are
//! not sorted, so some counters miss and print as `Name: value` (only when non-zero):
//! [`lookup`] searches the same way so the same counters miss.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Always printed.
    Number,
    /// Printed when non-zero.
    OptNumber,
    /// Configuration, never printed.
    Static,
    /// A line of the ICMP input / output histogram.
    InHist,
    OutHist,
}
use Kind::*;

type Entry = (&'static str, &'static str, Kind);

const IPTAB: &[Entry] = &[
    ("DefaultTTL", "Default TTL is %llu", Static),
    ("Forwarding", "Forwarding is %s", Static),
    ("ForwDatagrams", "%llu forwarded", Number),
    ("FragCreates", "%llu fragments created", OptNumber),
    (
        "FragFails",
        "%llu outgoing packets failed fragmentation",
        OptNumber,
    ),
    ("FragOKs", "%llu outgoing packets fragmented ok", OptNumber),
    ("InAddrErrors", "%llu with invalid addresses", OptNumber),
    ("InDelivers", "%llu incoming packets delivered", Number),
    ("InDiscards", "%llu incoming packets discarded", Number),
    ("InHdrErrors", "%llu with invalid headers", OptNumber),
    ("InReceives", "%llu total packets received", Number),
    ("InUnknownProtos", "%llu with unknown protocol", OptNumber),
    ("OutDiscards", "%llu outgoing packets dropped", OptNumber),
    (
        "OutNoRoutes",
        "%llu dropped because of missing route",
        OptNumber,
    ),
    ("OutRequests", "%llu requests sent out", Number),
    ("ReasmFails", "%llu packet reassemblies failed", OptNumber),
    ("ReasmOKs", "%llu packets reassembled ok", OptNumber),
    ("ReasmReqds", "%llu reassemblies required", OptNumber),
    (
        "ReasmTimeout",
        "%llu fragments dropped after timeout",
        OptNumber,
    ),
];
const IP6TAB: &[Entry] = &[
    ("Ip6FragCreates", "%llu fragments created", OptNumber),
    (
        "Ip6FragFails",
        "%llu outgoing packets failed fragmentation",
        OptNumber,
    ),
    (
        "Ip6FragOKs",
        "%llu outgoing packets fragmented ok",
        OptNumber,
    ),
    ("Ip6InAddrErrors", "%llu with invalid addresses", OptNumber),
    ("Ip6InDelivers", "%llu incoming packets delivered", Number),
    ("Ip6InDiscards", "%llu incoming packets discarded", Number),
    ("Ip6InHdrErrors", "%llu with invalid headers", OptNumber),
    (
        "Ip6InMcastPkts",
        "%llu incoming multicast packets",
        OptNumber,
    ),
    (
        "Ip6InNoRoutes",
        "%llu incoming packets with no route",
        OptNumber,
    ),
    ("Ip6InReceives", "%llu total packets received", Number),
    ("Ip6InTooBigErrors", "%llu with packets too big", OptNumber),
    (
        "Ip6InTruncatedPkts",
        "%llu with truncated packets",
        OptNumber,
    ),
    (
        "Ip6InUnknownProtos",
        "%llu with unknown protocol",
        OptNumber,
    ),
    ("Ip6OutDiscards", "%llu outgoing packets dropped", OptNumber),
    ("Ip6OutForwDatagrams", "%llu forwarded", Number),
    (
        "Ip6OutMcastPkts",
        "%llu outgoing multicast packets",
        OptNumber,
    ),
    (
        "Ip6OutNoRoutes",
        "%llu dropped because of missing route",
        OptNumber,
    ),
    ("Ip6OutRequests", "%llu requests sent out", Number),
    (
        "Ip6ReasmFails",
        "%llu packet reassemblies failed",
        OptNumber,
    ),
    ("Ip6ReasmOKs", "%llu packets reassembled ok", OptNumber),
    ("Ip6ReasmReqds", "%llu reassemblies required", OptNumber),
    (
        "Ip6ReasmTimeout",
        "%llu fragments dropped after timeout",
        OptNumber,
    ),
];
const ICMPTAB: &[Entry] = &[
    ("InAddrMaskReps", "address mask replies: %llu", InHist),
    ("InAddrMasks", "address mask request: %llu", InHist),
    ("InDestUnreachs", "destination unreachable: %llu", InHist),
    ("InEchoReps", "echo replies: %llu", InHist),
    ("InEchos", "echo requests: %llu", InHist),
    ("InErrors", "%llu input ICMP message failed", Number),
    ("InMsgs", "%llu ICMP messages received", Number),
    ("InParmProbs", "wrong parameters: %llu", InHist),
    ("InRedirects", "redirects: %llu", InHist),
    ("InSrcQuenchs", "source quenches: %llu", InHist),
    ("InTimeExcds", "timeout in transit: %llu", InHist),
    ("InTimestampReps", "timestamp reply: %llu", InHist),
    ("InTimestamps", "timestamp request: %llu", InHist),
    ("OutAddrMaskReps", "address mask replies: %llu", OutHist),
    ("OutAddrMasks", "address mask requests: %llu", OutHist),
    ("OutDestUnreachs", "destination unreachable: %llu", OutHist),
    ("OutEchoReps", "echo replies: %llu", OutHist),
    ("OutEchos", "echo requests: %llu", OutHist),
    ("OutErrors", "%llu ICMP messages failed", Number),
    ("OutMsgs", "%llu ICMP messages sent", Number),
    ("OutParmProbs", "wrong parameters: %llu", OutHist),
    ("OutRedirects", "redirect: %llu", OutHist),
    ("OutSrcQuenchs", "source quench: %llu", OutHist),
    ("OutTimeExcds", "time exceeded: %llu", OutHist),
    ("OutTimestampReps", "timestamp replies: %llu", OutHist),
    ("OutTimestamps", "timestamp requests: %llu", OutHist),
];
const ICMP6TAB: &[Entry] = &[
    (
        "Icmp6InDestUnreachs",
        "destination unreachable: %llu",
        InHist,
    ),
    ("Icmp6InEchoReplies", "echo replies: %llu", InHist),
    ("Icmp6InEchos", "echo requests: %llu", InHist),
    ("Icmp6InErrors", "%llu input ICMP message failed", Number),
    (
        "Icmp6InGroupMembQueries",
        "group member queries: %llu",
        InHist,
    ),
    (
        "Icmp6InGroupMembReductions",
        "group member reductions: %llu",
        InHist,
    ),
    (
        "Icmp6InGroupMembResponses",
        "group member responses: %llu",
        InHist,
    ),
    ("Icmp6InMsgs", "%llu ICMP messages received", Number),
    (
        "Icmp6InNeighborAdvertisements",
        "neighbour advertisement: %llu",
        InHist,
    ),
    (
        "Icmp6InNeighborSolicits",
        "neighbour solicits: %llu",
        InHist,
    ),
    ("Icmp6InParmProblems", "parameter problem: %llu", InHist),
    ("Icmp6InPktTooBigs", "packets too big: %llu", InHist),
    ("Icmp6InRedirects", "redirects: %llu", InHist),
    (
        "Icmp6InRouterAdvertisements",
        "router advertisement: %llu",
        InHist,
    ),
    ("Icmp6InRouterSolicits", "router solicits: %llu", InHist),
    (
        "Icmp6InTimeExcds",
        "received ICMPv6 time exceeded: %llu",
        InHist,
    ),
    (
        "Icmp6OutDestUnreachs",
        "destination unreachable: %llu",
        OutHist,
    ),
    ("Icmp6OutEchoReplies", "echo replies: %llu", OutHist),
    ("Icmp6OutEchos", "echo requests: %llu", OutHist),
    (
        "Icmp6OutGroupMembQueries",
        "group member queries: %llu",
        OutHist,
    ),
    (
        "Icmp6OutGroupMembReductions",
        "group member reductions: %llu",
        OutHist,
    ),
    (
        "Icmp6OutGroupMembResponses",
        "group member responses: %llu",
        OutHist,
    ),
    ("Icmp6OutMsgs", "%llu ICMP messages sent", Number),
    (
        "Icmp6OutNeighborAdvertisements",
        "neighbor advertisements: %llu",
        OutHist,
    ),
    (
        "Icmp6OutNeighborSolicits",
        "neighbor solicits: %llu",
        OutHist,
    ),
    ("Icmp6OutParmProblems", "parameter problem: %llu", OutHist),
    ("Icmp6OutPktTooBigs", "packets too big: %llu", OutHist),
    ("Icmp6OutRedirects", "redirects: %llu", OutHist),
    (
        "Icmp6OutRouterAdvertisements ",
        "router advertisement: %llu",
        OutHist,
    ),
    ("Icmp6OutRouterSolicits", "router solicits: %llu", OutHist),
    (
        "Icmp6OutTimeExcds",
        "sent ICMPv6 time exceeded: %llu",
        OutHist,
    ),
];
const TCPTAB: &[Entry] = &[
    ("ActiveOpens", "%llu active connection openings", Number),
    ("AttemptFails", "%llu failed connection attempts", Number),
    ("CurrEstab", "%llu connections established", Number),
    ("EstabResets", "%llu connection resets received", Number),
    ("InErrs", "%llu bad segments received", Number),
    ("InSegs", "%llu segments received", Number),
    ("MaxConn", "", Number),
    ("OutRsts", "%llu resets sent", Number),
    ("OutSegs", "%llu segments sent out", Number),
    ("PassiveOpens", "%llu passive connection openings", Number),
    ("RetransSegs", "%llu segments retransmitted", Number),
    ("RtoAlgorithm", "RTO algorithm is %s", Static),
    ("RtoMax", "", Number),
    ("RtoMin", "", Number),
];
const UDPTAB: &[Entry] = &[
    ("InDatagrams", "%llu packets received", Number),
    ("InErrors", "%llu packet receive errors", Number),
    ("NoPorts", "%llu packets to unknown port received", Number),
    ("OutDatagrams", "%llu packets sent", Number),
    ("RcvbufErrors", "%llu receive buffer errors", Number),
    ("SndbufErrors", "%llu send buffer errors", Number),
];
const UDP6TAB: &[Entry] = &[
    ("Udp6InDatagrams", "%llu packets received", Number),
    ("Udp6InErrors", "%llu packet receive errors", Number),
    (
        "Udp6NoPorts",
        "%llu packets to unknown port received",
        Number,
    ),
    ("Udp6OutDatagrams", "%llu packets sent", Number),
];
const TCPEXTTAB: &[Entry] = &[
    (
        "DelayedACKLocked",
        "%llu delayed acks further delayed because of locked socket",
        OptNumber,
    ),
    (
        "DelayedACKLost",
        "Quick ack mode was activated %llu times",
        OptNumber,
    ),
    ("DelayedACKs", "%llu delayed acks sent", OptNumber),
    (
        "EmbryonicRsts",
        "%llu resets received for embryonic SYN_RECV sockets",
        OptNumber,
    ),
    (
        "ListenDrops",
        "%llu SYNs to LISTEN sockets dropped",
        OptNumber,
    ),
    (
        "ListenOverflows",
        "%llu times the listen queue of a socket overflowed",
        OptNumber,
    ),
    (
        "LockDroppedIcmps",
        "%llu ICMP packets dropped because socket was locked",
        OptNumber,
    ),
    (
        "OfoPruned",
        "%llu packets dropped from out-of-order queue because of socket buffer overrun",
        OptNumber,
    ),
    (
        "OutOfWindowIcmps",
        "%llu ICMP packets dropped because they were out-of-window",
        OptNumber,
    ),
    (
        "PAWSActive",
        "%llu active connections rejected because of time stamp",
        OptNumber,
    ),
    (
        "PAWSEstab",
        "%llu packets rejected in established connections because of timestamp",
        OptNumber,
    ),
    (
        "PAWSPassive",
        "%llu passive connections rejected because of time stamp",
        OptNumber,
    ),
    (
        "PruneCalled",
        "%llu packets pruned from receive queue because of socket buffer overrun",
        OptNumber,
    ),
    (
        "RcvPruned",
        "%llu packets pruned from receive queue",
        OptNumber,
    ),
    (
        "SockMallocOOM",
        "Ran %llu times out of system memory during packet sending",
        OptNumber,
    ),
    (
        "SyncookiesFailed",
        "%llu invalid SYN cookies received",
        OptNumber,
    ),
    ("SyncookiesRecv", "%llu SYN cookies received", OptNumber),
    ("SyncookiesSent", "%llu SYN cookies sent", OptNumber),
    (
        "TCPAbortFailed",
        "%llu times unable to send RST due to no memory",
        OptNumber,
    ),
    (
        "TCPAbortOnClose",
        "%llu connections reset due to early user close",
        OptNumber,
    ),
    (
        "TCPAbortOnData",
        "%llu connections reset due to unexpected data",
        OptNumber,
    ),
    (
        "TCPAbortOnLinger",
        "%llu connections aborted after user close in linger timeout",
        OptNumber,
    ),
    (
        "TCPAbortOnMemory",
        "%llu connections aborted due to memory pressure",
        OptNumber,
    ),
    (
        "TCPAbortOnSyn",
        "%llu connections reset due to unexpected SYN",
        OptNumber,
    ),
    (
        "TCPAbortOnTimeout",
        "%llu connections aborted due to timeout",
        OptNumber,
    ),
    (
        "TCPDirectCopyFromBacklog",
        "%llu bytes directly in process context from backlog",
        OptNumber,
    ),
    (
        "TCPDirectCopyFromPrequeue",
        "%llu bytes directly received in process context from prequeue",
        OptNumber,
    ),
    (
        "TCPDSACKOfoRecv",
        "%llu DSACKs for out of order packets received",
        OptNumber,
    ),
    (
        "TCPDSACKOfoSent",
        "%llu DSACKs sent for out of order packets",
        OptNumber,
    ),
    (
        "TCPDSACKOldSent",
        "%llu DSACKs sent for old packets",
        OptNumber,
    ),
    ("TCPDSACKRecv", "%llu DSACKs received", OptNumber),
    (
        "TCPDSackUndo",
        "%llu congestion window recovered without slow start using DSACK",
        OptNumber,
    ),
    (
        "TCPDSACKUndo",
        "%llu congestion windows recovered without slow start by DSACK",
        OptNumber,
    ),
    (
        "TCPFACKReorder",
        "Detected reordering %llu times using FACK",
        OptNumber,
    ),
    ("TCPFastRetrans", "%llu fast retransmits", OptNumber),
    ("TCPForwardRetrans", "%llu forward retransmits", OptNumber),
    (
        "TCPFullUndo",
        "%llu congestion windows fully recovered without slow start",
        OptNumber,
    ),
    ("TCPHPAcks", "%llu predicted acknowledgments", OptNumber),
    ("TCPHPHits", "%llu packet headers predicted", Number),
    (
        "TCPHPHitsToUser",
        "%llu packet headers predicted and directly queued to user",
        OptNumber,
    ),
    ("TCPLossFailures", "%llu timeouts in loss state", OptNumber),
    ("TCPLoss", "%llu TCP data loss events", OptNumber),
    (
        "TCPLossUndo",
        "%llu congestion windows recovered without slow start after partial ack",
        OptNumber,
    ),
    ("TCPLostRetransmits", "%llu retransmits lost", OptNumber),
    (
        "TCPMemoryPressures",
        "TCP ran low on memory %llu times",
        OptNumber,
    ),
    (
        "TCPPartialUndo",
        "%llu congestion windows partially recovered using Hoe heuristic",
        OptNumber,
    ),
    (
        "TCPPrequeued",
        "%llu packets directly queued to recvmsg prequeue",
        OptNumber,
    ),
    (
        "TCPPrequeueDropped",
        "%llu packets dropped from prequeue",
        OptNumber,
    ),
    (
        "TCPPureAcks",
        "%llu acknowledgments not containing data payload received",
        OptNumber,
    ),
    (
        "TCPRcvCollapsed",
        "%llu packets collapsed in receive queue due to low socket buffer",
        OptNumber,
    ),
    (
        "TCPRenoFailures",
        "%llu timeouts after reno fast retransmit",
        OptNumber,
    ),
    (
        "TCPRenoRecoveryFailed",
        "%llu reno fast retransmits failed",
        OptNumber,
    ),
    (
        "TCPRenoRecoveryFail",
        "%llu classic Reno fast retransmits failed",
        OptNumber,
    ),
    (
        "TCPRenoRecovery",
        "%llu times recovered from packet loss due to fast retransmit",
        OptNumber,
    ),
    (
        "TCPRenoReorder",
        "Detected reordering %llu times using reno fast retransmit",
        OptNumber,
    ),
    (
        "TCPSackFailures",
        "%llu timeouts after SACK recovery",
        OptNumber,
    ),
    (
        "TCPSackRecoveryFail",
        "%llu SACK retransmits failed",
        OptNumber,
    ),
    (
        "TCPSackRecovery",
        "%llu times recovered from packet loss by selective acknowledgements",
        OptNumber,
    ),
    (
        "TCPSACKReneging",
        "%llu bad SACK blocks received",
        OptNumber,
    ),
    (
        "TCPSACKReorder",
        "Detected reordering %llu times using SACK",
        OptNumber,
    ),
    (
        "TCPSchedulerFailed",
        "%llu times receiver scheduled too late for direct processing",
        OptNumber,
    ),
    (
        "TCPSlowStartRetrans",
        "%llu retransmits in slow start",
        OptNumber,
    ),
    ("TCPTimeouts", "%llu other TCP timeouts", OptNumber),
    (
        "TCPTSReorder",
        "Detected reordering %llu times using time stamp",
        OptNumber,
    ),
    (
        "TWKilled",
        "%llu TCP sockets finished time wait in slow timer",
        OptNumber,
    ),
    (
        "TW",
        "%llu TCP sockets finished time wait in fast timer",
        OptNumber,
    ),
    (
        "TWRecycled",
        "%llu time wait sockets recycled by time stamp",
        OptNumber,
    ),
];
const SCTPTAB: &[Entry] = &[
    ("SctpAborteds", "%llu Number of Aborteds ", Number),
    ("SctpActiveEstabs", "%llu Active Associations", Number),
    (
        "SctpChecksumErrors",
        "%llu Number of Packets with invalid Checksum",
        Number,
    ),
    ("SctpCurrEstab", "%llu Current Associations", Number),
    (
        "SctpFragUsrMsgs",
        "%llu Number of messages fragmented",
        Number,
    ),
    (
        "SctpInCtrlChunks",
        "%llu Number of control chunks received",
        Number,
    ),
    (
        "SctpInOrderChunks",
        "%llu Number of ordered chunks received",
        Number,
    ),
    (
        "SctpInSCTPPacks",
        "%llu Number of SCTP packets received",
        Number,
    ),
    (
        "SctpInUnorderChunks",
        "%llu Number of Unordered chunks received",
        Number,
    ),
    (
        "SctpOutCtrlChunks",
        "%llu Number of control chunks sent",
        Number,
    ),
    (
        "SctpOutOfBlues",
        "%llu Number of Out of Blue packets",
        Number,
    ),
    (
        "SctpOutOrderChunks",
        "%llu Number of ordered chunks sent",
        Number,
    ),
    (
        "SctpOutSCTPPacks",
        "%llu Number of SCTP packets sent",
        Number,
    ),
    (
        "SctpOutUnorderChunks",
        "%llu Number of Unordered chunks sent",
        Number,
    ),
    ("SctpPassiveEstabs", "%llu Passive Associations", Number),
    (
        "SctpReasmUsrMsgs",
        "%llu Number of messages reassembled ",
        Number,
    ),
    (
        "SctpShutdowns",
        "%llu Number of Graceful Terminations",
        Number,
    ),
];

/// Which sections `-s` shows: netstat's `-w` (Ip, Icmp), `-t`, `-u`; all without any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    pub raw: bool,
    pub tcp: bool,
    pub udp: bool,
    pub sctp: bool,
}

/// One counter as the `netstat_statistics` query gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub file: String,
    pub protocol: String,
    pub name: String,
    pub value: i64,
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
            let section = (counter.file.as_str(), counter.protocol.as_str());
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

    fn counters(file: &str, protocol: &str, pairs: &[(&str, i64)]) -> Vec<Counter> {
        pairs
            .iter()
            .map(|(name, value)| Counter {
                file: file.into(),
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
