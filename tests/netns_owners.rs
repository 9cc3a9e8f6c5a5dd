//! Socket owners, processes, services and users against processes the test starts inside
//! a namespace of its own, cross-checked with `ss -tanp` and `netstat -tanp` there.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use common::{ino, ndjson, Netns};
use serde_json::Value;
use socket2::{Domain, SockAddr, Socket, Type};

const ETC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/etc");

/// A process one of whose threads has a descriptor table of its own (unshare
/// CLONE_FILES) holding a listener on 127.0.0.1:7104: /proc/<pid>/fd shows the main
/// thread's table, so `ss -p` names no process for it.
const OWN_TABLE_THREAD: &str = r#"
import ctypes, socket, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def own_table():
    if libc.unshare(0x400) != 0:  # CLONE_FILES
        raise OSError(ctypes.get_errno(), "unshare")
    s = socket.socket()
    s.bind(("127.0.0.1", 7104))
    s.listen()
    print("ready", flush=True)
    time.sleep(300)
threading.Thread(target=own_table, daemon=True).start()
time.sleep(300)
"#;

/// A listener children will inherit (no close-on-exec).
fn inheritable_listener(addr: &str) -> Socket {
    let addr: SocketAddr = addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(4).unwrap();
    socket.set_cloexec(false).unwrap();
    socket
}

fn sleeper(uid: Option<u32>) -> Child {
    let mut command = Command::new("sleep");
    command.arg("300").stdin(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    command.spawn().unwrap()
}

/// What the test started, and which descriptor numbers hold what.
struct Started {
    children: Vec<Child>,
    shared: (u64, i32),
    single: (u64, i32),
    unix: (u64, i32),
    nobody: (u64, i32),
    ours: (u64, i32),
    time_wait_port: u16,
    _held: Vec<OwnedFd>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs inside the namespace: sockets, then `sleep` children that inherit them.
fn start(dir: std::path::PathBuf) -> Started {
    // Shared after fork: two children hold the same listener at the same descriptor.
    let shared = inheritable_listener("127.0.0.1:7100");
    let shared_at = (ino(&shared), shared.as_raw_fd());
    let a = sleeper(None);
    let b = sleeper(None);
    drop(shared);

    // One child holds a TCP listener and a unix socket.
    let single = inheritable_listener("127.0.0.1:7101");
    let unix = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    unix.bind(&SockAddr::unix(dir.join("owned.sock")).unwrap())
        .unwrap();
    unix.listen(4).unwrap();
    unix.set_cloexec(false).unwrap();
    let (single_at, unix_at) = (
        (ino(&single), single.as_raw_fd()),
        (ino(&unix), unix.as_raw_fd()),
    );
    let c = sleeper(None);
    drop((single, unix));

    // A child running as nobody.
    let nobody = inheritable_listener("127.0.0.1:7102");
    let nobody_at = (ino(&nobody), nobody.as_raw_fd());
    let d = sleeper(Some(65534));
    drop(nobody);

    // One the test process holds itself, and a TIME_WAIT socket that nobody holds.
    let ours = std::net::TcpListener::bind("127.0.0.1:7103").unwrap();
    let ours_at = (ino(&ours), ours.as_raw_fd());
    let client = std::net::TcpStream::connect("127.0.0.1:7103").unwrap();
    let time_wait_port = client.local_addr().unwrap().port();
    let (server, _) = ours.accept().unwrap();
    drop(client);
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(server);
    std::thread::sleep(std::time::Duration::from_millis(100));

    Started {
        children: vec![a, b, c, d],
        shared: shared_at,
        single: single_at,
        unix: unix_at,
        nobody: nobody_at,
        ours: ours_at,
        time_wait_port,
        _held: vec![ours.into()],
    }
}

fn rows(ns: &Netns, args: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let mut all = vec!["--etc", ETC, "--format", "ndjson"];
    all.extend_from_slice(args);
    let out = ns.netsql(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "root sees everything, no warning: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
}

/// A socket_owners row as (inode, pid, fd, program).
fn holder(row: &serde_json::Map<String, Value>) -> (u64, i64, i64, String) {
    (
        int(row, "inode").unwrap() as u64,
        int(row, "pid").unwrap(),
        int(row, "fd").unwrap(),
        string(row, "program").unwrap(),
    )
}

fn int(row: &serde_json::Map<String, Value>, column: &str) -> Option<i64> {
    row.get(column).and_then(Value::as_i64)
}

fn string(row: &serde_json::Map<String, Value>, column: &str) -> Option<String> {
    row.get(column).and_then(Value::as_str).map(str::to_string)
}

#[test]
fn owners_processes_and_services() {
    let Some(ns) = Netns::create("owners", &["ss", "netstat", "setpriv", "python3"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let started = {
        let dir = dir.path().to_path_buf();
        ns.within(move || start(dir))
    };
    let pids: Vec<i64> = started.children.iter().map(|c| i64::from(c.id())).collect();
    let me = i64::from(std::process::id());
    let my_comm = std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_string();

    // socket_owners: every holder.
    let owners: BTreeSet<(u64, i64, i64, String)> =
        rows(&ns, &["-e", "SELECT * FROM socket_owners"])
            .iter()
            .map(holder)
            .collect();
    let expected: BTreeSet<(u64, i64, i64, String)> = [
        (started.shared, pids[0], "sleep"),
        (started.shared, pids[1], "sleep"),
        (started.single, pids[2], "sleep"),
        (started.unix, pids[2], "sleep"),
        (started.nobody, pids[3], "sleep"),
        (started.ours, me, my_comm.as_str()),
    ]
    .into_iter()
    .map(|((inode, fd), pid, program)| (inode, pid, i64::from(fd), program.to_string()))
    .collect();
    // Other processes on the host may hold sockets of other namespaces: look at ours.
    let ours: BTreeSet<_> = owners
        .iter()
        .filter(|o| expected.iter().any(|e| e.0 == o.0))
        .cloned()
        .collect();
    assert_eq!(ours, expected);

    // sockets.pid/program/fd: the lowest pid holding each socket; none for TIME_WAIT.
    let sockets = rows(&ns, &["-e", "SELECT inode, state, local_port, pid, program, fd, user FROM sockets WHERE proto = 'tcp' OR proto = 'unix'"]);
    let by_inode = |inode: u64| {
        sockets
            .iter()
            .find(|r| int(r, "inode") == Some(inode as i64))
            .unwrap()
    };
    let shared = by_inode(started.shared.0);
    assert_eq!(int(shared, "pid"), Some(pids[0].min(pids[1])));
    assert_eq!(int(shared, "fd"), Some(i64::from(started.shared.1)));
    assert_eq!(string(shared, "program").as_deref(), Some("sleep"));
    assert_eq!(string(shared, "user").as_deref(), Some("root"));
    assert_eq!(int(by_inode(started.unix.0), "pid"), Some(pids[2]));
    assert_eq!(int(by_inode(started.ours.0), "pid"), Some(me));
    let time_wait = sockets
        .iter()
        .find(|r| string(r, "state").as_deref() == Some("TIME_WAIT"))
        .expect("a TIME_WAIT socket");
    assert_eq!(
        int(time_wait, "local_port"),
        Some(i64::from(started.time_wait_port))
    );
    assert_eq!(time_wait.get("pid"), Some(&Value::Null));

    // The same from a server. A server loads the kernel's iterator over every open file
    // once at its start (collect/task_files.rs) and lists holders with it instead of
    // walking /proc: the same holders, and each socket's lowest pid. Two holders the
    // kernel sees and the walk does not, which the server must not list either: a
    // descriptor opened with O_PATH on the unix listener's file (/proc shows its path;
    // the kernel's file is the filesystem's S_IFSOCK inode, no socket), and a thread with
    // a descriptor table of its own (/proc/<pid>/fd shows the main thread's).
    let owned_sock = dir.path().join("owned.sock");
    let mut by_path = common::Kid::spawn(
        ns.command(&[
            "python3",
            "-c",
            "import os, sys, time; os.open(sys.argv[1], os.O_PATH); print('ready', flush=True); time.sleep(300)",
            owned_sock.to_str().unwrap(),
        ])
        .stdout(Stdio::piped()),
    );
    common::Lines::of(by_path.stdout.take().unwrap()).expect("ready");
    let mut thread = common::Kid::spawn(
        ns.command(&["python3", "-c", OWN_TABLE_THREAD])
            .stdout(Stdio::piped()),
    );
    common::Lines::of(thread.stdout.take().unwrap()).expect("ready");
    let ss_line = ns.exec_ok(&["ss", "-Htlnp", "sport = :7104"]);
    assert!(
        ss_line.contains("127.0.0.1:7104") && !ss_line.contains("users:"),
        "{ss_line}"
    );
    let server = common::Server::start(&["--netns", &ns.name, "--etc", ETC], &["--name", "o"]);
    let served = |sql: &str| {
        let uri = server.uri(false);
        common::ndjson_rows(common::netsql().args([
            "--connect",
            &uri,
            "--format",
            "ndjson",
            "-e",
            sql,
        ]))
    };
    let from_server: BTreeSet<(u64, i64, i64, String)> =
        served("SELECT inode, pid, fd, program FROM socket_owners")
            .iter()
            .map(holder)
            .filter(|o| expected.iter().any(|e| e.0 == o.0))
            .collect();
    assert_eq!(from_server, expected);
    let by_path_pid = i64::from(by_path.id());
    let held_by_path = served(&format!(
        "SELECT inode, fd FROM socket_owners WHERE pid = {by_path_pid}"
    ));
    assert!(held_by_path.is_empty(), "{held_by_path:?}");
    drop(by_path);
    for (how, rows) in [
        (
            "a query",
            rows(
                &ns,
                &["-e", "SELECT pid, fd FROM sockets WHERE local_port = 7104"],
            ),
        ),
        (
            "a server",
            served("SELECT pid, fd FROM sockets WHERE local_port = 7104"),
        ),
    ] {
        assert_eq!(rows.len(), 1, "{how}: {rows:?}");
        assert_eq!(
            (int(&rows[0], "pid"), int(&rows[0], "fd")),
            (None, None),
            "{how}"
        );
    }
    drop(thread);
    let lowest: BTreeSet<(u64, Option<i64>, Option<i64>)> = served(&format!(
        "SELECT inode, pid, fd FROM sockets WHERE inode IN ({}, {}, {})",
        started.shared.0, started.unix.0, started.ours.0
    ))
    .iter()
    .map(|r| (int(r, "inode").unwrap() as u64, int(r, "pid"), int(r, "fd")))
    .collect();
    let fd = |at: (u64, i32)| Some(i64::from(at.1));
    assert_eq!(
        lowest,
        BTreeSet::from([
            (
                started.shared.0,
                Some(pids[0].min(pids[1])),
                fd(started.shared)
            ),
            (started.unix.0, Some(pids[2]), fd(started.unix)),
            (started.ours.0, Some(me), fd(started.ours)),
        ])
    );
    drop(server);

    // ss -tanp and netstat -tanp in the same namespace name the same owners.
    let ss = ns.exec_ok(&["ss", "-Htanp"]);
    for (port, pid) in [
        (7100, pids[0].min(pids[1])),
        (7101, pids[2]),
        (7102, pids[3]),
        (7103, me),
    ] {
        let line = ss
            .lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port} ")))
            .unwrap();
        assert!(line.contains(&format!("pid={pid},")), "ss: {line}");
    }
    let shared_line = ss.lines().find(|l| l.contains("127.0.0.1:7100 ")).unwrap();
    assert!(
        shared_line.contains(&format!("pid={},", pids[0]))
            && shared_line.contains(&format!("pid={},", pids[1]))
    );
    let netstat = ns.exec_ok(&["netstat", "-tanp"]);
    for (port, pid, program) in [
        (7100, pids[0].min(pids[1]), "sleep"),
        (7101, pids[2], "sleep"),
        (7102, pids[3], "sleep"),
    ] {
        let line = netstat
            .lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port} ")))
            .unwrap();
        assert!(
            line.trim_end().ends_with(&format!("{pid}/{program}")),
            "netstat: {line}"
        );
    }

    // processes: the children as ps would show them.
    let procs = rows(&ns, &["-e", &format!("SELECT pid, ppid, name, cmdline, uid, user, netns FROM processes WHERE pid IN ({}, {})", pids[0], pids[3])]);
    assert_eq!(procs.len(), 2);
    let child = procs
        .iter()
        .find(|r| int(r, "pid") == Some(pids[0]))
        .unwrap();
    assert_eq!(int(child, "ppid"), Some(me));
    assert_eq!(string(child, "name").as_deref(), Some("sleep"));
    assert_eq!(string(child, "cmdline").as_deref(), Some("sleep 300"));
    let nobody = procs
        .iter()
        .find(|r| int(r, "pid") == Some(pids[3]))
        .unwrap();
    assert_eq!(
        (int(nobody, "uid"), string(nobody, "user").as_deref()),
        (Some(65534), Some("nobody"))
    );

    // The join the owners issue promises: listeners, their programs and service names.
    let sql = "SELECT s.local_port, p.name, p.cmdline, sv.name AS service FROM sockets s \
               JOIN processes p ON s.pid = p.pid \
               LEFT JOIN services sv ON sv.port = s.local_port AND sv.protocol = 'tcp' \
               WHERE s.state = 'LISTEN' ORDER BY s.local_port";
    let joined: Vec<(Option<i64>, String, String, Option<String>)> = rows(&ns, &["-e", sql])
        .iter()
        .map(|r| {
            (
                int(r, "local_port"),
                string(r, "name").unwrap(),
                string(r, "cmdline").unwrap(),
                string(r, "service"),
            )
        })
        .collect();
    let sleep = |port: Option<i64>, service: Option<&str>| {
        (
            port,
            "sleep".to_string(),
            "sleep 300".to_string(),
            service.map(str::to_string),
        )
    };
    // Ports ascending, then the unix listener (no port) last.
    assert_eq!(joined.len(), 5, "{joined:?}");
    assert_eq!(
        &joined[..3],
        &[
            sleep(Some(7100), Some("netsql-a")),
            sleep(Some(7101), Some("netsql-b")),
            sleep(Some(7102), None)
        ]
    );
    assert_eq!((joined[3].0, &joined[3].1), (Some(7103), &my_comm));
    assert_eq!(joined[4], sleep(None, None));

    // Scalar functions over the same rows.
    let names = rows(&ns, &["-e", "SELECT service_name(local_port, proto) AS s, user_name(uid) AS u, host_name(local_address) AS h FROM sockets WHERE local_port = 7101"]);
    assert_eq!(string(&names[0], "s").as_deref(), Some("netsql-b"));
    assert_eq!(string(&names[0], "u").as_deref(), Some("root"));
    assert_eq!(string(&names[0], "h").as_deref(), Some("localhost"));

    // As nobody: our own child is identified, root's processes are not, one warning.
    let netsql = env!("CARGO_BIN_EXE_netsql");
    let out = ns.exec_as_nobody(&[
        netsql, "--format", "ndjson", "-e",
        "SELECT local_port, pid FROM sockets WHERE local_port IN (7100, 7102) AND state = 'LISTEN' ORDER BY local_port; \
         SELECT count(*) AS n FROM socket_owners",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("Not all processes could be identified")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let seen = ndjson(&out.stdout);
    assert_eq!(
        seen[0].get("pid"),
        Some(&Value::Null),
        "root's child is hidden: {seen:?}"
    );
    assert_eq!(int(&seen[1], "pid"), Some(pids[3]));
    // Under `netsql netstat` the note is net-tools' own, as netstat prints it.
    let theirs = ns.exec_as_nobody(&["netstat", "-tlnp"]);
    let ours = ns.exec_as_nobody(&[netsql, "netstat", "-tlnp"]);
    assert!(!theirs.stderr.is_empty(), "netstat said nothing as nobody");
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert_eq!(ours.stdout, theirs.stdout);
    drop(started);
}
