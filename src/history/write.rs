//! One snapshot: each table's rows, stamped with one `taken`, to a new Parquet file in its
//! partition. A file appears whole or not at all: written under a hidden temporary name
//! (`.netsql-*.partial`, which no reader lists) and renamed once complete.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use std::collections::BTreeMap;
use std::io::BufWriter;

use crate::error::Error;
use crate::exec::{Destination, Runner};
use crate::output::atomic::AtomicFile;
use crate::output::parquet::ParquetOut;
use crate::output::Sink;

/// What one snapshot wrote.
#[derive(Debug, Default, Clone)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub rows: u64,
    pub bytes: u64,
}

/// A Parquet file being written to its final place.
struct SnapshotFile {
    file: AtomicFile,
    rows: u64,
    bytes: u64,
}

struct FileSink<'a> {
    out: Option<ParquetOut<BufWriter<&'a mut std::fs::File>>>,
    rows: &'a mut u64,
    bytes: &'a mut u64,
}

impl Sink for FileSink<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        *self.rows += batch.num_rows() as u64;
        self.out.as_mut().expect("open until finished").write(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        let (mut out, bytes) = self.out.take().expect("finished once").finish()?;
        std::io::Write::flush(&mut out)?;
        *self.bytes = bytes;
        Ok(())
    }
}

impl Destination for SnapshotFile {
    fn open(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        let out = ParquetOut::new(self.file.writer(), &schema, true)?;
        Ok(Box::new(FileSink {
            out: Some(out),
            rows: &mut self.rows,
            bytes: &mut self.bytes,
        }))
    }
}

/// A name no other snapshot file has: the process, the clock, a counter.
fn file_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = (u64::from(std::process::id()) << 32 | u64::from(nanos))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:012x}", mixed >> 16)
}

/// Writes one snapshot of `tables` under `dest`, every row stamped `taken`.
pub async fn snapshot(
    runner: &Runner<'_>,
    dest: &Path,
    tables: &[String],
    host: &str,
    taken: DateTime<Utc>,
) -> Result<Written, Error> {
    let mut written = Written::default();
    let micros = taken.timestamp_micros();
    for table in tables {
        let path = dest.join(super::file_path(table, host, taken, &file_id()));
        let dir = path.parent().expect("a partition directory");
        std::fs::create_dir_all(dir).map_err(|source| Error::Output {
            path: dir.to_path_buf(),
            source,
        })?;
        let file = AtomicFile::create(&path).map_err(|source| Error::Output {
            path: path.clone(),
            source,
        })?;
        let mut out = SnapshotFile {
            file,
            rows: 0,
            bytes: 0,
        };
        // `table` is one of the live tables' names (checked by the caller).
        let sql = format!("SELECT to_timestamp_micros({micros}) AS taken, * FROM {table}");
        runner
            .run(&sql, &BTreeMap::new(), &mut out)
            .await
            .map_err(|e| Error::Usage(format!("snapshot of {table}: {e}")))?;
        let SnapshotFile { file, rows, bytes } = out;
        file.commit().map_err(|source| Error::Output {
            path: path.clone(),
            source,
        })?;
        written.rows += rows;
        written.bytes += bytes;
        written.files.push(path);
    }
    Ok(written)
}
