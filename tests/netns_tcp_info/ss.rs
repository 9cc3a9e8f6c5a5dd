//! `ss -i`, `-m`, `-e` output read into fields, and compared with our rows.

use std::collections::BTreeMap;

use crate::common::{self, number, text, Netns, Row};

/// The kernel keeps "ms since" fields in jiffies: up to 4 ms (HZ=250) apart for one
/// instant; 10 ms covers HZ=100.
const JIFFY_MS: u64 = 10;

/// One socket as `ss -i`/`-m`/`-e` prints it: its endpoints, `key:value` fields and
/// bare words.
#[derive(Debug, Default)]
pub struct SsSocket {
    /// ss's state name: ESTAB, LISTEN, TIME-WAIT, UNCONN, ...
    pub state: String,
    pub fields: BTreeMap<String, String>,
    pub words: Vec<String>,
}

/// `ss ARGS` (with -H) in the namespace, two-line records joined: `local peer` -> what
/// it printed. Run with nsenter, which changes the network namespace alone: `ip netns
/// exec` mounts a /sys without cgroup2, where ss says `cgroup:unreachable`.
pub fn ss(ns: &Netns, args: &[&str]) -> BTreeMap<String, SsSocket> {
    let netns = format!("--net=/run/netns/{}", ns.name);
    let mut argv = vec![netns.as_str(), "ss", "-H"];
    argv.extend_from_slice(args);
    let out = common::run_ok("nsenter", &argv);
    let mut sockets = BTreeMap::new();
    let mut current: Option<(String, SsSocket)> = None;
    for line in out.lines() {
        let detail = line.starts_with(char::is_whitespace);
        if !detail {
            if let Some((key, socket)) = current.take() {
                sockets.insert(key, socket);
            }
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let rest = if detail {
            &tokens[..]
        } else {
            // [Netid] State Recv-Q Send-Q Local Peer ...: ss prints Netid when the
            // sockets shown are of more than one kind (unix: u_str, u_dgr, ...). A unix
            // socket's Local is `path inode`, as our key for it.
            let o = usize::from(tokens[0].starts_with("u_") || ["tcp", "udp"].contains(&tokens[0]));
            current = Some((
                format!("{} {}", tokens[3 + o], tokens[4 + o]),
                SsSocket {
                    state: tokens[o].to_string(),
                    ..SsSocket::default()
                },
            ));
            &tokens[5 + o..]
        };
        let socket = &mut current.as_mut().unwrap().1;
        let mut i = 0;
        while i < rest.len() {
            let token = rest[i];
            // `send 1.2Gbps`, `pacing_rate 3bps`, `delivery_rate 4bps`: a word, a value.
            if ["send", "pacing_rate", "delivery_rate"].contains(&token) && i + 1 < rest.len() {
                socket
                    .fields
                    .insert(token.to_string(), rest[i + 1].to_string());
                i += 2;
                continue;
            }
            match token.split_once(':') {
                Some((key, value)) if !key.is_empty() => {
                    socket.fields.insert(key.to_string(), value.to_string());
                }
                _ => socket.words.push(token.to_string()),
            }
            i += 1;
        }
    }
    if let Some((key, socket)) = current {
        sockets.insert(key, socket);
    }
    sockets
}

pub fn endpoint(row: &Row) -> String {
    let side = |a: &str, p: &str| format!("{}:{}", text(row, a).unwrap(), number(row, p).unwrap());
    format!(
        "{} {}",
        side("local_address", "local_port"),
        side("remote_address", "remote_port")
    )
}

/// ss's bandwidth: `123bps`, `1.5Kbps`, `2.3Mbps`, `4Gbps`; and how exact it is.
pub fn bps(text: &str) -> (f64, f64) {
    let number = text.trim_end_matches("bps");
    for (suffix, scale) in [("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)] {
        if let Some(n) = number.strip_suffix(suffix) {
            // Printed with a few digits: within 1%.
            return (n.parse::<f64>().unwrap() * scale, 0.01);
        }
    }
    (number.parse().unwrap(), 0.0)
}

/// Compares every tcp_info field ss printed for one socket with our row.
/// `window_ms`: how long our scan and ss's read took together, ss read after ours: its
/// "ms since" fields are ahead of ours by at most that.
pub fn same_tcp_info(row: &Row, theirs: &SsSocket, what: &str, window_ms: u64) {
    let ours = |column: &str| number(row, column);
    let exact = [
        ("mss", "mss"),
        ("pmtu", "pmtu"),
        ("rcvmss", "rcv_mss"),
        ("advmss", "advmss"),
        ("cwnd", "cwnd"),
        ("ssthresh", "ssthresh"),
        ("bytes_sent", "bytes_sent"),
        ("bytes_retrans", "bytes_retrans"),
        ("bytes_acked", "bytes_acked"),
        ("bytes_received", "bytes_received"),
        ("segs_out", "segs_out"),
        ("segs_in", "segs_in"),
        ("data_segs_out", "data_segs_out"),
        ("data_segs_in", "data_segs_in"),
        ("delivered", "delivered"),
        ("delivered_ce", "delivered_ce"),
        ("unacked", "unacked"),
        ("lost", "lost"),
        ("sacked", "sacked"),
        ("dsack_dups", "dsack_dups"),
        ("reordering", "reordering"),
        ("reord_seen", "reord_seen"),
        ("rcv_space", "rcv_space"),
        ("rcv_ssthresh", "rcv_ssthresh"),
        ("notsent", "notsent_bytes"),
        ("snd_wnd", "snd_wnd"),
        ("rcv_wnd", "rcv_wnd"),
        ("rcv_ooopack", "rcv_ooopack"),
        ("backoff", "backoff"),
        ("ato", "ato_ms"),
        ("rto", "rto_ms"),
    ];
    let mut compared = 0;
    for (key, column) in exact {
        if let Some(value) = theirs.fields.get(key) {
            // rto and ato print as %g of milliseconds: whole here unless the kernel's
            // microseconds are not, then ours is the floor.
            let theirs: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{what} {key}:{value}"));
            assert_eq!(ours(column), Some(theirs.floor() as u64), "{what}: {key}");
            compared += 1;
        }
    }
    for (key, column) in [
        ("lastsnd", "last_send_ms"),
        ("lastrcv", "last_recv_ms"),
        ("lastack", "last_ack_ms"),
    ] {
        if let Some(value) = theirs.fields.get(key) {
            let theirs: u64 = value.parse().unwrap();
            let ours = ours(column).unwrap();
            assert!(
                ours <= theirs + JIFFY_MS && theirs <= ours + window_ms + JIFFY_MS,
                "{what}: {key} {ours} vs {theirs} (read {window_ms} ms apart at most)"
            );
            compared += 1;
        }
    }
    // Busy and limited times: `busy:524ms`, `rwnd_limited:36ms(6.9%)`. Totals that do
    // not move on an idle connection: equal.
    for (key, column) in [
        ("busy", "busy_ms"),
        ("rwnd_limited", "rwnd_limited_ms"),
        ("sndbuf_limited", "sndbuf_limited_ms"),
    ] {
        if let Some(value) = theirs.fields.get(key) {
            let theirs: u64 = value.split("ms").next().unwrap().parse().unwrap();
            assert_eq!(ours(column), Some(theirs), "{what}: {key}");
        }
    }
    // rtt:avg/var and minrtt, rcv_rtt: milliseconds with three decimals of microseconds.
    let ms = |us: Option<u64>| us.unwrap() as f64 / 1000.0;
    if let Some(rtt) = theirs.fields.get("rtt") {
        let (avg, var) = rtt.split_once('/').unwrap();
        assert_eq!(
            avg.parse::<f64>().unwrap(),
            ms(ours("rtt_us")),
            "{what}: rtt"
        );
        assert_eq!(
            var.parse::<f64>().unwrap(),
            ms(ours("rttvar_us")),
            "{what}: rttvar"
        );
        compared += 1;
    }
    // What ss prints nothing for (no sample yet, no loss yet, a listener's unfilled
    // fields) is NULL, never 0 or the kernel's infinite ssthresh.
    for (key, column) in [
        ("rtt", "rtt_us"),
        ("minrtt", "min_rtt_us"),
        ("ssthresh", "ssthresh"),
    ] {
        // (ss prints ssthresh only below 0xFFFF.)
        if !theirs.fields.contains_key(key) && ours(column).is_none_or(|n| n < 0xFFFF) {
            assert_eq!(
                ours(column),
                None,
                "{what}: {column} where ss prints no {key}"
            );
        }
    }
    for (key, column) in [("minrtt", "min_rtt_us"), ("rcv_rtt", "rcv_rtt_us")] {
        if let Some(value) = theirs.fields.get(key) {
            assert_eq!(
                value.parse::<f64>().unwrap(),
                ms(ours(column)),
                "{what}: {key}"
            );
        }
    }
    if let Some(retrans) = theirs.fields.get("retrans") {
        let (now, total) = retrans.split_once('/').unwrap();
        assert_eq!(
            ours("retrans"),
            Some(now.parse().unwrap()),
            "{what}: retrans"
        );
        assert_eq!(
            ours("total_retrans"),
            Some(total.parse().unwrap()),
            "{what}: total"
        );
    }
    if let Some(wscale) = theirs.fields.get("wscale") {
        let (snd, rcv) = wscale.split_once(',').unwrap();
        assert_eq!(
            (ours("snd_wscale"), ours("rcv_wscale")),
            (Some(snd.parse().unwrap()), Some(rcv.parse().unwrap())),
            "{what}"
        );
    }
    // `pacing_rate 1.2Gbps/8Mbps`: the rate, then SO_MAX_PACING_RATE where one is set.
    let pacing = theirs.fields.get("pacing_rate").map(|p| p.split_once('/'));
    let mut fields = theirs.fields.clone();
    if let Some(Some((rate, max))) = pacing {
        fields.insert("pacing_rate".into(), rate.to_string());
        fields.insert("max_pacing_rate".into(), max.to_string());
    }
    for (key, column) in [
        ("send", "send_rate_bps"),
        ("pacing_rate", "pacing_rate_bps"),
        ("max_pacing_rate", "max_pacing_rate_bps"),
        ("delivery_rate", "delivery_rate_bps"),
    ] {
        if let Some(value) = fields.get(key) {
            let (theirs, tolerance) = bps(value);
            let ours = ours(column).unwrap() as f64;
            assert!(
                (ours - theirs).abs() <= theirs * tolerance + 1.0,
                "{what}: {key} {ours} vs {value}"
            );
        } else {
            // ss prints no rate that is 0 or the kernel's "unlimited" (a listener's
            // pacing rate): NULL or 0 here, never a saturated number.
            assert!(
                matches!(ours(column), None | Some(0)),
                "{what}: {column} is {:?} where ss prints no {key}",
                ours(column)
            );
        }
    }
    // Bare words: the algorithm, the options, app_limited.
    let congestion = text(row, "congestion").unwrap();
    assert!(
        theirs.words.contains(&congestion),
        "{what}: {congestion} not in {:?}",
        theirs.words
    );
    let listener = text(row, "state").as_deref() == Some("LISTEN");
    if listener {
        // The kernel fills a listener's cwnd, reordering, unacked and pacing rates only.
        for column in [
            "options",
            "mss",
            "pmtu",
            "rto_ms",
            "bytes_sent",
            "delivery_rate_app_limited",
        ] {
            assert!(
                row[column].is_null(),
                "{what}: a listener's {column}: {}",
                row[column]
            );
        }
    }
    let options: Vec<String> = row["options"]
        .as_array()
        .map(|options| {
            options
                .iter()
                .map(|o| o.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    for option in ["ts", "sack", "ecn", "ecnseen", "fastopen"] {
        assert_eq!(
            options.iter().any(|o| o == option),
            theirs.words.iter().any(|w| w == option),
            "{what}: option {option}"
        );
    }
    if !listener {
        assert_eq!(
            row["delivery_rate_app_limited"].as_bool(),
            Some(theirs.words.iter().any(|w| w == "app_limited")),
            "{what}: app_limited"
        );
    }
    // A listener has little to say; a connection much.
    if !listener {
        assert!(
            compared >= 10,
            "{what}: ss printed too little to compare: {theirs:?}"
        );
    }
}

/// ss -m's `skmem:(r0,rb131072,...)` against our skmem columns, read between two runs
/// of ss: each of ours equals ss's, or lies between its two readings where the kernel
/// moved it meanwhile (a receiver dropping a stalled sender's probes counts drops on
/// its own).
pub fn same_skmem(row: &Row, before: &SsSocket, after: &SsSocket, what: &str) {
    let values = |theirs: &SsSocket| -> Vec<String> {
        let skmem = theirs
            .fields
            .get("skmem")
            .unwrap_or_else(|| panic!("{what}: no skmem in {theirs:?}"));
        skmem
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let (before, after) = (values(before), values(after));
    let columns = [
        ("r", "skmem_rmem_alloc"),
        ("rb", "skmem_rcvbuf"),
        ("t", "skmem_wmem_alloc"),
        ("tb", "skmem_sndbuf"),
        ("f", "skmem_fwd_alloc"),
        ("w", "skmem_wmem_queued"),
        ("o", "skmem_optmem"),
        ("bl", "skmem_backlog"),
        ("d", "drops"),
    ];
    for (((prefix, column), first), last) in columns.iter().zip(&before).zip(&after) {
        let read = |value: &str| -> u64 { value.strip_prefix(prefix).unwrap().parse().unwrap() };
        let (first, last) = (read(first), read(last));
        let ours = number(row, column);
        if first == last {
            assert_eq!(ours, Some(first), "{what}: {column}");
        } else {
            let ours = ours.unwrap_or_else(|| panic!("{what}: {column} is NULL"));
            assert!(
                (first.min(last)..=first.max(last)).contains(&ours),
                "{what}: {column} {ours}, ss {first} then {last}"
            );
        }
    }
}
