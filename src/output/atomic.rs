//! Files written all or nothing: a temporary file beside the target, renamed over it only
//! once everything was written. Dropped without [`AtomicFile::commit`], it leaves no trace.
//!
//! Renaming replaces only what a shell's `>` would write into: a symbolic link is
//! followed to the file it names, an existing file keeps its mode and (where we may)
//! its owner, a new one gets `0666` less the umask. A target that is not a regular file
//! (`/dev/null`, `/dev/stdout`, a FIFO) is written directly, as `>` does, since renaming
//! over it would replace the device or pipe with a file: what was written to it stays.
//! Renaming gives the file a new inode: another hard link to the old one keeps the old
//! contents.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

pub struct AtomicFile {
    target: PathBuf,
    out: Out,
}

enum Out {
    /// Renamed over the target on commit.
    Temp(NamedTempFile),
    /// Not a regular file: written in place.
    Direct(File),
}

impl AtomicFile {
    /// Starts a write to `target`; fails at once if its folder is not writable (or, for a
    /// FIFO, if nothing reads it).
    pub fn create(target: &Path) -> std::io::Result<AtomicFile> {
        // What the path names now, with the kernel following its links: /dev/stdout
        // leads through /proc/self/fd/1 to a pipe no path names.
        match std::fs::metadata(target) {
            Ok(meta) if meta.is_dir() => {
                return Err(std::io::Error::from_raw_os_error(libc::EISDIR))
            }
            Ok(meta) if !meta.is_file() => {
                return Ok(AtomicFile {
                    target: target.to_path_buf(),
                    out: Out::Direct(in_place(target)?),
                })
            }
            _ => {}
        }
        let target = followed(target)?;
        let existing = std::fs::metadata(&target).ok();
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // A new file: 0666 less the umask, as `>` creates one. Over an old file: 0600
        // until it has the old one's owner and mode, so that its new contents are never
        // readable by more users than its old ones were.
        let mode = if existing.is_some() { 0o600 } else { 0o666 };
        let temp = tempfile::Builder::new()
            .prefix(".netsql-")
            .suffix(".partial")
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(|e| without_temp_path(e, dir))?;
        if let Some(meta) = existing {
            // Root writing over another user's file leaves it theirs; others cannot give
            // a file away (then at least its group, where ours), and the renamed file is
            // their own, as with any editor that saves by renaming. No setuid or setgid
            // bit: the kernel drops them when a file is written.
            let file = temp.as_file();
            if std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).is_err() {
                let _ = std::os::unix::fs::fchown(file, None, Some(meta.gid()));
            }
            file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o777))?;
        }
        Ok(AtomicFile {
            target,
            out: Out::Temp(temp),
        })
    }

    pub fn writer(&mut self) -> BufWriter<&mut File> {
        let file = match &mut self.out {
            Out::Temp(temp) => temp.as_file_mut(),
            Out::Direct(file) => file,
        };
        BufWriter::with_capacity(256 * 1024, file)
    }

    /// Makes the file durable and puts it in place, replacing any old one.
    pub fn commit(self) -> std::io::Result<()> {
        let Out::Temp(temp) = self.out else {
            return Ok(());
        };
        temp.as_file().sync_all()?;
        temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A device, pipe or FIFO opened for writing in place. A FIFO nothing reads is an
/// error at once (ENXIO), not an open that waits for a reader past Ctrl-C.
fn in_place(target: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(target)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => std::io::Error::new(
                e.kind(),
                format!("{e}: nothing reads from it (a FIFO needs its reader first)"),
            ),
            _ => e,
        })?;
    // Writes block again, as they would through `>`.
    // SAFETY: fcntl on a descriptor we own, with flags read from it.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// `target` with symbolic links followed, as far as they lead: a link to a file not yet
/// there names the file to create.
fn followed(target: &Path) -> std::io::Result<PathBuf> {
    let mut path = target.to_path_buf();
    // As many links as the kernel follows before ELOOP.
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            Ok(next) => {
                path = match path.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                }
            }
            Err(_) => return Ok(path),
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ELOOP))
}

/// tempfile's errors name the temporary file (`... at path "dir/.netsql-x.partial"`);
/// the user named the target, which the caller says, and a refused folder is said as
/// such (the target itself may be writable: `-o` writes beside it).
fn without_temp_path(err: std::io::Error, dir: &Path) -> std::io::Error {
    let text = err.to_string();
    let message = match text.rsplit_once(" at path ") {
        Some((message, _)) => message.to_string(),
        None => text,
    };
    let message = match err.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            format!(
                "{message}: its folder {} must be writable (the file is written beside the \
                 old one and renamed over it)",
                dir.display()
            )
        }
        _ => message,
    };
    std::io::Error::new(err.kind(), message)
}

/// Writes `bytes` to `target` atomically.
pub fn write(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    {
        let mut writer = file.writer();
        writer.write_all(bytes)?;
        writer.flush()?;
    }
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_nothing_remains_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();
        {
            let mut file = AtomicFile::create(&target).unwrap();
            file.writer().write_all(b"new").unwrap();
            // dropped without commit
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        write(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
