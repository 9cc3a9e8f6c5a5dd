//! Which processes hold which sockets: a walk of `/proc/<pid>/fd/*` for `socket:[inode]`
//! links, as `netstat -p` and `ss -p` do.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{CollectError, Root};

/// One process holding one socket through one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub inode: u64,
    pub pid: i32,
    pub fd: i32,
}

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

fn sockets_of(root: &Root, pid: i32) -> FdList {
    let dir = root.proc.join(pid.to_string()).join("fd");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => return FdList::Denied,
        // ENOENT: the process exited since /proc was listed; ESRCH: it is exiting.
        Err(err)
            if err.kind() == std::io::ErrorKind::NotFound
                || err.raw_os_error() == Some(libc::ESRCH) =>
        {
            return FdList::Gone
        }
        Err(err) => return FdList::Failed(CollectError::io(&dir, err)),
    };
    // The links are read relative to the open directory (readlinkat): no lookup of
    // /proc/<pid>/fd per descriptor, which is most of the walk at 100k sockets.
    let dir_fd = std::fs::File::open(&dir).ok();
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
        let inode = match &dir_fd {
            Some(dir_fd) => {
                name.clear();
                name.extend_from_slice(file_name.as_bytes());
                name.push(0);
                read_link_at(dir_fd, &name, &mut target).and_then(parse_socket_link)
            }
            None => std::fs::read_link(entry.path())
                .ok()
                .and_then(|t| parse_socket_link(t.as_os_str().as_bytes())),
        };
        if let Some(inode) = inode {
            sockets.push((inode, fd));
        }
    }
    FdList::Sockets(sockets)
}

/// readlinkat(2) of the NUL-terminated `name` under `dir`. std has no readlinkat, and a
/// socket link (`socket:[4026531993]`) always fits the small buffer; a longer target is
/// no socket, so a cut one is fine.
fn read_link_at<'b>(dir: &std::fs::File, name: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
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
    usize::try_from(n).ok().map(|n| &buf[..n])
}

/// Walks every process's descriptors on all cores. Pids are claimed in ascending order,
/// so when `Lowest` stops early every process below the last one claimed has been seen.
/// A process that exits mid-walk is skipped; one whose descriptors cannot be listed for
/// another reason (EMFILE, EIO) fails the walk rather than leave its sockets ownerless.
pub fn walk(root: &Root, want: &Want) -> Result<Walk, CollectError> {
    let pids = pids(root)?;
    let failure: Mutex<Option<CollectError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let denied = AtomicUsize::new(0);
    let lowest: Mutex<HashMap<u64, (i32, i32)>> = Mutex::new(HashMap::new());
    let all: Mutex<Vec<Owner>> = Mutex::new(Vec::new());
    if let Want::Lowest(inodes) = want {
        if inodes.is_empty() {
            return Ok(Walk::default());
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(pids.len().max(1));
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
                                let best = found.entry(inode).or_insert((pid, fd));
                                *best = (*best).min((pid, fd));
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

/// A process's command name (`/proc/<pid>/comm`), `None` if it has gone.
pub fn comm(root: &Root, pid: i32) -> Option<String> {
    let text = std::fs::read(root.proc.join(pid.to_string()).join("comm")).ok()?;
    Some(
        String::from_utf8_lossy(&text)
            .trim_end_matches('\n')
            .to_string(),
    )
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
        let ours: Vec<_> = all.owners.iter().filter(|o| o.inode == inode).collect();
        assert_eq!(ours.len(), 2, "both descriptors: {ours:?}");
        let comm = comm(&Root::default(), me).unwrap();
        assert_eq!(
            comm,
            std::fs::read_to_string("/proc/self/comm").unwrap().trim()
        );
    }
}
