//! Which processes hold which sockets: a walk of `/proc/<pid>/fd/*` for `socket:[inode]`
//! links, as `netstat -p` and `ss -p` do, or, in a process that has loaded it, the
//! kernel's iterator over every open file (task_files.rs), which lists the same in one
//! read.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::socket_row::SocketRow;
use super::{CollectError, Root};

pub use super::Owner;

/// What a walk is for.
#[derive(Debug, Clone)]
pub enum Want {
    /// Every holder of every socket.
    All,
    /// For each of these inodes, the holder with the lowest pid (then lowest fd). The walk
    /// stops once each has been found.
    Lowest(HashSet<u64>),
}

#[derive(Debug, Default)]
pub struct Walk {
    pub owners: Vec<Owner>,
    /// Processes whose descriptors we were not allowed to list.
    pub denied: usize,
}

impl Walk {
    /// Its owners, copied only when a snapshot still shares the walk.
    pub fn into_owners(self: Arc<Self>) -> Vec<Owner> {
        Arc::try_unwrap(self).map_or_else(|shared| shared.owners.clone(), |walk| walk.owners)
    }
}

/// One walk of every process's descriptors shared by the scans of one snapshot: `netsql
/// snapshot` and each tick of `record` write `sockets` (its owner columns) and
/// `socket_owners` as of one moment, and at 100k sockets the walk is most of what a tick
/// costs. Outside a snapshot (between [`SharedWalk::begin`] and [`SharedWalk::end`]) every scan
/// walks afresh, as a query must see the processes of its own moment.
#[derive(Debug, Default)]
pub struct SharedWalk {
    /// `None` outside a snapshot; inside, the walk once it has been taken.
    walk: Mutex<Option<Option<Arc<Walk>>>>,
}

impl SharedWalk {
    /// Scans from now on share one walk, until [`SharedWalk::end`].
    pub fn begin(&self) {
        *self.walk.lock().unwrap_or_else(|e| e.into_inner()) = Some(None);
    }

    /// Scans walk afresh again; the shared walk is dropped.
    pub fn end(&self) {
        *self.walk.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Every holder of every socket: the shared walk inside a snapshot (taken by the
    /// first scan that needs it), a new one outside.
    pub fn walk_all(shared: Option<&SharedWalk>, root: &Root) -> Result<Arc<Walk>, CollectError> {
        let Some(shared) = shared else {
            return Ok(Arc::new(walk(root, &Want::All)?));
        };
        let mut shared = shared.walk.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *shared {
            None => Ok(Arc::new(walk(root, &Want::All)?)),
            Some(Some(taken)) => Ok(taken.clone()),
            Some(taken) => Ok(taken.insert(Arc::new(walk(root, &Want::All)?)).clone()),
        }
    }
}

/// `socket:[12345]` -> 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    std::str::from_utf8(link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
        .ok()?
        .parse()
        .ok()
}

/// Every numeric entry of the proc root, in ascending order.
pub fn pids(root: &Root) -> Result<Vec<i32>, CollectError> {
    let entries = std::fs::read_dir(&root.proc).map_err(|e| CollectError::io(&root.proc, e))?;
    let mut pids: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

enum FdList {
    Sockets(Vec<(u64, i32)>),
    Denied,
    Gone,
    /// Neither gone nor forbidden (out of descriptors, say): the walk cannot be complete.
    Failed(CollectError),
}

/// A process's sockets from a listing of its descriptors (getdents, then readlinkat
/// each). procfs lists them in ascending order of number, so one held throughout is
/// listed however the process opens and closes others meanwhile; the count in the
/// directory's size cannot say as much (a descriptor opened below it and one closed above
/// keep the count and hide it), which is why the listing is read even where it costs more.
fn sockets_of(root: &Root, pid: i32) -> FdList {
    let dir = root.proc.join(pid.to_string()).join("fd");
    let dir_fd = match std::fs::File::open(&dir) {
        Ok(dir_fd) => dir_fd,
        Err(err) => return unlistable(&dir, err),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) => return unlistable(&dir, err),
    };
    // The links are read relative to the open directory (readlinkat): no lookup of
    // /proc/<pid>/fd per descriptor.
    let mut sockets = Vec::new();
    let mut name = Vec::with_capacity(16);
    let mut target = [0u8; 64];
    for entry in entries.flatten() {
        use std::os::unix::ffi::OsStrExt;
        let file_name = entry.file_name();
        let Some(fd) = file_name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // A descriptor closed since readdir is simply not there any more.
        name.clear();
        name.extend_from_slice(file_name.as_bytes());
        name.push(0);
        if let Some(inode) = read_link_at(&dir_fd, &name, &mut target)
            .ok()
            .and_then(parse_socket_link)
        {
            sockets.push((inode, fd));
        }
    }
    FdList::Sockets(sockets)
}

/// Why a process's descriptors could not be listed, from the error opening them.
fn unlistable(dir: &std::path::Path, err: std::io::Error) -> FdList {
    match err.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => FdList::Denied,
        // ENOENT: the process exited since /proc was listed; ESRCH: it is exiting.
        Some(libc::ENOENT | libc::ESRCH) => FdList::Gone,
        _ => FdList::Failed(CollectError::io(dir, err)),
    }
}

/// readlinkat(2) of the NUL-terminated `name` under `dir`, or its errno. std has no
/// readlinkat, and a socket link (`socket:[4026531993]`) always fits the small buffer; a
/// longer target is no socket, so a cut one is fine.
fn read_link_at<'b>(
    dir: &std::fs::File,
    name: &[u8],
    buf: &'b mut [u8; 64],
) -> Result<&'b [u8], i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: `name` is NUL-terminated, `buf` is writable for its length, `dir` is open.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(&buf[..n]),
        Err(_) => Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)),
    }
}

/// Every holder of every socket (or the lowest of each wanted one) from the kernel's
/// iterator when this process has loaded it ([`super::task_files`]), else from a walk of
/// every process's descriptors on all cores. Pids are claimed in ascending order,
/// so when `Lowest` stops early every process below the last one claimed has been seen.
/// A process that exits mid-walk is skipped; one whose descriptors cannot be listed for
/// another reason (EMFILE, EIO) fails the walk rather than leave its sockets ownerless.
pub fn walk(root: &Root, want: &Want) -> Result<Walk, CollectError> {
    if let Want::Lowest(inodes) = want {
        if inodes.is_empty() {
            return Ok(Walk::default());
        }
    }
    let keep = |owner: &Owner| match want {
        Want::All => true,
        Want::Lowest(inodes) => inodes.contains(&owner.inode),
    };
    if let Some(kept) = super::task_files::read(root, keep) {
        return Ok(Walk {
            owners: as_wanted(kept, want),
            denied: 0,
        });
    }
    let pids = pids(root)?;
    let failure: Mutex<Option<CollectError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let denied = AtomicUsize::new(0);
    let lowest: Mutex<HashMap<u64, (i32, i32)>> = Mutex::new(HashMap::new());
    let all: Mutex<Vec<Owner>> = Mutex::new(Vec::new());
    let threads = super::cores().min(pids.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&pid) = pids.get(i) else { break };
                    let sockets = match sockets_of(root, pid) {
                        FdList::Sockets(sockets) => sockets,
                        FdList::Denied => {
                            denied.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        FdList::Gone => continue,
                        FdList::Failed(err) => {
                            failure
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(err);
                            done.store(true, Ordering::Relaxed);
                            break;
                        }
                    };
                    match want {
                        Want::All => mine.extend(sockets.into_iter().map(|(inode, fd)| Owner {
                            inode,
                            pid,
                            fd,
                        })),
                        Want::Lowest(inodes) => {
                            let hits: Vec<_> = sockets
                                .into_iter()
                                .filter(|(inode, _)| inodes.contains(inode))
                                .collect();
                            if hits.is_empty() {
                                continue;
                            }
                            let mut found = lowest.lock().unwrap_or_else(|e| e.into_inner());
                            for (inode, fd) in hits {
                                keep_lowest(&mut found, Owner { inode, pid, fd });
                            }
                            if found.len() == inodes.len() {
                                done.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                all.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
    });
    let mut owners = match want {
        Want::All => all.into_inner().unwrap_or_else(|e| e.into_inner()),
        Want::Lowest(_) => lowest
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|(inode, (pid, fd))| Owner { inode, pid, fd })
            .collect(),
    };
    if let Some(err) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(err);
    }
    owners.sort_unstable();
    Ok(Walk {
        owners,
        denied: denied.into_inner(),
    })
}

/// Keeps `owner` in `lowest` if it is its socket's lowest (pid, then fd) so far.
fn keep_lowest(lowest: &mut HashMap<u64, (i32, i32)>, owner: Owner) {
    let best = lowest.entry(owner.inode).or_insert((owner.pid, owner.fd));
    *best = (*best).min((owner.pid, owner.fd));
}

/// The holders of the wanted sockets, reduced to each one's lowest if that is what is
/// wanted, in the walk's order.
fn as_wanted(mut all: Vec<Owner>, want: &Want) -> Vec<Owner> {
    if let Want::Lowest(_) = want {
        let mut lowest: HashMap<u64, (i32, i32)> = HashMap::new();
        for owner in all {
            keep_lowest(&mut lowest, owner);
        }
        all = lowest
            .into_iter()
            .map(|(inode, (pid, fd))| Owner { inode, pid, fd })
            .collect();
    }
    all.sort_unstable();
    all
}

/// A process's command name (`/proc/<pid>/comm`), `None` if it has gone; running out of
/// descriptors is an error, not a NULL `program`.
pub fn comm(root: &Root, pid: i32) -> Result<Option<String>, CollectError> {
    let path = root.proc.join(pid.to_string()).join("comm");
    let text = super::read_or_none(&path, std::fs::read)?;
    // One newline ends the file; a name may end in one of its own, as stat shows it.
    Ok(text.map(|text| {
        String::from_utf8_lossy(text.strip_suffix(b"\n").unwrap_or(&text)).into_owned()
    }))
}

/// A row no process holds (or none we can see).
pub const NO_OWNER: u32 = u32::MAX;

/// Each row's place in `owners` (sorted by inode, one per inode), [`NO_OWNER`] for
/// none. The rows' inodes are sorted and merged with `owners` in one forward pass: a
/// binary search per row took 3% of a snapshot's CPU at 100k sockets, nearly all of it
/// cache misses.
pub fn slots(rows: &[SocketRow], owners: &[Owner]) -> Vec<u32> {
    let mut inodes: Vec<(u64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| (row.inode, i as u32))
        .collect();
    inodes.sort_unstable();
    let mut slots = vec![NO_OWNER; rows.len()];
    let mut at = 0;
    for (inode, row) in inodes {
        while owners.get(at).is_some_and(|o| o.inode < inode) {
            at += 1;
        }
        if owners.get(at).is_some_and(|o| o.inode == inode) {
            slots[row as usize] = at as u32;
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"socket:[x]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
    }

    #[test]
    fn the_lowest_holder_of_each_wanted_socket() {
        let owner = |inode, pid, fd| Owner { inode, pid, fd };
        let held = vec![
            owner(7, 300, 4),
            owner(5, 200, 9),
            owner(7, 100, 8),
            owner(7, 100, 3),
            owner(5, 200, 2),
        ];
        assert_eq!(
            as_wanted(held.clone(), &Want::Lowest(HashSet::from([5, 7]))),
            [owner(5, 200, 2), owner(7, 100, 3)]
        );
        let mut sorted = held.clone();
        sorted.sort();
        assert_eq!(as_wanted(held, &Want::All), sorted);
    }

    #[test]
    fn finds_our_own_socket_with_the_lowest_fd() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let copy = listener.try_clone().unwrap();
        use std::os::fd::AsRawFd;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap();
        let me = std::process::id() as i32;
        let walk = walk(&Root::default(), &Want::Lowest(HashSet::from([inode]))).unwrap();
        let fd = listener.as_raw_fd().min(copy.as_raw_fd());
        assert_eq!(walk.owners, vec![Owner { inode, pid: me, fd }]);
        let all = super::walk(&Root::default(), &Want::All).unwrap();
        // A child another test forks holds copies until it execs: ours are this pid's.
        let ours: Vec<_> = all
            .owners
            .iter()
            .filter(|o| o.inode == inode && o.pid == me)
            .collect();
        assert_eq!(ours.len(), 2, "both descriptors: {ours:?}");
        let comm = comm(&Root::default(), me).unwrap().unwrap();
        assert_eq!(
            comm,
            std::fs::read_to_string("/proc/self/comm").unwrap().trim()
        );
    }

    fn inode_of(fd: &impl std::os::fd::AsRawFd) -> u64 {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn a_shared_walk_is_one_walk_until_it_ends() {
        let root = Root::default();
        let shared = SharedWalk::default();
        shared.begin();
        let first = SharedWalk::walk_all(Some(&shared), &root).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = inode_of(&listener);
        let second = SharedWalk::walk_all(Some(&shared), &root).unwrap();
        assert!(Arc::ptr_eq(&first, &second), "one walk while shared");
        assert!(!second.owners.iter().any(|o| o.inode == inode));
        shared.end();
        let after = SharedWalk::walk_all(Some(&shared), &root).unwrap();
        assert!(
            after.owners.iter().any(|o| o.inode == inode),
            "a new walk after it"
        );
        let alone = SharedWalk::walk_all(None, &root).unwrap();
        assert!(alone.owners.iter().any(|o| o.inode == inode));
    }

    /// A python child holding sockets on the descriptors it is told to keep: its pid.
    fn holder(script: &str) -> std::process::Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        child
    }

    /// Descriptors inherited from whoever ran the tests are closed first.
    const SOCKETS: &str = "import os, socket, sys, time\n\
        os.closerange(3, 4096)\n\
        s = [socket.socket() for _ in range(10)]\n\
        s[3].close(); s[5].close()\n";

    #[test]
    fn the_listing_finds_every_socket_dense_or_sparse() {
        let root = Root::default();
        let dense = holder(&format!(
            "{SOCKETS}print('ready', flush=True); time.sleep(60)"
        ));
        // fd 300 lies far past the others.
        let sparse = holder(&format!(
            "{SOCKETS}os.dup2(s[0].fileno(), 300)\nprint('ready', flush=True); time.sleep(60)"
        ));
        for (mut child, extra) in [(dense, None), (sparse, Some(300))] {
            let pid = child.id() as i32;
            let FdList::Sockets(mut listed) = sockets_of(&root, pid) else {
                panic!("the child's descriptors are readable");
            };
            listed.sort_unstable_by_key(|&(_, fd)| fd);
            let fds: Vec<i32> = listed.iter().map(|&(_, fd)| fd).collect();
            let mut expected = vec![3, 4, 5, 7, 9, 10, 11, 12];
            expected.extend(extra);
            assert_eq!(fds, expected);
            if extra.is_some() {
                assert_eq!(listed.last().unwrap().0, listed[0].0, "a dup of the first");
            }
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// A process opening and closing a descriptor below the ones it keeps, all the while:
    /// every kept socket is listed in every read, as `ss -p`'s listing finds them.
    #[test]
    fn sockets_held_throughout_are_found_however_the_others_churn() {
        let root = Root::default();
        let mut child = holder(&format!(
            "{SOCKETS}import threading\n\
             def churn():\n    while True: socket.socket().close()\n\
             threading.Thread(target=churn, daemon=True).start()\n\
             print('ready', flush=True); time.sleep(60)"
        ));
        let pid = child.id() as i32;
        // The sockets on fds 6 and 8 were closed: 6 comes and goes, the other eight stay.
        let kept: Vec<i32> = (3..13).filter(|fd| ![6, 8].contains(fd)).collect();
        let (mut missed, mut unreadable) = (Vec::<i32>::new(), 0);
        // Reads that saw fd 6 open and reads that did not: both, or nothing churned.
        let (mut with, mut without) = (0, 0);
        for _ in 0..10_000 {
            let FdList::Sockets(sockets) = sockets_of(&root, pid) else {
                unreadable += 1;
                continue;
            };
            let fds: HashSet<i32> = sockets.iter().map(|&(_, fd)| fd).collect();
            missed.extend(kept.iter().filter(|fd| !fds.contains(fd)));
            if fds.contains(&6) {
                with += 1;
            } else {
                without += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(unreadable, 0, "the child's descriptors are readable");
        assert!(missed.is_empty(), "kept sockets missed: {missed:?}");
        assert!(
            with > 0 && without > 0,
            "fd 6 came and went: {with} / {without}"
        );
    }

    #[test]
    fn each_row_finds_its_owner_or_none() {
        let rows: Vec<SocketRow> = [9, 0, 3, 7, 3, 12, 1]
            .into_iter()
            .map(|inode| SocketRow {
                inode,
                ..SocketRow::default()
            })
            .collect();
        let owners: Vec<Owner> = [3, 4, 9, 12]
            .into_iter()
            .map(|inode| Owner {
                inode,
                pid: inode as i32 * 10,
                fd: 1,
            })
            .collect();
        let found = slots(&rows, &owners);
        let pids: Vec<Option<i32>> = found
            .iter()
            .map(|&at| owners.get(at as usize).map(|o| o.pid))
            .collect();
        assert_eq!(
            pids,
            [Some(90), None, Some(30), None, Some(30), Some(120), None]
        );
        assert_eq!(slots(&rows, &[]), vec![NO_OWNER; rows.len()]);
    }
}
