//! The terminal table: aligned columns, NULL as empty, a row count footer as psql prints.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

use super::Sink;

pub struct TableSink<'a> {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    out: &'a mut (dyn Write + Send),
}

impl<'a> TableSink<'a> {
    pub fn new(schema: SchemaRef, out: &'a mut (dyn Write + Send)) -> Self {
        TableSink {
            schema,
            batches: Vec::new(),
            out,
        }
    }
}

impl Sink for TableSink<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        // Column widths depend on every row, so the table is laid out at the end.
        self.batches.push(batch.clone());
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ArrowError> {
        let rows: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        if self.schema.fields().is_empty() {
            // DDL and SET return no columns: nothing to show.
            return Ok(());
        }
        let table = pretty_format_batches_with_schema(self.schema.clone(), &self.batches)?;
        let noun = if rows == 1 { "row" } else { "rows" };
        writeln!(self.out, "{table}\n({rows} {noun})")?;
        self.out.flush()?;
        Ok(())
    }
}
