//! OS readers. Nothing in here knows DataFusion: each reader returns plain Rust rows.
//!
//! Parsers take bytes or `impl BufRead`; a thin `read` function opens the real file under
//! an injectable [`Root`], so tests feed captured text instead of the live host's.

pub mod cgroups;
pub mod conntrack;
pub mod containers;
pub mod hosts;
pub mod igmp;
pub mod netdb;
pub mod netdev;
pub mod netlink;
pub mod netns;
pub mod owners;
pub mod passwd;
pub mod proc_inet;
pub mod proc_unix;
pub mod processes;
pub mod routes;
pub mod services;
pub mod snmp;
pub mod sockdiag;
pub mod socket_row;
pub mod sockets;
pub mod task_files;
pub mod tcp_info;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Where the OS files live: `/proc`, `/etc` and `/run` on a real host, a fixture tree in
/// tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Root {
    pub proc: PathBuf,
    pub etc: PathBuf,
    /// Where namespaces are bind-mounted (`netns/` by `ip netns`, `docker/netns/`).
    pub run: PathBuf,
}

impl Default for Root {
    fn default() -> Self {
        Root {
            proc: PathBuf::from("/proc"),
            etc: PathBuf::from("/etc"),
            run: PathBuf::from("/run"),
        }
    }
}

/// One process holding one socket through one descriptor: what the walk of /proc
/// (owners.rs) and the kernel's iterator (task_files.rs) both find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub inode: u64,
    pub pid: i32,
    pub fd: i32,
}

impl Root {
    pub fn proc_path(&self, rel: &str) -> PathBuf {
        self.proc.join(rel)
    }
}

/// The cores this process may run on, looked up once: `available_parallelism` reads the
/// affinity mask and the cgroup's CPU quota (three files) each time it is asked, and the
/// collectors ask on every scan.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// This process's `/proc/self/status` under `root`: the capabilities in effect
/// (`capeff`), its seccomp mode.
pub fn own_status(root: &Root) -> Result<procfs::process::Status, String> {
    use procfs::FromRead;
    let path = root.proc_path("self/status");
    procfs::process::Status::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Capabilities netsql asks about, as `capability(7)` numbers them (bits of `capeff`).
pub mod capability {
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const NET_ADMIN: u32 = 12;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// An error from a collector, with enough context to name what failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} line {line}: bad {field}: {reason}")]
    Parse {
        file: String,
        line: usize,
        field: &'static str,
        reason: String,
    },
    /// A socket this collector needed could not be opened (`what` says which).
    #[error("cannot open {what}: {source}")]
    Socket {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("sock_diag: {0}")]
    Netlink(String),
    #[error("{0}")]
    Netns(String),
    /// A ctnetlink request failed or was refused, said as the operator needs it.
    #[error("{0}")]
    Conntrack(String),
    /// The kernel refused the sock_diag request (no permission, no module, seccomp):
    /// `--source auto` falls back to /proc on this error only.
    #[error("sock_diag request refused for {what}: {errno}")]
    NetlinkRefused { what: String, errno: std::io::Error },
}

impl CollectError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CollectError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A read that failed because this process ran out ([`exhausted`]).
    pub fn exhausted(&self) -> bool {
        matches!(self, CollectError::Io { source, .. } | CollectError::Socket { source, .. }
            if exhausted(source))
    }
}

/// Why a parser stopped: its reader failed, or a line was malformed.
#[derive(Debug)]
pub enum ParseFail {
    Io(std::io::Error),
    Line(CollectError),
}

impl ParseFail {
    /// A malformed line: `field` of line `line` of `file`, and why.
    pub fn line(file: &str, line: usize, field: &'static str, reason: String) -> ParseFail {
        ParseFail::Line(CollectError::Parse {
            file: file.into(),
            line,
            field,
            reason,
        })
    }

    /// The error to report, naming `path` for a read failure.
    pub fn at(self, path: &Path) -> CollectError {
        match self {
            ParseFail::Io(source) => CollectError::io(path, source),
            ParseFail::Line(err) => err,
        }
    }
}

/// The lines of a file as text, whatever their bytes. Names in kernel files (an
/// interface's, which any user may give one in a namespace of their own) and in /etc are
/// bytes, not UTF-8: where they are not UTF-8 they read with U+FFFD, rather than failing
/// the file and every namespace read with it. Such a name may hold any byte the kernel
/// does not take for a space, an EM SPACE among them: fields split at ASCII white space.
pub fn text_lines(reader: impl BufRead) -> impl Iterator<Item = std::io::Result<String>> {
    reader
        .split(b'\n')
        .map(|line| line.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Opens a kernel file that may legitimately be absent (a protocol this kernel was built
/// without, IPv6 disabled): `None` then, which callers read as "no rows".
pub fn open_optional(path: &Path) -> Result<Option<BufReader<File>>, CollectError> {
    match File::open(path) {
        Ok(file) => Ok(Some(BufReader::with_capacity(64 * 1024, file))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(CollectError::io(path, err)),
    }
}

/// Parses the kernel file `<proc>/<rel>` with `parse`; a file this kernel does not have is
/// no rows, and a parse error names the file.
pub fn parse_optional<T>(
    root: &Root,
    rel: &str,
    parse: impl FnOnce(BufReader<File>) -> Result<Vec<T>, ParseFail>,
) -> Result<Vec<T>, CollectError> {
    let path = root.proc_path(rel);
    match open_optional(&path)? {
        Some(reader) => parse(reader).map_err(|e| e.at(&path)),
        None => Ok(Vec::new()),
    }
}

/// Whether an error says this process ran out of something (descriptors, memory) rather
/// than anything about the file, socket or process it was for: a collector then fails,
/// where "gone" or "not allowed" would leave a NULL, skip a row or skip a namespace, and
/// the answer would look whole.
pub fn exhausted(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    )
}

/// A read whose failure means something about the thing read (it has gone, may not be
/// read, is not there): `None` then, a NULL or a missing row. Running out
/// ([`exhausted`]) is the query's error instead, naming `path`.
pub fn read_or_none<'p, T>(
    path: &'p Path,
    read: impl FnOnce(&'p Path) -> std::io::Result<T>,
) -> Result<Option<T>, CollectError> {
    match read(path) {
        Ok(value) => Ok(Some(value)),
        Err(err) if exhausted(&err) => Err(CollectError::io(path, err)),
        Err(_) => Ok(None),
    }
}

/// The filesystem type (statfs's `f_type`, a `*_SUPER_MAGIC`) of what `path` is on.
pub fn filesystem_type(path: &std::path::Path) -> std::io::Result<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statfs only writes the struct we pass; an all-zero statfs is valid.
    let mut info: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut info) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets.
    Ok(info.f_type as i64)
}
