//! Fleet queries (`--connect`) on the distributed engine: four servers, each reading its
//! own namespace under its own `--name`, answer as one host, checked against `ss` run
//! inside each namespace; hosts that fail; a wrong token; plans a worker must refuse.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::{Kid, Lines, Netns, RunExt, Server};
use expectrl::Expect;

/// `netsql --netns NS serve --name NAME SERVE_ARGS`, listening on loopback.
fn start(ns: &Netns, name: &str, serve_args: &[&str]) -> Server {
    let mut args = vec!["--name", name];
    args.extend_from_slice(serve_args);
    Server::start(&["--netns", &ns.name], &args)
}

/// The bytes of a `worker.ExecuteTask` log line; `None` for another line.
fn task_bytes(line: &str) -> Option<u64> {
    if !line.contains("call=worker.ExecuteTask") {
        return None;
    }
    assert!(line.contains("status=Ok"), "{line}");
    let bytes = line.split("bytes=").nth(1).unwrap();
    Some(bytes.split(' ').next().unwrap().parse().unwrap())
}

/// The bytes of the next `worker.ExecuteTask` the server logs (within 10 s).
fn next_task_bytes(server: &Server) -> u64 {
    loop {
        let line = server
            .log
            .recv_timeout(Duration::from_secs(10))
            .expect("the server logs its worker calls");
        if let Some(bytes) = task_bytes(&line) {
            return bytes;
        }
    }
}

/// The bytes of each `worker.ExecuteTask` the server logs until 2 s pass without a line.
fn tasks_logged(server: &Server) -> Vec<u64> {
    let mut tasks = Vec::new();
    while let Ok(line) = server.log.recv_timeout(Duration::from_secs(2)) {
        tasks.extend(task_bytes(&line));
    }
    tasks
}

/// `EXPLAIN ANALYZE` of `sql` over `hosts`, and the lines of its stage of one task per
/// host (four), up to the next stage's header.
fn host_stage(hosts: &str, sql: &str) -> (String, String) {
    let out = common::netsql()
        .args(["--connect", hosts, "-e", &format!("EXPLAIN ANALYZE {sql}")])
        .run();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stage = text
        .lines()
        .find(|l| l.contains("Stage") && l.contains("── tasks=4"))
        .unwrap_or_else(|| panic!("no stage of 4 tasks:\n{text}"));
    let after = &text[text.find(stage).unwrap() + stage.len()..];
    let own = after[..after.find("Stage ").unwrap_or(after.len())].to_string();
    (text, own)
}

/// Holds `holder.py`'s sockets at each of `ports` inside `ns`.
fn hold(ns: &Netns, ports: &[u16]) -> Vec<(Kid, Lines)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/holder.py");
    ports
        .iter()
        .map(|port| {
            let mut kid = Kid::spawn(
                ns.command(&["python3", script, &port.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped()),
            );
            let lines = Lines::of(kid.stdout.take().unwrap());
            lines.expect("ready");
            (kid, lines)
        })
        .collect()
}

/// ss's TCP state names as the kernel's (and netsql's).
fn kernel_state(ss: &str) -> String {
    match ss {
        "ESTAB" => "ESTABLISHED".into(),
        "UNCONN" => "CLOSE".into(),
        other => other.replace('-', "_"),
    }
}

/// `ss -Htan` inside `ns`: (state, local port) per TCP socket.
fn ss_tcp(ns: &Netns) -> Vec<(String, u16)> {
    ns.exec_ok(&["ss", "-Htan"])
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields[3].rsplit(':').next().unwrap().parse().unwrap();
            (kernel_state(fields[0]), port)
        })
        .collect()
}

/// `netsql --connect HOSTS --format csv ARGS`.
fn fleet(hosts: &str, args: &[&str]) -> std::process::Output {
    common::netsql()
        .args(["--connect", hosts, "--format", "csv"])
        .args(args)
        .run()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// CSV rows after the header, split at commas.
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

const TCP: &str = "proto IN ('tcp', 'tcp6')";

#[test]
fn four_hosts_answer_as_one() {
    let mut spaces = Vec::new();
    for i in 0..4 {
        let Some(ns) = Netns::create(&format!("fleet{i}"), &["python3", "ss"]) else {
            return;
        };
        spaces.push(ns);
    }
    // Host i holds i + 1 holders: each a v4 and a v6 listener and an established pair.
    let _held: Vec<_> = spaces
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let ports: Vec<u16> = (0..=i as u16)
                .map(|k| 7500 + 100 * i as u16 + 10 * k)
                .collect();
            hold(ns, &ports)
        })
        .collect();
    let servers: Vec<Server> = spaces
        .iter()
        .enumerate()
        .map(|(i, ns)| start(ns, &format!("h{i}"), &[]))
        .collect();
    let hosts = servers
        .iter()
        .map(|s| s.uri(false))
        .collect::<Vec<_>>()
        .join(",");
    let witness: Vec<Vec<(String, u16)>> = spaces.iter().map(ss_tcp).collect();

    // Per host and state: each namespace's ss.
    let sql = format!(
        "SELECT host, state, count(*) AS n FROM sockets WHERE {TCP} GROUP BY host, state ORDER BY host, state"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    let mut want = Vec::new();
    for (i, sockets) in witness.iter().enumerate() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (state, _) in sockets {
            *counts.entry(state).or_default() += 1;
        }
        for (state, n) in counts {
            want.push(vec![format!("h{i}"), state.to_string(), n.to_string()]);
        }
    }
    assert_eq!(got, want);

    // The fleet's states: the sum over the namespaces.
    let sql = format!(
        "SELECT state, count(*) AS n FROM sockets WHERE {TCP} GROUP BY state ORDER BY state"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (state, _) in witness.iter().flatten() {
        *counts.entry(state).or_default() += 1;
    }
    let want: Vec<Vec<String>> = counts
        .iter()
        .map(|(s, n)| vec![s.to_string(), n.to_string()])
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        counts.get("LISTEN"),
        Some(&(2 * (1 + 2 + 3 + 4))),
        "every holder's two listeners"
    );

    // ORDER BY ... LIMIT over the fleet: the same over the union of ss's rows.
    let sql =
        format!("SELECT local_port FROM sockets WHERE {TCP} ORDER BY local_port DESC LIMIT 5");
    let got: Vec<u16> = rows(&stdout(&fleet(&hosts, &["-e", &sql])))
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    let mut all: Vec<u16> = witness.iter().flatten().map(|(_, p)| *p).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, all[..5].to_vec());

    // sockets joined with processes on host and pid: ss -p inside each namespace.
    let sql = format!(
        "SELECT s.host, s.local_port, p.pid, p.name FROM sockets s JOIN processes p \
         ON s.host = p.host AND s.pid = p.pid \
         WHERE s.state = 'LISTEN' AND s.{TCP} ORDER BY s.host, s.local_port"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    let mut owners = Vec::new();
    for (i, ns) in spaces.iter().enumerate() {
        let mut listeners: Vec<(u16, String, String)> = ns
            .exec_ok(&["ss", "-Htlnp"])
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let port = fields[3].rsplit(':').next().unwrap().parse().unwrap();
                // users:(("python3",pid=123,fd=3))
                let users = fields[5];
                let name = users.split('"').nth(1).unwrap().to_string();
                let pid = users.split("pid=").nth(1).unwrap();
                let pid = pid[..pid.find(',').unwrap()].to_string();
                (port, pid, name)
            })
            .collect();
        listeners.sort();
        for (port, pid, name) in listeners {
            owners.push(vec![format!("h{i}"), port.to_string(), pid, name]);
        }
    }
    assert_eq!(got, owners);
    // EXPLAIN ANALYZE counts the join the hosts ran: the sockets it built on are the
    // listeners, and so are the rows it gave (ss -p: each listener has its owner). The
    // left side, sockets, is the build side: fleet scans give the planner no statistics
    // to swap the sides by.
    let (text, own) = host_stage(&hosts, &sql);
    let line = own
        .lines()
        .find(|l| l.contains("HostJoinExec"))
        .unwrap_or_else(|| panic!("no host join:\n{text}"));
    let n = owners.len();
    for want in [
        format!("[output_rows={n},"),
        format!(" build_input_rows={n},"),
    ] {
        assert!(line.contains(&want), "{want}:\n{line}");
    }

    // A third table joined on host as well: both joins run on the hosts. Each listener's
    // parent process, as /proc/<pid>/stat and /proc/<ppid>/comm give it.
    let sql = format!(
        "SELECT s.host, s.local_port, q.pid, q.name FROM sockets s \
         JOIN processes p ON s.host = p.host AND s.pid = p.pid \
         JOIN processes q ON q.host = p.host AND q.pid = p.ppid \
         WHERE s.state = 'LISTEN' AND s.{TCP} ORDER BY s.host, s.local_port"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    let parents: Vec<Vec<String>> = owners
        .iter()
        .map(|owner| {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", owner[2])).unwrap();
            // After "(comm) ": the state, then the parent's pid.
            let ppid = stat.rsplit(") ").next().unwrap().split(' ').nth(1).unwrap();
            let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap();
            let comm = comm.trim_end().to_string();
            vec![owner[0].clone(), owner[1].clone(), ppid.to_string(), comm]
        })
        .collect();
    assert_eq!(got, parents);
    let (text, own) = host_stage(&hosts, &sql);
    assert_eq!(own.matches("HostJoinExec").count(), 2, "{text}");

    // The same keys joined twice: the planner counts on the first join's hashing for the
    // second; both run on the hosts. ss -p inside each namespace again.
    let sql = format!(
        "SELECT s.host, s.local_port, q.pid, q.name FROM sockets s \
         JOIN processes p ON s.host = p.host AND s.pid = p.pid \
         JOIN processes q ON q.host = s.host AND q.pid = s.pid \
         WHERE s.state = 'LISTEN' AND s.{TCP} ORDER BY s.host, s.local_port"
    );
    assert_eq!(rows(&stdout(&fleet(&hosts, &["-e", &sql]))), owners);
    let (text, own) = host_stage(&hosts, &sql);
    assert_eq!(own.matches("HostJoinExec").count(), 2, "{text}");

    // Semi and anti joins on host: every listener has its process on its own host.
    assert_eq!(
        owners.len(),
        2 * (1 + 2 + 3 + 4),
        "ss -p names every listener's owner"
    );
    for (exists, n) in [("EXISTS", owners.len()), ("NOT EXISTS", 0)] {
        let sql = format!(
            "SELECT count(*) AS n FROM sockets s WHERE s.state = 'LISTEN' AND s.{TCP} AND \
             {exists} (SELECT 1 FROM processes p WHERE p.host = s.host AND p.pid = s.pid)"
        );
        let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
        assert_eq!(got, vec![vec![n.to_string()]], "{exists}");
    }

    // Hosts that are NULL, an outer join's padding, joined IS NOT DISTINCT FROM: a NULL
    // meets every NULL, whichever host its row came from, so every padded listener
    // meets every other (20 x 20), not only those of its own host (4 + 16 + 36 + 64).
    let padded = format!(
        "SELECT s.local_port, p.host AS ph FROM sockets s LEFT JOIN processes p \
         ON s.host = p.host AND s.pid = p.pid AND p.pid < 0 \
         WHERE s.state = 'LISTEN' AND s.{TCP}"
    );
    let sql = format!(
        "SELECT count(*) AS n FROM ({padded}) a JOIN ({padded}) b \
         ON a.ph IS NOT DISTINCT FROM b.ph"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    assert_eq!(got, vec![vec![(owners.len() * owners.len()).to_string()]]);
    // The two outer joins still run on the hosts, and only they: the NULLs are their
    // padding, and the join on them is the planner's.
    let (text, _) = host_stage(&hosts, &sql);
    assert_eq!(text.matches("HostJoinExec").count(), 2, "{text}");

    // A host join met by a join the planner hashed on the same keys, whose other side is
    // no fleet table: the parts would not pair, so the planner's joins are kept, and the
    // answer is h1's listeners.
    let h1: Vec<Vec<String>> = owners.iter().filter(|o| o[0] == "h1").cloned().collect();
    let pids: std::collections::BTreeSet<&str> = h1.iter().map(|o| o[2].as_str()).collect();
    let values: Vec<String> = pids
        .iter()
        .map(|pid| format!("('h1', CAST({pid} AS INT))"))
        .collect();
    let sql = format!(
        "SELECT s.host, s.local_port, p.pid, p.name FROM sockets s \
         JOIN processes p ON s.host = p.host AND s.pid = p.pid \
         JOIN (VALUES {}) v(h, pid) ON v.h = s.host AND v.pid = s.pid \
         WHERE s.state = 'LISTEN' AND s.{TCP} ORDER BY s.host, s.local_port",
        values.join(", ")
    );
    assert_eq!(rows(&stdout(&fleet(&hosts, &["-e", &sql]))), h1);

    // A join not on host pairs every host's rows with every other's: all four servers
    // see this machine's processes, so each listener's pid is found on four hosts.
    let sql = format!(
        "SELECT count(*) AS n FROM sockets s JOIN processes p ON s.pid = p.pid \
         WHERE s.state = 'LISTEN' AND s.{TCP}"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    assert_eq!(got, vec![vec![(4 * owners.len()).to_string()]]);

    // EXPLAIN ANALYZE: the partial aggregate runs in a stage of one task per host.
    let (text, own) = host_stage(&hosts, "SELECT state, count(*) FROM sockets GROUP BY state");
    assert!(own.contains("AggregateExec: mode=Partial"), "{text}");
    assert!(own.contains("FleetScan"), "{text}");

    // A join on host runs on each host: the hosts' stage holds the join over both
    // tables' scans, and each server runs one task for the query, not one per table.
    let join = "SELECT count(*) AS n FROM sockets s JOIN processes p \
                ON s.host = p.host AND s.pid = p.pid";
    let (text, own) = host_stage(&hosts, join);
    assert!(own.contains("HostJoinExec"), "{text}");
    assert!(
        own.contains("table=sockets") && own.contains("table=processes"),
        "{text}"
    );
    assert_eq!(text.matches("FleetScan").count(), 8, "{text}");
    servers.iter().for_each(|s| drop(s.lines()));
    stdout(&fleet(&hosts, &["-e", join]));
    for server in &servers {
        let tasks = tasks_logged(server);
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        assert!(tasks[0] < 4096, "{tasks:?}");
    }

    // UNION ALL of two fleet tables: both read on every host.
    let sql = format!(
        "SELECT host, count(*) AS n FROM (SELECT host FROM sockets WHERE {TCP} \
         UNION ALL SELECT host FROM sockets WHERE {TCP}) GROUP BY host ORDER BY host"
    );
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    let want: Vec<Vec<String>> = witness
        .iter()
        .enumerate()
        .map(|(i, s)| vec![format!("h{i}"), (2 * s.len()).to_string()])
        .collect();
    assert_eq!(got, want);

    // A filter on host runs on the hosts, and picks one.
    let sql = format!("SELECT count(*) AS n FROM sockets WHERE {TCP} AND host = 'h2'");
    let got = rows(&stdout(&fleet(&hosts, &["-e", &sql])));
    assert_eq!(got, vec![vec![witness[2].len().to_string()]]);

    // Lookups in the client's files would answer for the wrong machine: refused.
    let out = fleet(
        &hosts,
        &["-e", "SELECT hostname() AS h, count(*) FROM sockets"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hostname()") && err.contains("host column"),
        "{err}"
    );

    // What each server sent for the fleet's GROUP BY (its partial aggregate) is a few
    // KiB, and less than what it sends for its rows.
    servers.iter().for_each(|s| drop(s.lines()));
    let sql = "SELECT state, count(*) AS n FROM sockets GROUP BY state";
    stdout(&fleet(&hosts, &["-e", sql]));
    let grouped: Vec<u64> = servers.iter().map(next_task_bytes).collect();
    stdout(&fleet(&hosts, &["-e", "SELECT * FROM sockets"]));
    let every: Vec<u64> = servers.iter().map(next_task_bytes).collect();
    for (g, r) in grouped.iter().zip(&every) {
        assert!(*g > 0 && *g < 4096, "grouped {grouped:?}, rows {every:?}");
        assert!(*r > 2 * g, "grouped {grouped:?}, rows {every:?}");
    }

    audit_and_snapshot(&spaces, &hosts, &owners, &witness);

    // A host down: the others answer, one line names it, exit 2.
    let mut servers = servers;
    let gone = servers.pop().unwrap();
    let gone_uri = gone.uri(false);
    drop(gone);
    let sql =
        format!("SELECT host, count(*) AS n FROM sockets WHERE {TCP} GROUP BY host ORDER BY host");
    let out = fleet(&hosts, &["-e", &sql]);
    assert_eq!(out.status.code(), Some(2));
    let got = rows(&String::from_utf8_lossy(&out.stdout));
    let want: Vec<Vec<String>> = witness[..3]
        .iter()
        .enumerate()
        .map(|(i, s)| vec![format!("h{i}"), s.len().to_string()])
        .collect();
    assert_eq!(got, want);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&gone_uri), "{err}");

    // An audit then: it passes on the three that answered, but the fourth was not
    // audited, which every format says, and the run exits 2.
    let out = common::netsql()
        .args(["--connect", &hosts, "--format", "json", "audit"])
        .arg("raw_sockets_non_root")
        .run();
    assert_eq!(out.status.code(), Some(2));
    let audits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audits[0]["status"], "error", "{audits}");
    assert_eq!(audits[0]["findings"], serde_json::json!([]), "{audits}");
    let errors = audits[0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{audits}");
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{gone_uri}: ")),
        "{audits}"
    );

    // A saved query: the three hosts' rows, the same line.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tcp.sql"),
        format!("-- name: tcp_sockets\nSELECT count(*) AS n FROM sockets WHERE {TCP}"),
    )
    .unwrap();
    let out = common::netsql()
        .args(["--connect", &hosts, "--format", "csv", "--queries"])
        .arg(dir.path())
        .args(["-q", "tcp_sockets"])
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(rows(&String::from_utf8_lossy(&out.stdout)), want);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&gone_uri), "{err}");

    // --all-hosts: no rows at all.
    let out = fleet(&hosts, &["--all-hosts", "-e", &sql]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(servers);
}

/// `audit`, saved queries and `snapshot` over the fleet, host by host.
fn audit_and_snapshot(
    spaces: &[Netns],
    hosts: &str,
    owners: &[Vec<String>],
    witness: &[Vec<(String, u16)>],
) {
    // An audit joining on pid alone: each host's processes table holds every process of
    // this machine, so over the whole fleet each listener would pair with four rows.
    // Host by host, each finding is its own host's, as `ss -p` there says.
    let dir = tempfile::tempdir().unwrap();
    let owned = dir.path().join("owned.sql");
    std::fs::write(
        &owned,
        "-- name: owned_listeners\n-- description: TCP listeners and their programs\n\
         SELECT s.local_port, p.pid, p.name FROM sockets s JOIN processes p ON s.pid = p.pid \
         WHERE s.state = 'LISTEN' AND s.proto IN ('tcp', 'tcp6') ORDER BY s.local_port, p.pid",
    )
    .unwrap();
    let out = common::netsql()
        .args(["--connect", hosts, "--format", "json", "audit"])
        .args([
            owned.to_str().unwrap(),
            "conntrack_near_full",
            "-p",
            "percent=0",
        ])
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let audits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = |i: usize, columns: &[&str]| -> Vec<Vec<String>> {
        assert_eq!(audits[i]["status"], "fail", "{audits}");
        audits[i]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                columns
                    .iter()
                    .map(|c| match &f[c] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(findings(0, &["host", "local_port", "pid", "name"]), owners);
    // percent=0: every host's namespace is a finding, with that namespace's limit.
    let max = spaces[0].exec_ok(&["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]);
    let want: Vec<Vec<String>> = spaces
        .iter()
        .enumerate()
        .map(|(i, ns)| vec![format!("h{i}"), ns.name.clone(), max.trim().to_string()])
        .collect();
    assert_eq!(findings(1, &["host", "netns_name", "max"]), want);

    // The same file as a saved query runs host by host too, each row's host first.
    let saved = |args: &[&str]| {
        common::netsql()
            .args(["--connect", hosts, "--format", "csv", "--queries"])
            .arg(dir.path())
            .args(args)
            .run()
    };
    assert_eq!(rows(&stdout(&saved(&["-q", "owned_listeners"]))), owners);
    // One that fails on one host: a line naming it and the others' rows (exit 2); with
    // --all-hosts, no rows.
    std::fs::write(
        dir.path().join("picky.sql"),
        "-- name: picky\nSELECT DISTINCT CAST(CASE WHEN host = 'h1' THEN 'x' ELSE '1' END AS INT) AS v \
         FROM sockets",
    )
    .unwrap();
    let out = saved(&["-q", "picky"]);
    assert_eq!(out.status.code(), Some(2));
    let want: Vec<Vec<String>> = ["h0", "h2", "h3"]
        .iter()
        .map(|h| vec![h.to_string(), "1".to_string()])
        .collect();
    assert_eq!(rows(&String::from_utf8_lossy(&out.stdout)), want);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("netsql: h1: "), "{err}");
    let out = saved(&["--all-hosts", "-q", "picky"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("h1: ") && err.contains("--all-hosts"), "{err}");
    // A built-in one: its join on pid and service_name() (this machine's
    // /etc/services, so the host's) run on each host.
    let out = common::netsql()
        .args(["--connect", hosts, "--format", "json", "-q", "listeners"])
        .run();
    let listeners: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let tcp: Vec<Vec<String>> = listeners
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["proto"].as_str().unwrap().starts_with("tcp"))
        .map(|row| {
            ["host", "local_port", "pid", "program"]
                .iter()
                .map(|c| match &row[c] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(tcp, owners);
    assert!(
        listeners[0].as_object().unwrap().contains_key("service"),
        "{listeners}"
    );
    // And the REPL's \run.
    let mut repl = std::process::Command::new(env!("CARGO_BIN_EXE_netsql"));
    repl.args(["--connect", hosts, "--queries"])
        .arg(dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("TERM", "xterm-256color");
    let mut session = expectrl::session::OsSession::spawn(repl).expect("netsql in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session.expect("netsql> ").unwrap();
    session.send("\\run owned_listeners\r").unwrap();
    session
        .expect(format!("({} rows)", owners.len()).as_str())
        .unwrap();
    session.expect("netsql> ").unwrap();
    session.send("\\q\r").unwrap();
    session.expect(expectrl::Eof).unwrap();
    // netstat's text has no place for a host.
    let out = common::netsql()
        .args(["--connect", hosts, "netstat", "-tlnp"])
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not --list, netstat"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A snapshot: each host's rows in its own partition, written here; DuckDB reads the
    // dataset, the host from the path only (the files carry no host column).
    let dest = dir.path().join("history");
    let out = common::netsql()
        .args([
            "--connect",
            hosts,
            "snapshot",
            "--tables",
            "sockets",
            "--to",
        ])
        .arg(&dest)
        .run();
    let files = stdout(&out);
    assert_eq!(files.lines().count(), 4, "{files}");
    for i in 0..4 {
        assert!(files.contains(&format!("/host=h{i}/")), "{files}");
    }
    let script = r#"
import sys, duckdb
files = f"read_parquet('{sys.argv[1]}/sockets/*/*/*.parquet', hive_partitioning = {{}})"
print([c[0] for c in duckdb.sql("DESCRIBE SELECT * FROM " + files.format("false")).fetchall()])
counts = duckdb.sql("SELECT host, count(*) FROM " + files.format("true")
    + " WHERE proto IN ('tcp', 'tcp6') GROUP BY host ORDER BY host").fetchall()
for host, n in counts:
    print(host, n)
"#;
    let read = common::run_ok("python3", &["-c", script, dest.to_str().unwrap()]);
    let mut lines = read.lines();
    let columns = lines.next().unwrap();
    assert!(
        columns.contains("'taken'") && columns.contains("'local_port'"),
        "{columns}"
    );
    assert!(!columns.contains("'host'"), "{columns}");
    let want: Vec<String> = witness
        .iter()
        .enumerate()
        .map(|(i, s)| format!("h{i} {}", s.len()))
        .collect();
    assert_eq!(lines.collect::<Vec<_>>(), want);

    // --host names this machine's rows: not with a fleet's.
    let out = common::netsql()
        .args(["--connect", hosts, "snapshot", "--host", "x", "--to"])
        .arg(&dest)
        .run();
    assert_eq!(out.status.code(), Some(2));
    let out = common::netsql()
        .args(["--connect", hosts, "record", "--count", "1", "--to"])
        .arg(&dest)
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--connect goes with SQL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_host_runs_its_scan_there() {
    let Some(ns) = Netns::create("fleetone", &["python3", "ss"]) else {
        return;
    };
    let _held = hold(&ns, &[7601, 7611, 7621]);
    let server = start(&ns, "only", &[]);
    // The server reads its namespace; were the scan run on the client, it would count
    // the client's.
    let sql = format!("SELECT host, count(*) AS n FROM sockets WHERE {TCP} GROUP BY host");
    let out = fleet(&server.uri(false), &["-e", &sql]);
    let want = format!("host,n\nonly,{}\n", ss_tcp(&ns).len());
    assert_eq!(stdout(&out), want);
    // A shape the engine would run as one task is refused in one line naming what to
    // do, not run on the client (where it would read this machine's rows).
    let shape = "SELECT count(*) AS n FROM interfaces a JOIN interfaces b ON a.mtu > b.mtu";
    let out = fleet(&server.uri(false), &["-e", shape]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{err}");
    assert!(
        err.contains("interfaces: this query's shape is not distributed")
            && err.lines().count() == 1,
        "{err}"
    );
    drop(server);
}

#[test]
fn a_host_renamed_since_the_session_began_is_refused() {
    let Some(ns) = Netns::create("fleetrename", &["ss"]) else {
        return;
    };
    let first = start(&ns, "before", &[]);
    let (uri, addr) = (first.uri(false), first.addr.clone());
    let mut repl = std::process::Command::new(env!("CARGO_BIN_EXE_netsql"));
    repl.args(["--connect", &uri]).env("TERM", "xterm-256color");
    let mut session = expectrl::session::OsSession::spawn(repl).expect("netsql in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session.expect("netsql> ").unwrap();
    let query = "SELECT DISTINCT host FROM interfaces;\r";
    session.send(query).unwrap();
    session.expect("before").unwrap();
    session.expect("netsql> ").unwrap();
    // The same address, another --name: its rows would carry the new name, merged with
    // whichever host has it, under the session's list of hosts. Refused, named.
    drop(first);
    let second = Server::start_at(&addr, &["--netns", &ns.name], &["--name", "after"]);
    assert_eq!(
        second.addr, addr,
        "the address is free again once the first is gone"
    );
    session.send(query).unwrap();
    session
        .expect("this server is now named \"after\", not \"before\"")
        .unwrap();
    session.expect("netsql> ").unwrap();
    session.send("\\q\r").unwrap();
    session.expect(expectrl::Eof).unwrap();
}

#[test]
fn a_host_that_never_answers_costs_one_line() {
    let Some(ns) = Netns::create("fleetslow", &["ss"]) else {
        return;
    };
    let server = start(&ns, "quick", &[]);
    // A listener that accepts and never speaks: a hung host.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_uri = format!("grpc://{}", mute.local_addr().unwrap());
    let hosts = format!("{},{mute_uri}", server.uri(false));
    let sql = "SELECT host, count(*) AS n FROM interfaces GROUP BY host";
    let started = std::time::Instant::now();
    let out = fleet(&hosts, &["--host-timeout", "1s", "-e", sql]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host,n\nquick,1\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&mute_uri) && err.contains("--host-timeout"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(mute);
}

#[test]
fn two_hosts_by_one_name_are_refused() {
    let (Some(one), Some(two)) = (
        Netns::create("fleetsame1", &[]),
        Netns::create("fleetsame2", &[]),
    ) else {
        return;
    };
    let first = start(&one, "twin", &[]);
    let second = start(&two, "twin", &[]);
    let hosts = format!("{},{}", first.uri(false), second.uri(false));
    let sql = "SELECT host, count(*) AS n FROM interfaces GROUP BY host";
    let out = fleet(&hosts, &["-e", sql]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host,n\ntwin,1\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&second.uri(false)) && err.contains("--name"),
        "{err}"
    );
}

#[test]
fn a_worker_wants_the_token() {
    let Some(ns) = Netns::create("fleettoken", &["ss"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let wrong = dir.path().join("wrong");
    use std::os::unix::fs::PermissionsExt;
    for (path, text) in [(&token, "s3cret\n"), (&wrong, "guess\n")] {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let server = start(&ns, "locked", &["--token-file", token.to_str().unwrap()]);
    let sql = "SELECT host, count(*) AS n FROM interfaces GROUP BY host";
    let out = fleet(
        &server.uri(false),
        &["--token-file", wrong.to_str().unwrap(), "-e", sql],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bearer token"), "{err}");
    let out = fleet(
        &server.uri(false),
        &["--token-file", token.to_str().unwrap(), "-e", sql],
    );
    let got = stdout(&out);
    assert_eq!(got, "host,n\nlocked,1\n", "lo alone");
    // The refusal is in the server's log, as Flight SQL's are.
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("Unauthenticated")), "{log:?}");
}

/// `--connect grpc+tls://` trusts a host's certificate through the CA `--tls-ca` names:
/// the query answers. Without it the host is refused (an issuer nobody vouched for):
/// one line naming it, exit 2, no rows.
#[test]
fn a_tls_host_is_trusted_through_the_ca_given() {
    let Some(ns) = Netns::create("fleettls", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_key) = common::self_signed(dir.path(), "ca", "/CN=netsql-test-ca", &[]);
    let (cert, key) = common::signed_by(
        dir.path(),
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        (&ca, &ca_key),
    );
    let server = start(
        &ns,
        "sealed",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let sql = "SELECT host, count(*) AS n FROM interfaces GROUP BY host";
    let links = ns.exec_ok(&["ip", "-o", "link"]).lines().count();
    let out = fleet(
        &server.uri(true),
        &["--tls-ca", ca.to_str().unwrap(), "-e", sql],
    );
    assert_eq!(stdout(&out), format!("host,n\nsealed,{links}\n"));
    let out = fleet(&server.uri(true), &["-e", sql]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{err}");
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.contains(&server.uri(true))),
        "{err}"
    );
    assert!(
        err.contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
}

/// The worker resolver of a hand-made coordinator.
struct Urls(Vec<url::Url>);

impl datafusion_distributed::WorkerResolver for Urls {
    fn get_urls(&self) -> datafusion::error::Result<Vec<url::Url>> {
        Ok(self.0.clone())
    }
}

/// The first log line of `server` holding `text`, waiting up to 10 s for it.
fn logged(server: &Server, text: &str) -> String {
    let mut seen = Vec::new();
    while let Ok(line) = server.log.recv_timeout(Duration::from_secs(10)) {
        if line.contains(text) {
            return line;
        }
        seen.push(line);
    }
    panic!("no log line with {text:?} in {seen:?}");
}

/// A coordinator of DataFusion's own that sends every DataSourceExec to `server` as two
/// tasks: a peer that passed the token could send what it sends.
fn coordinator(server: &Server) -> datafusion::prelude::SessionContext {
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::SessionStateBuilder;
    use datafusion_distributed::{
        DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExt,
        SessionStateBuilderExt,
    };
    let url = url::Url::parse(&format!("http://{}", server.addr)).unwrap();
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_distributed_worker_resolver(Urls(vec![url.clone(), url]))
        .with_distributed_planner()
        .with_distributed_desired_task_count_handler(|ev: DesiredTaskCountEvent| {
            ev.plan
                .downcast_ref::<DataSourceExec>()
                .map(|_| Ok(DesiredTaskCountEventResponse::desired(2)))
        })
        .build();
    datafusion::prelude::SessionContext::new_with_state(state)
}

#[test]
fn a_worker_refuses_plans_that_read_files() {
    use datafusion::prelude::{CsvReadOptions, JsonReadOptions};

    let Some(ns) = Netns::create("fleethostile", &[]) else {
        return;
    };
    let server = start(&ns, "target", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ctx = coordinator(&server);
        ctx.register_csv(
            "shadow",
            "/etc/shadow",
            CsvReadOptions::new()
                .has_header(false)
                .delimiter(b':')
                .file_extension(""),
        )
        .await
        .unwrap();
        std::fs::write(ns_path("fleet-hostile.json"), "{\"a\": 1}\n").unwrap();
        ctx.register_json(
            "json",
            ns_path("fleet-hostile.json").to_str().unwrap(),
            JsonReadOptions::default(),
        )
        .await
        .unwrap();
        // Each side of a UNION ALL is a task of its own: two tasks, sent to the server.
        // The grouped one also sends the final aggregate's stage, which reads the
        // others' output from their workers.
        for (sql, node) in [
            ("SELECT * FROM shadow UNION ALL SELECT * FROM shadow", "DataSourceExec"),
            (
                "SELECT column_1, count(*) FROM (SELECT * FROM shadow UNION ALL SELECT * FROM shadow) GROUP BY column_1",
                "NetworkShuffleExec",
            ),
            ("SELECT * FROM json UNION ALL SELECT * FROM json", "DataSourceExec"),
        ] {
            let result = ctx.sql(sql).await.unwrap().collect().await;
            let err = match result {
                Ok(batches) => panic!("{sql}: the worker ran it: {batches:?}"),
                Err(err) => err.to_string(),
            };
            assert!(err.contains("permission denied"), "{sql}: {err}");
            assert!(err.contains(node), "{sql}: {err}");
        }
    });
    let _ = std::fs::remove_file(ns_path("fleet-hostile.json"));
}

/// A plan bigger than any stage netsql sends (rows carried in the plan, 20 MiB) is
/// refused before the worker decodes it: one client cannot fill a host's memory.
#[test]
fn a_worker_refuses_an_oversized_plan() {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};

    let Some(ns) = Netns::create("fleetbig", &[]) else {
        return;
    };
    let server = start(&ns, "target", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ctx = coordinator(&server);
        let megabyte = "x".repeat(1 << 20);
        let column: ArrayRef = std::sync::Arc::new(StringArray::from(vec![megabyte; 20]));
        let batch = RecordBatch::try_from_iter([("c", column)]).unwrap();
        ctx.register_batch("big", batch).unwrap();
        let sql = "SELECT length(c) FROM big UNION ALL SELECT length(c) FROM big";
        let result = ctx.sql(sql).await.unwrap().collect().await;
        let err = match result {
            Ok(batches) => panic!("the worker ran it: {} batches", batches.len()),
            Err(err) => err.to_string(),
        };
        // The coordinator hears of it only as the plan never arriving; the server's log
        // says why.
        assert!(err.contains("plan"), "{err}");
    });
    let line = logged(&server, "call=worker.CoordinatorChannel");
    assert!(line.contains("status=OutOfRange"), "{line}");
    // The server is still there for the next client.
    let out = fleet(
        &server.uri(false),
        &[
            "-e",
            "SELECT host, count(*) AS n FROM interfaces GROUP BY host",
        ],
    );
    assert_eq!(stdout(&out), "host,n\ntarget,1\n");
}

/// An edit distance of two strings of 60,000 and 90,000 characters per interface: a
/// namespace of the test's own has `lo` alone, so seconds of work, in little memory, in
/// the stage the host runs, whatever the machine runs besides.
const SLOW: &str = "SELECT host, count(*) AS n FROM interfaces \
    WHERE levenshtein(repeat(name, 30000), repeat(name || 'x', 30000)) > 0 GROUP BY host";

/// A fleet query's stage on a host ends at that server's --query-timeout, as a Flight
/// SQL query does.
#[test]
fn a_workers_stage_ends_at_the_query_timeout() {
    let Some(ns) = Netns::create("fleettimeout", &[]) else {
        return;
    };
    let server = start(&ns, "timed", &["--query-timeout", "1s"]);
    let started = std::time::Instant::now();
    let out = fleet(&server.uri(false), &["-e", SLOW]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--query-timeout"), "{err}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // The server logs a call when its stream ends, which may be after the client exits.
    logged(&server, "status=DeadlineExceeded");
}

/// Continues a stopped server when dropped, so that it can be stopped for good.
struct Stopped(i32);

impl Stopped {
    fn stop(server: &Server) -> Stopped {
        let pid = server.kid.0.id() as i32;
        // SAFETY: a signal to a child this test started and still holds.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// A host that hangs during a query (its server stopped: no answer, no error, no
/// closed connection) fails the query naming it within about twice --host-timeout, found
/// by the connection's pings; the other host's part would have taken ~5 s.
#[test]
fn a_host_that_hangs_mid_query_is_named_within_its_timeout() {
    let (Some(one), Some(two)) = (
        Netns::create("fleethang1", &[]),
        Netns::create("fleethang2", &[]),
    ) else {
        return;
    };
    let busy = start(&one, "busy", &[]);
    let hung = start(&two, "hung", &[]);
    let hosts = format!("{},{}", busy.uri(false), hung.uri(false));
    let client = Kid::spawn(
        common::netsql()
            .args(["--connect", &hosts, "--host-timeout", "2s", "-e", SLOW])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // The hung host answers the client's probe (its log's first line) before the stages
    // go out; a second after that, each host runs its part (~5 s).
    let probed = hung
        .log
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs the query's probe");
    assert!(probed.contains("call=worker.GetWorkerInfo"), "{probed}");
    std::thread::sleep(Duration::from_secs(1));
    let stopped = Stopped::stop(&hung);
    // About twice --host-timeout after the stop; the other host's part ends by ~5 s.
    let out = client.finish_within(Duration::from_secs(9));
    drop(stopped);
    let (status, rows) = (out.status, String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(rows.is_empty(), "{rows}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&hung.uri(false)), "{err}");
    assert!(
        err.contains("connection lost after") && err.contains("with no reply (--host-timeout 2 s)"),
        "{err}"
    );
}

/// While one fleet query runs on a server started with --max-queries 1, another is
/// refused at once, as a second Flight SQL query would be; afterwards it runs.
#[test]
fn a_workers_stages_take_its_query_slots() {
    let Some(ns) = Netns::create("fleetbusy", &[]) else {
        return;
    };
    let server = start(&ns, "single", &["--max-queries", "1"]);
    let quick = "SELECT host, count(*) AS n FROM interfaces GROUP BY host";
    let slow = Kid::spawn(
        common::netsql()
            .args([
                "--connect",
                &server.uri(false),
                "--format",
                "csv",
                "-e",
                SLOW,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // The first query's probe is answered before its stage starts: after that (and a
    // moment for the stage's call to arrive), a second one.
    let probed = server
        .log
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs the first query's probe");
    assert!(probed.contains("call=worker.GetWorkerInfo"), "{probed}");
    std::thread::sleep(Duration::from_millis(500));
    let mut refused = None;
    let mut slow = slow;
    while refused.is_none() && slow.try_wait().unwrap().is_none() {
        let out = fleet(&server.uri(false), &["-e", quick]);
        if !out.status.success() {
            refused = Some(out);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(refused) = refused else {
        let first = slow.finish_within(Duration::from_secs(120));
        panic!("no query was refused while the first ran: {first:?}");
    };
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(err.contains("--max-queries"), "{err}");
    let first = slow.finish_within(Duration::from_secs(120));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("host,n\nsingle,"));
    // The slot is free again.
    assert_eq!(
        stdout(&fleet(&server.uri(false), &["-e", quick])),
        "host,n\nsingle,1\n"
    );
}

fn ns_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}
