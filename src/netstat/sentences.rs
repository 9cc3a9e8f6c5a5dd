//! netstat -s's sentence tables (net-tools 2.10 statistics.c), as data: for each counter
//! of /proc/net/snmp, netstat and snmp6, the sentence netstat prints and when. The order
//! is netstat's own, unsorted where its tables are, because its binary search depends on
//! it (see stats.rs).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
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
use Print::*;

/// (counter name, netstat's sentence with its printf conversion, how it is printed)
pub type Entry = (&'static str, &'static str, Print);

pub const IPTAB: &[Entry] = &[
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
pub const IP6TAB: &[Entry] = &[
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
pub const ICMPTAB: &[Entry] = &[
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
pub const ICMP6TAB: &[Entry] = &[
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
pub const TCPTAB: &[Entry] = &[
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
pub const UDPTAB: &[Entry] = &[
    ("InDatagrams", "%llu packets received", Number),
    ("InErrors", "%llu packet receive errors", Number),
    ("NoPorts", "%llu packets to unknown port received", Number),
    ("OutDatagrams", "%llu packets sent", Number),
    ("RcvbufErrors", "%llu receive buffer errors", Number),
    ("SndbufErrors", "%llu send buffer errors", Number),
];
pub const UDP6TAB: &[Entry] = &[
    ("Udp6InDatagrams", "%llu packets received", Number),
    ("Udp6InErrors", "%llu packet receive errors", Number),
    (
        "Udp6NoPorts",
        "%llu packets to unknown port received",
        Number,
    ),
    ("Udp6OutDatagrams", "%llu packets sent", Number),
];
pub const TCPEXTTAB: &[Entry] = &[
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
pub const SCTPTAB: &[Entry] = &[
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
