//! `ss -Htuanwxeo` in the namespace, and our rows as ss would print them.

// Shared by several test binaries (netns_sockets, netns_all, netns_history,
// netns_sources), each using a part.
#![allow(dead_code)]

use crate::common::{number, text, Netns, Row};

/// One `ss -Htuanwxeo` line, reduced to what both tools show.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SsRow {
    pub netid: String,
    pub state: String,
    pub recv_q: u64,
    pub send_q: u64,
    pub local: String,
    pub peer: String,
    pub timer: Option<String>,
    /// ss -e prints no owner for unix sockets.
    pub uid: Option<u64>,
}

pub fn ss_rows(ns: &Netns) -> Vec<SsRow> {
    parse(&ns.exec_ok(&["ss", "-Htuanwxeo"]))
}

/// `ss -Htuanwxeo` output (`-p` may be added: its `users:` field is not read here).
pub fn parse(out: &str) -> Vec<SsRow> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let timer = line
                .split_whitespace()
                .find_map(|t| t.strip_prefix("timer:("))
                .map(|t| t.split(',').next().unwrap().to_string());
            SsRow {
                netid: f[0].into(),
                state: f[1].into(),
                recv_q: f[2].parse().unwrap(),
                send_q: f[3].parse().unwrap(),
                // unix lines carry "path inode * peer"; inet lines "addr:port addr:port".
                local: if f[0].starts_with("u_") {
                    format!("{} {}", f[4], f[5])
                } else {
                    wildcard(f[4].into())
                },
                peer: if f[0].starts_with("u_") {
                    format!("{} {}", f[6], f[7])
                } else {
                    wildcard(f[5].into())
                },
                timer,
                // ss -e prints uid only when it is not 0, and never for unix.
                uid: (!f[0].starts_with("u_")).then(|| {
                    line.split_whitespace()
                        .find_map(|t| t.strip_prefix("uid:"))
                        .map_or(0, |u| u.parse().unwrap())
                }),
            }
        })
        .collect()
}

impl SsRow {
    /// What says which socket this is: netid, state, local and peer.
    pub fn ends(&self) -> [String; 4] {
        [
            self.netid.clone(),
            self.state.clone(),
            self.local.clone(),
            self.peer.clone(),
        ]
    }
}

/// Our row as ss would print it.
pub fn as_ss(row: &Row) -> SsRow {
    let [netid, state, local, peer] = ends(row);
    let proto = text(row, "proto").unwrap();
    let timer = text(row, "timer").filter(|t| t != "off").map(|t| {
        if t == "probe" {
            "persist".into()
        } else {
            t
        }
    });
    SsRow {
        netid,
        state,
        recv_q: number(row, "recv_q").unwrap(),
        send_q: number(row, "send_q").unwrap(),
        local,
        peer,
        timer,
        uid: number(row, "uid").filter(|_| proto != "unix"),
    }
}

/// Our row's netid, state, local and peer as ss prints them (`proto`, `type`, `state`,
/// the addresses and ports; unix: `path`, `inode`, `peer_inode`).
pub fn ends(row: &Row) -> [String; 4] {
    let proto = text(row, "proto").unwrap();
    let ty = text(row, "type").unwrap();
    let netid = match (proto.as_str(), ty.as_str()) {
        ("unix", "stream") => "u_str",
        ("unix", "dgram") => "u_dgr",
        ("unix", "seqpacket") => "u_seq",
        (p, _) => p.trim_end_matches('6'),
    };
    let state = match text(row, "state").unwrap().as_str() {
        "ESTABLISHED" => "ESTAB",
        "CLOSE" => "UNCONN",
        "SYN_SENT" => "SYN-SENT",
        "SYN_RECV" => "SYN-RECV",
        "FIN_WAIT1" => "FIN-WAIT-1",
        "FIN_WAIT2" => "FIN-WAIT-2",
        "TIME_WAIT" => "TIME-WAIT",
        "CLOSE_WAIT" => "CLOSE-WAIT",
        "LAST_ACK" => "LAST-ACK",
        other => other,
    }
    .to_string();
    let endpoint = |a: &str, p: &str| {
        let addr = text(row, a).unwrap();
        let port = number(row, p).unwrap();
        let addr = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr
        };
        if port == 0 {
            format!("{addr}:*")
        } else {
            format!("{addr}:{port}")
        }
    };
    let (local, peer) = if proto == "unix" {
        let inode = number(row, "inode").unwrap();
        let path = text(row, "path").unwrap_or_else(|| "*".into());
        let peer = number(row, "peer_inode").unwrap_or(0);
        (format!("{path} {inode}"), format!("* {peer}"))
    } else {
        (
            endpoint("local_address", "local_port"),
            endpoint("remote_address", "remote_port"),
        )
    };
    [netid.into(), state, wildcard(local), wildcard(peer)]
}

/// ss prints an IPv6 wildcard as `*` for dual-stack sockets and `[::]` for v6-only ones;
/// the table has no v6only column, so both compare as `*`.
fn wildcard(endpoint: String) -> String {
    match endpoint.strip_prefix("[::]:") {
        Some(port) => format!("*:{port}"),
        None => endpoint,
    }
}
