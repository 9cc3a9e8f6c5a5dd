//! Sinks: where a statement's batches go, in the format the user asked for.

pub mod atomic;
pub mod parquet;
pub mod table;

use std::io::Write;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, StringArray,
};
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::json::{self, writer::JsonArray, writer::LineDelimited};

/// An output format (`--format`, or `-o FILE`'s extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
    Parquet,
    /// The Arrow IPC file format (Feather v2).
    Arrow,
}

impl Format {
    /// The format a file name's extension implies.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "parquet" => Format::Parquet,
            "arrow" | "feather" => Format::Arrow,
            "txt" => Format::Table,
            _ => return None,
        })
    }

    /// Binary formats hold one result and are never written to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Arrow)
    }
}

/// Receives one statement's result batch by batch.
pub trait Sink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError>;
    fn finish(self: Box<Self>) -> Result<(), ArrowError>;
}

/// A sink writing one statement's result in `format` to `out`.
pub fn sink<'a>(
    format: Format,
    schema: SchemaRef,
    out: impl Write + Send + 'a,
) -> Result<Box<dyn Sink + 'a>, ArrowError> {
    if matches!(format, Format::Json | Format::Ndjson | Format::Parquet) {
        // `SELECT a.pid, b.pid`: a JSON object keeps the last value of a name, and
        // Parquet readers refuse such a file.
        let mut seen = std::collections::HashSet::new();
        if let Some(name) = schema
            .fields()
            .iter()
            .map(|f| f.name())
            .find(|n| !seen.insert(*n))
        {
            return Err(ArrowError::InvalidArgumentError(format!(
                "two columns are named {name:?}, which {} cannot hold: name one with AS",
                match format {
                    Format::Parquet => "Parquet",
                    _ => "a JSON object",
                }
            )));
        }
    }
    Ok(match format {
        Format::Table => Box::new(table::TableSink::new(schema, Box::new(out))),
        Format::Csv => Box::new(CsvSink {
            writer: csv::WriterBuilder::new().with_header(true).build(out),
            schema,
            wrote: false,
            tsv: false,
        }),
        // Escaped, never quoted: see `tsv_escaped`.
        Format::Tsv => Box::new(CsvSink {
            writer: csv::WriterBuilder::new()
                .with_header(true)
                .with_delimiter(b'\t')
                .with_quote_style(csv::QuoteStyle::Never)
                .build(out),
            schema,
            wrote: false,
            tsv: true,
        }),
        Format::Json => Box::new(JsonSink {
            writer: json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(out),
            line_end: true,
        }),
        Format::Ndjson => Box::new(JsonSink {
            writer: json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(out),
            line_end: false,
        }),
        Format::Parquet => Box::new(ParquetSink {
            writer: parquet::ParquetOut::new(out, &schema, false)?,
        }),
        Format::Arrow => Box::new(IpcSink {
            writer: FileWriter::try_new(out, &schema)?,
        }),
    })
}

/// A sink for a result that arrives over time (`socket_events`): every batch reaches
/// `out` as soon as it is written, and the table format prints rows as they come
/// instead of laying out the whole result at the end.
pub fn live_sink<'a>(
    format: Format,
    schema: SchemaRef,
    out: &'a mut (dyn Write + Send),
) -> Result<Box<dyn Sink + 'a>, ArrowError> {
    match format {
        Format::Table => Ok(Box::new(table::LiveTableSink::new(schema, out))),
        _ => sink(format, schema, FlushEach(out)),
    }
}

/// Passes every write on and flushes it at once.
struct FlushEach<'a>(&'a mut (dyn Write + Send));

impl Write for FlushEach<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.0.flush()?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

struct ParquetSink<W: Write + Send> {
    writer: parquet::ParquetOut<W>,
}

impl<W: Write + Send> Sink for ParquetSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.writer.write(batch)
    }

    fn finish(self: Box<Self>) -> Result<(), ArrowError> {
        let (mut out, _) = self.writer.finish()?;
        out.flush().map_err(ArrowError::from)
    }
}

struct IpcSink<W: Write> {
    writer: FileWriter<W>,
}

impl<W: Write> Sink for IpcSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.writer.write(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        self.writer.finish()?;
        self.writer.get_mut().flush().map_err(ArrowError::from)
    }
}

struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    schema: SchemaRef,
    wrote: bool,
    tsv: bool,
}

impl<W: Write> CsvSink<W> {
    fn as_text(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let text = nested_as_text(batch)?;
        if self.tsv {
            tsv_escaped(&text)
        } else {
            Ok(text)
        }
    }
}

impl<W: Write> Sink for CsvSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if batch.num_columns() == 0 {
            // DDL and SET return no columns: not even a header line.
            return Ok(());
        }
        self.wrote = true;
        let text = self.as_text(batch)?;
        self.writer.write(&text)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        if !self.wrote && !self.schema.fields().is_empty() {
            // An empty result still gets its header line.
            let empty = self.as_text(&RecordBatch::new_empty(self.schema.clone()))?;
            self.writer.write(&empty)?;
        }
        self.writer.into_inner().flush().map_err(ArrowError::from)
    }
}

/// TSV has no quoting: a tab, newline, carriage return or backslash in a value or a
/// column name is written `\t`, `\n`, `\r`, `\\`, as `jq @tsv` writes them, so that each
/// row is one line of as many fields as the header (for `cut` and `awk`).
fn tsv_escaped(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    fn is_text(t: &DataType) -> bool {
        match t {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
            DataType::Dictionary(_, values) => is_text(values),
            _ => false,
        }
    }
    let text = text_columns(batch, is_text, |column| {
        let column = datafusion::arrow::compute::cast(column, &DataType::Utf8)?;
        let column = column.as_string::<i32>();
        Ok(column.iter().map(|value| value.map(tsv_escape)).collect())
    })?;
    let schema = text.schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_name(tsv_escape(f.name())))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(text.num_rows()));
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        text.columns().to_vec(),
        &options,
    )
}

fn tsv_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\\' => escaped.push_str("\\\\"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// CSV has no lists or structs: such columns are written as JSON (`["www","www-http"]`),
/// which keeps an empty item, a NULL item and an item holding a comma apart (display
/// text, `[www, , ]`, does not); everything else as it is.
fn nested_as_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    // As the JSON formats write them: a struct's NULL field is there, as null.
    let options = json::writer::EncoderOptions::default().with_explicit_nulls(true);
    text_columns(batch, DataType::is_nested, |column| {
        let field = Arc::new(Field::new("", column.data_type().clone(), true));
        let mut encoder = json::writer::make_encoder(&field, column.as_ref(), &options)?;
        let mut text = Vec::new();
        Ok((0..column.len())
            .map(|i| {
                column.is_valid(i).then(|| {
                    text.clear();
                    encoder.encode(i, &mut text);
                    String::from_utf8_lossy(&text).into_owned()
                })
            })
            .collect())
    })
}

/// `batch` with each column whose type `pick` selects replaced by the text `to_text`
/// makes of it; a batch with no such column is returned as it is.
pub(crate) fn text_columns(
    batch: &RecordBatch,
    pick: impl Fn(&DataType) -> bool,
    to_text: impl Fn(&ArrayRef) -> Result<StringArray, ArrowError>,
) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| pick(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if pick(field.data_type()) {
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(to_text(column)?));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
}

/// JSON: each statement's result is one array on a line of its own, so one result is a
/// JSON document and several are JSON lines of arrays (`jq` reads either, Python's
/// `json.loads` each line). NDJSON: one object a line, whatever the statement.
struct JsonSink<W: Write, F: json::writer::JsonFormat> {
    writer: json::Writer<W, F>,
    /// Whether the result ends with a newline of its own (the array's).
    line_end: bool,
}

impl<W: Write, F: json::writer::JsonFormat> Sink for JsonSink<W, F> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.writer.write(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        self.writer.finish()?;
        let mut out = self.writer.into_inner();
        if self.line_end {
            out.write_all(b"\n")?;
        }
        out.flush().map_err(ArrowError::from)
    }
}

/// Rows with one more column first, the same value in every row (a snapshot's `taken`,
/// a fleet finding's `host`): the schema, built once from `field` and `schema`.
pub fn first_column(field: Field, schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        std::iter::once(Arc::new(field))
            .chain(schema.fields().iter().cloned())
            .collect::<Vec<_>>(),
    ))
}

/// `batch` under `schema` (made by [`first_column`]), `value` as its first column.
pub fn with_first_column(
    schema: &SchemaRef,
    value: ArrayRef,
    batch: &RecordBatch,
) -> Result<RecordBatch, ArrowError> {
    let columns = std::iter::once(value).chain(batch.columns().iter().cloned());
    RecordBatch::try_new(schema.clone(), columns.collect())
}
