//! Byte fixtures for ctnetlink, one comment per field. The netlink and attribute headers
//! are host order (written little-endian: these tests run on x86_64 and aarch64); the
//! values ctnetlink puts in attributes are big-endian.

use super::*;
use crate::collect::netlink::{replies, Reply};

/// Captured from this kernel (6.18): an IPv4 dump in a namespace holding one TCP
/// connection to 127.0.0.1:8081 that an OUTPUT DNAT rule sent to 127.0.0.1:8080, closed
/// and in TIME_WAIT, with net.netfilter.nf_conntrack_acct on; then NLMSG_DONE.
#[rustfmt::skip]
const CAPTURED: &[u8] = &[
    // struct nlmsghdr
    0x0c, 0x01, 0, 0,       // nlmsg_len = 268
    0x00, 0x01,             // nlmsg_type = CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
    0x22, 0x00,             // nlmsg_flags = NLM_F_MULTI | NLM_F_DUMP_FILTERED
    0x01, 0, 0, 0,          // nlmsg_seq = 1
    0x3f, 0x06, 0, 0,       // nlmsg_pid
    // struct nfgenmsg
    0x02, 0x00, 0x00, 0x00, // nfgen_family = AF_INET, version 0, res_id 0
    0x34, 0, 0x01, 0x80,    // CTA_TUPLE_ORIG, nested, 52 bytes
      0x14, 0, 0x01, 0x80,  //   CTA_TUPLE_IP, nested
        0x08, 0, 0x01, 0, 127, 0, 0, 1,          // CTA_IP_V4_SRC = 127.0.0.1
        0x08, 0, 0x02, 0, 127, 0, 0, 1,          // CTA_IP_V4_DST = 127.0.0.1
      0x1c, 0, 0x02, 0x80,  //   CTA_TUPLE_PROTO, nested
        0x05, 0, 0x01, 0, 6, 0, 0, 0,            // CTA_PROTO_NUM = TCP, padded
        0x06, 0, 0x02, 0, 0xc9, 0x22, 0, 0,      // CTA_PROTO_SRC_PORT = 51490
        0x06, 0, 0x03, 0, 0x1f, 0x91, 0, 0,      // CTA_PROTO_DST_PORT = 8081
    0x34, 0, 0x02, 0x80,    // CTA_TUPLE_REPLY, nested
      0x14, 0, 0x01, 0x80,
        0x08, 0, 0x01, 0, 127, 0, 0, 1,          // src 127.0.0.1
        0x08, 0, 0x02, 0, 127, 0, 0, 1,          // dst 127.0.0.1
      0x1c, 0, 0x02, 0x80,
        0x05, 0, 0x01, 0, 6, 0, 0, 0,            // TCP
        0x06, 0, 0x02, 0, 0x1f, 0x90, 0, 0,      // sport 8080: the DNAT's target
        0x06, 0, 0x03, 0, 0xc9, 0x22, 0, 0,      // dport 51490
    0x08, 0, 0x03, 0, 0, 0, 0x01, 0xae,          // CTA_STATUS = 0x1ae: SEEN_REPLY,
                                                 // ASSURED, CONFIRMED, DST_NAT,
                                                 // SRC_NAT_DONE, DST_NAT_DONE
    0x08, 0, 0x08, 0, 0, 0, 0, 0,                // CTA_MARK = 0
    0x08, 0, 0x0c, 0, 0x4b, 0x4f, 0x78, 0x98,    // CTA_ID = 1263499416
    0x08, 0, 0x0b, 0, 0, 0, 0, 1,                // CTA_USE = 1
    0x08, 0, 0x07, 0, 0, 0, 0, 0x69,             // CTA_TIMEOUT = 105 s
    0x30, 0, 0x04, 0x80,    // CTA_PROTOINFO, nested
      0x2c, 0, 0x01, 0x80,  //   CTA_PROTOINFO_TCP, nested
        0x05, 0, 0x01, 0, 7, 0, 0, 0,            // STATE = TIME_WAIT
        0x05, 0, 0x02, 0, 10, 0, 0, 0,           // WSCALE_ORIGINAL = 10
        0x05, 0, 0x03, 0, 10, 0, 0, 0,           // WSCALE_REPLY = 10
        0x06, 0, 0x04, 0, 0x27, 0, 0, 0,         // FLAGS_ORIGINAL {flags, mask}
        0x06, 0, 0x05, 0, 0x23, 0, 0, 0,         // FLAGS_REPLY
    0x1c, 0, 0x09, 0x80,    // CTA_COUNTERS_ORIG, nested
      0x0c, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 5,          // PACKETS = 5
      0x0c, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x0e,    // BYTES = 270
    0x1c, 0, 0x0a, 0x80,    // CTA_COUNTERS_REPLY, nested
      0x0c, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 3,          // PACKETS = 3
      0x0c, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0xa4,       // BYTES = 164
    // NLMSG_DONE
    0x14, 0, 0, 0, 0x03, 0, 0x02, 0, 0x01, 0, 0, 0, 0x3f, 0x06, 0, 0, 0, 0, 0, 0,
];

fn captured() -> (u16, &'static [u8]) {
    let all: Vec<_> = replies(CAPTURED).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], Reply::Done);
    let Reply::Message(m) = all[0] else {
        panic!("expected an entry, got {:?}", all[0]);
    };
    (m.kind, m.payload)
}

#[test]
fn decodes_a_captured_entry() {
    let (kind, payload) = captured();
    assert_eq!(kind, CT_NEW);
    let flow = decode_flow(kind, payload).unwrap();
    let lo = Some("127.0.0.1".parse().unwrap());
    assert_eq!(flow.family, libc::AF_INET as u8);
    assert_eq!(
        flow.orig,
        Tuple {
            src: lo,
            dst: lo,
            proto: 6,
            sport: Some(51490),
            dport: Some(8081),
            ..Tuple::default()
        }
    );
    assert_eq!(
        (flow.reply.sport, flow.reply.dport),
        (Some(8080), Some(51490))
    );
    assert_eq!(flow.status, 0x1ae);
    assert_eq!(flow.tcp_state, Some(7));
    assert_eq!(
        (flow.mark, flow.id, flow.use_count),
        (Some(0), Some(1263499416), Some(1))
    );
    assert_eq!(flow.timeout, Some(105));
    assert_eq!(
        flow.orig_counters,
        Some(Counters {
            packets: Some(5),
            bytes: Some(270)
        })
    );
    assert_eq!(
        flow.reply_counters,
        Some(Counters {
            packets: Some(3),
            bytes: Some(164)
        })
    );
    // Attributes this kernel did not send stay absent: no zone (0), no timestamps.
    assert_eq!((flow.zone, flow.start_ns, flow.labels), (None, None, None));
}

/// Every cut of the entry is an error or a shorter entry, never a panic; a cut inside the
/// tuples is an error (the crate parses an entry whole).
#[test]
fn a_cut_entry_never_panics() {
    let (kind, payload) = captured();
    for end in 0..payload.len() {
        let _ = decode_flow(kind, &payload[..end]);
    }
    assert!(decode_flow(kind, &payload[..30]).is_err());
    // A length field that claims more than the message holds.
    let mut bad = payload.to_vec();
    bad[4] = 0xff;
    assert!(decode_flow(kind, &bad).is_err());
}

/// Another netfilter subsystem's message (nftables: subsystem 10 in the type's high
/// byte) is refused before the crate parses it: its nftables parser panicked on a
/// fuzzed one.
#[test]
fn another_subsystems_message_is_refused_unparsed() {
    let (_, payload) = captured();
    let nftables = (10 << 8) | 0x0a;
    let refused = decode_flow(nftables, payload).unwrap_err();
    assert!(refused.starts_with("not a conntrack entry"), "{refused}");
}

#[test]
fn a_dump_request_carries_the_kernels_filters() {
    let filter = Filter {
        family: Some(libc::AF_INET as u8),
        mark: Some((7, u32::MAX)),
        status: Some((4, 4)),
        zone: Some(3),
        orig_src: Some("10.0.0.1".parse().unwrap()),
        orig_dst: None,
    };
    let request = dump_request(&filter, 9);
    // nlmsghdr: type CT_GET, flags REQUEST | DUMP, seq 9.
    assert_eq!(u16::from_ne_bytes([request[4], request[5]]), 0x0101);
    assert_eq!(u16::from_ne_bytes([request[6], request[7]]), 0x0301);
    assert_eq!(u32::from_ne_bytes(request[8..12].try_into().unwrap()), 9);
    assert_eq!(request[16], libc::AF_INET as u8);
    let attributes: Vec<(u16, Vec<u8>)> = NlasIterator::new(&request[20..])
        .map(|nla| {
            let nla = nla.unwrap();
            (nla.kind(), nla.value().to_vec())
        })
        .collect();
    let value = |kind: u16| {
        attributes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no attribute {kind} in {attributes:?}"))
    };
    assert_eq!(value(8), vec![0, 0, 0, 7]); // CTA_MARK
    assert_eq!(value(21), vec![0xff; 4]); // CTA_MARK_MASK
    assert_eq!(value(3), vec![0, 0, 0, 4]); // CTA_STATUS
    assert_eq!(value(26), vec![0, 0, 0, 4]); // CTA_STATUS_MASK
    assert_eq!(&value(18)[..2], &[0, 3]); // CTA_ZONE
                                          // The kernel parses CTA_FILTER (and the tuple in it) only when marked nested.
    let nested: Vec<u16> = NlasIterator::new(&request[20..])
        .map(|nla| nla.unwrap())
        .filter(|nla| nla.nested_flag())
        .map(|nla| nla.kind())
        .collect();
    assert_eq!(nested, vec![1, 25]);
    // CTA_FILTER: orig flags = IP_SRC (host order), reply flags 0.
    let filter_flags: Vec<(u16, Vec<u8>)> = NlasIterator::new(&value(25)[..])
        .map(|nla| {
            let nla = nla.unwrap();
            (nla.kind(), nla.value().to_vec())
        })
        .collect();
    assert_eq!(
        filter_flags,
        vec![(1, 1u32.to_ne_bytes().to_vec()), (2, vec![0; 4])]
    );
    // CTA_TUPLE_ORIG { CTA_TUPLE_IP { CTA_IP_V4_SRC = 10.0.0.1 } }
    let tuple = value(1);
    let ip = NlasIterator::new(&tuple[..]).next().unwrap().unwrap();
    assert_eq!(ip.kind(), 1);
    let src = NlasIterator::new(ip.value()).next().unwrap().unwrap();
    assert_eq!((src.kind(), src.value()), (1, &[10, 0, 0, 1][..]));
}

/// The top-level attribute kinds of a request (after its nfgenmsg).
fn kinds(request: &[u8]) -> Vec<u16> {
    NlasIterator::new(&request[20..])
        .map(|nla| nla.unwrap().kind() & !NLA_F_NESTED)
        .collect()
}

#[test]
fn an_ipv6_address_is_matched_here_not_by_the_kernel() {
    // The kernel's IPv6 tuple filter leaves out the entries it names: only the family
    // is asked for, and `accepts` picks the address.
    let filter = Filter {
        family: Some(libc::AF_INET6 as u8),
        orig_src: Some("fd00::1".parse().unwrap()),
        orig_dst: Some("fd00::2".parse().unwrap()),
        ..Filter::default()
    };
    let request = dump_request(&filter, 1);
    assert_eq!(request[16], libc::AF_INET6 as u8);
    assert_eq!(kinds(&request), Vec::<u16>::new());
    let v4 = Filter {
        family: Some(libc::AF_INET as u8),
        orig_dst: Some("10.0.0.2".parse().unwrap()),
        ..Filter::default()
    };
    assert_eq!(kinds(&dump_request(&v4, 1)), vec![1, 25]); // CTA_TUPLE_ORIG, CTA_FILTER
}

#[test]
fn an_entry_is_deleted_in_its_original_directions_zone() {
    let (kind, payload) = captured();
    let mut flow = decode_flow(kind, payload).unwrap();
    flow.zone = Some(7);
    let zone_sent = |flow: &Flow| {
        let request = delete_request(flow, 1);
        NlasIterator::new(&request[20..])
            .map(|nla| nla.unwrap())
            .find(|nla| nla.kind() == 18) // CTA_ZONE
            .map(|nla| u16::from_be_bytes([nla.value()[0], nla.value()[1]]))
    };
    for (dir, sent) in [
        (ZoneDir::Both, Some(7)),
        (ZoneDir::Original, Some(7)),
        // Zone 7 holds for replies only: the original tuple is in zone 0.
        (ZoneDir::Reply, None),
    ] {
        flow.zone_dir = dir;
        assert_eq!(zone_sent(&flow), sent, "{dir:?}");
    }
}

#[test]
fn the_filter_checks_what_the_kernel_may_have_ignored() {
    let (kind, payload) = captured();
    let flow = decode_flow(kind, payload).unwrap();
    assert!(Filter::default().accepts(&flow));
    let mark = |value| Filter {
        mark: Some((value, u32::MAX)),
        ..Filter::default()
    };
    assert!(mark(0).accepts(&flow));
    assert!(!mark(7).accepts(&flow));
    let status = |bit| Filter {
        status: Some((bit, bit)),
        ..Filter::default()
    };
    assert!(status(1 << 2).accepts(&flow)); // ASSURED
    assert!(!status(1 << 4).accepts(&flow)); // SRC_NAT
    let zone = Filter {
        zone: Some(0),
        ..Filter::default()
    };
    assert!(zone.accepts(&flow));
    let elsewhere = Filter {
        orig_dst: Some("10.0.0.2".parse().unwrap()),
        ..Filter::default()
    };
    assert!(!elsewhere.accepts(&flow));
}

#[test]
fn decodes_per_cpu_counters_and_the_count() {
    #[rustfmt::skip]
    let cpu: &[u8] = &[
        0x02, 0x00, 0x00, 0x01,                   // nfgenmsg: AF_INET, v0, res_id = CPU 1
        0x08, 0, 0x02, 0, 0, 0, 0, 0x11,          // CTA_STATS_FOUND = 17
        0x08, 0, 0x04, 0, 0, 0, 0x01, 0x00,       // CTA_STATS_INVALID = 256
        0x08, 0, 0x0a, 0, 0, 0, 0, 0x02,          // CTA_STATS_DROP = 2
    ];
    assert_eq!(
        decode_stats_cpu(cpu).unwrap(),
        (1, vec![(2, 17), (4, 256), (10, 2)])
    );
    #[rustfmt::skip]
    let count: &[u8] = &[
        0x00, 0x00, 0x00, 0x00,                   // nfgenmsg
        0x08, 0, 0x01, 0, 0, 0, 0, 0x2a,          // CTA_STATS_GLOBAL_ENTRIES = 42
        0x08, 0, 0x02, 0, 0, 0x04, 0, 0,          // CTA_STATS_GLOBAL_MAX_ENTRIES = 262144
    ];
    assert_eq!(decode_stats(count).unwrap(), (Some(42), Some(262144)));
    assert!(decode_stats(&[0, 0]).is_err());
}

#[test]
fn label_bits_are_numbered_from_the_first_byte() {
    let mut bitmap = [0u8; 16];
    bitmap[0] = 0b0000_0101; // labels 0 and 2
    bitmap[15] = 0b1000_0000; // label 127
    assert_eq!(label_bits(&bitmap), vec![0, 2, 127]);
}
