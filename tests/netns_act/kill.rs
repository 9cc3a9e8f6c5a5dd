//! `DELETE FROM sockets`: what it closes is exactly what its WHERE selects, checked with
//! `ss` and with the processes on both ends; every way of not asking is refused.

use std::collections::BTreeSet;
use std::process::Output;

use crate::common::{self, Netns, RunExt};
use crate::{netsql_in, ss, Peer};

const SERVED: u16 = 7301;
const OTHER: u16 = 7302;
const UDP_PORT: u16 = 7303;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Local ports of the established connections `ss` shows to `port`.
pub fn client_ports(ns: &Netns, port: u16) -> BTreeSet<u16> {
    ss(
        ns,
        &["-tn", "state", "established", &format!("dport = :{port}")],
    )
    .iter()
    .map(|line| {
        let local = line.split(' ').nth(2).expect("local column");
        local.rsplit(':').next().unwrap().parse().unwrap()
    })
    .collect()
}

/// Whether `ss -K` can close sockets here: the kernel feature the DELETE needs. `Err`
/// when ss itself failed (so the probe says nothing about the kernel).
pub fn ss_can_kill(ns: &Netns) -> Result<bool, String> {
    let probe = Peer::start(ns, "probe", &["serve", "7399"]);
    let client = Peer::start(ns, "probec", &["connect", "7399:1"]);
    let out = ns.exec(&["ss", "-K", "dport = :7399"]);
    if !out.status.success() {
        return Err(format!("ss -K failed: {}", stderr(&out).trim()));
    }
    let closed = client_ports(ns, 7399).is_empty();
    drop((probe, client));
    Ok(closed)
}

/// Whether this machine can close sockets at all; else the test says why (a skip when
/// ss cannot either, a failure under NETSQL_REQUIRE_NETNS when ss itself failed).
pub fn can_kill(ns: &Netns) -> bool {
    match ss_can_kill(ns) {
        Ok(true) => true,
        // ss ran and closed nothing: the kernel cannot, netsql need not.
        Ok(false) => {
            eprintln!(
                "skipped: ss -K cannot close sockets on this kernel (no CONFIG_INET_DIAG_DESTROY)"
            );
            false
        }
        Err(why) => {
            common::skip_or_fail(&why);
            false
        }
    }
}

/// Whether `ss -K` can close a UDP socket here (udp_abort): its owner sees ECONNABORTED.
/// (ss, like netsql, ignores EOPNOTSUPP from a kernel that cannot.)
fn ss_can_kill_udp(ns: &Netns) -> Result<bool, String> {
    let script = "import socket, subprocess\n\
                  u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  u.bind(('127.0.0.1', 7398))\n\
                  u.setblocking(False)\n\
                  r = subprocess.run(['ss', '-uaK', 'sport = :7398'], capture_output=True)\n\
                  fate = 'open'\n\
                  try:\n    u.recv(1)\n\
                  except ConnectionAbortedError:\n    fate = 'aborted'\n\
                  except BlockingIOError:\n    pass\n\
                  print(r.returncode, fate, r.stderr.decode().strip().replace('\\n', ' '))\n";
    let out = ns.exec_ok(&["python3", "-c", script]);
    let mut words = out.trim().splitn(3, ' ');
    match (words.next(), words.next()) {
        (Some("0"), Some(fate)) => Ok(fate == "aborted"),
        _ => Err(format!("ss -uaK failed: {}", out.trim())),
    }
}

#[test]
fn delete_closes_exactly_what_the_where_selects() {
    let Some(ns) = Netns::create("kill", &["ss", "python3"]) else {
        return;
    };
    if !can_kill(&ns) {
        return;
    }
    let mut server = Peer::start(
        &ns,
        "killsrv",
        &["serve", &SERVED.to_string(), &OTHER.to_string()],
    );
    let mut a = Peer::start(
        &ns,
        "killa",
        &[
            "connect",
            &format!("{SERVED}:10"),
            &format!("{OTHER}:3"),
            &format!("udp:{UDP_PORT}"),
        ],
    );
    let mut b = Peer::start(&ns, "killb", &["connect", &format!("{SERVED}:10")]);
    let before = client_ports(&ns, SERVED);
    assert_eq!(before.len(), 20);
    let a_sql = format!("DELETE FROM sockets WHERE program = 'killa' AND remote_port = {SERVED}");

    // Asking without meaning it closes nothing.
    let refused = netsql_in(&ns, &["-e", &a_sql]).run();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("--allow-kill"),
        "{}",
        stderr(&refused)
    );
    // A snapshot of the same sockets, whose rows must never be read as the host's.
    let history = std::env::temp_dir().join(format!("netsql-kill-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&history);
    let history_dir = history.to_str().unwrap();
    let snap = netsql_in(
        &ns,
        &["snapshot", "--to", history_dir, "--tables", "sockets"],
    )
    .run();
    assert!(snap.status.success(), "{}", stderr(&snap));
    let from_history =
        format!("DELETE FROM history.sockets WHERE program = 'killa' AND remote_port = {SERVED}");
    let in_schema = format!(
        "CREATE SCHEMA s; CREATE TABLE s.sockets AS SELECT * FROM sockets; \
         DELETE FROM s.sockets WHERE remote_port = {SERVED}"
    );
    // Namespace filters alone choose whole namespaces (each kept to ours, should the
    // rule break).
    let whole_namespace = format!("DELETE FROM sockets WHERE netns_name = '{}'", ns.name);
    let every_namespace = format!(
        "DELETE FROM sockets WHERE netns IS NOT NULL AND netns = {}",
        ns.inode()
    );
    // Each refused with its own reason, in one line (a parse error would not do).
    const WHOLE: &str = "refused unless --allow-kill=all";
    const ONLY_WITH: &str = "--allow-kill goes with -e, -f or the REPL only";
    const NOT_LIVE: &str = "is not a live table";
    for (args, why) in [
        (
            vec![
                "--history",
                history_dir,
                "--allow-kill",
                "-e",
                &from_history,
            ],
            NOT_LIVE,
        ),
        (vec!["--allow-kill", "-e", &in_schema], NOT_LIVE),
        // Nothing closed, none closable: /proc gives no cookie to name a socket by.
        (
            vec!["--source", "proc", "--allow-kill", "-e", &a_sql],
            "closed 0 of 10 matching sockets; 10 tcp without a cookie (read from /proc) cannot be closed",
        ),
        (vec!["--allow-kill", "-e", &whole_namespace], WHOLE),
        (vec!["--allow-kill", "-e", &every_namespace], WHOLE),
        (vec!["--read-only", "-e", a_sql.as_str()], "read-only: "),
        (
            vec!["--allow-kill", "--read-only", "-e", a_sql.as_str()],
            ONLY_WITH,
        ),
        (
            vec!["--allow-kill", "-q", "close_wait_per_process"],
            ONLY_WITH,
        ),
        (vec!["--allow-kill", "audit"], "do not go with a subcommand"),
        (vec!["--allow-kill", "-e", "DELETE FROM sockets"], WHOLE),
        (
            vec!["--allow-kill", "-e", "DELETE FROM sockets WHERE true"],
            WHOLE,
        ),
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE 1 = 1 OR state = 'LISTEN'",
            ],
            WHOLE,
        ),
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE remote_port = 7301 LIMIT 2",
            ],
            "DELETE ... LIMIT is refused",
        ),
        (
            vec!["--allow-kill", "-e", "DELETE FROM processes WHERE pid = 1"],
            "DELETE works on sockets",
        ),
        // A WHERE that reads no column of the table selects all of it: an uncorrelated
        // subquery's filter narrows the subquery (of another table, or of sockets).
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE EXISTS (SELECT 1 FROM processes WHERE pid = 1)",
            ],
            WHOLE,
        ),
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE EXISTS \
                 (SELECT 1 FROM sockets WHERE remote_port = 7301)",
            ],
            WHOLE,
        ),
        (
            vec!["--allow-kill", "-e", "DELETE FROM sockets WHERE random() < 2"],
            WHOLE,
        ),
        // A branch of an OR that reads no column, a mark join (`IN (...) OR ...`) and a
        // left join (a correlated scalar subquery) keep every row (helper-55).
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE remote_port = 7301 OR random() < 2",
            ],
            WHOLE,
        ),
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE pid IN (SELECT pid FROM processes) OR random() < 2",
            ],
            WHOLE,
        ),
        (
            vec![
                "--allow-kill",
                "-e",
                "DELETE FROM sockets WHERE \
                 (SELECT count(*) FROM processes p WHERE p.pid = sockets.pid) >= 0",
            ],
            WHOLE,
        ),
        // Rows that never end (a dry run never returned); a prepared DELETE went past
        // these rules.
        (
            vec![
                "--dry-run",
                "-e",
                "DELETE FROM sockets WHERE cookie IN (SELECT cookie FROM socket_events)",
            ],
            "whose rows never end",
        ),
        (
            vec![
                "--allow-kill",
                "-e",
                "PREPARE p AS DELETE FROM sockets WHERE remote_port = 7301",
            ],
            "PREPARE of a DELETE is refused",
        ),
    ] {
        let out = netsql_in(&ns, &args).run();
        let line = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {line}");
        assert_eq!(line.lines().count(), 1, "{args:?}: {line}");
        assert!(
            line.starts_with("netsql: ") && line.contains(why),
            "{args:?}: wanted {why:?}: {line}"
        );
    }
    let _ = std::fs::remove_dir_all(&history);
    assert_eq!(
        client_ports(&ns, SERVED),
        before,
        "a refusal closed something"
    );

    // A dry run and EXPLAIN list a's ten and close nothing. Which ten: ss -p says.
    let a_ports: BTreeSet<u16> = ss(
        &ns,
        &[
            "-tnp",
            "state",
            "established",
            &format!("dport = :{SERVED}"),
        ],
    )
    .iter()
    .filter(|line| line.contains("users:((\"killa\","))
    .map(|line| {
        let local = line.split(' ').nth(2).expect("local column");
        local.rsplit(':').next().unwrap().parse().unwrap()
    })
    .collect();
    assert_eq!(a_ports.len(), 10);
    for args in [
        vec!["--dry-run", "--format", "csv", "-e", a_sql.as_str()],
        vec![
            "--allow-kill",
            "--dry-run",
            "--format",
            "csv",
            "-e",
            a_sql.as_str(),
        ],
    ] {
        let out = netsql_in(&ns, &args).run();
        assert!(out.status.success(), "{}", stderr(&out));
        let listed = ports_listed(&stdout(&out));
        assert_eq!(listed, a_ports, "{args:?}");
    }
    let explain = format!("EXPLAIN {a_sql}");
    let out = netsql_in(&ns, &["--allow-kill", "--format", "csv", "-e", &explain]).run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ports_listed(&stdout(&out)), a_ports);
    assert_eq!(
        client_ports(&ns, SERVED),
        before,
        "a dry run closed something"
    );

    // The real thing: a's ten to SERVED, nothing else.
    let out = netsql_in(&ns, &["--allow-kill", "--format", "csv", "-e", &a_sql]).run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "count\n10\n");
    assert_eq!(
        stderr(&out).trim(),
        "netsql: closed 10 of 10 matching sockets"
    );
    let after = client_ports(&ns, SERVED);
    assert_eq!(after, &before - &a_ports, "exactly a's ten are gone");
    assert_eq!(
        client_ports(&ns, OTHER).len(),
        3,
        "a's other connections stay"
    );
    // Both ends know: a's sockets were aborted, the server's peers of them reset.
    assert_eq!(a.check(), "open=4 reset=0 aborted=10 eof=0");
    assert_eq!(server.check(), "open=13 reset=10 aborted=0 eof=0");
    assert_eq!(b.check(), "open=10 reset=0 aborted=0 eof=0");

    // A subquery reaches DataFusion's delete_from as no filter: ours runs it, and
    // closes b's ten, never everything.
    let b_sql = format!(
        "DELETE FROM sockets WHERE inode IN (SELECT inode FROM socket_owners WHERE pid = {})",
        b.pid()
    );
    let out = netsql_in(&ns, &["--allow-kill", "--format", "csv", "-e", &b_sql]).run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "count\n10\n");
    assert!(client_ports(&ns, SERVED).is_empty());
    assert_eq!(client_ports(&ns, OTHER).len(), 3);
    assert_eq!(b.check(), "open=0 reset=0 aborted=10 eof=0");
    assert!(ss(&ns, &["-tln"]).len() == 2, "the listeners stay");

    // UDP, where the kernel can (udp_abort): the owner sees ECONNABORTED. A socket bound
    // to a port it chose keeps the port (the kernel only disconnects it), as with ss -K.
    let udp_sql = format!("DELETE FROM sockets WHERE proto = 'udp' AND local_port = {UDP_PORT}");
    let out = netsql_in(&ns, &["--allow-kill", "--format", "csv", "-e", &udp_sql]).run();
    match ss_can_kill_udp(&ns) {
        Ok(true) => {
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(stdout(&out), "count\n1\n");
            assert_eq!(a.check(), "open=3 reset=0 aborted=11 eof=0");
        }
        Ok(false) => {
            assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
            eprintln!("skipped (UDP): ss -K cannot close UDP sockets on this kernel either");
        }
        Err(why) => common::skip_or_fail(&why),
    }

    // Without CAP_NET_ADMIN nothing can be closed: one line, exit 2, sockets intact.
    let binary = env!("CARGO_BIN_EXE_netsql");
    let other_sql = format!("DELETE FROM sockets WHERE remote_port = {OTHER}");
    let out = ns
        .command(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            binary,
            "--allow-kill",
            "-e",
            &other_sql,
        ])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = stderr(&out);
    assert!(
        line.contains("closed 0 of 3") && line.contains("3 not permitted"),
        "{line}"
    );
    assert_eq!(client_ports(&ns, OTHER).len(), 3);
}

/// The local ports in a CSV listing of sockets.
fn ports_listed(csv: &str) -> BTreeSet<u16> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let at = header
        .iter()
        .position(|c| *c == "local_port")
        .expect("local_port column");
    lines
        .map(|l| l.split(',').nth(at).unwrap().parse().unwrap())
        .collect()
}
