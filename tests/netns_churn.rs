//! Churn: while loopback connections open and close (the test requires at least 1000 a
//! second) and short-lived processes start and stop, netsql scans again and again. Every
//! scan must succeed, say nothing on stderr and return only well-formed rows.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ndjson, Netns};
use netsql::collect::socket_row::State;
use serde_json::Value;

const PROTOS: &[&str] = &[
    "tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "unix",
];

/// Connects, sends a byte, waits for one back, closes; the accepting side answers and
/// closes.
fn churn_connections(
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind("127.0.0.1:7500").unwrap();
    let mut threads = Vec::new();
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            // Blocking accepts: the last connector wakes this one after `stop`.
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(mut s) = stream {
                    let mut b = [0u8; 1];
                    let _ = s.read(&mut b);
                    let _ = s.write_all(b"y");
                }
            }
        }));
    }
    for _ in 0..2 {
        let (stop, count) = (stop.clone(), count.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Waiting for the reply keeps the connectors in step with the acceptor:
                // racing ahead would overflow the accept queue and stall on SYN retries.
                if let Ok(mut s) = TcpStream::connect("127.0.0.1:7500") {
                    let mut b = [0u8; 1];
                    if s.write_all(b"x").is_ok() && s.read(&mut b).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    threads
}

/// Starts and reaps short-lived processes, so /proc entries vanish mid-walk.
fn churn_processes(stop: Arc<AtomicBool>, count: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let children: Vec<_> = (0..4)
                .filter_map(|_| Command::new("sleep").arg("0.02").spawn().ok())
                .collect();
            for mut child in children {
                let _ = child.wait();
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

fn check_row(row: &serde_json::Map<String, Value>) {
    let proto = row["proto"].as_str().unwrap_or_default();
    assert!(PROTOS.contains(&proto), "{row:?}");
    let state = row["state"].as_str().unwrap_or_default();
    assert!(State::NAMES.contains(&state), "{row:?}");
    for port in ["local_port", "remote_port"] {
        match &row[port] {
            Value::Null => assert_eq!(proto, "unix", "{row:?}"),
            v => assert!(v.as_u64().is_some_and(|p| p <= 65535), "{row:?}"),
        }
    }
    if let Some(pid) = row["pid"].as_i64() {
        assert!(pid > 0, "{row:?}");
    }
}

#[test]
fn scans_stay_whole_while_sockets_and_processes_churn() {
    let Some(ns) = Netns::create("churn", &[]) else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(AtomicU64::new(0));
    let processes = Arc::new(AtomicU64::new(0));
    let threads = {
        let (stop, connections) = (stop.clone(), connections.clone());
        // Threads started from a thread inside the namespace stay inside it.
        ns.within(move || churn_connections(stop, connections))
    };
    let spawner = churn_processes(stop.clone(), processes.clone());
    common::wait_until(
        "churning connections and processes",
        Duration::from_secs(30),
        || connections.load(Ordering::Relaxed) >= 100 && processes.load(Ordering::Relaxed) >= 8,
    );

    let queries = [
        ("netlink", "SELECT proto, state, local_port, remote_port, pid, program FROM sockets"),
        ("proc", "SELECT proto, state, local_port, remote_port, pid, program FROM sockets"),
        ("auto", "SELECT proto, state, local_port, remote_port, NULL AS pid FROM sockets WHERE state = 'TIME_WAIT'"),
    ];
    let started = Instant::now();
    let before = connections.load(Ordering::Relaxed);
    let mut scans = 0;
    let mut rows = 0;
    let mut time_waits = 0;
    for round in 0..10 {
        for (source, sql) in queries {
            let out = ns.netsql(&["--source", source, "--format", "ndjson", "-e", sql]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && err.is_empty(),
                "round {round}, {source}: {err}"
            );
            let got = ndjson(&out.stdout);
            for row in &got {
                check_row(row);
                if source == "auto" {
                    assert_eq!(row["state"], "TIME_WAIT", "the pushed filter held: {row:?}");
                    time_waits += 1;
                }
            }
            rows += got.len();
            if source != "auto" {
                // The one listener lives through all the churn: every whole scan has it,
                // owned by this process.
                let listener: Vec<_> = got
                    .iter()
                    .filter(|r| r["state"] == "LISTEN" && r["local_port"] == 7500)
                    .collect();
                assert_eq!(listener.len(), 1, "round {round}, {source}: {listener:?}");
                assert_eq!(
                    listener[0]["pid"].as_u64(),
                    Some(u64::from(std::process::id())),
                    "{source}"
                );
            }
            scans += 1;
        }
        let out = ns.netsql(&["--format", "ndjson", "-e", "SELECT pid, name, cmdline, exe, state FROM processes; SELECT inode, pid, fd FROM socket_owners"]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = ns.netsql(&["netstat", "-tanp"]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        scans += 2;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let opened = connections.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    {
        // One more connection, from inside the namespace, to wake the blocked accept.
        let _ = ns.within(|| TcpStream::connect("127.0.0.1:7500").map(|_| ()));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    spawner.join().unwrap();
    let rate = opened as f64 / elapsed;
    eprintln!(
        "churn: {scans} scans ({rows} socket rows) in {elapsed:.1} s while {opened} connections ({rate:.0}/s) and {} processes came and went",
        processes.load(Ordering::Relaxed)
    );
    assert!(
        time_waits > 0,
        "connections closed, yet no scan saw TIME_WAIT"
    );
    assert!(
        rate >= 1000.0,
        "the churn itself was too slow to test anything: {rate:.0} connections/s"
    );
}
