//! Byte fixtures for the sock_diag wire format, one comment per field. Multi-byte host-order
//! fields are written little-endian: these tests run on x86_64 and aarch64.

use super::*;

/// Captured from this kernel (6.18): the reply to an IPv4 TCP dump for LISTEN sockets in a
/// fresh namespace holding one listener on 127.0.0.1:8080 (backlog 16, inode 19698),
/// read with two `recv` calls and joined here.
#[rustfmt::skip]
const CAPTURED_INET: &[u8] = &[
    // struct nlmsghdr
    0x7c, 0, 0, 0,          // nlmsg_len = 124: 16 + 72 + 36 bytes of attributes
    0x14, 0,                // nlmsg_type = SOCK_DIAG_BY_FAMILY (20)
    0x02, 0,                // nlmsg_flags = NLM_F_MULTI
    0x01, 0, 0, 0,          // nlmsg_seq = 1
    0xfe, 0x2d, 0, 0,       // nlmsg_pid
    // struct inet_diag_msg
    0x02,                   // idiag_family = AF_INET
    0x0a,                   // idiag_state = TCP_LISTEN
    0x00,                   // idiag_timer = none
    0x00,                   // idiag_retrans
    0x1f, 0x90,             // idiag_sport = 8080 (big-endian)
    0x00, 0x00,             // idiag_dport = 0
    0x7f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // idiag_src = 127.0.0.1
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    // idiag_dst = 0.0.0.0
    0, 0, 0, 0,             // idiag_if
    0x52, 0x10, 0, 0, 0, 0, 0, 0, // idiag_cookie
    0, 0, 0, 0,             // idiag_expires
    0, 0, 0, 0,             // idiag_rqueue = 0 waiting connections
    0x10, 0, 0, 0,          // idiag_wqueue = 16, the backlog limit
    0, 0, 0, 0,             // idiag_uid = 0
    0xf2, 0x4c, 0, 0,       // idiag_inode = 19698
    // attributes the kernel adds unasked
    0x05, 0, 0x08, 0, 0, 0, 0, 0,       // INET_DIAG_SHUTDOWN = 0, padded
    0x08, 0, 0x0f, 0, 0, 0, 0, 0,       // INET_DIAG_MARK = 0
    0x0c, 0, 0x15, 0, 1, 0, 0, 0, 0, 0, 0, 0, // INET_DIAG_CGROUP_ID = 1
    0x06, 0, 0x16, 0, 0x52, 0, 0, 0,    // INET_DIAG_SOCKOPT, padded
    // NLMSG_DONE
    0x14, 0, 0, 0,          // nlmsg_len = 20
    0x03, 0,                // nlmsg_type = NLMSG_DONE
    0x02, 0,                // nlmsg_flags = NLM_F_MULTI
    0x01, 0, 0, 0,          // nlmsg_seq
    0xfe, 0x2d, 0, 0,       // nlmsg_pid
    0, 0, 0, 0,             // status = 0
];

#[test]
fn decodes_a_captured_inet_dump() {
    let replies: Vec<_> = replies(CAPTURED_INET).collect::<Result<_, _>>().unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1], Reply::Done);
    let Reply::Socket(payload) = replies[0] else {
        panic!("expected a socket, got {:?}", replies[0]);
    };
    let row = decode_inet(payload, Protocol::Tcp, Extensions::default()).unwrap();
    assert_eq!(row.state, State::Listen);
    assert_eq!(row.local, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(row.remote, Some("0.0.0.0:0".parse().unwrap()));
    assert_eq!((row.recv_q, row.send_q), (Some(0), Some(16)));
    assert_eq!((row.uid, row.inode), (Some(0), 19698));
    assert_eq!(row.timer.unwrap().timer, Timer::Off);
}

/// Captured with the inet reply above: a unix stream listener bound to the abstract name
/// "cap" with backlog 4 (inode 19700).
#[rustfmt::skip]
const CAPTURED_UNIX: &[u8] = &[
    // struct nlmsghdr
    0x44, 0, 0, 0,          // nlmsg_len = 68
    0x14, 0,                // nlmsg_type = SOCK_DIAG_BY_FAMILY
    0x02, 0,                // nlmsg_flags = NLM_F_MULTI
    0x02, 0, 0, 0,          // nlmsg_seq = 2
    0xfe, 0x2d, 0, 0,       // nlmsg_pid
    // struct unix_diag_msg
    0x01,                   // udiag_family = AF_UNIX
    0x01,                   // udiag_type = SOCK_STREAM
    0x0a,                   // udiag_state = TCP_LISTEN
    0x00,                   // pad
    0xf4, 0x4c, 0, 0,       // udiag_ino = 19700
    0x53, 0x10, 0, 0, 0, 0, 0, 0, // udiag_cookie
    0x08, 0, 0x00, 0, 0, b'c', b'a', b'p',  // UNIX_DIAG_NAME = "\0cap"
    0x0c, 0, 0x04, 0, 0, 0, 0, 0, 4, 0, 0, 0, // UNIX_DIAG_RQLEN: 0 pending, backlog 4
    0x05, 0, 0x06, 0, 0, 0, 0, 0,       // UNIX_DIAG_SHUTDOWN = 0, padded
    0x08, 0, 0x07, 0, 0, 0, 0, 0,       // UNIX_DIAG_UID = 0
];

#[test]
fn decodes_a_captured_unix_listener() {
    let replies: Vec<_> = replies(CAPTURED_UNIX).collect::<Result<_, _>>().unwrap();
    let [Reply::Socket(payload)] = replies.as_slice() else {
        panic!("expected one socket, got {replies:?}");
    };
    let row = decode_unix(payload, Extensions::default()).unwrap();
    assert_eq!(
        (row.sock_type, row.state),
        (SockType::Stream, State::Listen)
    );
    assert_eq!(row.inode, 19700);
    assert_eq!(row.path.as_deref(), Some("@cap"));
    assert_eq!((row.recv_q, row.send_q), (Some(0), Some(4)));
    assert_eq!((row.uid, row.peer_inode), (Some(0), None));
}

/// Built in the captured layout above, for the fields a listener leaves zero: one TCP
/// socket in FIN_WAIT1 with its retransmit timer pending, then
/// NLMSG_DONE.
#[rustfmt::skip]
const INET_REPLY: &[u8] = &[
    // struct nlmsghdr
    88, 0, 0, 0,            // nlmsg_len = 16 + 72
    20, 0,                  // nlmsg_type = SOCK_DIAG_BY_FAMILY
    2, 0,                   // nlmsg_flags = NLM_F_MULTI
    7, 0, 0, 0,             // nlmsg_seq
    0, 0, 0, 0,             // nlmsg_pid
    // struct inet_diag_msg
    2,                      // idiag_family = AF_INET
    4,                      // idiag_state = TCP_FIN_WAIT1
    1,                      // idiag_timer = retransmit
    3,                      // idiag_retrans
    0xa2, 0xc4,             // idiag_sport = 41668 (big-endian)
    0x1b, 0x5b,             // idiag_dport = 7003
    127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   // idiag_src
    10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    // idiag_dst
    0, 0, 0, 0,             // idiag_if
    1, 2, 3, 4, 5, 6, 7, 8, // idiag_cookie
    0xb8, 0x0b, 0, 0,       // idiag_expires = 3000 ms
    0, 0, 0, 0,             // idiag_rqueue
    0xe8, 0x03, 0, 0,       // idiag_wqueue = 1000
    0xe8, 0x03, 0, 0,       // idiag_uid = 1000
    0x39, 0x30, 0, 0,       // idiag_inode = 12345
    // NLMSG_DONE
    20, 0, 0, 0,            // nlmsg_len
    3, 0,                   // nlmsg_type = NLMSG_DONE
    2, 0,                   // nlmsg_flags
    7, 0, 0, 0,             // nlmsg_seq
    0, 0, 0, 0,             // nlmsg_pid
    0, 0, 0, 0,             // status = 0
];

#[test]
fn decodes_an_inet_dump() {
    let replies: Vec<_> = replies(INET_REPLY).collect::<Result<_, _>>().unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1], Reply::Done);
    let Reply::Socket(payload) = replies[0] else {
        panic!("expected a socket, got {:?}", replies[0]);
    };
    let row = decode_inet(payload, Protocol::Tcp, Extensions::default()).unwrap();
    assert_eq!(row.family, Family::Inet);
    assert_eq!(row.state, State::FinWait1);
    assert_eq!(row.local, Some("127.0.0.1:41668".parse().unwrap()));
    assert_eq!(row.remote, Some("10.0.0.2:7003".parse().unwrap()));
    assert_eq!(row.send_q, Some(1000));
    assert_eq!(row.recv_q, Some(0));
    assert_eq!(row.uid, Some(1000));
    assert_eq!(row.inode, 12345);
    let timer = row.timer.unwrap();
    // The retransmit timer's header counter is icsk_retransmits; probes are unknown.
    assert_eq!(
        (
            timer.timer,
            timer.expires_ms,
            timer.retransmits,
            timer.probes
        ),
        (Timer::On, 3000, Some(3), None)
    );
}

/// The captured FIN_WAIT1 socket's `struct inet_diag_msg`, without attributes.
fn captured_header() -> Vec<u8> {
    let Reply::Socket(payload) = replies(INET_REPLY).next().unwrap().unwrap() else {
        panic!("expected a socket");
    };
    payload[..INET_DIAG_MSG_LEN].to_vec()
}

/// The captured socket with an INET_DIAG_INFO attribute appended: `info` as the
/// attribute's value, padded to 4 bytes as the kernel pads it.
fn with_tcp_info(info: &[u8]) -> Vec<u8> {
    let mut message = captured_header();
    message.extend_from_slice(&(4 + info.len() as u16).to_ne_bytes()); // rta_len
    message.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes()); // rta_type
    message.extend_from_slice(info);
    message.resize(message.len().next_multiple_of(4), 0);
    message
}

#[test]
fn tcp_info_gives_both_counters() {
    // struct tcp_info: state 4 (FIN_WAIT1), ca_state 0, retransmits 3, probes 2, then
    // the rest of a 232-byte struct (a newer kernel's length) as zeroes.
    let mut info = vec![4, 0, 3, 2];
    info.resize(232, 0);
    let row = decode_inet(&with_tcp_info(&info), Protocol::Tcp, Extensions::default()).unwrap();
    let timer = row.timer.unwrap();
    assert_eq!((timer.retransmits, timer.probes), (Some(3), Some(2)));
    // A kernel's shorter struct is fine as long as the two counters are in it.
    let row = decode_inet(
        &with_tcp_info(&[1, 0, 0, 5]),
        Protocol::Tcp,
        Extensions::default(),
    )
    .unwrap();
    let timer = row.timer.unwrap();
    assert_eq!((timer.retransmits, timer.probes), (Some(0), Some(5)));
    // Too short to hold them: an error naming the attribute, not a panic.
    let err = decode_inet(
        &with_tcp_info(&[1, 0]),
        Protocol::Tcp,
        Extensions::default(),
    )
    .unwrap_err();
    assert!(err.contains("INET_DIAG_INFO"), "{err}");
    // An attribute whose length runs past the message: an error too.
    let mut garbage = with_tcp_info(&[1, 0, 0, 5]);
    garbage[INET_DIAG_MSG_LEN] = 200;
    assert!(decode_inet(&garbage, Protocol::Tcp, Extensions::default()).is_err());
}

#[test]
fn keepalive_and_probe_headers_count_probes() {
    for (kernel_timer, timer) in [(2, Timer::KeepAlive), (4, Timer::Probe)] {
        let mut message = captured_header();
        message[2] = kernel_timer; // idiag_timer
        message[3] = 6; // idiag_retrans: here icsk_probes_out
        let decoded = decode_inet(&message, Protocol::Tcp, Extensions::default())
            .unwrap()
            .timer
            .unwrap();
        assert_eq!(
            (decoded.timer, decoded.retransmits, decoded.probes),
            (timer, None, Some(6))
        );
    }
    // UDP has no timers: both counters are 0.
    let decoded = decode_inet(&captured_header(), Protocol::Udp, Extensions::default())
        .unwrap()
        .timer
        .unwrap();
    assert_eq!((decoded.retransmits, decoded.probes), (Some(0), Some(0)));
}

#[test]
fn a_truncated_inet_message_is_an_error_not_a_panic() {
    let payload = &INET_REPLY[16..16 + 40];
    let err = decode_inet(payload, Protocol::Tcp, Extensions::default()).unwrap_err();
    assert!(err.contains("40 bytes"), "{err}");
    // A reply cut inside a netlink header.
    let results: Vec<_> = replies(&INET_REPLY[..10]).collect();
    assert!(results[0].is_err());
    // A wrong family.
    let mut bad = INET_REPLY[16..88].to_vec();
    bad[0] = 1;
    assert!(decode_inet(&bad, Protocol::Tcp, Extensions::default())
        .unwrap_err()
        .contains("idiag_family"));
}

#[test]
fn netlink_errors_carry_errno() {
    #[rustfmt::skip]
    let error: &[u8] = &[
        36, 0, 0, 0,        // nlmsg_len = 16 + 4 + 16
        2, 0,               // NLMSG_ERROR
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        0xfe, 0xff, 0xff, 0xff, // error = -ENOENT
        // the offending request's header
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let replies: Vec<_> = replies(error).collect::<Result<_, _>>().unwrap();
    assert_eq!(replies, vec![Reply::Error(libc::ENOENT)]);
}

/// Built in the captured layout: a stream socket bound to an abstract name, connected to inode
/// 4242, with 5 bytes unread, owned by uid 1000.
#[rustfmt::skip]
const UNIX_REPLY: &[u8] = &[
    // struct unix_diag_msg
    1,                      // udiag_family = AF_UNIX
    1,                      // udiag_type = SOCK_STREAM
    1,                      // udiag_state = TCP_ESTABLISHED
    0,                      // pad
    0x10, 0x27, 0, 0,       // udiag_ino = 10000
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // udiag_cookie
    // UNIX_DIAG_NAME: "\0a\0b" (abstract, with an embedded NUL)
    8, 0, 0, 0,             // nla_len = 4 + 4, nla_type = 0
    0, b'a', 0, b'b',
    // UNIX_DIAG_PEER
    8, 0, 2, 0,             // nla_len, nla_type = 2
    0x92, 0x10, 0, 0,       // peer inode = 4242
    // UNIX_DIAG_RQLEN
    12, 0, 4, 0,            // nla_len, nla_type = 4
    5, 0, 0, 0,             // udiag_rqueue = 5
    0, 0, 0, 0,             // udiag_wqueue = 0
    // UNIX_DIAG_UID
    8, 0, 7, 0,             // nla_len, nla_type = 7
    0xe8, 0x03, 0, 0,       // uid = 1000
];

#[test]
fn decodes_a_unix_socket_with_attributes() {
    let row = decode_unix(UNIX_REPLY, Extensions::default()).unwrap();
    assert_eq!(row.sock_type, SockType::Stream);
    assert_eq!(row.state, State::Established);
    assert_eq!(row.inode, 10000);
    assert_eq!(row.path.as_deref(), Some("@a@b"));
    assert_eq!(row.peer_inode, Some(4242));
    assert_eq!((row.recv_q, row.send_q), (Some(5), Some(0)));
    assert_eq!(row.uid, Some(1000));
}

#[test]
fn unix_paths_lose_their_nul_and_short_attributes_fail() {
    assert_eq!(unix_name(b"/run/x.sock\0"), "/run/x.sock");
    let mut short = UNIX_REPLY[..UNIX_DIAG_MSG_LEN].to_vec();
    short.extend_from_slice(&[6, 0, 2, 0, 1, 2, 0, 0]); // UNIX_DIAG_PEER with 2 bytes
    assert!(decode_unix(&short, Extensions::default())
        .unwrap_err()
        .contains("too short"));
    // An attribute whose length runs past the buffer.
    let mut overrun = UNIX_REPLY[..UNIX_DIAG_MSG_LEN].to_vec();
    overrun.extend_from_slice(&[200, 0, 2, 0, 1, 2, 3, 4]);
    assert!(decode_unix(&overrun, Extensions::default()).is_err());
    assert!(decode_unix(&UNIX_REPLY[..8], Extensions::default()).is_err());
}

#[test]
fn requests_have_the_kernel_layout() {
    let req = inet_request(
        Protocol::Udp,
        Family::Inet6,
        ALL_STATES,
        None,
        Extensions::default(),
        9,
    );
    // nlmsghdr (16) + struct inet_diag_req_v2 (56)
    assert_eq!(req.len(), 72);
    assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 72); // nlmsg_len
    assert_eq!(u16::from_ne_bytes([req[4], req[5]]), 20); // SOCK_DIAG_BY_FAMILY
    assert_eq!(
        u16::from_ne_bytes([req[6], req[7]]),
        NLM_F_REQUEST | NLM_F_DUMP
    );
    assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 9); // nlmsg_seq
    assert_eq!(req[16], libc::AF_INET6 as u8); // sdiag_family
    assert_eq!(req[17], libc::IPPROTO_UDP as u8); // sdiag_protocol
    assert_eq!(
        u32::from_ne_bytes(req[20..24].try_into().unwrap()),
        ALL_STATES
    ); // idiag_states

    let req = unix_request(u32::MAX, Extensions::default(), 1);
    // nlmsghdr (16) + struct unix_diag_req (24)
    assert_eq!(req.len(), 40);
    assert_eq!(req[16], libc::AF_UNIX as u8);
    assert_eq!(
        u32::from_ne_bytes(req[20..24].try_into().unwrap()),
        u32::MAX
    ); // udiag_states
    let show = u32::from_ne_bytes(req[28..32].try_into().unwrap());
    assert_eq!(show, 0x01 | 0x04 | 0x10 | 0x40); // NAME | PEER | RQLEN | UID
}

/// `message` with one more attribute of type `kind`, padded to 4 as the kernel pads.
fn with_attribute(mut message: Vec<u8>, kind: u16, value: &[u8]) -> Vec<u8> {
    message.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(value);
    message.resize(message.len().next_multiple_of(4), 0);
    message
}

#[test]
fn extensions_are_kept_only_when_wanted() {
    // What kernel 6.18 sends for a TCP socket asked for everything: a 248-byte tcp_info,
    // "cubic\0", nine SK_MEMINFO u32s, tos, shutdown 2 (no more sends), mark, cgroup id,
    // and struct inet_diag_sockopt.
    let mut info = vec![1, 0, 0, 0];
    info.resize(248, 0);
    info[68..72].copy_from_slice(&1234u32.to_ne_bytes()); // tcpi_rtt
    let skmem: Vec<u8> = (1..=9u32).flat_map(|v| (v * 100).to_ne_bytes()).collect();
    let mut message = with_tcp_info(&info);
    message = with_attribute(message, INET_DIAG_CONG, b"cubic\0");
    message = with_attribute(message, INET_DIAG_SKMEMINFO, &skmem);
    message = with_attribute(message, INET_DIAG_TOS, &[0x10]);
    message = with_attribute(message, INET_DIAG_SHUTDOWN, &[2]);
    message = with_attribute(message, INET_DIAG_MARK, &7u32.to_ne_bytes());
    message = with_attribute(message, INET_DIAG_CGROUP_ID, &4242u64.to_ne_bytes());
    // inet_diag_sockopt's flags, bit 0 first: byte 0 0b0101_0010 is is_icsk (1), mc_loop
    // (4), mc_all (6); byte 1 0b0000_0001 is bind_address_no_port (8).
    message = with_attribute(message, INET_DIAG_SOCKOPT, &[0b0101_0010, 0b0000_0001]);
    let all = Extensions {
        counters: false,
        tcp_info: true,
        congestion: true,
        skmem: true,
        tos: true,
        shutdown: true,
        mark: true,
        cgroup_id: true,
        sockopt: true,
    };
    let row = decode_inet(&message, Protocol::Tcp, all).unwrap();
    let extras = row.extras.unwrap();
    assert_eq!(
        extras
            .tcp_info
            .unwrap()
            .u32(crate::collect::tcp_info::at::RTT),
        Some(1234)
    );
    assert_eq!(extras.congestion.as_deref(), Some("cubic"));
    assert_eq!(
        extras.skmem,
        [100, 200, 300, 400, 500, 600, 700, 800, 900].map(Some)
    );
    assert_eq!(
        (extras.tos, extras.shutdown, extras.mark, extras.cgroup_id),
        (Some(0x10), Some(2), Some(7), Some(4242))
    );
    assert_eq!(
        extras
            .sockopt
            .map(crate::collect::socket_row::sockopt_names),
        Some(vec!["is_icsk", "mc_loop", "mc_all", "bind_address_no_port"])
    );
    // Asked for nothing: nothing kept, not even a box.
    let row = decode_inet(&message, Protocol::Tcp, Extensions::default()).unwrap();
    assert_eq!(row.extras, None);
    // An older kernel's shorter SK_MEMINFO (no drops, no backlog): those are NULL.
    let short = with_attribute(captured_header(), INET_DIAG_SKMEMINFO, &skmem[..28]);
    let row = decode_inet(&short, Protocol::Tcp, all).unwrap();
    assert_eq!(
        row.extras.unwrap().skmem,
        [
            Some(100),
            Some(200),
            Some(300),
            Some(400),
            Some(500),
            Some(600),
            Some(700),
            None,
            None
        ]
    );
}

#[test]
fn requests_ask_for_the_extensions_named() {
    let ext = |e: Extensions, protocol, family| e.idiag_ext(protocol, family);
    let info = Extensions {
        tcp_info: true,
        ..Extensions::default()
    };
    assert_eq!(ext(info, Protocol::Tcp, Family::Inet), 1 << 1);
    // tcp_info and congestion exist for TCP only.
    assert_eq!(ext(info, Protocol::Udp, Family::Inet), 0);
    let tos = Extensions {
        tos: true,
        skmem: true,
        ..Extensions::default()
    };
    assert_eq!(ext(tos, Protocol::Udp, Family::Inet), (1 << 4) | (1 << 6));
    assert_eq!(ext(tos, Protocol::Udp, Family::Inet6), (1 << 5) | (1 << 6));
    // Unasked attributes need no bit.
    let free = Extensions {
        shutdown: true,
        mark: true,
        cgroup_id: true,
        sockopt: true,
        ..Extensions::default()
    };
    assert_eq!(ext(free, Protocol::Tcp, Family::Inet), 0);
    // The byte travels in the request: inet_diag_req_v2's idiag_ext, after family and protocol.
    let req = inet_request(Protocol::Tcp, Family::Inet, ALL_STATES, None, info, 1);
    assert_eq!(req[16 + 2], 1 << 1);
    let unix = unix_request(
        ALL_STATES,
        Extensions {
            skmem: true,
            ..Extensions::default()
        },
        1,
    );
    let show = u32::from_ne_bytes(unix[16 + 12..16 + 16].try_into().unwrap());
    assert_ne!(show & 0x20, 0, "UDIAG_SHOW_MEMINFO");
}

#[test]
fn one_tcp_request_serves_both_families() {
    let tos = Extensions {
        tos: true,
        ..Extensions::default()
    };
    let req = tcp_request_both_families(1 << 10, None, [0; 2], tos, 5);
    // nlmsghdr (16) + struct inet_diag_req (60)
    assert_eq!(req.len(), 76);
    assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 76);
    assert_eq!(u16::from_ne_bytes([req[4], req[5]]), 18); // TCPDIAG_GETSOCK
    assert_eq!(
        u16::from_ne_bytes([req[6], req[7]]),
        NLM_F_REQUEST | NLM_F_DUMP
    );
    assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 5);
    assert_eq!(req[16], libc::AF_UNSPEC as u8);
    // TOS for the IPv4 sockets, TCLASS for the IPv6 ones.
    assert_eq!(req[19], (1 << 4) | (1 << 5));
    assert_eq!(&req[16 + 4..16 + 40], &[0; 36]); // ports, addresses: any
    assert_eq!(&req[16 + 44..16 + 52], &[0xff; 8]); // no cookie
    assert_eq!(
        u32::from_ne_bytes(req[16 + 52..16 + 56].try_into().unwrap()),
        1 << 10
    );
    // A filter program follows the request as INET_DIAG_REQ_BYTECODE, padded to 4.
    let req = tcp_request_both_families(ALL_STATES, Some(&[1, 2, 3, 4, 5, 6]), [22, 0], tos, 5);
    assert_eq!(req.len(), 76 + 4 + 8);
    assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 88);
    assert_eq!(u16::from_ne_bytes([req[76], req[77]]), 10); // nla_len
    assert_eq!(u16::from_ne_bytes([req[78], req[79]]), 1); // INET_DIAG_REQ_BYTECODE
    assert_eq!(&req[80..88], &[1, 2, 3, 4, 5, 6, 0, 0]);
    // The local port in the socket id, big-endian after the 4 bytes of family, lengths
    // and extensions; the remote one (0, any) after it.
    assert_eq!(&req[20..24], &[0, 22, 0, 0]);

    // Its replies carry its message type and are sockets like any other.
    let mut reply = CAPTURED_INET.to_vec();
    reply[4] = 18;
    let replies: Vec<_> = replies(&reply).collect::<Result<_, _>>().unwrap();
    assert!(matches!(replies[0], Reply::Socket(_)));
    assert_eq!(replies[1], Reply::Done);

    // Each family keeps its own of the two attributes.
    let both = with_attribute(captured_header(), INET_DIAG_TOS, &[0x10]);
    let both = with_attribute(both, INET_DIAG_TCLASS, &[0x20]);
    let row = decode_inet(&both, Protocol::Tcp, tos).unwrap();
    assert_eq!(row.extras.unwrap().tos, Some(0x10));
    let mut inet6 = both.clone();
    inet6[0] = libc::AF_INET6 as u8;
    let row = decode_inet(&inet6, Protocol::Tcp, tos).unwrap();
    assert_eq!(
        (row.family, row.extras.unwrap().tos),
        (Family::Inet6, Some(0x20))
    );
}
