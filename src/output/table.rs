//! The terminal table: aligned columns, NULL as empty, a row count footer as psql prints.

use std::io::Write;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

use super::Sink;

pub struct TableSink<'a> {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    out: Box<dyn Write + Send + 'a>,
    max_rows: usize,
    expanded: bool,
}

impl<'a> TableSink<'a> {
    pub fn new(schema: SchemaRef, out: Box<dyn Write + Send + 'a>) -> Self {
        TableSink {
            schema,
            batches: Vec::new(),
            out,
            max_rows: usize::MAX,
            expanded: false,
        }
    }

    /// As the REPL shows results: at most `max_rows`, or one column per line.
    pub fn layout(mut self, max_rows: usize, expanded: bool) -> Self {
        self.max_rows = max_rows;
        self.expanded = expanded;
        self
    }
}

impl Sink for TableSink<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        // Column widths depend on every row, so the table is laid out at the end.
        self.batches.push(batch.clone());
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ArrowError> {
        if self.schema.fields().is_empty() {
            // DDL and SET return no columns: nothing to show.
            return Ok(());
        }
        let text = render(
            self.schema.clone(),
            &self.batches,
            self.max_rows,
            self.expanded,
        )?;
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

/// Rows as they arrive, aligned under a header printed once: column widths are fixed
/// by the header and the first batch (a later, wider value pushes its line along rather
/// than re-laying out what is already on the screen), NULL as empty, control characters
/// escaped, the row count at the end.
pub struct LiveTableSink<'a> {
    schema: SchemaRef,
    out: &'a mut (dyn Write + Send),
    widths: Option<Vec<usize>>,
    rows: usize,
}

impl<'a> LiveTableSink<'a> {
    pub fn new(schema: SchemaRef, out: &'a mut (dyn Write + Send)) -> Self {
        LiveTableSink {
            schema,
            out,
            widths: None,
            rows: 0,
        }
    }
}

impl Sink for LiveTableSink<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = escape_controls(batch, false)?;
        let options = FormatOptions::default().with_null("");
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let lines: Vec<Vec<String>> = (0..batch.num_rows())
            .map(|row| {
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect()
            })
            .collect();
        let mut text = String::new();
        let widths = match &self.widths {
            Some(widths) => widths.clone(),
            None => {
                let schema = escaped_names(&self.schema);
                let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
                let widths: Vec<usize> = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        lines
                            .iter()
                            .map(|l| l[i].chars().count())
                            .chain([name.chars().count()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let header: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                push_line(&mut text, &header, &widths);
                self.widths = Some(widths.clone());
                widths
            }
        };
        for line in &lines {
            push_line(&mut text, line, &widths);
        }
        self.rows += lines.len();
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ArrowError> {
        let noun = if self.rows == 1 { "row" } else { "rows" };
        writeln!(self.out, "({} {noun})", self.rows)?;
        self.out.flush()?;
        Ok(())
    }
}

fn push_line(text: &mut String, cells: &[String], widths: &[usize]) {
    let last = cells.len().saturating_sub(1);
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i == last {
            text.push_str(cell);
        } else {
            let pad = width.saturating_sub(cell.chars().count());
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', pad + 2));
        }
    }
    text.push('\n');
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
    let lines = is_plan(&schema);
    let mut shown = Vec::new();
    let mut left = max_rows;
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        shown.push(escape_controls(&batch.slice(0, take), lines)?);
        left -= take;
    }
    let shown_rows = total.min(max_rows);
    let schema = escaped_names(&schema);
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

/// Text for a terminal: control characters (C0, DEL, C1) as visible escapes. Any process
/// can name itself `\x1b[2J` or bind such a unix path; on a terminal that must show, not
/// act. CSV and JSON keep the exact bytes.
pub fn escape_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control()) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether a result is EXPLAIN's (`plan_type`, `plan`): its plans are shown a line per
/// line of the plan, not as one line with `\n`s.
fn is_plan(schema: &SchemaRef) -> bool {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names == ["plan_type", "plan"]
}

/// [`escape_text`] line by line: the line breaks kept, every other control character
/// escaped (an error message for stderr, which may quote a process's name).
pub fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(escape_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The batch with every column that can hold text (strings, and lists, structs, maps
/// or dictionaries of them, shown as text) passed through [`escape_text`], line by line
/// when `lines` (the line breaks kept, every other control character escaped).
fn escape_controls(batch: &RecordBatch, lines: bool) -> Result<RecordBatch, ArrowError> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let holds_text = |t: &DataType| {
        !(t.is_primitive()
            || matches!(
                t,
                DataType::Null
                    | DataType::Boolean
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
                    | DataType::FixedSizeBinary(_)
            ))
    };
    let escape = |v: &str| match lines {
        true => escape_lines(v),
        false => escape_text(v).into_owned(),
    };
    super::text_columns(batch, holds_text, |column| {
        if matches!(
            column.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            let text = cast(column, &DataType::Utf8)?;
            return Ok(text
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(escape))
                .collect());
        }
        let options = FormatOptions::default().with_null("");
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        Ok((0..column.len())
            .map(|row| match column.is_null(row) {
                true => None,
                false => Some(escape(&formatter.value(row).to_string())),
            })
            .collect())
    })
}

/// `schema` with its column names as a terminal shows them: control characters escaped.
fn escaped_names(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_name(escape_text(f.name())))
        .collect();
    std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::escape_text;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(escape_text("plain"), "plain");
        assert_eq!(escape_text("\x1b[2Jgone"), "\\x1b[2Jgone");
        assert_eq!(escape_text("a\nb\tc\u{7f}\u{9b}"), "a\\nb\\tc\\x7f\\x9b");
    }
}
