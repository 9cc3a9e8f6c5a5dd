//! One snapshot: each table's rows, stamped with one `taken`, to a new Parquet file in its
//! partition. A file appears whole or not at all: written under a hidden temporary name
//! (`.netsql-*.partial`, which no reader lists) and renamed once complete.

use std::path::PathBuf;

use super::dest::Dest;

use chrono::{DateTime, Utc};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use std::collections::BTreeMap;

use crate::error::Error;
use crate::exec::{Destination, Runner};
use crate::output::atomic::AtomicFile;
use crate::output::parquet::ParquetOut;
use crate::output::Sink;

/// What one snapshot wrote.
#[derive(Debug, Default, Clone)]
pub struct Written {
    /// Each file, as messages name it.
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
}

/// Where one table's file is written: a temporary file renamed into place, or memory
/// put to an object store in one request.
enum Staged {
    File(AtomicFile),
    Memory(Vec<u8>),
}

/// A Parquet file being written to its final place.
struct SnapshotFile {
    out: Staged,
    rows: u64,
    bytes: u64,
}

struct FileSink<'a, W: std::io::Write + Send> {
    out: Option<ParquetOut<W>>,
    rows: &'a mut u64,
    bytes: &'a mut u64,
}

impl<W: std::io::Write + Send> Sink for FileSink<'_, W> {
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
        Ok(match &mut self.out {
            Staged::File(file) => Box::new(FileSink {
                out: Some(ParquetOut::new(file.writer(), &schema, true)?),
                rows: &mut self.rows,
                bytes: &mut self.bytes,
            }),
            Staged::Memory(buffer) => Box::new(FileSink {
                out: Some(ParquetOut::new(buffer, &schema, true)?),
                rows: &mut self.rows,
                bytes: &mut self.bytes,
            }),
        })
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

/// Where the file `rel` is written before it is put in place.
fn open_out(dest: &Dest, rel: &str) -> Result<SnapshotFile, Error> {
    let out = match dest {
        Dest::Local(dir) => {
            let path = dir.join(rel);
            let parent = path.parent().expect("a partition directory");
            std::fs::create_dir_all(parent).map_err(|source| Error::Output {
                path: parent.to_path_buf(),
                source,
            })?;
            Staged::File(AtomicFile::create(&path).map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?)
        }
        Dest::Store { .. } => Staged::Memory(Vec::new()),
    };
    Ok(SnapshotFile {
        out,
        rows: 0,
        bytes: 0,
    })
}

/// Puts a finished file in place (a rename, or one PUT) and counts it in `written`.
async fn commit(
    dest: &Dest,
    rel: &str,
    file: SnapshotFile,
    written: &mut Written,
) -> Result<(), Error> {
    let SnapshotFile { out, rows, bytes } = file;
    match out {
        Staged::File(file) => file.commit().map_err(|source| Error::Output {
            path: PathBuf::from(dest.name(rel)),
            source,
        })?,
        Staged::Memory(buffer) => dest.put(rel, buffer).await?,
    }
    written.rows += rows;
    written.bytes += bytes;
    written.files.push(dest.name(rel));
    Ok(())
}

/// Writes one snapshot of `tables` to `dest`, every row stamped `taken`, each file
/// added to `written` once whole (so a table that fails leaves the ones before it
/// listed there).
pub async fn snapshot(
    runner: &Runner<'_>,
    dest: &Dest,
    tables: &[String],
    host: &str,
    taken: DateTime<Utc>,
    written: &mut Written,
) -> Result<(), Error> {
    let micros = taken.timestamp_micros();
    // sockets' owner columns and socket_owners from one walk of /proc, sockets and
    // tcp_info from one dump of the TCP table.
    let dump = crate::tables::moment_dump(tables.iter().map(|t| (t.as_str(), None)));
    let _moment = crate::exec::OneMoment::begin(runner.ctx, dump);
    for table in tables {
        let rel = super::file_path(table, host, taken, &file_id());
        let mut file = open_out(dest, &rel)?;
        // `table` is one of the live tables' names (checked by the caller).
        // A fleet's rows carry their host, which the dataset holds as the partition.
        let all = if crate::fleet::is_fleet(runner.ctx) {
            "* EXCLUDE (host)"
        } else {
            "*"
        };
        let sql = format!("SELECT to_timestamp_micros({micros}) AS taken, {all} FROM {table}");
        runner
            .run(&sql, &BTreeMap::new(), &mut file)
            .await
            .map_err(|e| Error::Usage(format!("snapshot of {table}: {e}")))?;
        commit(dest, &rel, file, written).await?;
    }
    Ok(())
}

/// Writes rows already in hand (what `socket_events` gathered since the last tick) as
/// one file of `table`, each row stamped `taken` as a snapshot's are; nothing when
/// there are none.
pub async fn batches(
    dest: &Dest,
    table: &str,
    host: &str,
    taken: DateTime<Utc>,
    batches: &[RecordBatch],
) -> Result<Written, Error> {
    let mut written = Written::default();
    let Some(first) = batches.first() else {
        return Ok(written);
    };
    let stamp = Field::new(
        "taken",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    );
    let schema = crate::output::first_column(stamp, &first.schema());
    let rel = super::file_path(table, host, taken, &file_id());
    let mut file = open_out(dest, &rel)?;
    {
        let mut sink = file.open(schema.clone())?;
        for batch in batches {
            let taken: ArrayRef = Arc::new(
                TimestampMicrosecondArray::from(vec![taken.timestamp_micros(); batch.num_rows()])
                    .with_timezone("UTC"),
            );
            sink.write(&crate::output::with_first_column(&schema, taken, batch)?)?;
        }
        sink.finish()?;
    }
    commit(dest, &rel, file, &mut written).await?;
    Ok(written)
}
