//! cgroup v2 paths by id: a socket's INET_DIAG_CGROUP_ID is the inode of its cgroup's
//! directory in the cgroup2 filesystem, so, as `ss --cgroup` does, the tree is walked once
//! and each directory's inode mapped to its path from the mount's root.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CollectError, Root};

/// Where cgroup2 is mounted, from `self/mounts` (`/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one); `None` without cgroup v2.
pub fn mount(root: &Root) -> Result<Option<PathBuf>, CollectError> {
    let mounts = super::read_or_none(&root.proc_path("self/mounts"), std::fs::read)?;
    Ok(mounts.and_then(|mounts| parse_mount(&String::from_utf8_lossy(&mounts))))
}

pub fn parse_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (_, dir, kind) = (fields.next()?, fields.next()?, fields.next()?);
        // Spaces and other bytes in the path come octal-escaped (\040).
        (kind == "cgroup2").then(|| PathBuf::from(unescape_octal(dir)))
    })
}

/// The process's cgroup path: the unified (v2) hierarchy's `0::/path` line, unless a v1
/// hierarchy places the process in a container's cgroup and the unified one does not (a
/// hybrid host where the runtime made it in the v1 trees only, as Docker's cgroupfs
/// driver does; the unified line is then the root or whatever the process inherited,
/// containerd's service): then that one. Without a unified line (cgroup v1 alone),
/// systemd's named tree, else the first hierarchy listed.
pub fn parse_cgroup(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<(&str, &str, &str)> = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            Some((parts.next()?, parts.next()?, parts.next()?))
        })
        .collect();
    let unified = lines
        .iter()
        .find(|(id, _, _)| *id == "0")
        .map(|line| line.2);
    let container = lines
        .iter()
        .find(|(id, _, path)| *id != "0" && super::containers::of_cgroup(path).is_some())
        .map(|line| line.2);
    let systemd = lines
        .iter()
        .find(|(_, controllers, _)| *controllers == "name=systemd")
        .map(|line| line.2);
    match (unified, container) {
        (Some(unified), _) if super::containers::of_cgroup(unified).is_some() => Some(unified),
        (_, Some(container)) => Some(container),
        (Some(unified), None) => Some(unified),
        (None, None) => systemd.or(lines.first().map(|line| line.2)),
    }
    .map(str::to_string)
}

fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup's id -> path (`/` for the root). Directories that vanish or may not be
/// read are left out: their sockets' `cgroup` is NULL. Running out of descriptors fails
/// the read instead: a NULL would look like a socket of a cgroup gone.
pub fn paths(root: &Root) -> Result<HashMap<u64, String>, CollectError> {
    let mut found = HashMap::new();
    if let Some(mount) = mount(root)? {
        walk(&mount, "", &mut found)?;
    }
    Ok(found)
}

fn walk(dir: &Path, relative: &str, found: &mut HashMap<u64, String>) -> Result<(), CollectError> {
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    found.insert(
        meta.ino(),
        if relative.is_empty() {
            "/".to_string()
        } else {
            relative.to_string()
        },
    );
    let Some(entries) = super::read_or_none(dir, std::fs::read_dir)? else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let name = entry.file_name();
            let child = format!("{relative}/{}", name.to_string_lossy());
            walk(&entry.path(), &child, found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_v2_path_first_else_a_containers_v1_path() {
        assert_eq!(
            super::parse_cgroup(b"0::/system.slice/ssh.service\n").as_deref(),
            Some("/system.slice/ssh.service")
        );
        assert_eq!(
            super::parse_cgroup(b"12:cpu,cpuacct:/a\n0::/b\n").as_deref(),
            Some("/b")
        );
        assert_eq!(super::parse_cgroup(b"12:cpu:/a\n").as_deref(), Some("/a"));
        assert_eq!(super::parse_cgroup(b"garbage"), None);
        // Hybrid, the container in the v1 trees only (Docker's cgroupfs driver): its v1
        // path; a v1 path of no container leaves the unified root.
        let id = "ab".repeat(32);
        let docker = format!("12:pids:/docker/{id}\n4:memory:/sandbox/x\n0::/\n");
        let found = super::parse_cgroup(docker.as_bytes());
        assert_eq!(found, Some(format!("/docker/{id}")));
        let sandbox = b"4:memory:/sandbox/x\n1:name=systemd:/\n0::/\n";
        assert_eq!(super::parse_cgroup(sandbox).as_deref(), Some("/"));
        let inherited = format!("12:pids:/docker/{id}\n0::/system.slice/containerd.service\n");
        let found = super::parse_cgroup(inherited.as_bytes());
        assert_eq!(found, Some(format!("/docker/{id}")));
        let legacy = b"12:pids:/\n1:name=systemd:/user.slice/a.scope\n";
        assert_eq!(
            super::parse_cgroup(legacy).as_deref(),
            Some("/user.slice/a.scope")
        );
    }

    #[test]
    fn finds_the_cgroup2_mount_on_unified_and_hybrid_hosts() {
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n";
        assert_eq!(super::parse_mount(unified), Some("/sys/fs/cgroup".into()));
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        assert_eq!(
            super::parse_mount(hybrid),
            Some("/sys/fs/cgroup/unified".into())
        );
        assert_eq!(
            super::parse_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
        assert_eq!(
            super::parse_mount("none /mnt/my\\040cg cgroup2 rw 0 0\n"),
            Some("/mnt/my cg".into())
        );
    }
}
