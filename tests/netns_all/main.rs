//! Many namespaces in one query: three `ip netns` namespaces and one unnamed (a process
//! started with `unshare -n`, moved into a cgroup shaped like a Docker container's), each
//! holding listeners, an established pair, UDP and unix sockets. `--netns all` must give
//! every row `ss` gives inside each, owners included, with the right namespace columns;
//! `net_namespaces` must list them; filters must read only the namespaces they name.

#[path = "../common/mod.rs"]
mod common;
mod host;
#[path = "../netns_sockets/ss.rs"]
mod ss;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{ndjson, netsql, number, text, Netns, Row, RunExt};
use host::{
    host_namespaces, named, query, sorted, ss_with_owners, unnamed, FakeContainer, V1Container,
    HOLDER,
};

/// Read by every test that makes or deletes namespaces, written by those that need the
/// host's set to stand still while they compare it (inode numbers are reused at once).
static CHURN: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn every_namespace_in_one_query() {
    // Namespace inodes are reused at once: while the churn test deletes and makes
    // namespaces, "what stat saw before and after" says nothing about the moment between.
    let _quiet = CHURN.write().unwrap_or_else(|e| e.into_inner());
    let names = ["a", "b", "c"].map(|t| Netns::create(&format!("all-{t}"), &["ss", "python3"]));
    let [Some(a), Some(b), Some(c)] = names else {
        return;
    };
    let before = host_namespaces();
    let mut places = vec![named(&a, 7100), named(&b, 7200), named(&c, 7300)];
    places.push(unnamed(7400));
    let container = match FakeContainer::hold(places[3].pid()) {
        Ok(Some(container)) => Some(container),
        Ok(None) => {
            eprintln!("skipped (the container part): this kernel has no cgroup v2");
            None
        }
        Err(why) => {
            common::skip_or_fail(&format!(
                "the container part: cgroup v2 cannot be written: {why}"
            ));
            None
        }
    };
    // An interface and a route of each namespace's own.
    for (i, place) in places.iter().enumerate() {
        let (near, far) = (format!("va{i}"), format!("vb{i}"));
        place.run(&[
            "ip", "link", "add", &near, "type", "veth", "peer", "name", &far,
        ]);
        place.run(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.{i}.1/24"),
            "dev",
            &near,
        ]);
        place.run(&["ip", "link", "set", &near, "up"]);
        place.run(&["ip", "link", "set", &far, "up"]);
    }

    let rows = query(&["--netns", "all"], "SELECT * FROM sockets");
    for place in &places {
        let ours: Vec<&Row> = rows
            .iter()
            .filter(|r| number(r, "netns") == Some(place.inode))
            .collect();
        for row in &ours {
            assert_eq!(text(row, "netns_name"), place.name, "{row:?}");
        }
        let theirs = ss_with_owners(place);
        let got = sorted(
            ours.iter()
                .map(|r| {
                    let owner = number(r, "pid")
                        .map(|pid| (text(r, "program").unwrap(), pid, number(r, "fd").unwrap()));
                    (ss::as_ss(r), owner)
                })
                .collect(),
        );
        let want = sorted(theirs);
        assert_eq!(got, want, "namespace {:?} ({})", place.name, place.inode);
        // Listeners, the pair, UDP, unix: all there, and every one owned by the holder.
        assert!(got.len() >= 8, "{got:?}");
        assert!(
            got.iter()
                .all(|(_, o)| o.as_ref().is_some_and(|o| o.1 == u64::from(place.pid()))),
            "{got:?}"
        );
    }

    // net_namespaces: exactly the host's namespaces, ours with what we know of them.
    // Other tests make namespaces meanwhile: each must be in what stat saw before or
    // after, and each seen both times must be listed.
    let listed = query(&[], "SELECT * FROM net_namespaces");
    let after = host_namespaces();
    let inodes: BTreeSet<u64> = listed.iter().map(|r| number(r, "inode").unwrap()).collect();
    assert!(
        before.intersection(&after).all(|i| inodes.contains(i)),
        "{inodes:?} lacks one of {before:?}"
    );
    assert!(
        inodes
            .iter()
            .all(|i| before.contains(i) || after.contains(i)),
        "{inodes:?} has one not in {after:?}"
    );
    let current = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let by_inode: BTreeMap<u64, &Row> = listed
        .iter()
        .map(|r| (number(r, "inode").unwrap(), r))
        .collect();
    assert_eq!(
        text(by_inode[&current], "is_current").as_deref(),
        Some("yes")
    );
    for place in &places {
        let row = by_inode[&place.inode];
        assert_eq!(text(row, "name"), place.name);
        assert_eq!(text(row, "is_current").as_deref(), Some("no"));
        assert_eq!(number(row, "processes"), Some(1), "{row:?}");
        assert_eq!(number(row, "pid"), Some(u64::from(place.pid())));
        assert_eq!(
            text(row, "path"),
            place.name.as_ref().map(|n| format!("/run/netns/{n}"))
        );
    }
    if let Some(container) = &container {
        let row = by_inode[&places[3].inode];
        assert_eq!(
            text(row, "container_id").as_deref(),
            Some(container.id.as_str())
        );
        assert_eq!(text(row, "runtime").as_deref(), Some("docker"));
        let processes = query(
            &[],
            &format!(
                "SELECT container_id, runtime FROM processes WHERE pid = {}",
                places[3].pid()
            ),
        );
        assert_eq!(
            text(&processes[0], "container_id").as_deref(),
            Some(container.id.as_str())
        );
    }
    for place in &places[..3] {
        assert_eq!(text(by_inode[&place.inode], "container_id"), None);
    }

    // interfaces and routes under --netns all, against `ip` inside each namespace.
    let interfaces = query(
        &["--netns", "all"],
        "SELECT netns, name, mtu, flag_names FROM interfaces",
    );
    let routes = query(
        &["--netns", "all"],
        "SELECT netns, destination, prefix_len, interface FROM routes WHERE family = 'inet'",
    );
    for place in &places {
        let links = place.run(&["ip", "-o", "link"]);
        let want: BTreeSet<(String, u64, bool)> = links
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let name = f[1]
                    .trim_end_matches(':')
                    .split('@')
                    .next()
                    .unwrap()
                    .to_string();
                let flags = f[2].trim_matches(|c| c == '<' || c == '>');
                let mtu = f[f.iter().position(|w| *w == "mtu").unwrap() + 1]
                    .parse()
                    .unwrap();
                (name, mtu, flags.split(',').any(|x| x == "UP"))
            })
            .collect();
        let got: BTreeSet<(String, u64, bool)> = interfaces
            .iter()
            .filter(|r| number(r, "netns") == Some(place.inode))
            .map(|r| {
                let up = r["flag_names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == "UP");
                (text(r, "name").unwrap(), number(r, "mtu").unwrap(), up)
            })
            .collect();
        assert_eq!(got, want, "interfaces of {:?}", place.name);
        let want: BTreeSet<(String, String)> = place
            .run(&["ip", "-4", "route", "show", "table", "main"])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let dev = f[f.iter().position(|w| *w == "dev").unwrap() + 1];
                (f[0].to_string(), dev.to_string())
            })
            .collect();
        let got: BTreeSet<(String, String)> = routes
            .iter()
            .filter(|r| number(r, "netns") == Some(place.inode))
            .map(|r| {
                (
                    format!(
                        "{}/{}",
                        text(r, "destination").unwrap(),
                        number(r, "prefix_len").unwrap()
                    ),
                    text(r, "interface").unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "routes of {:?}", place.name);
        assert!(!got.is_empty());
    }

    // The saved queries about the whole host: exactly our rows for our namespaces.
    let csv = |args: &[&str]| {
        let out = netsql().args(args).args(["--format", "csv"]).run();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listeners = csv(&["-q", "listeners_by_container"]);
    let mut lines = listeners.lines();
    assert_eq!(
        lines.next(),
        Some("netns,netns_name,runtime,container_id,proto,local_address,local_port,pid,program,cmdline")
    );
    let all: Vec<&str> = lines.collect();
    for (i, place) in places.iter().enumerate() {
        let port = 7100 + 100 * i as u16;
        let (runtime, id) = match (&container, i) {
            (Some(c), 3) => ("docker", c.id.as_str()),
            _ => ("", ""),
        };
        let prefix = format!(
            "{},{},{runtime},{id},",
            place.inode,
            place.name.as_deref().unwrap_or("")
        );
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", place.pid())).unwrap();
        let cmdline =
            String::from_utf8_lossy(cmdline.strip_suffix(b"\0").unwrap()).replace('\0', " ");
        assert!(
            cmdline.ends_with(&format!("python3 {HOLDER} {port}")),
            "{cmdline}"
        );
        let owner = format!("{},python3,{cmdline}", place.pid());
        let got: Vec<&str> = all
            .iter()
            .copied()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        assert_eq!(
            got,
            [
                format!("{prefix}tcp,127.0.0.1,{port},{owner}"),
                format!("{prefix}tcp6,::,{},{owner}", port + 1),
                format!("{prefix}udp,0.0.0.0,{},{owner}", port + 2),
            ],
            "{listeners}"
        );
    }
    let per_namespace = csv(&["-q", "sockets_per_namespace"]);
    for place in &places {
        let ss = place.run(&["ss", "-Htuanwx"]);
        let count = |keep: &dyn Fn(&[&str]) -> bool| {
            ss.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|f| keep(f))
                .count()
        };
        let (runtime, id) = match (&container, place.name.is_none()) {
            (Some(c), true) => ("docker", c.id.as_str()),
            _ => ("", ""),
        };
        let want = format!(
            "{},{},{runtime},{id},{},{},{},{},{}",
            place.inode,
            place.name.as_deref().unwrap_or(""),
            count(&|_| true),
            count(&|f| f[1] == "LISTEN"),
            count(&|f| f[1] == "ESTAB"),
            count(&|f| f[0] == "udp"),
            count(&|f| f[0].starts_with("u_")),
        );
        assert!(
            per_namespace.lines().any(|l| l == want),
            "no {want} in {per_namespace}"
        );
    }
    // The audit reads the whole host, where real containers may listen too: only the
    // findings in our namespaces are ours to check.
    let ours: Vec<u64> = places.iter().map(|p| p.inode).collect();
    let found = |params: &[&str]| -> Vec<(String, i64)> {
        let out = netsql()
            .args(["audit", "--format", "json"])
            .args(params)
            .run();
        let audits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let audit = audits
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "container_wildcard_listeners")
            .expect("the container audit ran");
        audit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["netns"].as_u64().is_some_and(|n| ours.contains(&n)))
            .map(|f| {
                (
                    f["container_id"].as_str().unwrap().to_string(),
                    f["local_port"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    match &container {
        // [::]:7401 and 0.0.0.0:7402 in the container; 127.0.0.1:7400 is not wildcard.
        Some(c) => assert_eq!(found(&[]), [(c.id.clone(), 7401), (c.id.clone(), 7402)]),
        None => assert!(found(&[]).is_empty()),
    }
    assert_eq!(found(&["-p", "allow=python3"]), []);

    // netstat --netns all: a block per namespace, each titled, each as netstat inside.
    let out = netsql().args(["netstat", "--netns", "all", "-tuln"]).run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text_out = String::from_utf8(out.stdout).unwrap();
    for place in &places {
        let title = match &place.name {
            Some(name) => format!("Network namespace {} ({name})", place.inode),
            None if container.is_some() => format!(
                "Network namespace {} container docker {}",
                place.inode,
                container.as_ref().unwrap().id
            ),
            None => format!("Network namespace {}", place.inode),
        };
        let start = text_out
            .lines()
            .position(|l| l == title)
            .unwrap_or_else(|| panic!("no {title:?} in {text_out}"));
        let block: Vec<&str> = text_out
            .lines()
            .skip(start + 1)
            .take_while(|l| !l.starts_with("Network namespace "))
            .collect();
        let inside = place.run(&["netstat", "-tuln"]);
        assert_eq!(block, inside.lines().collect::<Vec<_>>(), "{title}");
    }
}

/// How many times netsql entered another namespace (setns(2) calls, home trips excluded).
fn entered(args: &[&str], sql: &str) -> (usize, Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=setns", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_netsql"))
        .args(args)
        .args(["--format", "ndjson", "-e", sql])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Concurrent calls come split ("setns(3, CLONE_NEWNET <unfinished ...>", then
    // "<... setns resumed>) = 0"): count the calls made, and that none failed.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let calls = trace.lines().filter(|l| l.contains("setns(")).count();
    assert!(!trace.contains("= -1"), "a setns failed: {trace}");
    // Each visit is a trip there and back.
    (calls / 2, ndjson(&out.stdout))
}

#[test]
fn a_namespace_filter_reads_that_namespace_alone() {
    // `--netns all` below counts the namespaces it entered against those that answered.
    let _quiet = CHURN.write().unwrap_or_else(|e| e.into_inner());
    let Some(a) = Netns::create("one-a", &["ss", "python3", "strace"]) else {
        return;
    };
    let Some(b) = Netns::create("one-b", &[]) else {
        return;
    };
    let place = named(&a, 7500);
    let _other = named(&b, 7600);
    let want = place.run(&["ss", "-Htan"]).lines().count();
    let sql = format!(
        "SELECT netns_name, local_port FROM sockets WHERE netns_name = '{}' AND proto LIKE 'tcp%'",
        a.name
    );
    for args in [&[][..], &["--netns", "all"][..]] {
        let (visits, rows) = entered(args, &sql);
        assert_eq!(visits, 1, "{args:?}: only {} is entered", a.name);
        assert_eq!(rows.len(), want, "{rows:?}");
        assert!(rows
            .iter()
            .all(|r| text(r, "netns_name").as_deref() == Some(a.name.as_str())));
    }
    let sql = format!(
        "SELECT count(*) AS n FROM sockets WHERE netns IN ({}, {})",
        a.inode(),
        b.inode()
    );
    let (visits, rows) = entered(&[], &sql);
    assert_eq!(visits, 2);
    let both = [&a, &b]
        .iter()
        .map(|ns| ns.exec_ok(&["ss", "-Htuanwx"]).lines().count())
        .sum::<usize>();
    assert_eq!(number(&rows[0], "n"), Some(both as u64));
    // The setting widens every per-namespace table; no filter means every namespace.
    // Every namespace has a loopback interface: one visit for each namespace answering,
    // but the current one.
    let (visits, rows) = entered(&["--netns", "all"], "SELECT DISTINCT netns FROM interfaces");
    let answered: Vec<u64> = rows.iter().filter_map(|r| number(r, "netns")).collect();
    assert!(
        answered.contains(&a.inode()) && answered.contains(&b.inode()),
        "{answered:?}"
    );
    assert_eq!(visits + 1, answered.len(), "{answered:?}");
    let (visits, _) = entered(&[], "SELECT count(*) FROM interfaces");
    assert_eq!(visits, 0, "the current namespace needs no setns");
}

#[test]
fn scans_survive_namespaces_coming_and_going() {
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    let Some(keep) = Netns::create("churn-keep", &["python3"]) else {
        return;
    };
    let _kept = named(&keep, 7700);
    let done = AtomicBool::new(false);
    let scans = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Namespaces made and deleted while the scans run, each with sockets.
            let mut round = 0;
            while !done.load(Ordering::Relaxed) {
                round += 1;
                let Some(ns) = Netns::create(&format!("churn-{round}"), &[]) else {
                    return;
                };
                let holder = named(&ns, 7800);
                std::thread::sleep(Duration::from_millis(30));
                drop(holder);
                drop(ns);
            }
        });
        // Set however the scans end: a failed assertion below must end the churn too,
        // or the scope waits for it forever (and holds CHURN from the other tests).
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _done = Done(&done);
        for _ in 0..50 {
            let out = netsql()
                .args(["--netns", "all", "--format", "ndjson", "-e"])
                .arg("SELECT netns, proto, state, local_address, local_port, remote_address, remote_port, inode, path FROM sockets")
                .run();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rows = ndjson(&out.stdout);
            let distinct: BTreeSet<String> = rows.iter().map(|r| format!("{r:?}")).collect();
            assert_eq!(distinct.len(), rows.len(), "a row twice");
            let kept = rows
                .iter()
                .filter(|r| {
                    number(r, "netns") == Some(keep.inode())
                        && number(r, "local_port") == Some(7700)
                        && text(r, "state").as_deref() == Some("LISTEN")
                })
                .count();
            assert_eq!(kept, 1, "the namespace that stays is read every time");
            scans.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(scans.load(Ordering::Relaxed), 50);
}

#[test]
fn unprivileged_gets_one_warning_and_exit_zero() {
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    let Some(ns) = Netns::create("nobody", &["setpriv"]) else {
        return;
    };
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_netsql"))
        .args(["--netns", "all", "--format", "csv", "-e"])
        .arg("SELECT count(*) AS n FROM sockets")
        .current_dir("/")
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("netsql: ") && lines[0].contains("network namespace"),
        "{stderr}"
    );
    assert!(lines[0].contains("not visible"), "{stderr}");
    // Named outright, a namespace we may not enter is an empty answer with that line.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_netsql"))
        .args([
            "--netns",
            &ns.name,
            "--format",
            "csv",
            "-e",
            "SELECT count(*) AS n FROM sockets",
        ])
        .current_dir("/")
        .run();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    // A namespace of nobody's own (a user namespace with a network namespace): not
    // enterable without CAP_SYS_ADMIN, read through /proc/<pid>/net of its process.
    let as_nobody = |program: &str| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
            .current_dir("/");
        command
    };
    let script = "ip link set lo up && exec python3 -c \"import socket, sys; s = socket.socket(); \
                  s.bind(('127.0.0.1', 7601)); s.listen(); print('ready', flush=True); sys.stdin.read()\"";
    let mut own = as_nobody("unshare");
    own.args(["-rn", "sh", "-c", script]);
    let (holder, _) = host::hold(own);
    let inode = std::fs::metadata(format!("/proc/{}/ns/net", holder.id()))
        .unwrap()
        .ino();
    let out = as_nobody(env!("CARGO_BIN_EXE_netsql"))
        .args(["--netns", "all", "--format", "ndjson", "-e"])
        .arg("SELECT netns, state, local_port, send_q FROM sockets WHERE local_port = 7601")
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = ndjson(&out.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(number(&rows[0], "netns"), Some(inode));
    // A listener's send_q (its backlog) is in sock_diag only: NULL proves the files.
    assert_eq!(rows[0]["send_q"], serde_json::Value::Null);
    drop(holder);
}

#[test]
fn the_repl_takes_the_setting() {
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    use expectrl::session::OsSession as Session;
    use expectrl::Expect;
    let Some(ns) = Netns::create("repl", &["python3"]) else {
        return;
    };
    let _held = named(&ns, 7900);
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
    command
        .env("XDG_DATA_HOME", data.path())
        .env("XDG_CONFIG_HOME", data.path().join("config"))
        .env("TERM", "xterm-256color");
    let mut s = Session::spawn(command).expect("spawn netsql in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    let query = "SELECT netns_name FROM sockets WHERE local_port = 7900 AND state = 'LISTEN';\r";
    s.expect("netsql> ").unwrap();
    s.send(query).unwrap();
    s.expect("(0 rows)").unwrap();
    s.expect("netsql> ").unwrap();
    s.send("SET netsql.netns = 'all';\r").unwrap();
    s.expect("netsql> ").unwrap();
    s.send(query).unwrap();
    s.expect(format!("| {} |", ns.name).as_str()).unwrap();
    s.expect("(1 row)").unwrap();
    s.expect("netsql> ").unwrap();
    s.send("\\q\r").unwrap();
    s.expect(expectrl::Eof).unwrap();
}

/// A filter that names namespaces in any shape (an OR with other columns, LIKE, a name
/// that does not exist) reads every namespace it could match, so its rows are those of
/// `--netns all` and of `ss` inside each; a name no namespace has is said on stderr.
#[test]
fn namespace_filters_of_any_shape_answer_as_netns_all_does() {
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    let Some(a) = Netns::create("shape-a", &["ss", "python3"]) else {
        return;
    };
    let Some(b) = Netns::create("shape-b", &[]) else {
        return;
    };
    let _a = named(&a, 7710);
    let _b = named(&b, 7810);
    let count = |ns: &Netns, argv: &[&str]| ns.exec_ok(argv).lines().count();
    let all_of = |ns: &Netns| count(ns, &["ss", "-Htuanwx"]);
    let listening = count(&a, &["ss", "-Hn", "-t", "-x", "state", "listening"]);
    let on_7810 = count(&b, &["ss", "-Htuan", "sport = :7810"]);
    let (an, bn) = (&a.name, &b.name);
    // Per shape: how many rows `ss` inside each namespace says come from a and from b
    // (none from any other).
    for (filter, witness) in [
        (
            format!("(netns_name = '{an}' AND state = 'LISTEN') OR netns_name = '{bn}'"),
            (listening, all_of(&b)),
        ),
        (
            format!("netns_name = '{an}' OR local_port = 7810"),
            (all_of(&a), on_7810),
        ),
        (
            "netns_name LIKE 'netsql-shape-%'".to_string(),
            (all_of(&a), all_of(&b)),
        ),
        (
            format!(
                "netns IN ({}, {}) AND (netns = {} OR state = 'LISTEN')",
                a.inode(),
                b.inode(),
                b.inode()
            ),
            (listening, all_of(&b)),
        ),
    ] {
        let sql = format!(
            "SELECT netns_name, proto, state, local_address, local_port, remote_address, remote_port \
             FROM sockets WHERE {filter}"
        );
        let chosen = query(&[], &sql);
        let from = |name: &str| {
            chosen
                .iter()
                .filter(|r| text(r, "netns_name").as_deref() == Some(name))
                .count()
        };
        assert_eq!(
            (from(an), from(bn), chosen.len()),
            (witness.0, witness.1, witness.0 + witness.1),
            "{filter}: {chosen:?}"
        );
        let rows = |rows: Vec<Row>| -> Vec<String> {
            sorted(
                rows.iter()
                    .map(|r| serde_json::to_string(r).unwrap())
                    .collect(),
            )
        };
        let everywhere = rows(query(&["--netns", "all"], &sql));
        assert_eq!(rows(chosen), everywhere, "{filter}: as with --netns all");
    }
    let out = netsql()
        .args(["--format", "csv", "-e"])
        .arg("SELECT count(*) AS n FROM sockets WHERE netns_name = 'netsql-no-such-ns'")
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "netsql: no network namespace is named \"netsql-no-such-ns\"\n"
    );
    // A narrowing cast the user wrote is no filter on the column (helper-47): taken as
    // `netns = N`, it read every namespace and no row was checked again; taken as a
    // port test, port 7810 passed `CAST(local_port AS TINYINT)`. Each answers as the
    // same filter that cannot be pushed (`OR random() > 2`) does: the cast fails.
    for filter in [
        format!("CAST(netns AS INT) = {}", a.inode()),
        format!("CAST(netns AS SMALLINT) IN ({}, 1)", a.inode()),
        "CAST(local_port AS TINYINT) IN (22, 7810)".to_string(),
        "CAST(remote_port AS SMALLINT) = 42010".to_string(),
    ] {
        let outcome = |filter: &str| {
            let out = netsql()
                .args(["--netns", &format!("{an},{bn}"), "--format", "csv", "-e"])
                .arg(format!("SELECT count(*) AS n FROM sockets WHERE {filter}"))
                .run();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code(), err.contains("Can't cast value"))
        };
        let pushed = outcome(&filter);
        assert_eq!(pushed, (Some(2), true), "{filter}");
        assert_eq!(
            pushed,
            outcome(&format!("({filter}) OR random() > 2")),
            "{filter}"
        );
    }
    // A mistyped `--netns` is an error whether or not a filter chooses instead of it.
    for sql in [
        "SELECT count(*) FROM sockets",
        "SELECT count(*) FROM sockets WHERE netns IS NOT NULL",
    ] {
        let out = netsql()
            .args(["--netns", "netsql-no-such-ns", "-e", sql])
            .run();
        assert_eq!(out.status.code(), Some(2), "{sql}");
        assert!(out.stdout.is_empty(), "{sql}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "netsql: no network namespace named \"netsql-no-such-ns\" (see `ip netns list`): No such file or directory (os error 2)\n",
            "{sql}"
        );
    }
}

/// A second `ip netns` name for a namespace (a bind mount of the first, what `ip netns
/// attach` makes): `--netns` takes either name; `netns_name` shows the first in byte
/// order, so a filter on the second finds nothing and says which name to use, not that
/// no namespace has it.
#[test]
fn a_second_name_is_told_apart_from_no_name() {
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    let Some(a) = Netns::create("alias", &["ss"]) else {
        return;
    };
    let _a = named(&a, 7910);
    // Sorts after `netsql-...`: the namespace keeps going by its first name.
    let alias = format!("zz-netsql-alias-{}", std::process::id());
    let path = std::path::Path::new("/run/netns").join(&alias);
    std::fs::File::create(&path).unwrap();
    let bound = Bound(path);
    let first = std::path::Path::new("/run/netns").join(&a.name);
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(&first)
        .arg(&bound.0)
        .run();
    assert!(mounted.status.success(), "{mounted:?}");
    assert_eq!(std::fs::metadata(&bound.0).unwrap().ino(), a.inode());

    let want = a.exec_ok(&["ss", "-Htan"]).lines().count();
    let rows = query(
        &["--netns", &alias],
        "SELECT netns, netns_name FROM sockets WHERE proto LIKE 'tcp%'",
    );
    assert_eq!(rows.len(), want, "{rows:?}");
    assert!(rows.iter().all(|r| number(r, "netns") == Some(a.inode())
        && text(r, "netns_name").as_deref() == Some(a.name.as_str())));

    let out = netsql()
        .args(["--format", "csv", "-e"])
        .arg(format!(
            "SELECT count(*) AS n FROM sockets WHERE netns_name = '{alias}'"
        ))
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "netsql: network namespace {alias:?} is also named {:?}, the name netns_name shows; \
             filter on that, or use --netns {alias}\n",
            a.name
        )
    );
}

/// A bind mount under /run/netns, unmounted and removed when dropped.
struct Bound(std::path::PathBuf);

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).run();
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A namespace of another kind bound under /run/netns (`mount --bind /proc/PID/ns/uts`)
/// is on the same nsfs device as a network namespace but is none: `ip netns exec`
/// refuses it. It is not listed, and `--netns` naming it, or another kind's file, fails
/// in one line (it gave 0 rows, exit 0: setns refused it and that read as "gone").
#[test]
fn a_namespace_of_another_kind_is_no_network_namespace() {
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    // Made for what it checks: that namespaces can be made here.
    let Some(_ns) = Netns::create("kind", &[]) else {
        return;
    };
    let name = format!("netsql-uts-{}", std::process::id());
    let path = std::path::Path::new("/run/netns").join(&name);
    std::fs::File::create(&path).unwrap();
    let bound = Bound(path);
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg("/proc/self/ns/uts")
        .arg(&bound.0)
        .run();
    assert!(mounted.status.success(), "{mounted:?}");
    let witness = Command::new("ip")
        .args(["netns", "exec", &name, "true"])
        .run();
    assert!(!witness.status.success(), "ip netns exec entered {name}");

    let names: Vec<Option<String>> = query(&[], "SELECT name FROM net_namespaces")
        .iter()
        .map(|r| text(r, "name"))
        .collect();
    assert!(!names.contains(&Some(name.clone())), "{names:?}");
    for selector in [name.as_str(), "/proc/self/ns/mnt"] {
        let out = netsql()
            .args(["--netns", selector, "-e", "SELECT count(*) FROM sockets"])
            .run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{selector}: {err}");
        assert!(out.stdout.is_empty(), "{selector}");
        assert!(
            err.ends_with(": a namespace of another kind, not a network one\n"),
            "{selector}: {err}"
        );
    }
}

/// An `ip netns` name that is not UTF-8 (`ip netns add $'x\xff'`): `netns_name` and
/// `net_namespaces.path` show the byte as `\xff` (the path was NULL), and `--netns`
/// takes the name so shown (it could not be given at all).
#[test]
fn a_name_that_is_not_utf8_is_shown_and_taken() {
    use std::os::unix::ffi::OsStrExt;
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    let Some(_ns) = Netns::create("bytes", &[]) else {
        return;
    };
    let raw = format!("netsql-bytes-{}-", std::process::id());
    let mut bytes = raw.clone().into_bytes();
    bytes.push(0xff);
    let name = std::ffi::OsStr::from_bytes(&bytes);
    struct Deleted(std::ffi::OsString);
    impl Drop for Deleted {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .arg("netns")
                .arg("del")
                .arg(&self.0)
                .run();
        }
    }
    let added = Command::new("ip").arg("netns").arg("add").arg(name).run();
    assert!(added.status.success(), "{added:?}");
    let _deleted = Deleted(name.to_owned());
    let inode = std::fs::metadata(std::path::Path::new("/run/netns").join(name))
        .unwrap()
        .ino();
    let shown = format!("{raw}\\xff");
    let rows = query(
        &[],
        &format!("SELECT inode, name, path FROM net_namespaces WHERE inode = {inode}"),
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(text(&rows[0], "name"), Some(shown.clone()));
    assert_eq!(text(&rows[0], "path"), Some(format!("/run/netns/{shown}")));
    let rows = query(
        &["--netns", &shown],
        "SELECT DISTINCT netns, netns_name FROM interfaces",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(number(&rows[0], "netns"), Some(inode));
    assert_eq!(text(&rows[0], "netns_name"), Some(shown));
}

#[test]
fn a_container_in_the_v1_trees_only_is_a_container() {
    // Docker's cgroupfs driver on a hybrid host: `/docker/<id>` in the v1 hierarchies,
    // `0::/` in the unified one. The process and its namespace are the container's, as
    // /proc/<pid>/cgroup says.
    let _churning = CHURN.read().unwrap_or_else(|e| e.into_inner());
    // Made for what it checks: that namespaces can be made here.
    let Some(_ns) = Netns::create("v1", &["python3"]) else {
        return;
    };
    let place = unnamed(7600);
    let container = match V1Container::hold(place.pid()) {
        Ok(Some(container)) => container,
        Ok(None) => {
            eprintln!("skipped: no cgroup v1 hierarchy is mounted here");
            return;
        }
        Err(why) => {
            common::skip_or_fail(&format!("cgroup v1 cannot be written: {why}"));
            return;
        }
    };
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", place.pid())).unwrap();
    // Run inside a container itself (its unified cgroup names one), the process is that
    // container's: the unified path is the answer, and this case cannot be made.
    let unified = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    if unified
        .split(['/', '-', '.'])
        .any(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        eprintln!("skipped: this test runs in a container's cgroup ({unified})");
        return;
    }
    let placed = format!("/docker/{}", container.id);
    assert!(cgroup.contains(&placed), "{cgroup}");
    let processes = query(
        &[],
        &format!(
            "SELECT cgroup, container_id, runtime FROM processes WHERE pid = {}",
            place.pid()
        ),
    );
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(text(&processes[0], "cgroup"), Some(placed), "{cgroup}");
    assert_eq!(
        text(&processes[0], "container_id").as_deref(),
        Some(container.id.as_str())
    );
    assert_eq!(text(&processes[0], "runtime").as_deref(), Some("docker"));
    let namespaces = query(
        &[],
        &format!(
            "SELECT container_id, runtime FROM net_namespaces WHERE inode = {}",
            place.inode
        ),
    );
    assert_eq!(
        text(&namespaces[0], "container_id").as_deref(),
        Some(container.id.as_str()),
        "{namespaces:?}"
    );
}
