//! Every socket descriptor of every process in one read, from the kernel: a BPF iterator
//! over the open files of every process (`task_file`, Linux 5.8 on) running
//! `task_files.bpf.c`, where the walk in owners.rs reads one `/proc/<pid>/fd` link per
//! descriptor. Measured here at 100k sockets: the iterator lists them in 33-35 ms, where
//! `SELECT count(pid) FROM sockets` spends 0.3-0.4 s of CPU walking.
//!
//! Loading it costs 45-80 ms (reading the kernel's BTF and fitting the program to it),
//! more than a whole walk of a host with a few thousand sockets, so only a process that
//! collects again and again loads it, once: `serve`, `metrics`, `record`, the REPL and
//! `netstat -c` call [`load`] at start. A one-shot query walks /proc.
//!
//! It stands in for the walk only where the walk would see what it sees: over the host's
//! /proc, from the initial pid namespace (the iterator's pids are the kernel's global
//! ones), and with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, with which the walk reads every
//! process's descriptors too. Loading it takes CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN:
//! root has all of these. Under a seccomp filter it is not tried, as a filter may kill the
//! process for the `bpf` call (systemd's `SystemCallFilter=@system-service` does). Where
//! it cannot be loaded, or a read fails, the walk answers.

use std::io::Read;
use std::path::Path;

use super::{Owner, Root};

/// The initial pid namespace's inode number (`PROC_PID_INIT_INO`, fixed by the kernel).
#[cfg_attr(not(netsql_bpf), allow(dead_code))]
const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// One record of the program's output: inode (u64), pid (i32), fd (i32).
const RECORD: usize = 16;

/// Why this process should not load the iterator, found before the kernel's BTF is read
/// for nothing; `Ok` when it may.
#[cfg_attr(not(netsql_bpf), allow(dead_code))]
fn allowed(root: &Root) -> Result<(), String> {
    use super::capability::{BPF, DAC_READ_SEARCH, PERFMON, SYS_ADMIN, SYS_PTRACE};
    use std::os::unix::fs::MetadataExt;
    if root.proc != Path::new("/proc") {
        return Err(format!(
            "it lists the host's processes, not {}'s",
            root.proc.display()
        ));
    }
    let ns = root.proc_path("self/ns/pid");
    let pid_namespace = std::fs::metadata(&ns)
        .map_err(|e| format!("{}: {e}", ns.display()))?
        .ino();
    if pid_namespace != INITIAL_PID_NAMESPACE {
        return Err(
            "not in the initial pid namespace: the iterator's pids would not be this /proc's"
                .into(),
        );
    }
    let status = super::own_status(root)?;
    if status.seccomp.is_some_and(|mode| mode != 0) {
        return Err("a seccomp filter is on, which may kill the process for a bpf call".into());
    }
    let has = |bit: u32| status.capeff & (1 << bit) != 0;
    if !(has(SYS_ADMIN) || (has(BPF) && has(PERFMON))) {
        return Err("loading it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN".into());
    }
    if !(has(SYS_PTRACE) && has(DAC_READ_SEARCH)) {
        return Err(
            "without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH the walk of /proc sees fewer processes than it would"
                .into(),
        );
    }
    Ok(())
}

/// The owners `keep` keeps among the records `output` gives, read a block at a time so
/// that only the kept ones are held (a host's every socket descriptor would be a few
/// MiB, allocated and freed on every scrape). Output that ends inside a record is an
/// error: the walk answers instead.
fn owners_from(mut output: impl Read, keep: impl Fn(&Owner) -> bool) -> Result<Vec<Owner>, String> {
    let mut owners = Vec::new();
    let mut block = vec![0u8; 64 * 1024];
    // Bytes of a record a read cut, kept for the next.
    let mut held = 0;
    loop {
        let n = match output.read(&mut block[held..]) {
            Ok(0) if held == 0 => return Ok(owners),
            Ok(0) => return Err(format!("its output ends {held} bytes into a record")),
            Ok(n) => n,
            // The kernel stops a read that has visited a million files without output
            // (EAGAIN); the next one goes on from there.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.to_string()),
        };
        let filled = held + n;
        let whole = filled - filled % RECORD;
        for record in block[..whole].chunks_exact(RECORD) {
            let (inode, rest) = record.split_at(8);
            let (pid, fd) = rest.split_at(4);
            let owner = Owner {
                inode: u64::from_ne_bytes(inode.try_into().unwrap()),
                pid: i32::from_ne_bytes(pid.try_into().unwrap()),
                fd: i32::from_ne_bytes(fd.try_into().unwrap()),
            };
            if keep(&owner) {
                owners.push(owner);
            }
        }
        block.copy_within(whole..filled, 0);
        held = filled - whole;
    }
}

#[cfg(netsql_bpf)]
mod kernel {
    use std::fs::File;
    use std::sync::{Mutex, OnceLock};

    use aya::programs::Iter;
    use aya::{Btf, Ebpf, EbpfLoader};

    /// The compiled program (build.rs).
    static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/task_files.bpf.o"));
    /// The program's function in it.
    const PROGRAM: &str = "sockets";

    /// The loaded program, or why it could not be loaded; set by the first [`load`].
    static LOADED: OnceLock<Result<Mutex<Ebpf>, String>> = OnceLock::new();

    pub fn load(root: &super::Root) -> Result<(), String> {
        LOADED
            .get_or_init(|| {
                super::allowed(root)?;
                let btf = Btf::from_sys_fs().map_err(|e| format!("the kernel's BTF: {e}"))?;
                let mut ebpf = EbpfLoader::new()
                    .btf(Some(&btf))
                    .load(OBJECT)
                    .map_err(|e| format!("fitting the program to this kernel: {e}"))?;
                let iter: &mut Iter = ebpf
                    .program_mut(PROGRAM)
                    .ok_or("the program is missing from its object")?
                    .try_into()
                    .map_err(|e: aya::programs::ProgramError| e.to_string())?;
                iter.load("task_file", &btf)
                    .map_err(|e| format!("loading the iterator: {e}"))?;
                // The parsed BTF (about 16 MiB here) is garbage now: give its pages back
                // rather than carry them for the server's life.
                drop(btf);
                // SAFETY: malloc_trim has no preconditions.
                #[cfg(target_env = "gnu")]
                unsafe {
                    libc::malloc_trim(0);
                }
                Ok(Mutex::new(ebpf))
            })
            .as_ref()
            .map(|_| ())
            .map_err(Clone::clone)
    }

    /// A new pass of the loaded iterator, to read its records from.
    pub fn open() -> Option<Result<File, String>> {
        let ebpf = LOADED.get()?.as_ref().ok()?;
        let mut ebpf = ebpf.lock().unwrap_or_else(|e| e.into_inner());
        let iter: &mut Iter = ebpf.program_mut(PROGRAM)?.try_into().ok()?;
        Some(
            iter.attach()
                .and_then(|id| iter.take_link(id))
                .map_err(|e| e.to_string())
                .and_then(|link| link.into_file().map_err(|e| e.to_string())),
        )
    }
}

#[cfg(not(netsql_bpf))]
mod kernel {
    pub fn load(_: &super::Root) -> Result<(), String> {
        Err("this netsql was built without it (build.rs found no working clang)".into())
    }

    pub fn open() -> Option<Result<std::fs::File, String>> {
        None
    }
}

/// Loads the iterator for this process's later walks over `root`, once; why not, if it
/// cannot be.
pub fn load(root: &Root) -> Result<(), String> {
    kernel::load(root)
}

/// The socket descriptors `keep` keeps of every process's, from the loaded iterator:
/// `None` when it is not loaded, `root` is not the host's /proc, or this read failed
/// (the walk answers).
pub fn read(root: &Root, keep: impl Fn(&Owner) -> bool) -> Option<Vec<Owner>> {
    if root.proc != Path::new("/proc") {
        return None;
    }
    owners_from(kernel::open()?.ok()?, keep).ok()
}

/// What `netsql doctor` says of it: loaded and seeing a socket of our own, or why not.
pub fn probe(root: &Root) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    load(root)?;
    let (socket, _peer) = std::os::unix::net::UnixDatagram::pair().map_err(|e| e.to_string())?;
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .map_err(|e| e.to_string())?
        .ino();
    let me = Owner {
        inode,
        pid: std::process::id() as i32,
        fd: socket.as_raw_fd(),
    };
    let output = kernel::open()
        .ok_or("not loaded")?
        .map_err(|e| format!("making an iterator: {e}"))?;
    let owners =
        owners_from(output, |o| o.inode == inode).map_err(|e| format!("reading it: {e}"))?;
    if owners == [me] {
        Ok(())
    } else {
        Err(format!(
            "it listed {owners:?} for our own socket (pid {}, fd {}, inode {inode})",
            me.pid, me.fd
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes a few at a time, as a read may cut a record, after a read that
    /// fails with EAGAIN, as the kernel's does after a million files without output.
    struct Trickle<'a>(&'a [u8], bool);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if !std::mem::replace(&mut self.1, true) {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = self.0.len().min(buf.len()).min(5);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn records_are_inode_pid_fd() {
        let mut bytes = Vec::new();
        for (inode, pid, fd) in [(4026532001u64, 1i32, 3i32), (7, 65536, 1023), (9, 2, 0)] {
            bytes.extend_from_slice(&inode.to_ne_bytes());
            bytes.extend_from_slice(&pid.to_ne_bytes());
            bytes.extend_from_slice(&fd.to_ne_bytes());
        }
        let owner = |inode, pid, fd| Owner { inode, pid, fd };
        let all = owners_from(Trickle(&bytes, false), |_| true).unwrap();
        assert_eq!(
            all,
            [
                owner(4026532001, 1, 3),
                owner(7, 65536, 1023),
                owner(9, 2, 0)
            ]
        );
        let kept = owners_from(&bytes[..], |o| o.inode != 7).unwrap();
        assert_eq!(kept, [owner(4026532001, 1, 3), owner(9, 2, 0)]);
        // A cut record is no answer: the walk gives it instead.
        assert!(owners_from(Trickle(&bytes[..20], false), |_| true).is_err());
        assert_eq!(owners_from(&[][..], |_| true), Ok(vec![]));
    }
}
