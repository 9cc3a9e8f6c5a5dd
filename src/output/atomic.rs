//! Files written all or nothing: a temporary file beside the target, renamed over it only
//! once everything was written. Dropped without [`AtomicFile::commit`], it leaves no trace.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

pub struct AtomicFile {
    target: PathBuf,
    temp: NamedTempFile,
}

impl AtomicFile {
    /// Starts a write to `target`; fails at once if its folder is not writable.
    pub fn create(target: &Path) -> std::io::Result<AtomicFile> {
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".netsql-")
            .suffix(".partial")
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
        })
    }

    pub fn writer(&mut self) -> BufWriter<&mut std::fs::File> {
        BufWriter::with_capacity(256 * 1024, self.temp.as_file_mut())
    }

    /// Makes the file durable and puts it in place, replacing any old one.
    pub fn commit(self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.temp.as_file().sync_all()?;
        // tempfile creates 0600; a result file is as readable as any the user writes.
        std::fs::set_permissions(self.temp.path(), std::fs::Permissions::from_mode(0o644))?;
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
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
