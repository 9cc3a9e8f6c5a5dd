//! `netsql doctor`: each line it prints agrees with what `tests/doctor_witness.py` finds
//! on the same machine without netsql (its own sock_diag client and destroy-group
//! subscription, `ss -K`, getsockopt(TCP_INFO), `conntrack -C`, `sysctl`, `stat -f`,
//! another user's /proc/PID/fd), with all capabilities and without CAP_NET_ADMIN and
//! CAP_SYS_PTRACE (`capsh --drop`), in a namespace of the test's own and on the host.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use common::seccomp::{seccomp, Deny};
use common::{Kid, Netns, RunExt};

const WITNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/doctor_witness.py");

/// `name: value` lines, by name.
fn lines(out: &Output, what: &str) -> BTreeMap<String, String> {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A process of another user (nobody) for the owner probe, killed on drop.
fn nobodys_process() -> Kid {
    let kid = Kid::spawn(
        Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "sleep",
                "600",
            ])
            .stdin(Stdio::null()),
    );
    // Wait for the exec: until then the process is still root's setpriv.
    let status = format!("/proc/{}/status", kid.id());
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while !std::fs::read_to_string(&status).is_ok_and(|s| s.starts_with("Name:\tsleep\n")) {
        assert!(std::time::Instant::now() < deadline, "sleep never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    kid
}

/// Runs `argv` inside `ns` (or on the host), through `capsh --drop=DROP` when given.
fn run(ns: Option<&Netns>, drop: Option<&str>, argv: &[&str]) -> Output {
    let mut full: Vec<String> = Vec::new();
    if let Some(ns) = ns {
        full.extend(["ip", "netns", "exec", &ns.name].map(String::from));
    }
    match drop {
        Some(caps) => full.extend([
            "capsh".to_string(),
            format!("--drop={caps}"),
            "--".to_string(),
            "-c".to_string(),
            format!("exec {}", argv.join(" ")),
        ]),
        None => full.extend(argv.iter().map(|a| a.to_string())),
    }
    Command::new(&full[0]).args(&full[1..]).run()
}

/// Checks doctor's report against the witness's, line by line; counts must agree only
/// where nothing else changes them (a namespace of our own).
fn agree(doctor: &BTreeMap<String, String>, witness: &BTreeMap<String, String>, exact: bool) {
    for (name, seen) in witness {
        let said = doctor
            .get(name)
            .unwrap_or_else(|| panic!("doctor has no {name:?} line: {doctor:#?}"));
        let first = |s: &str| s.split([' ', ':']).next().unwrap_or("").to_string();
        match name.as_str() {
            "tcp_info" => assert_eq!(said, seen, "tcp_info"),
            "cgroup v2" => match seen.strip_prefix("yes ") {
                Some(path) => assert_eq!(said, &format!("yes (cgroup2 at {path})")),
                None => assert!(said.starts_with("no"), "cgroup v2: {said} vs {seen}"),
            },
            "conntrack" if exact && seen.starts_with("yes") => {
                let count = seen.split(' ').nth(1).expect("a count");
                assert!(
                    said.starts_with(&format!("yes (ctnetlink answers: {count} entries")),
                    "conntrack: {said} vs {seen}"
                );
            }
            _ => assert_eq!(
                first(said),
                first(seen),
                "{name}: doctor {said:?}, witness {seen:?}"
            ),
        }
    }
}

#[test]
fn doctor_agrees_with_its_witnesses() {
    let tools = [
        "ss",
        "python3",
        "conntrack",
        "capsh",
        "setpriv",
        "sysctl",
        "stat",
    ];
    let Some(ns) = Netns::create("doctor", &tools) else {
        return;
    };
    let nobody = nobodys_process();
    let pid = nobody.id().to_string();
    let netsql = env!("CARGO_BIN_EXE_netsql");
    let report = |ns: Option<&Netns>, drop: Option<&str>| {
        let doctor = lines(&run(ns, drop, &[netsql, "doctor"]), "netsql doctor");
        let witness = lines(&run(ns, drop, &["python3", WITNESS, &pid]), "the witness");
        (doctor, witness)
    };

    // All capabilities, accounting and timestamps off.
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=0"]);
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=0"]);
    let (doctor, witness) = report(Some(&ns), None);
    agree(&doctor, &witness, true);
    for line in [
        "CAP_NET_ADMIN",
        "SOCK_DESTROY",
        "conntrack",
        "other users' processes",
    ] {
        assert!(
            doctor[line].starts_with("yes"),
            "as root, {line}: {}",
            doctor[line]
        );
    }
    assert!(doctor["conntrack accounting"].starts_with("off"));
    // The kernel's iterator over open files, which servers list socket owners with: it
    // loads here and lists a socket of doctor's own (netns_owners checks what it lists).
    // A build without clang has none; CI installs clang.
    let iterator = &doctor["socket owners' iterator"];
    let built_with_iterator = !iterator.contains("built without it");
    if built_with_iterator {
        assert!(iterator.starts_with("yes"), "{iterator}");
    } else {
        common::skip_or_fail(&format!("socket owners' iterator: {iterator}"));
    }

    // Without CAP_NET_ADMIN and CAP_SYS_PTRACE; accounting and timestamps on.
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"]);
    ns.exec_ok(&["sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1"]);
    let (doctor, witness) = report(Some(&ns), Some("cap_net_admin,cap_sys_ptrace"));
    agree(&doctor, &witness, true);
    for line in [
        "CAP_NET_ADMIN",
        "CAP_SYS_PTRACE",
        "conntrack",
        "other users' processes",
    ] {
        assert!(
            doctor[line].starts_with("no"),
            "dropped, {line}: {}",
            doctor[line]
        );
    }
    assert!(
        doctor["SOCK_DESTROY"].contains("CAP_NET_ADMIN")
            || doctor["SOCK_DESTROY"].contains("CONFIG_INET_DIAG_DESTROY"),
        "{}",
        doctor["SOCK_DESTROY"]
    );
    assert!(doctor["conntrack accounting"].starts_with("on"));
    assert!(doctor["conntrack timestamps"].starts_with("on"));
    // The iterator only where the walk it stands in for sees as much: here (no
    // CAP_SYS_PTRACE) the walk is denied other users' descriptors, so no iterator. CAP_BPF
    // alone does not load a tracing program (the kernel wants CAP_PERFMON too), and under
    // a seccomp filter a bpf call may kill the process: doctor says each before trying.
    if built_with_iterator {
        let iterator = &doctor["socket owners' iterator"];
        assert!(
            iterator.starts_with("no: without CAP_SYS_PTRACE"),
            "{iterator}"
        );
        // CAP_SYS_PTRACE alone dropped: the capability numbers doctor reads are pinned
        // by the witness's, one at a time.
        let (doctor, witness) = report(Some(&ns), Some("cap_sys_ptrace"));
        agree(&doctor, &witness, true);
        let iterator = &doctor["socket owners' iterator"];
        assert!(
            iterator.starts_with("no: without CAP_SYS_PTRACE"),
            "{iterator}"
        );
        let without_perfmon = lines(
            &run(
                Some(&ns),
                Some("cap_sys_admin,cap_perfmon"),
                &[netsql, "doctor"],
            ),
            "netsql doctor",
        );
        let iterator = &without_perfmon["socket owners' iterator"];
        assert!(
            iterator.starts_with("no: loading it needs CAP_BPF and CAP_PERFMON"),
            "{iterator}"
        );
        let filtered = seccomp(
            Command::new(netsql).arg("doctor"),
            Deny {
                syscall: libc::SYS_bpf,
                args: &[],
                errno: libc::EPERM,
            },
        )
        .run();
        let filtered = lines(&filtered, "netsql doctor under seccomp");
        let iterator = &filtered["socket owners' iterator"];
        assert!(
            iterator.starts_with("no: a seccomp filter is on"),
            "{iterator}"
        );
    }

    // The host's mount namespace, where cgroup2 may be mounted (`ip netns exec` mounts a
    // fresh /sys, so inside it cgroup2 is not); its conntrack count moves.
    let (doctor, witness) = report(None, None);
    agree(&doctor, &witness, false);
    drop(nobody);
}

#[test]
fn doctor_leads_with_the_version() {
    let out = common::netsql().arg("doctor").run();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut first = text.lines();
    assert_eq!(
        first
            .next()
            .map(|l| l.starts_with(&format!("netsql {} (commit ", env!("CARGO_PKG_VERSION")))),
        Some(true),
        "{text}"
    );
    assert!(first.next().is_some_and(|l| l.starts_with("DataFusion ")));
    assert!(first.next().is_some_and(|l| l.starts_with("Arrow ")));
    // Every other line is `name: value`, one a probe; none is empty.
    for line in first {
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        assert!(!name.is_empty() && !value.is_empty(), "{line:?}");
    }
}
