//! ctnetlink's wire format (NETLINK_NETFILTER, subsystem CTNETLINK): requests out,
//! tracked connections and counters in. Pure functions over bytes.
//!
//! `netlink-packet-netfilter` frames the messages and decodes what it knows of an entry
//! (tuples, status, TCP state, timeout, mark). It leaves counters, zone, id, use,
//! timestamps, labels, the helper and ICMP's tuple fields as raw attributes; those are
//! decoded here from the kernel's uapi (include/uapi/linux/netfilter/nfnetlink_conntrack.h):
//! every multi-byte value is big-endian.

use std::net::IpAddr;

use netlink_packet_core::{
    DefaultNla, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NlaBuffer,
    NlasIterator, ParseableParametrized, NLA_F_NESTED, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoInfo, ProtoInfoTCP, ProtoTuple,
    Tuple as CtTuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};

/// `IPCTNL_MSG_CT_NEW` in the CTNETLINK subsystem (1): a dump's entries and NEW/UPDATE
/// events.
pub const CT_NEW: u16 = 0x0100;
/// `IPCTNL_MSG_CT_GET`: with NLM_F_DUMP, the table.
pub const CT_GET: u16 = 0x0101;
/// `IPCTNL_MSG_CT_DELETE`: DESTROY events.
pub const CT_DELETE: u16 = 0x0102;
/// `IPCTNL_MSG_CT_GET_STATS_CPU`: one message per possible CPU.
pub const CT_GET_STATS_CPU: u16 = 0x0104;
/// `IPCTNL_MSG_CT_GET_STATS`: the namespace's entry count (and limit).
pub const CT_GET_STATS: u16 = 0x0105;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_STATUS: u16 = 3;
const CTA_MARK: u16 = 8;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_USE: u16 = 11;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_TIMESTAMP: u16 = 20;
const CTA_MARK_MASK: u16 = 21;
const CTA_LABELS: u16 = 22;
const CTA_HELP: u16 = 5;
const CTA_FILTER: u16 = 25;
const CTA_STATUS_MASK: u16 = 26;
/// In a tuple: its addresses, its layer 4 part, a direction's own zone.
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_TUPLE_ZONE: u16 = 3;
/// In CTA_TUPLE_PROTO: the protocol and its ports.
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
/// In CTA_TUPLE_PROTO: ICMP's id, type and code, then ICMPv6's.
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;
/// In CTA_FILTER: which original-tuple fields the dump must match (host order).
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
const CTA_FILTER_FLAG_IP_SRC: u32 = 1 << 0;
const CTA_FILTER_FLAG_IP_DST: u32 = 1 << 1;

/// One direction of a tracked connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tuple {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// The layer 4 protocol number.
    pub proto: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// ICMP and ICMPv6: type, code and id.
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub icmp_id: Option<u16>,
}

/// A direction's packet and byte counts (sent only with `nf_conntrack_acct` on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

/// What an event says happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    New,
    Update,
    Destroy,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::New => "new",
            Event::Update => "update",
            Event::Destroy => "destroy",
        }
    }
}

/// One tracked connection, as a dump entry or an event carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    /// For an event: what happened, and when netsql received it (µs since the epoch).
    pub event: Option<Event>,
    pub received_us: Option<i64>,
    /// AF_INET or AF_INET6.
    pub family: u8,
    pub orig: Tuple,
    pub reply: Tuple,
    /// TCP's conntrack state (`enum tcp_conntrack`); `None` for other protocols.
    pub tcp_state: Option<u8>,
    /// `IPS_*` bits.
    pub status: u32,
    /// Seconds left; absent for offloaded entries and some events.
    pub timeout: Option<u32>,
    pub mark: Option<u32>,
    /// The zone (sent only when not 0), whichever directions it holds for.
    pub zone: Option<u16>,
    pub zone_dir: ZoneDir,
    pub id: Option<u32>,
    pub use_count: Option<u32>,
    pub orig_counters: Option<Counters>,
    pub reply_counters: Option<Counters>,
    /// Wall-clock nanoseconds (sent only with `nf_conntrack_timestamp` on).
    pub start_ns: Option<u64>,
    pub stop_ns: Option<u64>,
    /// The label bitmap's set bits.
    pub labels: Option<Vec<u16>>,
    pub helper: Option<String>,
}

/// The directions a zone holds for: both (the kernel sends CTA_ZONE), or one (it sends
/// CTA_TUPLE_ZONE inside that direction's tuple; conntrack prints `zone-orig=`,
/// `zone-reply=`). The kernel's zone filter matches the id whatever the direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ZoneDir {
    #[default]
    Both,
    Original,
    Reply,
}

impl ZoneDir {
    /// As the `zone_dir` column says it (conntrack's `zone-orig=`, `zone-reply=`); `None`
    /// for both directions.
    pub fn name(self) -> Option<&'static str> {
        match self {
            ZoneDir::Both => None,
            ZoneDir::Original => Some("orig"),
            ZoneDir::Reply => Some("reply"),
        }
    }

    /// The inverse of [`ZoneDir::name`].
    pub fn from_name(name: Option<&str>) -> Option<ZoneDir> {
        match name {
            None => Some(ZoneDir::Both),
            Some("orig") => Some(ZoneDir::Original),
            Some("reply") => Some(ZoneDir::Reply),
            Some(_) => None,
        }
    }
}

impl Flow {
    /// The tuple of direction `dir`; a zone inside it holds for that direction only.
    fn tuple(&mut self, parts: &[CtTuple], dir: ZoneDir) -> Tuple {
        let (tuple, zone) = tuple(parts);
        if zone.is_some() {
            (self.zone, self.zone_dir) = (zone, dir);
        }
        tuple
    }

    /// The zone the original tuple is looked up in: what names the entry to the kernel.
    pub fn original_zone(&self) -> u16 {
        match self.zone_dir {
            ZoneDir::Reply => 0,
            ZoneDir::Both | ZoneDir::Original => self.zone.unwrap_or(0),
        }
    }
}

/// What a dump asks the kernel to leave out; `None` fields are not filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this family (AF_INET/AF_INET6); set by an address filter.
    pub family: Option<u8>,
    /// `(mark & mask) == value`.
    pub mark: Option<(u32, u32)>,
    /// `(status & mask) == value`.
    pub status: Option<(u32, u32)>,
    pub zone: Option<u16>,
    pub orig_src: Option<IpAddr>,
    pub orig_dst: Option<IpAddr>,
}

impl Filter {
    /// Whether `flow` passes: the same test the kernel applies, so rows a kernel without
    /// one of the filters returned are still left out.
    pub fn accepts(&self, flow: &Flow) -> bool {
        let masked =
            |value: Option<u32>, (want, mask): (u32, u32)| value.unwrap_or(0) & mask == want;
        self.family.is_none_or(|f| flow.family == f)
            && self.mark.is_none_or(|m| masked(flow.mark, m))
            && self.status.is_none_or(|s| masked(Some(flow.status), s))
            && self.zone.is_none_or(|z| flow.zone.unwrap_or(0) == z)
            && self.orig_src.is_none_or(|a| flow.orig.src == Some(a))
            && self.orig_dst.is_none_or(|a| flow.orig.dst == Some(a))
    }
}

fn frame(family: u8, message: ConntrackMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let inner = NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::from(family), 0, 0),
        message,
    );
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(inner));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// An attribute's bytes: `netlink-packet-netfilter` 0.4 drops the NLA_F_NESTED flag of
/// a nested attribute it does not know (its `ConntrackAttribute::Other`), and the kernel
/// parses CTA_FILTER strictly, so requests are made of plain attributes.
fn nla(kind: u16, value: impl Into<Vec<u8>>) -> DefaultNla {
    DefaultNla::new(kind, value.into())
}

fn emitted(parts: &[impl Emitable]) -> Vec<u8> {
    let mut bytes = vec![0; parts.iter().map(Emitable::buffer_len).sum()];
    let mut at = 0;
    for part in parts {
        part.emit(&mut bytes[at..]);
        at += part.buffer_len();
    }
    bytes
}

/// Whether the kernel's dump filter matches an original-tuple address right: IPv4 only.
/// For IPv6, `ctnetlink_filter_match_tuple` (net/netfilter/nf_conntrack_netlink.c) tests
/// `!ipv6_addr_cmp(filter, entry)`, true when the two are equal, and leaves out exactly
/// the entries asked for (seen on 6.18, as in the code since 5.8). So an IPv6 address is
/// checked here, after a dump of the family.
pub fn kernel_matches(address: &IpAddr) -> bool {
    address.is_ipv4()
}

/// A dump of the namespace's table, filtered in the kernel as far as `filter` goes.
pub fn dump_request(filter: &Filter, seq: u32) -> Vec<u8> {
    let mut attributes = Vec::new();
    if let Some((value, mask)) = filter.mark {
        attributes.push(nla(CTA_MARK, value.to_be_bytes()));
        attributes.push(nla(CTA_MARK_MASK, mask.to_be_bytes()));
    }
    if let Some((value, mask)) = filter.status {
        attributes.push(nla(CTA_STATUS, value.to_be_bytes()));
        attributes.push(nla(CTA_STATUS_MASK, mask.to_be_bytes()));
    }
    if let Some(zone) = filter.zone {
        attributes.push(nla(CTA_ZONE, zone.to_be_bytes()));
    }
    let mut flags = 0;
    let mut ip = Vec::new();
    if let Some(src) = filter.orig_src.filter(kernel_matches) {
        flags |= CTA_FILTER_FLAG_IP_SRC;
        ip.push(IPTuple::SourceAddress(src));
    }
    if let Some(dst) = filter.orig_dst.filter(kernel_matches) {
        flags |= CTA_FILTER_FLAG_IP_DST;
        ip.push(IPTuple::DestinationAddress(dst));
    }
    if flags != 0 {
        let tuple = emitted(&[CtTuple::Ip(ip)]);
        attributes.push(nla(CTA_TUPLE_ORIG | NLA_F_NESTED, tuple));
        // The flags are host order: the kernel reads them with nla_get_u32.
        let inner = emitted(&[
            nla(CTA_FILTER_ORIG_FLAGS, flags.to_ne_bytes()),
            nla(CTA_FILTER_REPLY_FLAGS, 0u32.to_ne_bytes()),
        ]);
        attributes.push(nla(CTA_FILTER | NLA_F_NESTED, inner));
    }
    frame(
        filter.family.unwrap_or(0),
        ConntrackMessage::Other {
            message_type: (CT_GET & 0xff) as u8,
            attributes,
        },
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    )
}

/// A request to delete one entry: its original tuple (and zone), and its id so an entry
/// made since with the same tuple is left alone; answered with an acknowledgement, or
/// ENOENT when no such entry is left.
pub fn delete_request(flow: &Flow, seq: u32) -> Vec<u8> {
    let t = &flow.orig;
    let mut ip = Vec::new();
    if let Some(src) = t.src {
        ip.push(IPTuple::SourceAddress(src));
    }
    if let Some(dst) = t.dst {
        ip.push(IPTuple::DestinationAddress(dst));
    }
    let v6 = i32::from(flow.family) == libc::AF_INET6;
    let mut proto = vec![nla(CTA_PROTO_NUM, [t.proto])];
    if let Some(port) = t.sport {
        proto.push(nla(CTA_PROTO_SRC_PORT, port.to_be_bytes()));
    }
    if let Some(port) = t.dport {
        proto.push(nla(CTA_PROTO_DST_PORT, port.to_be_bytes()));
    }
    let (id, kind, code) = match v6 {
        false => (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE),
        true => (
            CTA_PROTO_ICMPV6_ID,
            CTA_PROTO_ICMPV6_TYPE,
            CTA_PROTO_ICMPV6_CODE,
        ),
    };
    if let Some(value) = t.icmp_id {
        proto.push(nla(id, value.to_be_bytes()));
    }
    if let Some(value) = t.icmp_type {
        proto.push(nla(kind, [value]));
    }
    if let Some(value) = t.icmp_code {
        proto.push(nla(code, [value]));
    }
    let tuple = [
        nla(CTA_TUPLE_IP | NLA_F_NESTED, emitted(&ip)),
        nla(CTA_TUPLE_PROTO | NLA_F_NESTED, emitted(&proto)),
    ];
    let mut attributes = vec![nla(CTA_TUPLE_ORIG | NLA_F_NESTED, emitted(&tuple))];
    // A zone of the original direction only is looked up as one of both:
    // nf_conntrack_find_get compares the zone's id for the tuple's direction
    // (nf_ct_zone_equal, include/net/netfilter/nf_conntrack_zones.h).
    let zone = flow.original_zone();
    if zone != 0 {
        attributes.push(nla(CTA_ZONE, zone.to_be_bytes()));
    }
    if let Some(id) = flow.id {
        attributes.push(nla(CTA_ID, id.to_be_bytes()));
    }
    frame(
        flow.family,
        ConntrackMessage::Other {
            message_type: (CT_DELETE & 0xff) as u8,
            attributes,
        },
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
    )
}

/// The per-CPU counters' dump.
pub fn stats_cpu_request(seq: u32) -> Vec<u8> {
    frame(
        0,
        ConntrackMessage::Other {
            message_type: (CT_GET_STATS_CPU & 0xff) as u8,
            attributes: Vec::new(),
        },
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    )
}

/// The namespace's entry count (and, on newer kernels, its limit): one answer, then an
/// acknowledgement.
pub fn stats_request(seq: u32) -> Vec<u8> {
    frame(
        0,
        ConntrackMessage::Other {
            message_type: (CT_GET_STATS & 0xff) as u8,
            attributes: Vec::new(),
        },
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
    )
}

fn be16(value: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(value.get(..2)?.try_into().ok()?))
}

fn be32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

fn be64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

/// The value of a raw attribute.
fn value_of(nla: &DefaultNla) -> Vec<u8> {
    let mut value = vec![0; nla.value_len()];
    nla.emit_value(&mut value);
    value
}

/// The nested attributes of `value` as (type, value) pairs; a malformed one ends them.
fn nested(value: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    NlasIterator::new(value)
        .map_while(Result::ok)
        .map(|nla: NlaBuffer<&[u8]>| {
            let (kind, end) = (nla.kind(), usize::from(nla.length()));
            // Checked by the iterator: the header fits and `end` is inside the buffer.
            (kind, &nla.into_inner()[4..end])
        })
}

fn counters(value: &[u8]) -> Counters {
    let mut counters = Counters::default();
    for (kind, v) in nested(value) {
        match kind {
            1 => counters.packets = be64(v),
            2 => counters.bytes = be64(v),
            _ => {}
        }
    }
    counters
}

/// A tuple, and the zone it carries when the entry's zone holds for its direction only.
fn tuple(parts: &[CtTuple]) -> (Tuple, Option<u16>) {
    let mut tuple = Tuple::default();
    let mut zone = None;
    for part in parts {
        match part {
            CtTuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => tuple.src = Some(*a),
                        IPTuple::DestinationAddress(a) => tuple.dst = Some(*a),
                        _ => {}
                    }
                }
            }
            CtTuple::Proto(protos) => {
                for proto in protos {
                    match proto {
                        ProtoTuple::Protocol(p) => tuple.proto = (*p).into(),
                        ProtoTuple::SourcePort(p) => tuple.sport = Some(*p),
                        ProtoTuple::DestinationPort(p) => tuple.dport = Some(*p),
                        ProtoTuple::Other(nla) => {
                            let v = value_of(nla);
                            match nla.kind() & !NLA_F_NESTED {
                                CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => tuple.icmp_id = be16(&v),
                                CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                                    tuple.icmp_type = v.first().copied()
                                }
                                CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                                    tuple.icmp_code = v.first().copied()
                                }
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
            }
            CtTuple::Other(nla) if nla.kind() & !NLA_F_NESTED == CTA_TUPLE_ZONE => {
                zone = be16(&value_of(nla));
            }
            _ => {}
        }
    }
    (tuple, zone)
}

/// The set bits of a label bitmap: label i is bit i % 8 of byte i / 8 (the kernel's
/// bitmap of longs, read on a little-endian machine).
fn label_bits(value: &[u8]) -> Vec<u16> {
    (0..value.len() * 8)
        .filter(|i| value[i / 8] & (1 << (i % 8)) != 0)
        .map(|i| i as u16)
        .collect()
}

/// A tracked connection from a CT_NEW, CT_GET or CT_DELETE message's payload (after
/// the nlmsghdr).
pub fn decode_flow(kind: u16, payload: &[u8]) -> Result<Flow, String> {
    // Only conntrack's own messages reach the crate's parser: its nftables parser
    // panics on some malformed input (found by fuzzing).
    if !matches!(kind, CT_NEW | CT_GET | CT_DELETE) {
        return Err(format!("not a conntrack entry (type {kind:#06x})"));
    }
    let message = NetfilterMessage::parse_with_param(payload, kind)
        .map_err(|e| format!("bad conntrack entry: {e}"))?;
    let attributes = match message.inner {
        NetfilterMessageInner::Conntrack(
            ConntrackMessage::New(a) | ConntrackMessage::Delete(a) | ConntrackMessage::Get(a),
        ) => a,
        _ => return Err(format!("not a conntrack entry (type {kind:#06x})")),
    };
    let mut flow = Flow {
        family: message.header.family.into(),
        ..Flow::default()
    };
    for attribute in &attributes {
        match attribute {
            ConntrackAttribute::CtaTupleOrig(t) => flow.orig = flow.tuple(t, ZoneDir::Original),
            ConntrackAttribute::CtaTupleReply(t) => flow.reply = flow.tuple(t, ZoneDir::Reply),
            ConntrackAttribute::CtaStatus(s) => flow.status = s.bits(),
            ConntrackAttribute::CtaTimeout(t) => flow.timeout = Some(*t),
            ConntrackAttribute::CtaMark(m) => flow.mark = Some(*m),
            ConntrackAttribute::CtaProtoInfo(infos) => {
                for info in infos {
                    if let ProtoInfo::TCP(tcp) = info {
                        for field in tcp {
                            if let ProtoInfoTCP::State(s) = field {
                                flow.tcp_state = Some(*s);
                            }
                        }
                    }
                }
            }
            ConntrackAttribute::Other(nla) => {
                let v = value_of(nla);
                match nla.kind() & !NLA_F_NESTED {
                    CTA_COUNTERS_ORIG => flow.orig_counters = Some(counters(&v)),
                    CTA_COUNTERS_REPLY => flow.reply_counters = Some(counters(&v)),
                    CTA_USE => flow.use_count = be32(&v),
                    // The kernel puts the id without htonl; conntrack prints ntohl of it.
                    CTA_ID => flow.id = be32(&v),
                    CTA_ZONE => flow.zone = be16(&v),
                    CTA_TIMESTAMP => {
                        for (kind, t) in nested(&v) {
                            match kind {
                                1 => flow.start_ns = be64(t),
                                2 => flow.stop_ns = be64(t),
                                _ => {}
                            }
                        }
                    }
                    CTA_LABELS => flow.labels = Some(label_bits(&v)),
                    CTA_HELP => {
                        flow.helper = nested(&v).find(|(kind, _)| *kind == 1).map(|(_, name)| {
                            let name = name.split(|&b| b == 0).next().unwrap_or_default();
                            String::from_utf8_lossy(name).into_owned()
                        })
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(flow)
}

/// One CPU's counters: the CPU and (attribute number, value) pairs.
pub type CpuCounters = (u16, Vec<(u16, u32)>);

/// One CPU's counters from a CT_GET_STATS_CPU message.
pub fn decode_stats_cpu(payload: &[u8]) -> Result<CpuCounters, String> {
    let (header, attributes) = split_nfgenmsg(payload)?;
    let cpu = u16::from_be_bytes([header[2], header[3]]);
    Ok((
        cpu,
        nested(attributes)
            .filter_map(|(kind, v)| Some((kind, be32(v)?)))
            .collect(),
    ))
}

/// The namespace's entry count and limit from a CT_GET_STATS answer.
pub fn decode_stats(payload: &[u8]) -> Result<(Option<u32>, Option<u32>), String> {
    let (_, attributes) = split_nfgenmsg(payload)?;
    let mut entries = None;
    let mut max = None;
    for (kind, v) in nested(attributes) {
        match kind {
            1 => entries = be32(v),
            2 => max = be32(v),
            _ => {}
        }
    }
    Ok((entries, max))
}

fn split_nfgenmsg(payload: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if payload.len() < 4 {
        return Err(format!("truncated nfgenmsg ({} bytes)", payload.len()));
    }
    Ok(payload.split_at(4))
}

#[cfg(test)]
mod tests;
