//! Every Parquet file netsql writes (`-o x.parquet`, `--format parquet`, snapshots): zstd,
//! column statistics, and types every reader takes. Timestamps are stored as microseconds
//! adjusted to UTC: DataFusion's `now()` is nanoseconds without a zone, which Parquet
//! writes as INT64 TIMESTAMP(NANOS, isAdjustedToUTC=false), and Spark refuses the whole
//! file. A dataset (`signed`) also stores unsigned 64-bit columns as signed ones: Spark
//! and Trino read UINT64 as decimal(20,0); every value netsql writes (inodes, queues,
//! byte counts) is below 2^63, and one that is not is written NULL.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cast::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

/// The type a column of `data_type` is stored as.
fn stored(data_type: &DataType, signed: bool) -> DataType {
    match data_type {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::UInt64 if signed => DataType::Int64,
        other => other.clone(),
    }
}

/// A timestamp column as UTC microseconds. A column without a zone holds UTC wall-clock
/// values (`now()`, netsql's own), and one with a zone holds instants since the epoch,
/// so neither needs a conversion per value: Arrow's cast to a zone would take each
/// value as local time in that zone, a time-zone lookup per row.
fn utc_micros(
    column: &ArrayRef,
    unit: &TimeUnit,
    zone: &Option<Arc<str>>,
    options: &CastOptions,
) -> Result<ArrayRef, ArrowError> {
    let micros = match unit {
        TimeUnit::Microsecond => column.clone(),
        _ => cast_with_options(
            column,
            &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            options,
        )?,
    };
    let micros = micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| ArrowError::CastError("timestamp column of another type".into()))?;
    Ok(Arc::new(micros.clone().with_timezone("UTC")))
}

/// A Parquet writer that converts each batch to the stored types first.
pub struct ParquetOut<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
}

fn parquet_error(e: datafusion::parquet::errors::ParquetError) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

impl<W: Write + Send> ParquetOut<W> {
    pub fn new(out: W, schema: &SchemaRef, signed: bool) -> Result<Self, ArrowError> {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_data_type(stored(f.data_type(), signed))
            })
            .collect();
        let stored_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(parquet_error)?,
            ))
            .set_statistics_enabled(EnabledStatistics::Page);
        // Integers plain (zstd still finds their repeats): a dictionary of inodes,
        // cookies or ports, nearly one entry per row, is given up part way, after every
        // value was hashed. At 100k sockets a snapshot's sockets file came out a third
        // smaller and its CPU ~10% less.
        let properties = stored_schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_integer())
            .fold(properties, |p, f| {
                p.set_column_dictionary_enabled(f.name().as_str().into(), false)
            })
            .build();
        Ok(ParquetOut {
            writer: ArrowWriter::try_new(out, stored_schema.clone(), Some(properties))
                .map_err(parquet_error)?,
            schema: stored_schema,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        // NULL where a value does not fit (a u64 above i64::MAX), not an error.
        let options = CastOptions {
            safe: true,
            ..CastOptions::default()
        };
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(
                |(column, field)| match (column.data_type(), field.data_type()) {
                    (from, to) if from == to => Ok(column.clone()),
                    (DataType::Timestamp(unit, zone), DataType::Timestamp(_, Some(_))) => {
                        utc_micros(column, unit, zone, &options)
                    }
                    (_, to) => cast_with_options(column, to, &options),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer.write(&batch).map_err(parquet_error)
    }

    /// Writes the footer; the bytes written so far.
    pub fn finish(self) -> Result<(W, u64), ArrowError> {
        let writer = self.writer;
        let bytes = writer.bytes_written() as u64;
        let out = writer.into_inner().map_err(parquet_error)?;
        Ok((out, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{TimestampNanosecondArray, UInt64Array};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// `batch` written as a dataset file (unsigned columns signed), opened to read back.
    fn written(batch: &RecordBatch) -> ParquetRecordBatchReaderBuilder<std::fs::File> {
        let mut out =
            ParquetOut::new(tempfile::tempfile().unwrap(), &batch.schema(), true).unwrap();
        out.write(batch).unwrap();
        let (file, _) = out.finish().unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file).unwrap()
    }

    /// Column `i` of a batch read back, as the microsecond timestamps it must be.
    fn micros(batch: &RecordBatch, i: usize) -> &TimestampMicrosecondArray {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("stored as microseconds")
    }

    #[test]
    fn timestamps_become_utc_micros_and_u64_signed() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "taken",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("inode", DataType::UInt64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![
                    1_700_000_000_123_456_789,
                ])),
                Arc::new(UInt64Array::from(vec![u64::MAX])),
            ],
        )
        .unwrap();
        let reader = written(&batch);
        let read = reader.schema().clone();
        assert_eq!(
            read.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(read.field(1).data_type(), &DataType::Int64);
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        let taken = micros(&batch, 0);
        assert_eq!(taken.value(0), 1_700_000_000_123_456);
        assert!(batch.column(1).is_null(0), "too big for i64: NULL");
    }

    /// A zoned timestamp is an instant: stored as the same instant, whatever its zone;
    /// integers are stored plain and text with a dictionary.
    #[test]
    fn zoned_timestamps_keep_their_instant_and_integers_go_plain() {
        use datafusion::arrow::array::StringArray;
        use datafusion::parquet::basic::Encoding;
        let zoned = DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("at", zoned, true),
            Field::new("inode", DataType::UInt64, true),
            Field::new("state", DataType::Utf8, true),
        ]));
        let rows = 1000;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(
                    datafusion::arrow::array::TimestampMillisecondArray::from(vec![
                        1_700_000_000_123;
                        rows
                    ])
                    .with_timezone("+02:00"),
                ),
                Arc::new(UInt64Array::from_iter_values(0..rows as u64)),
                Arc::new(StringArray::from(vec!["ESTABLISHED"; rows])),
            ],
        )
        .unwrap();
        let reader = written(&batch);
        let chunk = reader.metadata().row_group(0);
        let dictionary = |i: usize| {
            chunk
                .column(i)
                .encodings()
                .any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY))
        };
        assert!(!dictionary(1), "inode: plain");
        assert!(dictionary(2), "state: a dictionary");
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        let at = micros(&batch, 0);
        assert_eq!(at.value(0), 1_700_000_000_123_000);
        assert_eq!(at.timezone(), Some("UTC"));
    }
}
