//! OS readers. Nothing in here knows DataFusion: each reader returns plain Rust rows.
//!
//! Parsers take bytes or `impl BufRead`; a thin `read` function opens the real file under
//! an injectable [`Root`], so tests feed captured text instead of the live host's.

pub mod netns;
pub mod proc_inet;
pub mod proc_unix;
pub mod sockdiag;
pub mod socket;
pub mod sockets;

use std::path::{Path, PathBuf};

/// Where the OS files live: `/proc` and `/etc` on a real host, a fixture tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub proc: PathBuf,
    pub etc: PathBuf,
}

impl Default for Root {
    fn default() -> Self {
        Root {
            proc: PathBuf::from("/proc"),
            etc: PathBuf::from("/etc"),
        }
    }
}

impl Root {
    pub fn proc_path(&self, rel: &str) -> PathBuf {
        self.proc.join(rel)
    }
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
    #[error("sock_diag: {0}")]
    Netlink(String),
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
}
