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

/// A result as the REPL shows it: at most `max_rows` rows, as a table or (`expanded`)
/// one column per line, with a footer counting all rows.
pub fn render(
    schema: SchemaRef,
    batches: &[RecordBatch],
    max_rows: usize,
    expanded: bool,
) -> Result<String, ArrowError> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut shown = Vec::new();
    let mut left = max_rows;
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        shown.push(batch.slice(0, take));
        left -= take;
    }
    let shown_rows = total.min(max_rows);
    let mut text = String::new();
    if expanded {
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let options = FormatOptions::default().with_null("");
        let mut row_number = 0;
        for batch in &shown {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                row_number += 1;
                text.push_str(&format!("-[ RECORD {row_number} ]\n"));
                for (name, formatter) in names.iter().zip(&formatters) {
                    text.push_str(&format!("{name:<width$} | {}\n", formatter.value(row)));
                }
            }
        }
    } else if !schema.fields().is_empty() {
        text.push_str(&pretty_format_batches_with_schema(schema, &shown)?.to_string());
        text.push('\n');
    }
    let noun = if total == 1 { "row" } else { "rows" };
    if shown_rows < total {
        text.push_str(&format!("{total} {noun} ({shown_rows} shown)\n"));
    } else {
        text.push_str(&format!("({total} {noun})\n"));
    }
    Ok(text)
}
