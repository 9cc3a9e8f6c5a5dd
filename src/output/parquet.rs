//! Every Parquet file netsql writes (`-o x.parquet`, `--format parquet`, snapshots): zstd,
//! column statistics, and types every reader takes. Timestamps are stored as microseconds
//! adjusted to UTC: DataFusion's `now()` is nanoseconds without a zone, which Parquet
//! writes as INT64 TIMESTAMP(NANOS, isAdjustedToUTC=false), and Spark refuses the whole
//! file. A dataset (`signed`) also stores unsigned 64-bit columns as signed ones: Spark
//! and Trino read UINT64 as decimal(20,0); every value netsql writes (inodes, queues,
//! byte counts) is below 2^63, and one that is not is written NULL.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
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
            .set_statistics_enabled(EnabledStatistics::Page)
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
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    cast_with_options(column, field.data_type(), &options)
                }
            })
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
        let mut out = ParquetOut::new(tempfile::tempfile().unwrap(), &schema, true).unwrap();
        out.write(&batch).unwrap();
        let (file, _) = out.finish().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let read = reader.schema().clone();
        assert_eq!(
            read.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(read.field(1).data_type(), &DataType::Int64);
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        let taken = batch
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(taken.value(0), 1_700_000_000_123_456);
        assert!(batch.column(1).is_null(0), "too big for i64: NULL");
    }
}
