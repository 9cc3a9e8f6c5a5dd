//! Processes from `/proc/<pid>`, read with the procfs crate; only the files the caller
//! asks for are read.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use procfs::ProcError;

use super::{exhausted, netns, read_or_none, CollectError, Root};

/// Which per-process files a scan needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `/proc/<pid>/stat`: comm, state, ppid, tty, times, nice, threads, memory.
    pub stat: bool,
    /// The owner of `/proc/<pid>` (its effective uid and gid): one `stat(2)`.
    pub owner: bool,
    /// `/proc/<pid>/statm`: resident memory. `stat`'s rss is the kernel's per-CPU
    /// approximation (20% off on a 6.18 kernel); statm's is the exact sum ps shows.
    pub statm: bool,
    pub cmdline: bool,
    pub exe: bool,
    pub cgroup: bool,
    pub netns: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ProcessRow {
    pub pid: i32,
    pub stat: Option<procfs::process::Stat>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Resident pages, statm's second field.
    pub resident_pages: Option<u64>,
    /// argv, as /proc/<pid>/cmdline splits it at NULs.
    pub args: Option<Vec<String>>,
    pub exe: Option<String>,
    pub cgroup: Option<String>,
    pub netns: Option<u64>,
}

/// Every process, with the files `needs` asks for. A process that is gone before its
/// `stat` is read is left out; any other file that cannot be read leaves a NULL. Running
/// out of descriptors or memory while reading fails the scan instead: every row would
/// otherwise come out with NULLs (or not at all) and look like an answer.
pub fn scan(root: &Root, needs: Needs) -> Result<Vec<ProcessRow>, CollectError> {
    let iter =
        procfs::process::all_processes_with_root(&root.proc).map_err(|e| proc_error(root, e))?;
    let mut rows = Vec::new();
    for process in iter {
        let process = match process {
            Ok(process) => process,
            Err(err) => match exhausted_proc(err, &root.proc) {
                Some(err) => return Err(err),
                // An entry that vanished between readdir and open.
                None => continue,
            },
        };
        let mut row = ProcessRow {
            pid: process.pid(),
            ..ProcessRow::default()
        };
        let dir = root.proc.join(row.pid.to_string());
        if needs.stat {
            let path = dir.join("stat");
            match read_or_none(&path, std::fs::read)?.and_then(|bytes| parse_stat(&bytes)) {
                Some(stat) => row.stat = Some(stat),
                None => continue,
            }
        }
        if needs.owner {
            let Some(meta) = read_or_none(&dir, std::fs::metadata)? else {
                continue;
            };
            row.uid = Some(meta.uid());
            row.gid = Some(meta.gid());
        }
        let mut failed = false;
        if needs.statm {
            row.resident_pages = optional(process.statm(), &dir)?.map(|statm| statm.resident);
            failed |= row.resident_pages.is_none();
        }
        if needs.cmdline {
            row.args = read_or_none(&dir.join("cmdline"), std::fs::read)?
                .map(|bytes| split_cmdline(&bytes));
            failed |= row.args.is_none();
        }
        if needs.exe {
            // A kernel thread or zombie has no exe; another user's is EACCES: both NULL.
            row.exe = optional(process.exe(), &dir)?.map(|p| p.to_string_lossy().into_owned());
            failed |= row.exe.is_none();
        }
        if needs.cgroup {
            row.cgroup = read_or_none(&dir.join("cgroup"), std::fs::read)?
                .and_then(|text| super::cgroups::parse_cgroup(&text));
            failed |= row.cgroup.is_none();
        }
        if needs.netns {
            row.netns = match netns::inode_of_link(&dir.join("ns/net")) {
                Ok(inode) => Some(inode),
                Err(err) if err.exhausted() => return Err(err),
                Err(_) => None,
            };
            failed |= row.netns.is_none();
        }
        // Did a read fail because the process exited mid-scan? Then leave it out.
        if failed && !dir.exists() {
            continue;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// argv from `/proc/<pid>/cmdline`: each argument ends in a NUL, and every one counts,
/// empty ones too (argv `["", "-c", "", "x y"]` keeps its four places, as `ps` shows
/// them), but the last: a process that wrote a title over its argv (nginx, postgres)
/// pads the rest with NULs, so trailing NULs are dropped, as procps does, and trailing
/// empty arguments with them. Bytes that are not UTF-8 are replaced, not the whole line
/// dropped. A kernel thread's is empty.
pub fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if end == 0 {
        return Vec::new();
    }
    bytes[..end]
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// The procfs crate's error as a failed scan if it is [`exhausted`], else `None`.
fn exhausted_proc(err: ProcError, dir: &std::path::Path) -> Option<CollectError> {
    match err {
        ProcError::Io(err, path) if exhausted(&err) => {
            Some(CollectError::io(path.as_deref().unwrap_or(dir), err))
        }
        _ => None,
    }
}

/// A value read with the procfs crate; `None` (a NULL) for an error that is not
/// [`exhausted`].
fn optional<T>(
    read: Result<T, ProcError>,
    dir: &std::path::Path,
) -> Result<Option<T>, CollectError> {
    match read {
        Ok(value) => Ok(Some(value)),
        Err(err) => exhausted_proc(err, dir).map_or(Ok(None), Err),
    }
}

fn proc_error(root: &Root, err: ProcError) -> CollectError {
    CollectError::io(&root.proc, std::io::Error::other(err.to_string()))
}

/// The terminal a `tty_nr` names, as ps prints it; `None` for no terminal.
/// Device numbers from Documentation/admin-guide/devices.txt.
pub fn tty_name(tty_nr: i32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let tty_nr = tty_nr as u32;
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        _ => format!("{major}:{minor}"),
    })
}

/// Boot time (seconds since the epoch) from `/proc/stat`'s `btime` line.
pub fn boot_time(root: &Root) -> Result<u64, CollectError> {
    let path: PathBuf = root.proc_path("stat");
    let text = std::fs::read_to_string(&path).map_err(|e| CollectError::io(&path, e))?;
    parse_btime(&text).ok_or_else(|| CollectError::Parse {
        file: path.display().to_string(),
        line: 0,
        field: "btime",
        reason: "no btime line".into(),
    })
}

pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// `/proc/<pid>/stat`, parsed by procfs once its shape is checked: procfs slices the text
/// right after the last `)` and right before the first `(` and panics when that is not a
/// character boundary (found by `cargo fuzz run proc_pid`). The kernel always writes
/// `pid (comm) S ...`; anything else is not a stat line. A name that is not UTF-8 (any
/// process may set one with PR_SET_NAME) has its bytes replaced: the process stays.
pub fn parse_stat(bytes: &[u8]) -> Option<procfs::process::Stat> {
    use procfs::FromRead;

    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = &text[..open];
    let rest = &text[close + 1..];
    if open < 2
        || close < open
        || !pid.ends_with(' ')
        || !pid.trim_end().bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if !rest.starts_with(' ') || !rest.is_ascii() {
        return None;
    }
    procfs::process::Stat::from_read(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttys_and_btime() {
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name(0x0401).as_deref(), Some("tty1"));
        assert_eq!(tty_name((136 << 8) | 5).as_deref(), Some("pts/5"));
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime("cpu 1 2\n"), None);
    }

    #[test]
    fn every_argument_keeps_its_place() {
        assert_eq!(split_cmdline(b""), Vec::<String>::new());
        assert_eq!(split_cmdline(b"sleep\x00300\x00"), ["sleep", "300"]);
        assert_eq!(split_cmdline(b"\0-c\0\0x y\0"), ["", "-c", "", "x y"]);
        // A title a process wrote over its argv need not end in a NUL.
        assert_eq!(split_cmdline(b"nginx: worker"), ["nginx: worker"]);
        assert_eq!(split_cmdline(b"caf\xe9\0"), ["caf\u{fffd}"]);
        // A title written over argv, the rest padded with NULs.
        assert_eq!(split_cmdline(b"worker: title\0\0\0\0"), ["worker: title"]);
        assert_eq!(split_cmdline(b"\0\0"), Vec::<String>::new());
    }

    use procfs::FromRead;

    /// Inputs cargo fuzz found to panic inside procfs: NULL now.
    #[test]
    fn fuzz_crash_stat_shapes_are_refused() {
        // A multi-byte character right after the last ')'.
        assert!(parse_stat(b"3836 (cp)\xda\x52 3813 3813 22507 0 -1 4194304").is_none());
        assert!(parse_stat("3836 (cp)\u{e9} 3813".as_bytes()).is_none());
        // '(' first: procfs would slice at -1.
        assert!(parse_stat(b"(cp) S 1 2 3").is_none());
        assert!(parse_stat(b"12 cp S 1").is_none());
        let line = "7 (ok) S 1 7 7 0 7 4194560 1 0 0 0 1 1 0 0 20 0 1 0 5 100 3 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(parse_stat(line.as_bytes()).map(|s| s.pid), Some(7));
        // A name that is not UTF-8 keeps its process.
        let mut bytes = b"7 (caf\xe9".to_vec();
        bytes.extend_from_slice(&line.as_bytes()["7 (ok".len()..]);
        let stat = parse_stat(&bytes).expect("a stat line");
        assert_eq!((stat.pid, stat.comm.as_str()), (7, "caf\u{fffd}"));
    }

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_name() {
        // comm may hold anything, ") (" included: the crate splits at the last ')'.
        let line = "4242 (my (odd) name) S 1 4242 4242 34816 4242 4194560 100 0 0 0 7 3 0 0 20 0 2 0 12345 10485760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let stat = procfs::process::Stat::from_read(line.as_bytes()).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!((stat.utime, stat.stime), (7, 3));
        assert_eq!(stat.num_threads, 2);
        assert_eq!(stat.starttime, 12345);
        assert_eq!(stat.rss, 300);
        assert_eq!(tty_name(stat.tty_nr).as_deref(), Some("pts/0"));
    }
}
