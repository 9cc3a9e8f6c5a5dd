//! The test host: namespaces holding known sockets, a fake container, and what `ss` and
//! `stat` say about them independently of netsql.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{ndjson, netsql, run_ok, Cgroup2, Kid, Lines, Netns, Row, RunExt};
use crate::ss;

pub const HOLDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/holder.py");

/// A namespace of the test host: how to run a command inside, and what it should show.
pub struct Place {
    pub inode: u64,
    pub name: Option<String>,
    pub holder: Kid,
    /// `ip netns exec NAME` or `nsenter -t PID -n`.
    prefix: Vec<String>,
}

impl Place {
    pub fn run(&self, argv: &[&str]) -> String {
        let mut all: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        all.extend_from_slice(argv);
        run_ok(all[0], &all[1..])
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }
}

/// Starts the holder on `port` with `command` (which runs it in some namespace).
pub fn hold(mut command: Command) -> (Kid, Lines) {
    let mut kid = Kid::spawn(
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let lines = Lines::of(kid.stdout.take().expect("piped"));
    lines.expect("ready");
    (kid, lines)
}

pub fn named(ns: &Netns, port: u16) -> Place {
    let (holder, _) = hold(ns.command(&["python3", HOLDER, &port.to_string()]));
    Place {
        inode: ns.inode(),
        name: Some(ns.name.clone()),
        holder,
        prefix: ["ip", "netns", "exec", &ns.name].map(String::from).to_vec(),
    }
}

pub fn unnamed(port: u16) -> Place {
    let mut command = Command::new("unshare");
    command.args([
        "-n",
        "sh",
        "-c",
        &format!("ip link set lo up && exec python3 {HOLDER} {port}"),
    ]);
    let (holder, _) = hold(command);
    let pid = holder.id();
    let inode = std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .expect("stat the holder's namespace")
        .ino();
    Place {
        inode,
        name: None,
        holder,
        prefix: vec!["nsenter".into(), "-t".into(), pid.to_string(), "-n".into()],
    }
}

/// A cgroup v2 directory shaped like a Docker container's scope, removed on drop.
pub struct FakeContainer {
    parent: PathBuf,
    pub id: String,
    // Dropped last: the hierarchy, unmounted if the test mounted it.
    cgroup2: Cgroup2,
}

impl FakeContainer {
    /// Moves `pid` into `<cgroup2>/netsql-test-<pid>/docker-<id>.scope`; `Ok(None)` when
    /// this kernel has no cgroup2 at all, `Err` when it has and that failed.
    pub fn hold(pid: u32) -> Result<Option<FakeContainer>, String> {
        let Some(cgroup2) = Cgroup2::find()? else {
            return Ok(None);
        };
        let id = format!("{:016x}", std::process::id() as u64 * 0x9e37_79b9).repeat(4);
        let parent = cgroup2
            .mount
            .join(format!("netsql-test-{}", std::process::id()));
        let scope = parent.join(format!("docker-{id}.scope"));
        std::fs::create_dir_all(&scope).map_err(|e| format!("mkdir {}: {e}", scope.display()))?;
        let container = FakeContainer {
            parent,
            id,
            cgroup2,
        };
        std::fs::write(scope.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("move pid {pid} into {}: {e}", scope.display()))?;
        Ok(Some(container))
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        // A process still inside goes back to the root cgroup; then the empty ones go.
        let scope = self.parent.join(format!("docker-{}.scope", self.id));
        let procs = std::fs::read_to_string(scope.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write(self.cgroup2.mount.join("cgroup.procs"), pid);
        }
        let _ = std::fs::remove_dir(&scope);
        let _ = std::fs::remove_dir(&self.parent);
    }
}

/// Every namespace inode a root process can see, read independently of netsql: stat of
/// each /proc/<pid>/ns/net and of each bind mount under /run/netns and /run/docker/netns.
pub fn host_namespaces() -> BTreeSet<u64> {
    let nsfs = std::fs::metadata("/proc/self/ns/net").unwrap().dev();
    let mut found = BTreeSet::new();
    for dir in ["/proc"] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().parse::<u32>().is_ok() {
                if let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) {
                    found.insert(meta.ino());
                }
            }
        }
    }
    for dir in ["/run/netns", "/run/docker/netns"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(meta) = std::fs::metadata(entry.path()) {
                if meta.dev() == nsfs {
                    found.insert(meta.ino());
                }
            }
        }
    }
    found
}

pub fn query(args: &[&str], sql: &str) -> Vec<Row> {
    let out = netsql()
        .args(args)
        .args(["--format", "ndjson", "-e", sql])
        .run();
    assert!(
        out.status.success(),
        "netsql {args:?} -e {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
}

/// (program, pid, fd): a process holding a socket.
pub type Holder = (String, u64, u64);

/// Each process `ss -p` names in one line's `users:((...))`.
pub fn users(line: &str) -> Vec<Holder> {
    let Some(at) = line.find("users:((") else {
        return Vec::new();
    };
    let list = &line[at + 8..];
    let list = &list[..list.find("))").expect("users:((...)) closes")];
    list.split("),(")
        .map(|user| {
            let mut parts = user.split(',');
            let program = parts.next().unwrap().trim_matches('"').to_string();
            let field = |parts: &mut std::str::Split<char>, key: &str| -> u64 {
                parts
                    .next()
                    .and_then(|p| p.strip_prefix(key))
                    .unwrap_or_else(|| panic!("{key} in {line}"))
                    .parse()
                    .unwrap()
            };
            let pid = field(&mut parts, "pid=");
            let fd = field(&mut parts, "fd=");
            (program, pid, fd)
        })
        .collect()
}

/// ss's rows of a namespace, each with the lowest-pid holder `ss -p` names.
pub fn ss_with_owners(place: &Place) -> Vec<(ss::SsRow, Option<Holder>)> {
    place
        .run(&["ss", "-Htuanwxeop"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let row = ss::parse(line).pop().expect("one row per line");
            let lowest = users(line)
                .into_iter()
                .min_by_key(|(_, pid, fd)| (*pid, *fd));
            (row, lowest)
        })
        .collect()
}

pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// A cgroup v1 directory shaped like Docker's cgroupfs driver's (`/docker/<id>` in a v1
/// hierarchy, the unified one left at its root), removed on drop.
pub struct V1Container {
    hierarchy: PathBuf,
    pub id: String,
}

impl V1Container {
    /// Moves `pid` into `<a v1 hierarchy>/docker/<id>`; `Ok(None)` when no v1 hierarchy
    /// is mounted (a unified host), `Err` when one is and that failed.
    pub fn hold(pid: u32) -> Result<Option<V1Container>, String> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read mounts");
        let Some(hierarchy) = mounts.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(2) == Some(&"cgroup")).then(|| PathBuf::from(fields[1]))
        }) else {
            return Ok(None);
        };
        let id = format!("{:016x}", std::process::id() as u64 * 0x51_7cc1).repeat(4);
        let dir = hierarchy.join("docker").join(&id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let container = V1Container { hierarchy, id };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("move pid {pid} into {}: {e}", dir.display()))?;
        Ok(Some(container))
    }
}

impl Drop for V1Container {
    fn drop(&mut self) {
        let dir = self.hierarchy.join("docker").join(&self.id);
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write(self.hierarchy.join("cgroup.procs"), pid);
        }
        let _ = std::fs::remove_dir(&dir);
        // Left when Docker itself uses it.
        let _ = std::fs::remove_dir(self.hierarchy.join("docker"));
    }
}
