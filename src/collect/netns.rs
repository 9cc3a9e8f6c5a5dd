//! The network namespace a process lives in, named by the inode of `/proc/<pid>/ns/net`.

use std::path::Path;

use super::{CollectError, Root};

/// The inode of our own network namespace: every socket this process can list lives there.
pub fn current(root: &Root) -> Result<u64, CollectError> {
    let path = root.proc_path("self/ns/net");
    inode_of_link(&path)
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

#[cfg(test)]
mod tests {
    #[test]
    fn parses_namespace_links() {
        assert_eq!(super::parse_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(super::parse_link("mnt:[4026531840]"), None);
        assert_eq!(super::parse_link("net:[x]"), None);
    }
}
