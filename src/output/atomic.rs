//! Files written all or nothing: a temporary file beside the target, renamed over it only
//! once everything was written. Dropped without [`AtomicFile::commit`], it leaves no trace.
//!
//! Renaming replaces only what a shell's `>` would write into: a symbolic link is
//! followed to the file it names, an existing file keeps its mode and (where we may)
//! its owner, a new one gets `0666` less the umask; and a target that is not a regular
//! file (`/dev/null`, `/dev/stdout`, a FIFO) is written directly, as `>` does, since
//! renaming over it would replace the device or pipe with a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

pub struct AtomicFile {
    target: PathBuf,
    out: Out,
}

enum Out {
    /// Renamed over the target on commit; `mode` is what the old file had.
    Temp {
        temp: NamedTempFile,
        mode: Option<u32>,
    },
    /// Not a regular file: written in place.
    Direct(File),
}

impl AtomicFile {
    /// Starts a write to `target`; fails at once if its folder is not writable.
    pub fn create(target: &Path) -> std::io::Result<AtomicFile> {
        let target = followed(target)?;
        let existing = std::fs::metadata(&target).ok();
        if let Some(meta) = existing.as_ref().filter(|m| !m.file_type().is_file()) {
            if meta.is_dir() {
                return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
            }
            let file = std::fs::OpenOptions::new().write(true).open(&target)?;
            return Ok(AtomicFile {
                target,
                out: Out::Direct(file),
            });
        }
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".netsql-")
            .suffix(".partial")
            // Less the umask, as the shell's `>` creates a file.
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(without_temp_path)?;
        let mode = existing.map(|meta| {
            // Root writing over another user's file leaves it theirs; others cannot
            // give a file away, and the renamed file is then their own, as with any
            // editor that saves by renaming.
            let _ = std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()));
            meta.mode() & 0o7777
        });
        Ok(AtomicFile {
            target,
            out: Out::Temp { temp, mode },
        })
    }

    pub fn writer(&mut self) -> BufWriter<&mut File> {
        let file = match &mut self.out {
            Out::Temp { temp, .. } => temp.as_file_mut(),
            Out::Direct(file) => file,
        };
        BufWriter::with_capacity(256 * 1024, file)
    }

    /// Makes the file durable and puts it in place, replacing any old one.
    pub fn commit(self) -> std::io::Result<()> {
        let Out::Temp { temp, mode } = self.out else {
            return Ok(());
        };
        temp.as_file().sync_all()?;
        if let Some(mode) = mode {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
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
/// the user named the target, which the caller says. The error without that path.
fn without_temp_path(err: std::io::Error) -> std::io::Error {
    if err.raw_os_error().is_some() {
        return err;
    }
    let text = err.to_string();
    match text.rsplit_once(" at path ") {
        Some((message, _)) => std::io::Error::new(err.kind(), message.to_string()),
        None => err,
    }
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
