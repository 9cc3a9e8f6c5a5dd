//! The built-in audits against a namespace built to trip every one of them, and an empty
//! one where all pass; exit codes, JSON and JUnit output.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use common::{Netns, RunExt};
use serde_json::Value;
use socket2::{Domain, Socket, Type};

const ETC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/etc");

fn listener(addr: &str) -> Socket {
    let addr: SocketAddr = addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(8).unwrap();
    socket
}

/// Children holding sockets, killed on drop.
struct Tripped {
    children: Vec<Child>,
    _held: Vec<OwnedFd>,
    deleted_pid: u32,
    raw_pid: u32,
}

impl Drop for Tripped {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `program 300`, inheriting `sockets` alone: their close-on-exec is cleared in the child,
/// so a process another test spawns meanwhile holds none of them.
fn spawn(program: &std::path::Path, uid: Option<u32>, sockets: &[&Socket]) -> Child {
    let mut command = Command::new(program);
    command.arg("300").stdin(Stdio::null());
    let fds: Vec<_> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    common::inherit(&mut command, &fds);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    command.spawn().unwrap()
}

/// Runs inside the namespace: one socket (or process) for each audit to find.
fn trip(ns: String, dir: std::path::PathBuf) -> Tripped {
    let sleep = std::path::Path::new("/bin/sleep");
    // wildcard_listeners, root_high_port_listeners, unnamed_listeners: a root `sleep`
    // on 0.0.0.0:7200, a port /etc/services does not name.
    let wide = listener("0.0.0.0:7200");
    // well_known_port_impostors: `sleep` on the http port.
    let http = listener("127.0.0.1:80");
    let mut children = vec![spawn(sleep, None, &[&wide, &http])];
    drop((wide, http));

    // deleted_executables: a copy of sleep, removed once it runs, holding a socket.
    let copy = dir.join("vanishing");
    std::fs::copy(sleep, &copy).unwrap();
    let held = listener("127.0.0.1:7201");
    let deleted = spawn(&copy, None, &[&held]);
    let deleted_pid = deleted.id();
    children.push(deleted);
    drop(held);
    std::fs::remove_file(&copy).unwrap();

    // Not root_high_port_listeners: a listener made by root (its uid is 0), held only
    // by a process running as nobody, as a service that bound and dropped root.
    let dropped = listener("0.0.0.0:7204");
    children.push(spawn(sleep, Some(65534), &[&dropped]));
    drop(dropped);

    // raw_sockets_non_root: a raw ICMP socket passed to a process running as nobody.
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::ICMPV4)).unwrap();
    let nobody = spawn(sleep, Some(65534), &[&raw]);
    let raw_pid = nobody.id();
    children.push(nobody);
    drop(raw);

    // close_wait_leaks (with max = 1): two connections whose peers closed, held here,
    // each on two descriptors (a dup): two sockets, not four.
    let lst = TcpListener::bind("127.0.0.1:7202").unwrap();
    let mut held: Vec<OwnedFd> = Vec::new();
    for _ in 0..2 {
        let client = TcpStream::connect("127.0.0.1:7202").unwrap();
        let (server, _) = lst.accept().unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        held.extend([
            client.into(),
            server.try_clone().unwrap().into(),
            server.into(),
        ]);
    }

    // stuck_send_queues (with max_bytes = 100): 1000 bytes the peer never acknowledges.
    let lst2 = TcpListener::bind("127.0.0.1:7203").unwrap();
    let mut client = TcpStream::connect("127.0.0.1:7203").unwrap();
    let (server, _) = lst2.accept().unwrap();
    common::run_ok(
        "ip",
        &[
            "netns", "exec", &ns, "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "7203",
            "-j", "DROP",
        ],
    );
    // Unacknowledged (and in Send-Q) as soon as the write returns.
    client.write_all(&[0u8; 1000]).unwrap();
    held.extend([lst.into(), lst2.into(), client.into(), server.into()]);
    let _ = held.iter().map(AsRawFd::as_raw_fd).count();
    Tripped {
        children,
        _held: held,
        deleted_pid,
        raw_pid,
    }
}

fn audit(ns: &Netns, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec![
        "audit",
        "--etc",
        ETC,
        "--format",
        "json",
        "-p",
        "max=1",
        "-p",
        "max_bytes=100",
    ];
    args.extend_from_slice(extra);
    let out = ns.netsql(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), json.as_array().unwrap().clone(), stderr)
}

fn by_name<'a>(audits: &'a [Value], name: &str) -> &'a Value {
    audits
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no audit {name}"))
}

fn findings<'a>(audits: &'a [Value], name: &str) -> &'a Vec<Value> {
    by_name(audits, name)["findings"].as_array().unwrap()
}

#[test]
fn built_in_audits_trip_and_pass() {
    let Some(clean) = Netns::create("audit-clean", &["iptables", "python3"]) else {
        return;
    };
    // An empty namespace: every audit passes, exit 0.
    let (code, audits, stderr) = audit(&clean, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(audits.len(), 13);
    for a in &audits {
        assert_eq!(a["status"], "pass", "{a}");
    }
    drop(clean);

    let ns = Netns::create("audit-trip", &["iptables", "ss"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tripped = {
        let (name, dir) = (ns.name.clone(), dir.path().to_path_buf());
        ns.within(move || trip(name, dir))
    };
    // Each child has exec'd (spawn returns after exec); the peers' FINs may still be
    // on their way through loopback.
    common::wait_until(
        "two connections in CLOSE-WAIT on 7202",
        std::time::Duration::from_secs(30),
        || {
            ns.exec_ok(&["ss", "-Htn", "state", "close-wait", "sport", "= :7202"])
                .lines()
                .count()
                == 2
        },
    );
    let junit = dir.path().join("audit.xml");
    let (code, audits, stderr) = audit(&ns, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    for a in &audits {
        // Tripped elsewhere: netns_all makes a fake container, netns_tcp_info drops
        // datagrams, stalls a window and drops ACKs until a connection retransmits,
        // netns_conntrack fills past a threshold.
        let elsewhere = [
            "container_wildcard_listeners",
            "udp_drops",
            "retransmit_storm",
            "zero_window_stalls",
            "conntrack_near_full",
        ];
        let want = if elsewhere.iter().any(|n| a["name"] == *n) {
            "pass"
        } else {
            "fail"
        };
        assert_eq!(a["status"], want, "every other audit finds something: {a}");
    }
    let ports = |name: &str| -> Vec<i64> {
        findings(&audits, name)
            .iter()
            .filter_map(|f| f["local_port"].as_i64())
            .collect()
    };
    assert!(ports("wildcard_listeners").contains(&7200));
    assert!(
        !ports("wildcard_listeners").contains(&80),
        "80 is on 127.0.0.1"
    );
    assert!(ports("root_high_port_listeners").contains(&7200));
    assert!(
        !ports("root_high_port_listeners").contains(&7204),
        "7204 is held by nobody"
    );
    let made_by_root = ns.exec_ok(&["ss", "-tlnHe", "sport = :7204"]);
    assert!(
        !made_by_root.contains("uid:"),
        "ss: the socket's uid is 0: {made_by_root}"
    );
    assert!(ports("unnamed_listeners").contains(&7200));
    assert!(!ports("unnamed_listeners").contains(&80), "80 is http");
    let impostor = &findings(&audits, "well_known_port_impostors")[0];
    assert_eq!(
        (
            impostor["local_port"].as_i64(),
            impostor["service"].as_str()
        ),
        (Some(80), Some("http"))
    );
    let leak = &findings(&audits, "close_wait_leaks")[0];
    assert_eq!(leak["pid"].as_i64(), Some(i64::from(std::process::id())));
    assert_eq!(leak["close_wait"].as_i64(), Some(2));
    let stuck = &findings(&audits, "stuck_send_queues")[0];
    assert_eq!(
        (stuck["remote_port"].as_i64(), stuck["send_q"].as_i64()),
        (Some(7203), Some(1000))
    );
    let deleted = &findings(&audits, "deleted_executables")[0];
    assert_eq!(
        deleted["pid"].as_i64(),
        Some(i64::from(tripped.deleted_pid))
    );
    assert!(
        deleted["exe"]
            .as_str()
            .unwrap()
            .ends_with("/vanishing (deleted)"),
        "{deleted}"
    );
    let raw = &findings(&audits, "raw_sockets_non_root")[0];
    assert_eq!(
        (
            raw["pid"].as_i64(),
            raw["uid"].as_i64(),
            raw["ip_protocol"].as_i64()
        ),
        (Some(i64::from(tripped.raw_pid)), Some(65534), Some(1))
    );

    // JUnit XML, read by a real XML parser: one failing case per audit, named after it,
    // its message counting the findings, its text the findings as CSV.
    let script = "import sys, json, xml.etree.ElementTree as E; s = E.parse(sys.argv[1]).getroot(); \
                  print(json.dumps({'tests': s.get('tests'), 'failures': s.get('failures'), 'cases': \
                  [{'name': c.get('name'), 'message': f.get('message'), 'text': f.text} \
                  for c in s.findall('testcase') for f in c.findall('failure')]}))";
    let out = Command::new("python3")
        .args(["-c", script, junit.to_str().unwrap()])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (xml["tests"].as_str(), xml["failures"].as_str()),
        (Some("13"), Some("8"))
    );
    let cases = xml["cases"].as_array().unwrap();
    let mut names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "close_wait_leaks",
            "deleted_executables",
            "raw_sockets_non_root",
            "root_high_port_listeners",
            "stuck_send_queues",
            "unnamed_listeners",
            "well_known_port_impostors",
            "wildcard_listeners"
        ]
    );
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let n = findings(&audits, name).len();
        let message = case["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{n} finding(s), severity ")),
            "{name}: {message}"
        );
        let description = by_name(&audits, name)["description"].as_str().unwrap();
        assert!(message.ends_with(description), "{name}: {message}");
        // A header line, then one line per finding.
        let text = case["text"].as_str().unwrap();
        assert_eq!(text.lines().count(), n + 1, "{name}: {text}");
    }
    let stuck_csv = cases
        .iter()
        .find(|c| c["name"] == "stuck_send_queues")
        .unwrap()["text"]
        .as_str()
        .unwrap();
    assert!(
        stuck_csv.contains(",7203,") && stuck_csv.contains(",1000"),
        "{stuck_csv}"
    );

    // -o writes the same report to a file, all at once, and the exit code still says 1.
    let report = dir.path().join("report.json");
    let out = ns.netsql(&[
        "audit",
        "--etc",
        ETC,
        "-p",
        "max=1",
        "-p",
        "max_bytes=100",
        "-o",
        report.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let written: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let statuses = |list: &[Value]| -> Vec<(String, String, usize)> {
        let mut v: Vec<_> = list
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["status"].as_str().unwrap().to_string(),
                    a["findings"].as_array().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(statuses(written.as_array().unwrap()), statuses(&audits));

    // Parameters: an allowlist that names sleep clears the wildcard finding; the rest
    // still fail, so the exit code stays 1.
    let (code, allowed, stderr) = audit(&ns, &["-p", "allow=sleep,sshd"]);
    assert_eq!(code, Some(1), "{stderr}");
    let wide = findings(&allowed, "wildcard_listeners");
    assert!(
        wide.iter().all(|f| f["local_port"].as_i64() != Some(7200)),
        "{wide:?}"
    );
    assert_eq!(
        by_name(&allowed, "wildcard_listeners")["status"],
        "pass",
        "{wide:?}"
    );
    // Programs allowed on a wildcard address are not programs trusted on a well-known
    // port: the same `allow` list used to replace both, so the documented `-p
    // allow=sshd,nginx` flagged every other trusted daemon (and here cleared sleep).
    assert_eq!(
        by_name(&allowed, "well_known_port_impostors")["status"],
        "fail",
        "{allowed:?}"
    );
    let (_, trusted, stderr) = audit(&ns, &["-p", "trusted=sleep"]);
    assert_eq!(
        by_name(&trusted, "well_known_port_impostors")["status"],
        "pass",
        "{stderr}"
    );
    // A list as people type it, spaces after the commas; a name that reads as a number
    // is still a name (it failed every list audit with DataFusion's internal error).
    let (_, spaced, stderr) = audit(
        &ns,
        &["-p", "allow=sshd, sleep", "-p", "trusted=cupsd, sleep"],
    );
    for name in ["wildcard_listeners", "well_known_port_impostors"] {
        assert_eq!(by_name(&spaced, name)["status"], "pass", "{name}: {stderr}");
    }
    let (code, numbered, stderr) = audit(&ns, &["-p", "allow=5", "-p", "trusted=5"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        by_name(&numbered, "wildcard_listeners")["status"],
        "fail",
        "{stderr}"
    );
    drop(tripped);
}

#[test]
fn audit_errors_name_the_file_and_exit_2() {
    // A name that is no file and no built-in audit: said so, with the near names.
    let out = common::netsql().args(["audit", "wildcard_listener"]).run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no built-in audit of that name (did you mean container_wildcard_listeners, wildcard_listeners?)"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sql");
    std::fs::write(&bad, "-- name: bad\nSELECT nope FROM sockets").unwrap();
    let out = common::netsql()
        .args(["audit", bad.to_str().unwrap()])
        .run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("netsql: ") && err.contains("bad.sql") && err.contains("nope"),
        "{err}"
    );

    let writes = dir.path().join("writes.sql");
    let never = dir.path().join("never.csv");
    std::fs::write(&writes, format!("COPY (SELECT 1) TO '{}'", never.display())).unwrap();
    let out = common::netsql()
        .args(["audit", writes.to_str().unwrap()])
        .run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("writes.sql") && err.contains("read-only"),
        "{err}"
    );
    assert!(!never.exists(), "the audit wrote {}", never.display());

    // A folder of audits runs each; one with rows fails the run (exit 1), in the summary.
    let folder = dir.path().join("mine");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join("a.sql"),
        "-- name: always\n-- severity: low\n-- description: finds one row\nSELECT 1 AS one",
    )
    .unwrap();
    std::fs::write(
        folder.join("b.sql"),
        "-- name: never\n-- description: finds nothing\n-- param: n = 5\nSELECT 1 WHERE 1 > $n",
    )
    .unwrap();
    let out = common::netsql()
        .args(["audit", folder.to_str().unwrap()])
        .run();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  low      always: finds one row"),
        "{text}"
    );
    assert!(
        text.contains("PASS  -        never: finds nothing"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("2 audits: 1 passed, 1 failed"),
        "{text}"
    );
    // -p overrides the default: 1 > 0 finds a row.
    let out = common::netsql()
        .args(["audit", folder.join("b.sql").to_str().unwrap(), "-p", "n=0"])
        .run();
    assert_eq!(out.status.code(), Some(1));
}
