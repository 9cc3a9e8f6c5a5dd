//! Hostile conditions: memory and descriptor limits, Ctrl-C in a runaway query, empty,
//! huge and broken input, missing /etc files, URL tables, control characters in names
//! and paths, and an unprivileged user. Each ends in rows, a clean cancel or one
//! `netsql: ...` line; never a panic.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use common::{netsql, Kid, Netns, RunExt};

fn run(args: &[&str]) -> Output {
    netsql().args(args).run()
}

/// Exit 2 with one `netsql: ...` line naming `needle`, nothing on stdout, no panic.
fn assert_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with("netsql: ") && err.contains(needle),
        "{err:?} lacks {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const JOIN: &str = "SELECT count(*) FROM generate_series(1, 3000000) a \
                    JOIN generate_series(1, 3000000) b ON a.value = b.value";

#[test]
fn a_memory_limit_ends_a_big_join_with_one_line() {
    assert_error(
        &run(&["--memory-limit", "32M", "-e", JOIN]),
        "Resources exhausted",
    );
    // A query that fits runs under the same limit.
    let out = run(&[
        "--memory-limit",
        "32M",
        "--format",
        "csv",
        "-e",
        "SELECT count(*) AS n FROM generate_series(1, 1000000)",
    ]);
    assert_eq!(ok(&out), "n\n1000000\n");
    let out = run(&["--memory-limit", "lots", "-e", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a size"));
}

#[test]
fn ctrl_c_cancels_a_runaway_cross_join() {
    let mut command = netsql();
    command
        .args(["-e", "SELECT sum(a.value * b.value) FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Kid::spawn(&mut command);
    // Ready: half a second of processor time, well into the join.
    common::wait_for_cpu(child.id(), Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "10^10 rows finished in half a second?"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let sent = Instant::now();
    let out = child.finish_within(Duration::from_secs(5));
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_error(&out, "interrupted");
}

/// A chain of 2375 `UNION ALL`s overflowed the 8 MiB main stack and aborted netsql
/// (helper-46; 2374 fit): set operations weigh four operators each, so 1024 answer and
/// 1025 are refused in one line, from a file as from `-e`.
#[test]
fn long_union_chains_are_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = |n: usize| {
        let path = dir.path().join(format!("u{n}.sql"));
        let branches = vec!["SELECT 1 AS a"; n + 1].join(" UNION ALL ");
        std::fs::write(&path, format!("SELECT sum(a) AS n FROM ({branches})")).unwrap();
        path
    };
    let fits = file(1024);
    let out = run(&["--format", "csv", "-f", fits.to_str().unwrap()]);
    assert_eq!(ok(&out), "n\n1025\n");
    for n in [1025, 2375] {
        let path = file(n);
        let out = run(&["-f", path.to_str().unwrap()]);
        assert_error(&out, "a statement holds more than 4096 operators");
    }
}

#[test]
fn empty_huge_and_broken_input() {
    assert_error(&run(&["-e", ""]), "no SQL statement");
    assert_error(&run(&["-e", " ; -- nothing\n"]), "no SQL statement");
    let dir = tempfile::tempdir().unwrap();
    // A megabyte of nesting stops at the parser's recursion limit, not the stack.
    let deep = dir.path().join("deep.sql");
    std::fs::write(
        &deep,
        format!("SELECT {}1{}", "(".repeat(500_000), ")".repeat(500_000)),
    )
    .unwrap();
    assert_error(
        &run(&["-f", deep.to_str().unwrap()]),
        "RecursionLimitExceeded",
    );
    // A megabyte of query is just a long literal.
    let long = dir.path().join("long.sql");
    std::fs::write(
        &long,
        format!("SELECT length('{}') AS n", "x".repeat(1 << 20)),
    )
    .unwrap();
    assert_eq!(
        ok(&run(&["--format", "csv", "-f", long.to_str().unwrap()])),
        "n\n1048576\n"
    );
    let latin1 = dir.path().join("latin1.sql");
    std::fs::write(&latin1, b"SELECT '\xe9t\xe9'").unwrap();
    assert_error(&run(&["-f", latin1.to_str().unwrap()]), "valid UTF-8");
    assert_error(&run(&["-f", "/nonexistent/q.sql"]), "/nonexistent/q.sql");
}

/// Missing /etc files: empty tables and NULL names. host_name() then asks the system
/// resolver, so it must say what `getent hosts` says.
#[test]
fn missing_etc_files_give_empty_tables_and_nulls() {
    let empty = tempfile::tempdir().unwrap();
    let etc = empty.path().to_str().unwrap();
    let out = run(&[
        "--etc", etc, "--format", "csv", "-e",
        "SELECT (SELECT count(*) FROM services) AS services, (SELECT count(*) FROM users) AS users, \
         service_name(80, 'tcp') AS s, user_name(0) AS u, host_name('127.0.0.1') AS h",
    ]);
    let getent = Command::new("getent").args(["hosts", "127.0.0.1"]).run();
    let resolver = String::from_utf8_lossy(&getent.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    assert_eq!(
        ok(&out),
        format!("services,users,s,u,h\n0,0,,,{resolver}\n")
    );
    let out = ok(&run(&["--etc", etc, "netstat", "-ta"]));
    assert!(out.starts_with("Active Internet connections"), "{out}");
}

/// The lookup functions against /etc files the test writes: a port named twice (the
/// last line wins, as netstat has it), protocols, networks, and no name for a wildcard.
#[test]
fn lookup_functions_read_the_etc_files() {
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("services"),
        "first 7000/tcp\nlast 7000/tcp # comment\nother 7000/udp\n",
    )
    .unwrap();
    std::fs::write(
        etc.path().join("protocols"),
        "tcp 6 TCP\nipv6-icmp 58 IPv6-ICMP\n",
    )
    .unwrap();
    std::fs::write(
        etc.path().join("networks"),
        "loopnet 127.0.0.0\nshort 10.1\nloopnet-again 127.0.0.0\n",
    )
    .unwrap();
    let out = run(&[
        "--etc",
        etc.path().to_str().unwrap(),
        "--format",
        "csv",
        "-e",
        "SELECT service_name(7000, 'tcp6') AS s, service_name(7000, 'udp') AS u, \
         service_name(7000, 'udp66') AS u66, protocol_name(6) AS p, protocol_name(58) AS p6, protocol_name(999) AS none, \
         network_name('127.0.0.0') AS n, network_name('0.0.10.1') AS short, \
         network_name('nonsense') AS bad, host_name('0.0.0.0') AS any4, host_name('::') AS any6",
    ]);
    assert_eq!(
        ok(&out),
        "s,u,u66,p,p6,none,n,short,bad,any4,any6\nlast,other,,tcp,ipv6-icmp,,loopnet,short,,,\n"
    );
    // With the machine's own files, what getent says.
    let getent = Command::new("getent").args(["protocols", "6"]).run();
    let tcp = String::from_utf8_lossy(&getent.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let out = run(&["--format", "csv", "-e", "SELECT protocol_name(6) AS p"]);
    assert_eq!(ok(&out), format!("p\n{tcp}\n"));
}

#[test]
fn url_tables_are_not_tables() {
    assert_error(&run(&["-e", "SELECT * FROM '/etc/passwd'"]), "not found");
    assert_error(
        &run(&["--read-only", "-e", "SELECT * FROM 'file:///etc/passwd'"]),
        "not found",
    );
}

/// A process named `ESC[2J...` holding a unix socket whose path holds ESC, in a namespace
/// of our own: a terminal must see the escape as text, CSV must keep the byte.
#[test]
fn control_characters_in_names_and_paths() {
    let Some(ns) = Netns::create("escape", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netsql-esc-\x1b[2J");
    let child = ns.within(move || {
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut command = Command::new("bash");
        command
            .args(["-c", "exec -a $'\\e[2Jevil' sleep 60"])
            .stdin(Stdio::null());
        common::inherit(&mut command, &[listener.as_raw_fd()]);
        Kid::spawn(&mut command)
        // The listener closes here: the child is its only holder.
    });
    common::wait_for_argv0(child.id(), "\x1b[2Jevil");

    let view = ok(&ns.netsql(&["netstat", "-xlp"]));
    let table = ok(&ns.netsql(&[
        "-e",
        "SELECT path FROM sockets WHERE path LIKE '%netsql-esc-%'",
    ]));
    assert!(
        !view.contains('\x1b'),
        "a raw ESC reached the terminal view"
    );
    let mine: Vec<&str> = view.lines().filter(|l| l.contains("netsql-esc-")).collect();
    assert_eq!(mine.len(), 1, "{view}");
    assert!(mine[0].contains("netsql-esc-\\x1b[2J"), "{}", mine[0]);
    assert!(
        mine[0].contains(&format!("{}/\\x1b[2Jevil", child.id())),
        "{}",
        mine[0]
    );

    assert!(
        !table.contains('\x1b') && table.contains("netsql-esc-\\x1b[2J"),
        "{table}"
    );

    // In a list (argv), a column's name, and an error quoting the value.
    let listed = ok(&ns.netsql(&[
        "-e",
        &format!(
            "SELECT args, args[1] AS \"argv0 \x1b[2J\" FROM processes WHERE pid = {}",
            child.id()
        ),
    ]));
    assert!(!listed.contains('\x1b'), "{listed}");
    assert!(
        listed.contains("[\\x1b[2Jevil, 60]") && listed.contains("argv0 \\x1b[2J"),
        "{listed}"
    );
    let failed = ns.netsql(&[
        "-e",
        &format!(
            "SELECT CAST(args[1] AS INT) FROM processes WHERE pid = {}",
            child.id()
        ),
    ]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{err}");
    assert!(
        !err.contains('\x1b') && err.contains("'\\x1b[2Jevil'"),
        "{err}"
    );
}

/// argv with empty arguments and bytes that are not UTF-8: `args` keeps every place
/// (it dropped the empty ones, shifting the rest) but trailing empty ones, which cannot
/// be told from a title's NUL padding, and `cmdline` is what `ps -o args` prints. A
/// non-UTF-8 argument is replaced, not the whole row's argv made NULL, and a process
/// whose name is not UTF-8 (sh run through a link named `caf\xe9`) is still a row.
#[test]
fn empty_and_non_utf8_arguments_keep_their_places() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // sh waits on its stdin (a pipe) until the test ends; its $0 is "name".
    let script = "read line; true";
    let spawn = |program: &OsStr, extra: &[&OsStr]| {
        Kid::spawn(
            Command::new(program)
                .args(["-c", script, "name"])
                .args(extra)
                .stdin(Stdio::piped()),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(OsStr::from_bytes(b"caf\xe9"));
    std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
    let empty = OsStr::new("");
    let sh = OsStr::new("sh");
    let child = spawn(sh, &[empty, empty, OsStr::new("x y"), empty, empty]);
    let odd = spawn(link.as_os_str(), &[OsStr::from_bytes(b"caf\xe9")]);
    common::wait_for_argv0(child.id(), "sh");
    let comm = format!("/proc/{}/comm", odd.id());
    let started = Instant::now();
    while std::fs::read(&comm).unwrap_or_default() != b"caf\xe9\n" {
        assert!(started.elapsed() < Duration::from_secs(10), "{comm}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let row = |pid: u32| {
        let out = ok(&run(&[
            "--format",
            "ndjson",
            "-e",
            &format!("SELECT name, cmdline, args FROM processes WHERE pid = {pid}"),
        ]));
        let rows = common::ndjson(out.as_bytes());
        assert_eq!(rows.len(), 1, "{out}");
        rows[0].clone()
    };
    let args = |row: &common::Row| -> Vec<String> {
        row["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let mine = row(child.id());
    assert_eq!(args(&mine), ["sh", "-c", script, "name", "", "", "x y"]);
    let ps = Command::new("ps")
        .args(["-o", "args=", "-p", &child.id().to_string()])
        .run();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert_eq!(mine["cmdline"].as_str(), Some(ps.trim_end_matches('\n')));
    let odd = row(odd.id());
    assert_eq!(odd["name"].as_str(), Some("caf\u{fffd}"));
    assert_eq!(args(&odd)[1..], ["-c", script, "name", "caf\u{fffd}"]);
}

#[test]
fn control_characters_stay_exact_in_csv() {
    let out = ok(&run(&[
        "--format",
        "csv",
        "-e",
        "SELECT chr(27) || '[2J' AS x",
    ]));
    assert_eq!(out, "x\n\x1b[2J\n");
}

/// A listener on 127.0.0.1:`port` held only by a `sleep` child running as `uid`,
/// started on a thread inside the namespace.
fn held_listener(ns: &Netns, port: u16, uid: u32) -> Kid {
    ns.within(move || {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let mut command = Command::new("sleep");
        command.arg("120").stdin(Stdio::null()).uid(uid).gid(uid);
        common::inherit(&mut command, &[listener.as_raw_fd()]);
        Kid::spawn(&mut command)
    })
}

/// The key queries and views as `nobody`, in a namespace with one listener held by root
/// and one by nobody: NULL owners where the kernel hides them, at most the one warning,
/// exit 0, and nobody's own sockets still named.
#[test]
fn an_unprivileged_user_gets_nulls_not_errors() {
    let Some(ns) = Netns::create("nobody", &["setpriv"]) else {
        return;
    };
    let root_child = held_listener(&ns, 7600, 0);
    let nobody_child = held_listener(&ns, 7601, 65534);
    common::wait_for_argv0(root_child.id(), "sleep");
    common::wait_for_argv0(nobody_child.id(), "sleep");
    let netsql = env!("CARGO_BIN_EXE_netsql");
    let as_nobody = |args: &[&str]| {
        let mut argv = vec![netsql];
        argv.extend_from_slice(args);
        ns.exec_as_nobody(&argv)
    };
    for args in [
        vec!["netstat", "-tanp"],
        vec!["netstat", "-xap"],
        vec!["netstat", "-tanpe"],
        vec!["-q", "listeners"],
        vec!["-q", "sockets_per_process"],
        vec![
            "-e",
            "SELECT pid, name, cmdline, exe, uid, user FROM processes",
        ],
        vec!["-e", "SELECT * FROM sockets"],
        vec!["-e", "SELECT * FROM socket_owners"],
    ] {
        let out = as_nobody(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        // `netsql netstat` words the note as net-tools does, over two lines.
        let note_lines = if args[0] == "netstat" { 2 } else { 1 };
        assert!(err.lines().count() <= note_lines, "{args:?}: {err}");
        assert!(
            err.is_empty() || err.contains("Not all processes could be identified"),
            "{args:?}: {err}"
        );
    }
    // Root's listener shows `-` as its owner; nobody's shows nobody's sleep.
    let view = String::from_utf8_lossy(&as_nobody(&["netstat", "-tlnp"]).stdout).into_owned();
    let line = |port: u16| {
        view.lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port} ")))
            .unwrap_or_else(|| panic!("no :{port} line in {view}"))
            .trim_end()
            .to_string()
    };
    assert!(line(7600).ends_with(" -"), "{view}");
    assert!(
        line(7601).ends_with(&format!(" {}/sleep", nobody_child.id())),
        "{view}"
    );
    let csv = String::from_utf8_lossy(
        &as_nobody(&[
            "--format",
            "csv",
            "-e",
            "SELECT local_port, pid, program FROM sockets WHERE proto = 'tcp' ORDER BY local_port",
        ])
        .stdout,
    )
    .into_owned();
    assert_eq!(
        csv,
        format!(
            "local_port,pid,program\n7600,,\n7601,{},sleep\n",
            nobody_child.id()
        )
    );
}

/// netsql's command line with at most `limit` descriptors.
fn ulimited(limit: usize, args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = ["sh", "-c", "ulimit -n \"$0\" && exec \"$@\""]
        .map(String::from)
        .to_vec();
    argv.push(limit.to_string());
    argv.push(env!("CARGO_BIN_EXE_netsql").into());
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// Runs netsql with at most `limit` descriptors, inside `ns`.
fn with_descriptors(ns: &Netns, limit: usize, args: &[&str]) -> Output {
    let argv = ulimited(limit, args);
    ns.exec(&argv.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `run` at every limit of `limits`: an answer must be `expected` with nothing on stderr,
/// a failure one "Too many open files" line; both must happen across the range, or it
/// tried nothing.
fn whole_or_out_of_descriptors(
    limits: std::ops::RangeInclusive<usize>,
    expected: &str,
    run: impl Fn(usize) -> Output,
) {
    let (mut answered, mut refused) = (0, 0);
    for limit in limits {
        let out = run(limit);
        if out.status.success() {
            assert_eq!(ok(&out), expected, "ulimit -n {limit}");
            assert!(
                out.stderr.is_empty(),
                "ulimit -n {limit}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            answered += 1;
        } else {
            assert_error(&out, "Too many open files");
            refused += 1;
        }
    }
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
}

/// `ulimit -n 64`: the sockets table, its owners and a netstat view still answer, with
/// every owner found (none silently NULL).
#[test]
fn few_descriptors_still_answer() {
    let Some(ns) = Netns::create("fewfds", &[]) else {
        return;
    };
    let holders = [held_listener(&ns, 7610, 0), held_listener(&ns, 7611, 0)];
    for holder in &holders {
        common::wait_for_argv0(holder.id(), "sleep");
    }
    let expected = format!(
        "local_port,pid\n7610,{}\n7611,{}\n",
        holders[0].id(),
        holders[1].id()
    );
    let out = with_descriptors(
        &ns,
        64,
        &[
            "--format",
            "csv",
            "-e",
            "SELECT local_port, pid FROM sockets ORDER BY local_port",
        ],
    );
    assert_eq!(ok(&out), expected);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = with_descriptors(
        &ns,
        64,
        &[
            "--format",
            "csv",
            "-e",
            "SELECT count(*) AS n FROM socket_owners s JOIN sockets k ON s.inode = k.inode",
        ],
    );
    assert_eq!(ok(&out), "n\n2\n");
    let view = ok(&with_descriptors(&ns, 64, &["netstat", "-tlnp"]));
    for holder in &holders {
        assert!(view.contains(&format!(" {}/sleep", holder.id())), "{view}");
    }
}

/// Fewer descriptors still: each limit from 4 up either answers with every file read (a
/// process's cmdline, exe and cgroup are not NULL for want of a descriptor) or fails with
/// one line saying so; never NULLs that look like an answer.
#[test]
fn too_few_descriptors_fail_rather_than_give_nulls() {
    let Some(ns) = Netns::create("nofds", &[]) else {
        return;
    };
    let holder = held_listener(&ns, 7612, 0);
    common::wait_for_argv0(holder.id(), "sleep");
    let sql = format!(
        "SELECT count(*) AS n, count(cmdline) AS c, count(exe) AS e, count(cgroup) AS g \
         FROM processes WHERE pid = {}",
        holder.id()
    );
    whole_or_out_of_descriptors(4..=12, "n,c,e,g\n1,1,1,1\n", |limit| {
        with_descriptors(&ns, limit, &["--format", "csv", "-e", &sql])
    });
}

/// The same from outside a namespace: reading it with few descriptors (4 up to 16 more
/// than the cores) gives its rows or fails in one line; it is never reported "not
/// visible" (a permission matter) with an empty answer and exit 0.
#[test]
fn too_few_descriptors_never_hide_a_namespace() {
    let Some(ns) = Netns::create("nofds-out", &[]) else {
        return;
    };
    let holder = held_listener(&ns, 7613, 0);
    common::wait_for_argv0(holder.id(), "sleep");
    let sql = "SELECT local_port, state, pid FROM sockets WHERE proto = 'tcp'";
    let expected = format!("local_port,state,pid\n7613,LISTEN,{}\n", holder.id());
    // The owner walk holds a directory per core at once: limits up to 16 beyond the cores.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    whole_or_out_of_descriptors(4..=16 + cores, &expected, |limit| {
        let argv = ulimited(limit, &["--netns", &ns.name, "--format", "csv", "-e", sql]);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        common::without_settings(&mut command);
        command.run()
    });
}
