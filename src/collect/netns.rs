//! Network namespaces: which exist on the host, which a query reads, and how to read one
//! that is not ours.
//!
//! A namespace is named by the inode of its nsfs file (`/proc/<pid>/ns/net`, or a bind
//! mount such as `/run/netns/NAME` that `ip netns add` makes). Another namespace's
//! sockets and interfaces are read on a helper thread that entered it with setns(2): a
//! netlink or ioctl socket belongs to the namespace its creating thread is in, and
//! `/proc/thread-self/net` shows that thread's namespace. The calling thread never
//! moves. Without CAP_SYS_ADMIN, `/proc/<pid>/net` of a process inside is the fallback.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{cores, owners, CollectError, Root};

/// Where `ip netns` binds named namespaces, and where Docker binds its containers'.
const NAMED_DIR: &str = "netns";
const DOCKER_DIR: &str = "docker/netns";

/// The highest pid Linux can hand out (PID_MAX_LIMIT on 64-bit): a bigger number in a
/// `--netns` list is a namespace inode (those start near 4026531840).
const PID_MAX_LIMIT: u64 = 4_194_304;

/// The inode of our own network namespace: every socket this process can list lives there.
pub fn current(root: &Root) -> Result<u64, CollectError> {
    let path = root.proc_path("self/ns/net");
    inode_of_link(&path)
}

/// The inode of the network namespace the calling thread reads. `None` for a root
/// without one (a fixture tree).
pub fn of_thread(root: &Root) -> Option<u64> {
    thread_paths(root, "ns/net")
        .iter()
        .find_map(|path| inode_of_link(path).ok())
}

/// Where the calling thread's own `rel` (`net/sockstat`, `ns/net`) may be, first found
/// first: `thread-self/REL` under a root at /proc, `REL` under the root a namespace is
/// read through after setns (/proc/thread-self, see [`visit`]).
pub fn thread_paths(root: &Root, rel: &str) -> [PathBuf; 2] {
    [
        root.proc_path(&format!("thread-self/{rel}")),
        root.proc_path(rel),
    ]
}

/// Reads a `net:[4026531840]` link.
pub fn inode_of_link(path: &Path) -> Result<u64, CollectError> {
    let target = std::fs::read_link(path).map_err(|e| CollectError::io(path, e))?;
    parse_link(&target.to_string_lossy()).ok_or_else(|| CollectError::Parse {
        file: path.display().to_string(),
        line: 1,
        field: "link",
        reason: format!("{target:?} is not net:[inode]"),
    })
}

pub fn parse_link(text: &str) -> Option<u64> {
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// One network namespace on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub inode: u64,
    /// The `ip netns` name, when one is bound under /run/netns: the first in byte order
    /// when it is bound under several (what `netns_name` shows and filters match).
    pub name: Option<String>,
    /// Its other `ip netns` names, if bound under several.
    pub other_names: Vec<String>,
    /// A bind mount that keeps it alive (/run/netns/NAME, /run/docker/netns/ID).
    pub path: Option<PathBuf>,
    /// Processes in it that we could see, ascending.
    pub pids: Vec<i32>,
    pub is_current: bool,
}

impl Namespace {
    pub(crate) fn new(inode: u64, current: u64) -> Self {
        Namespace {
            inode,
            name: None,
            other_names: Vec::new(),
            path: None,
            pids: Vec::new(),
            is_current: inode == current,
        }
    }

    /// The cgroup path of its lowest process still in it (what tells a container's
    /// namespace): one that exited since the listing, or whose pid now names a process
    /// elsewhere, is passed over. Running out of descriptors is an error.
    pub fn cgroup(&self, root: &Root) -> Result<Option<String>, CollectError> {
        for pid in &self.pids {
            let dir = root.proc.join(pid.to_string());
            let Some(text) = super::read_or_none(&dir.join("cgroup"), std::fs::read)? else {
                continue;
            };
            // Read after the cgroup: the process was in it when its cgroup was read.
            if inode_of_link(&dir.join("ns/net")).ok() == Some(self.inode) {
                if let Some(path) = super::cgroups::parse_cgroup(&text) {
                    return Ok(Some(path));
                }
            }
        }
        Ok(None)
    }

    /// It, opened to be entered: through its bind mount, else through the first of its
    /// processes still in it (the lowest may have exited since they were listed, and its
    /// pid been reused elsewhere). `None` when no file names it any more: it has gone.
    /// Running out of descriptors ends the search at once, with the file that failed.
    fn open(&self, root: &Root) -> Result<Option<(PathBuf, File)>, (PathBuf, std::io::Error)> {
        let links = self
            .pids
            .iter()
            .map(|pid| root.proc.join(pid.to_string()).join("ns/net"));
        // The first refusal is the answer only when no other way in opened.
        let mut refused = None;
        for handle in self.path.iter().cloned().chain(links) {
            match File::open(&handle) {
                Ok(file) if file.metadata().is_ok_and(|m| m.ino() == self.inode) => {
                    return Ok(Some((handle, file)))
                }
                Ok(_) => {}
                Err(err) if gone(&err) => {}
                Err(err) if super::exhausted(&err) => return Err((handle, err)),
                Err(err) => {
                    refused.get_or_insert((handle, err));
                }
            }
        }
        refused.map_or(Ok(None), Err)
    }
}

/// The device nsfs files live on, to tell a bind-mounted namespace from a stale file.
fn nsfs_device(root: &Root) -> Option<u64> {
    std::fs::metadata(root.proc_path("self/ns/net"))
        .ok()
        .map(|m| m.dev())
}

/// Whether the nsfs file at `path` is a network namespace: a bind mount of another kind
/// (`mount --bind /proc/PID/ns/uts /run/netns/x`) is on the same device, and setns
/// would refuse it. Asked with NS_GET_NSTYPE (Linux 4.11); where that cannot be asked
/// (an older kernel, a file we may not open), it is taken to be one, as before.
fn is_net_namespace(path: &Path) -> bool {
    // _IO(0xb7, 0x3), linux/nsfs.h.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    let Ok(file) = File::open(path) else {
        return true;
    };
    // SAFETY: an ioctl on a descriptor we hold, taking no argument.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    kind < 0 || kind == libc::CLONE_NEWNET
}

/// Namespaces bound under /run/netns (named) and /run/docker/netns. A folder that is not
/// there (or not ours to list) binds none; running out of descriptors fails, or every
/// namespace only a bind mount keeps would be left out, and named ones unnamed.
fn bind_mounts(
    root: &Root,
    current: u64,
    found: &mut BTreeMap<u64, Namespace>,
) -> Result<(), CollectError> {
    let Some(nsfs) = nsfs_device(root) else {
        return Ok(());
    };
    for (dir, named) in [(NAMED_DIR, true), (DOCKER_DIR, false)] {
        let Some(entries) = super::read_or_none(&root.run.join(dir), std::fs::read_dir)? else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            // An unmounted leftover is a plain file on tmpfs, not nsfs.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.dev() != nsfs || !is_net_namespace(&path) {
                continue;
            }
            let ns = found
                .entry(meta.ino())
                .or_insert_with(|| Namespace::new(meta.ino(), current));
            // A byte that is not UTF-8 as `\xNN`, which `--netns` takes back.
            let name = path
                .file_name()
                .map(|n| super::socket_row::path_text(n.as_encoded_bytes()));
            if named && ns.name.is_none() {
                ns.name = name;
                ns.path = Some(path);
            } else if named {
                ns.other_names.extend(name);
            } else if ns.path.is_none() {
                ns.path = Some(path);
            }
        }
    }
    Ok(())
}

/// Every namespace we can see: those of every process whose link we may read, and every
/// bind mount. Processes that exit meanwhile, or are not ours to look at, are left out.
pub fn discover(root: &Root) -> Result<Vec<Namespace>, CollectError> {
    let current = current(root)?;
    let mut found = BTreeMap::new();
    found.insert(current, Namespace::new(current, current));
    bind_mounts(root, current, &mut found)?;
    let mut link = PathBuf::new();
    for pid in owners::pids(root)? {
        link.clone_from(&root.proc);
        link.push(pid.to_string());
        link.push("ns/net");
        if let Ok(inode) = inode_of_link(&link) {
            found
                .entry(inode)
                .or_insert_with(|| Namespace::new(inode, current))
                .pids
                .push(pid);
        }
    }
    Ok(found.into_values().collect())
}

/// Only the current namespace, with its `ip netns` name if it has one: no process walk.
/// Where `self/ns/net` cannot be read (a fixture tree, a sandbox) its inode is 0, which
/// no namespace has: the rows are still ours, their namespace unknown.
pub fn current_only(root: &Root) -> Result<Namespace, CollectError> {
    let Ok(current) = current(root) else {
        return Ok(Namespace::new(0, 0));
    };
    let mut found = BTreeMap::new();
    bind_mounts(root, current, &mut found)?;
    Ok(found
        .remove(&current)
        .unwrap_or_else(|| Namespace::new(current, current)))
}

/// Our own namespace as [`current_only`] finds it, but without looking for its name.
pub fn current_unnamed(root: &Root) -> Namespace {
    let inode = current(root).unwrap_or(0);
    Namespace::new(inode, inode)
}

/// One item of a `--netns` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Name(String),
    Path(PathBuf),
    Pid(i32),
    Inode(u64),
}

/// Which namespaces the per-namespace tables read (`--netns`, `SET netsql.netns`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Current,
    All,
    Some(Vec<Selector>),
}

impl std::str::FromStr for Scope {
    type Err = String;

    /// `''`/`current`, `all`, or a comma list of names, paths, pids and inodes.
    fn from_str(text: &str) -> Result<Scope, String> {
        let text = text.trim();
        match text {
            "" | "current" => return Ok(Scope::Current),
            "all" => return Ok(Scope::All),
            _ => {}
        }
        let mut selectors = Vec::new();
        for item in text.split(',').map(str::trim) {
            let selector = if item.is_empty() {
                return Err(format!("{text:?}: an empty item in the namespace list"));
            } else if item.contains('/') {
                Selector::Path(item.into())
            } else if let Ok(n) = item.parse::<u64>() {
                match i32::try_from(n) {
                    Ok(pid) if n <= PID_MAX_LIMIT => Selector::Pid(pid),
                    _ => Selector::Inode(n),
                }
            } else {
                Selector::Name(item.to_string())
            };
            selectors.push(selector);
        }
        Ok(Scope::Some(selectors))
    }
}

/// The namespaces a scope names (filters on the namespace columns choose among
/// [`discover`]'s instead: see `tables::netns`).
pub fn select(root: &Root, scope: &Scope) -> Result<Vec<Namespace>, CollectError> {
    let selectors = match scope {
        Scope::Current => return Ok(vec![current_only(root)?]),
        Scope::All => return discover(root),
        Scope::Some(selectors) => selectors,
    };
    let all = discover(root)?;
    let mut chosen: Vec<Namespace> = Vec::new();
    for selector in selectors {
        let inode = resolve(root, selector, &all)?;
        if chosen.iter().any(|ns| ns.inode == inode) {
            continue;
        }
        let ns = all.iter().find(|ns| ns.inode == inode).cloned();
        chosen.push(ns.unwrap_or_else(|| {
            // A bind mount outside the places we look: it is its own handle.
            let mut ns = Namespace::new(inode, current(root).unwrap_or(0));
            if let Selector::Path(path) = selector {
                ns.path = Some(path.clone());
            }
            ns
        }));
    }
    Ok(chosen)
}

/// Fails as `select` would when `scope` names a namespace that is not there (out of
/// `all`, what `discover` found): a mistyped `--netns` is said even where a filter on
/// the namespace columns chooses instead of it.
pub fn check(root: &Root, scope: &Scope, all: &[Namespace]) -> Result<(), CollectError> {
    if let Scope::Some(selectors) = scope {
        for selector in selectors {
            resolve(root, selector, all)?;
        }
    }
    Ok(())
}

fn not_found(selector: &Selector, why: &str) -> CollectError {
    CollectError::Netns(format!("no network namespace {selector}: {why}"))
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Name(name) => write!(f, "named {name:?} (see `ip netns list`)"),
            Selector::Path(path) => write!(f, "at {}", path.display()),
            Selector::Pid(pid) => write!(f, "of pid {pid}"),
            Selector::Inode(inode) => write!(f, "with inode {inode}"),
        }
    }
}

/// The inode a selector names.
fn resolve(root: &Root, selector: &Selector, all: &[Namespace]) -> Result<u64, CollectError> {
    let nsfs = nsfs_device(root);
    let bound = |path: &Path| -> Result<u64, CollectError> {
        let meta = std::fs::metadata(path).map_err(|e| not_found(selector, &e.to_string()))?;
        if Some(meta.dev()) != nsfs {
            return Err(not_found(selector, "not a namespace file"));
        }
        if !is_net_namespace(path) {
            return Err(not_found(
                selector,
                "a namespace of another kind, not a network one",
            ));
        }
        Ok(meta.ino())
    };
    match selector {
        Selector::Name(name) => {
            if name == "." || name == ".." {
                return Err(not_found(selector, "not a name"));
            }
            // The name as given, else as `netns_name` shows it (a name that is not
            // UTF-8 has `\xNN` escapes, which a name may also spell literally).
            let path = root.run.join(NAMED_DIR).join(name);
            if path.exists() {
                return bound(&path);
            }
            let shown = all.iter().find(|ns| {
                ns.name.as_deref() == Some(name.as_str()) || ns.other_names.contains(name)
            });
            match shown {
                Some(ns) => Ok(ns.inode),
                None => bound(&path),
            }
        }
        Selector::Path(path) => bound(path),
        Selector::Pid(pid) => inode_of_link(&root.proc.join(pid.to_string()).join("ns/net"))
            .map_err(|e| not_found(selector, &e.to_string())),
        Selector::Inode(inode) => all
            .iter()
            .any(|ns| ns.inode == *inode)
            .then_some(*inode)
            .ok_or_else(|| not_found(selector, "no process or bind mount we can see holds it")),
    }
}

/// How a visited namespace was reached, which decides what may be read in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Our own: everything, on the calling thread.
    Current,
    /// Entered with setns on a helper thread: sock_diag, ioctls and its /proc/net.
    Entered,
    /// Not enterable, read through `/proc/<pid>/net` of a process inside: files only.
    Files,
}

/// What visiting a list of namespaces gave.
#[derive(Debug)]
pub struct Visited<T> {
    /// Each namespace read, with its result, in the order given.
    pub read: Vec<(Namespace, T)>,
    /// Namespaces we could neither enter nor read through a process, with why.
    pub invisible: Vec<(Namespace, String)>,
}

enum Outcome<T> {
    Read(T),
    Invisible(String),
    Vanished,
}

/// Each namespace's outcome, by position, filled in by whichever worker read it.
type Outcomes<T> = Mutex<Vec<Option<Result<Outcome<T>, CollectError>>>>;

/// Calls `read` once per namespace with a root whose `proc` shows that namespace's
/// `net/` and how it was reached, several namespaces at a time (at most one per core).
/// A namespace that disappears meanwhile is left out, as if it had not been there.
pub fn visit<T: Send>(
    root: &Root,
    namespaces: Vec<Namespace>,
    read: impl Fn(&Root, Access) -> Result<T, CollectError> + Sync,
) -> Result<Visited<T>, CollectError> {
    // The common case, our own namespace alone, costs no thread.
    if let [only] = namespaces.as_slice() {
        if only.is_current {
            let result = read(root, Access::Current)?;
            return Ok(Visited {
                read: vec![(namespaces.into_iter().next().expect("one"), result)],
                invisible: Vec::new(),
            });
        }
    }
    // Home for every worker: a thread starts in the namespace of the thread that made it.
    // Without it a namespace can only be read through a process's files; out of
    // descriptors, nothing is read at all (not every namespace read as one we may not
    // enter).
    let home = super::read_or_none(&root.proc_path("thread-self/ns/net"), File::open)?;
    let workers = cores().min(namespaces.len());
    let next = AtomicUsize::new(0);
    let outcomes: Outcomes<T> = Mutex::new((0..namespaces.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // Each worker comes home after every foreign namespace; one that cannot
                // must not read anything else.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(ns) = namespaces.get(i) else { break };
                    let (outcome, lost) = visit_one(root, ns, home.as_ref(), &read);
                    outcomes.lock().expect("no worker panics holding it")[i] = Some(outcome);
                    if lost {
                        break;
                    }
                }
            });
        }
    });
    let mut visited = Visited {
        read: Vec::new(),
        invisible: Vec::new(),
    };
    let outcomes = outcomes.into_inner().expect("no worker panicked");
    for (ns, outcome) in namespaces.into_iter().zip(outcomes) {
        match outcome {
            Some(Ok(Outcome::Read(value))) => visited.read.push((ns, value)),
            Some(Ok(Outcome::Invisible(why))) => visited.invisible.push((ns, why)),
            Some(Ok(Outcome::Vanished)) => {}
            Some(Err(err)) => return Err(err),
            None => {
                return Err(CollectError::Netns(
                    "a namespace reader could not return to its own namespace".into(),
                ))
            }
        }
    }
    Ok(visited)
}

/// The cores each of `namespaces` read together by [`visit`] has to itself: it reads them
/// one per core, so at least 1.
pub fn cores_each(namespaces: usize) -> usize {
    let cores = cores();
    cores / cores.min(namespaces).max(1)
}

/// Whether an errno means the namespace or its process went away.
fn gone(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOENT | libc::ESRCH | libc::EINVAL)
    )
}

fn collect_error_gone(err: &CollectError) -> bool {
    match err {
        CollectError::Io { source, .. } => gone(source),
        _ => false,
    }
}

/// Reads one namespace; the flag says the thread could not go home afterwards.
fn visit_one<T>(
    root: &Root,
    ns: &Namespace,
    home: Option<&File>,
    read: &(impl Fn(&Root, Access) -> Result<T, CollectError> + Sync),
) -> (Result<Outcome<T>, CollectError>, bool) {
    if ns.is_current {
        return (read(root, Access::Current).map(Outcome::Read), false);
    }
    let (handle, file) = match ns.open(root) {
        Ok(Some(opened)) => opened,
        Ok(None) => return (Ok(Outcome::Vanished), false),
        Err((path, err)) if super::exhausted(&err) => {
            return (Err(CollectError::io(&path, err)), false)
        }
        Err((_, err)) => return (fallback(root, ns, read, &err), false),
    };
    let Some(home) = home else {
        return (
            fallback(root, ns, read, &std::io::Error::other("no way back")),
            false,
        );
    };
    if let Err(err) = enter(&file) {
        if gone(&err) {
            return (Ok(Outcome::Vanished), false);
        }
        // An I/O error naming the namespace, not a refusal: DELETE counts those as denied.
        if super::exhausted(&err) {
            return (Err(CollectError::io(&handle, err)), false);
        }
        return (fallback(root, ns, read, &err), false);
    }
    let ns_root = Root {
        proc: root.proc_path("thread-self"),
        ..root.clone()
    };
    let result = read(&ns_root, Access::Entered).map(Outcome::Read);
    let lost = enter(home).is_err();
    (result, lost)
}

/// setns(2) into the network namespace `file` refers to, for this thread only.
fn enter(file: &File) -> std::io::Result<()> {
    // SAFETY: setns takes an open descriptor and a flag; it changes only this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A namespace we may not enter, read through a process inside it if one is readable:
/// the first still in it, and the next if that one leaves or exits during the read (its
/// rows are then not known to be this namespace's). Running out of descriptors or memory
/// fails the read, as it would have failed inside: not a namespace we may not see.
fn fallback<T>(
    root: &Root,
    ns: &Namespace,
    read: &impl Fn(&Root, Access) -> Result<T, CollectError>,
    why: &std::io::Error,
) -> Result<Outcome<T>, CollectError> {
    let reason = format!("cannot enter: {why}");
    if ns.pids.is_empty() {
        return Ok(Outcome::Invisible(format!(
            "{reason}, and no process of ours is in it"
        )));
    }
    for pid in &ns.pids {
        let dir = root.proc.join(pid.to_string());
        let still_there = || inode_of_link(&dir.join("ns/net")).ok() == Some(ns.inode);
        if !still_there() {
            continue;
        }
        let ns_root = Root {
            proc: dir.clone(),
            ..root.clone()
        };
        match read(&ns_root, Access::Files) {
            Ok(value) if still_there() => return Ok(Outcome::Read(value)),
            Ok(_) => {}
            Err(err) if err.exhausted() => return Err(err),
            Err(err) if collect_error_gone(&err) || !still_there() => {}
            Err(err) => return Ok(Outcome::Invisible(format!("{reason}; {err}"))),
        }
    }
    Ok(Outcome::Vanished)
}

/// One stderr line for namespaces a query could not see, once per process.
pub fn warn_invisible(invisible: &[(Namespace, String)]) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if let Some((_, why)) = invisible.first() {
        ONCE.call_once(|| {
            crate::warn!(
                "netsql: {} network namespace{} not visible ({why}); run as root to see every one",
                invisible.len(),
                if invisible.len() == 1 { "" } else { "s" },
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace no file keeps alive, whose lowest listed process has exited since the
    /// listing, is still read, entered or through its files: through the next process.
    #[test]
    fn a_namespace_outlives_its_lowest_process() {
        let spawned = std::process::Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn();
        let mut inside = match spawned {
            Ok(child) => child,
            Err(err) if std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1") => {
                panic!("NETSQL_REQUIRE_NETNS=1 but unshare cannot run: {err}")
            }
            Err(err) => return crate::warn!("skipped: unshare: {err}"),
        };
        let root = Root::default();
        let link = root.proc.join(inside.id().to_string()).join("ns/net");
        let ours = inode_of_link(&root.proc_path("thread-self/ns/net")).unwrap();
        // unshare makes the namespace, then runs sleep in the same process.
        let started = std::time::Instant::now();
        let inode = loop {
            let exited = inside.try_wait().ok().flatten().is_some();
            match inode_of_link(&link) {
                Ok(inode) if inode != ours && !exited => break inode,
                _ if exited || started.elapsed() > std::time::Duration::from_secs(10) => {
                    let _ = inside.kill();
                    let _ = inside.wait();
                    if std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
                        panic!("NETSQL_REQUIRE_NETNS=1 but unshare -n made no namespace");
                    }
                    return crate::warn!("skipped: unshare -n made no namespace (not root?)");
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        exited.wait().unwrap();
        let ns = Namespace {
            pids: vec![exited.id() as i32, inside.id() as i32],
            ..Namespace::new(inode, ours)
        };
        let read = |root: &Root, _: Access| inode_of_link(&root.proc.join("ns/net"));
        let home = File::open(root.proc_path("thread-self/ns/net")).unwrap();
        let (entered, lost) = visit_one(&root, &ns, Some(&home), &read);
        let through_files = fallback(&root, &ns, &read, &std::io::Error::other("a test"));
        inside.kill().unwrap();
        inside.wait().unwrap();
        assert!(!lost);
        assert!(
            matches!(entered, Ok(Outcome::Read(i)) if i == inode),
            "entered"
        );
        assert!(
            matches!(through_files, Ok(Outcome::Read(i)) if i == inode),
            "through files"
        );
    }

    #[test]
    fn parses_namespace_links() {
        assert_eq!(parse_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_link("mnt:[4026531840]"), None);
        assert_eq!(parse_link("net:[x]"), None);
    }

    #[test]
    fn scope_lists_mix_names_paths_pids_and_inodes() {
        assert_eq!("".parse(), Ok(Scope::Current));
        assert_eq!(" all ".parse(), Ok(Scope::All));
        assert_eq!(
            "blue, /run/netns/red,1234,4026532001".parse(),
            Ok(Scope::Some(vec![
                Selector::Name("blue".into()),
                Selector::Path("/run/netns/red".into()),
                Selector::Pid(1234),
                Selector::Inode(4026532001),
            ]))
        );
        assert_eq!(
            "4194304,4194305".parse(),
            Ok(Scope::Some(vec![
                Selector::Pid(4194304),
                Selector::Inode(4194305)
            ]))
        );
        assert!("blue,,red".parse::<Scope>().is_err());
    }
}
