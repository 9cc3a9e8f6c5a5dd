//! One module per table: its spec, declared once, and the code that turns collector
//! output into Arrow columns. Only projected columns are ever built.

pub mod columns;
pub mod sockets;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

use crate::catalog::LiveTable;
use crate::collect::sockets::Source;
use crate::collect::Root;

/// A column's Arrow type, kept to the few the tables use so specs can be `static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Utf8,
    Int32,
    Int64,
    UInt32,
    UInt64,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Utf8 => DataType::Utf8,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::UInt32 => DataType::UInt32,
            Kind::UInt64 => DataType::UInt64,
        }
    }
}

/// One column: its name, type, one-line doc, and how to build it from a snapshot `S`.
pub struct Column<S> {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
    pub build: fn(&S) -> ArrayRef,
}

/// What a table collects in one scan.
pub trait Snapshot {
    fn num_rows(&self) -> usize;
}

/// A table's single declaration: it drives the schema, the docs and the README reference.
pub struct TableSpec<S: 'static> {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column<S>],
}

/// Field metadata key under which a column's doc travels with the schema.
pub const DOC_KEY: &str = "doc";

impl<S: Snapshot> TableSpec<S> {
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| {
                Field::new(c.name, c.kind.data_type(), true)
                    .with_metadata(HashMap::from([(DOC_KEY.to_string(), c.doc.to_string())]))
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Builds the projected columns of `snapshot`; an empty projection (`count(*)`) gives
    /// a batch with a row count and no columns.
    pub fn batch(
        &self,
        schema: SchemaRef,
        projection: &[usize],
        snapshot: &S,
    ) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = projection
            .iter()
            .map(|&i| (self.columns[i].build)(snapshot))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(snapshot.num_rows()));
        RecordBatch::try_new_with_options(schema, columns, &options)
    }

    pub fn info(&self) -> TableInfo {
        TableInfo {
            name: self.name,
            doc: self.doc,
            columns: self
                .columns
                .iter()
                .map(|c| (c.name, c.kind.data_type(), c.doc))
                .collect(),
        }
    }
}

/// A spec without its builders: what docs and the REPL need.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: Vec<(&'static str, DataType, &'static str)>,
}

/// How the live tables reach the OS.
#[derive(Debug, Clone, Default)]
pub struct TablesConfig {
    pub root: Root,
    pub source: Source,
}

/// Every table netsql registers.
pub fn all(config: &TablesConfig) -> Vec<Arc<dyn LiveTable>> {
    vec![Arc::new(sockets::SocketsTable::new(
        config.root.clone(),
        config.source,
    ))]
}

/// Docs of every table, in registration order (README reference, `\d`).
pub fn infos() -> Vec<TableInfo> {
    vec![sockets::SPEC.info()]
}

/// The README's table reference, generated from the specs (a test keeps them in step).
pub fn reference_markdown() -> String {
    let mut text = String::new();
    for info in infos() {
        text.push_str(&format!(
            "### `{}`\n\n{}.\n\n| column | type | meaning |\n|---|---|---|\n",
            info.name, info.doc
        ));
        for (name, data_type, doc) in &info.columns {
            text.push_str(&format!("| `{name}` | {data_type} | {doc} |\n"));
        }
        text.push('\n');
    }
    text
}
