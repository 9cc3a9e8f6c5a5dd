//! Sinks: where a statement's batches go, in the format the user asked for.

mod table;

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::{self, writer::JsonArray, writer::LineDelimited};

/// An output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
}

impl Format {
    pub const ALL: [(&'static str, Format); 5] = [
        ("table", Format::Table),
        ("csv", Format::Csv),
        ("tsv", Format::Tsv),
        ("json", Format::Json),
        ("ndjson", Format::Ndjson),
    ];

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }
}

/// Receives one statement's result batch by batch.
pub trait Sink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError>;
    fn finish(self: Box<Self>) -> Result<(), ArrowError>;
}

/// A sink writing one statement's result in `format` to `out`.
pub fn sink<'a>(format: Format, schema: SchemaRef, out: &'a mut dyn Write) -> Box<dyn Sink + 'a> {
    match format {
        Format::Table => Box::new(table::TableSink::new(schema, out)),
        Format::Csv | Format::Tsv => {
            let delimiter = if format == Format::Tsv { b'\t' } else { b',' };
            let writer = csv::WriterBuilder::new()
                .with_header(true)
                .with_delimiter(delimiter)
                .build(out);
            Box::new(CsvSink {
                writer,
                schema,
                wrote: false,
            })
        }
        Format::Json => Box::new(JsonSink {
            writer: json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(out),
        }),
        Format::Ndjson => Box::new(JsonSink {
            writer: json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(out),
        }),
    }
}

struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    schema: SchemaRef,
    wrote: bool,
}

impl<W: Write> Sink for CsvSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.wrote = true;
        self.writer.write(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        if !self.wrote {
            // An empty result still gets its header line.
            self.writer
                .write(&RecordBatch::new_empty(self.schema.clone()))?;
        }
        self.writer.into_inner().flush().map_err(ArrowError::from)
    }
}

struct JsonSink<W: Write, F: json::writer::JsonFormat> {
    writer: json::Writer<W, F>,
}

impl<W: Write, F: json::writer::JsonFormat> Sink for JsonSink<W, F> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.writer.write(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        self.writer.finish()?;
        let mut out = self.writer.into_inner();
        out.flush().map_err(ArrowError::from)
    }
}
