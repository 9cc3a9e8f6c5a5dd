//! Criterion benchmarks for the hot paths under the whole-process numbers: parsing
//! /proc/net/tcp and /proc/net/unix, decoding inet_diag replies, and building the
//! `sockets` Arrow columns. Run: `cargo bench --bench parsers`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netsql::collect::sockdiag::wire;
use netsql::collect::socket_row::{Family, Protocol, SockType, SocketRow, State};
use netsql::collect::sockets::Rows;
use netsql::collect::{proc_inet, proc_unix};
use netsql::tables::sockets::{Sockets, SPEC};

const ROWS: usize = 10_000;

/// /proc/net/tcp as the kernel writes it, ROWS established loopback connections.
fn proc_tcp() -> String {
    let mut text = String::from("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    for i in 0..ROWS {
        text.push_str(&format!(
            "{i:4}: 0100007F:{:04X} 0100007F:4E20 01 00000000:00000000 02:000AFC5A 00000000     0        0 {} 1 0000000000000000 20 4 30 10 -1\n",
            30000 + i % 30000,
            100_000 + i
        ));
    }
    text
}

fn proc_unix_text() -> String {
    let mut text = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    for i in 0..ROWS {
        text.push_str(&format!(
            "0000000000000000: 00000003 00000000 00000000 0001 03 {} /run/app/socket-{i}\n",
            200_000 + i
        ));
    }
    text
}

/// One netlink buffer of ROWS inet_diag_msg replies (IPv4 TCP, established).
fn diag_replies() -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..ROWS {
        let mut msg = vec![0u8; 72];
        msg[0] = libc::AF_INET as u8; // idiag_family
        msg[1] = 1; // idiag_state ESTABLISHED
        msg[4..6].copy_from_slice(&(30000 + (i % 30000) as u16).to_be_bytes()); // sport
        msg[6..8].copy_from_slice(&20000u16.to_be_bytes()); // dport
        msg[8..12].copy_from_slice(&[127, 0, 0, 1]); // src
        msg[24..28].copy_from_slice(&[127, 0, 0, 1]); // dst
        msg[68..72].copy_from_slice(&(100_000 + i as u32).to_ne_bytes()); // idiag_inode
        let len = (16 + msg.len()) as u32;
        buf.extend_from_slice(&len.to_ne_bytes());
        buf.extend_from_slice(&20u16.to_ne_bytes()); // SOCK_DIAG_BY_FAMILY
        buf.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&msg);
    }
    buf
}

fn rows() -> Vec<SocketRow> {
    (0..ROWS)
        .map(|i| SocketRow {
            protocol: Protocol::Tcp,
            family: Family::Inet,
            sock_type: SockType::Stream,
            state: State::Established,
            local: Some(format!("127.0.0.1:{}", 30000 + i % 30000).parse().unwrap()),
            remote: Some("127.0.0.1:20000".parse().unwrap()),
            recv_q: Some(0),
            send_q: Some(0),
            uid: Some(0),
            inode: 100_000 + i as u64,
            ..SocketRow::default()
        })
        .collect()
}

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(ROWS as u64));
    let tcp = proc_tcp();
    group.bench_function("proc_net_tcp", |b| {
        b.iter(|| {
            proc_inet::parse(
                black_box(tcp.as_bytes()),
                "tcp",
                Protocol::Tcp,
                Family::Inet,
                100,
            )
            .unwrap()
        })
    });
    let unix = proc_unix_text();
    group.bench_function("proc_net_unix", |b| {
        b.iter(|| proc_unix::parse(black_box(unix.as_bytes()), "unix").unwrap())
    });
    let replies = diag_replies();
    group.bench_function("inet_diag_replies", |b| {
        b.iter(|| {
            let mut n = 0;
            for reply in wire::replies(black_box(&replies)) {
                if let Ok(wire::Reply::Socket(payload)) = reply {
                    black_box(
                        wire::decode_inet(payload, Protocol::Tcp, wire::Extensions::default())
                            .unwrap(),
                    );
                    n += 1;
                }
            }
            assert_eq!(n, ROWS);
        })
    });
    group.finish();
}

fn arrow(c: &mut Criterion) {
    let mut group = c.benchmark_group("arrow");
    group.throughput(Throughput::Elements(ROWS as u64));
    let snapshot = Sockets {
        rows: Rows::Own(rows()),
        ..Sockets::default()
    };
    let schema = SPEC.schema();
    // The columns of the benchmark's first query (`ss -tan`'s).
    let names = [
        "state",
        "recv_q",
        "send_q",
        "local_address",
        "local_port",
        "remote_address",
        "remote_port",
    ];
    let projection: Vec<usize> = names
        .iter()
        .map(|n| SPEC.columns.iter().position(|c| c.name == *n).unwrap())
        .collect();
    let projected = std::sync::Arc::new(schema.project(&projection).unwrap());
    group.bench_function("sockets_ss_tan_columns", |b| {
        b.iter(|| {
            SPEC.batch(
                projected.clone(),
                &projection,
                black_box(&snapshot),
                0..ROWS,
            )
            .unwrap()
        })
    });
    let all: Vec<usize> = (0..SPEC.columns.len()).collect();
    group.bench_function("sockets_every_column", |b| {
        b.iter(|| {
            SPEC.batch(schema.clone(), &all, black_box(&snapshot), 0..ROWS)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, parsers, arrow);
criterion_main!(benches);
