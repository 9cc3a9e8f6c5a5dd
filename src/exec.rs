//! The one path every mode takes: SQL text -> statements -> plans -> batch stream -> sink.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::LogicalPlan;

use datafusion::error::Result as DfResult;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use futures::StreamExt;

use crate::catalog::{self, BATCH_ROWS};
use crate::collect::Root;
use crate::error::Error;
use crate::functions;
use crate::output::{self, Format};
use crate::tables::{self, TablesConfig};

/// A session with every live table registered. Nothing is collected until a query runs.
pub fn context(config: &TablesConfig) -> DfResult<SessionContext> {
    let session = SessionConfig::new()
        .with_information_schema(true)
        .with_batch_size(BATCH_ROWS);
    let ctx = SessionContext::new_with_config(session);
    catalog::register(&ctx, tables::all(config))?;
    Ok(ctx)
}

/// Runs every statement in `sql`, in order, writing each result to `out` in `format`.
pub async fn run(
    ctx: &SessionContext,
    root: &Root,
    sql: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Error> {
    // DataFusion's default (generic) dialect; one call may hold several statements.
    let statements = DFParser::parse_sql(sql)?;
    for statement in statements {
        // Fresh functions per statement: their caches last one query.
        functions::register(ctx, root);
        let plan = ctx.state().statement_to_plan(statement).await?;
        if let LogicalPlan::DescribeTable(describe) = &plan {
            let batch = describe_with_docs(&describe.schema)?;
            let mut sink = output::sink(format, batch.schema(), out);
            sink.write(&batch)?;
            sink.finish()?;
            continue;
        }
        let frame = ctx.execute_logical_plan(plan).await?;
        let mut stream = frame.execute_stream().await?;
        let mut sink = output::sink(format, stream.schema(), out);
        while let Some(batch) = stream.next().await {
            sink.write(&batch?)?;
        }
        sink.finish()?;
    }
    Ok(())
}

/// `DESCRIBE table` as DataFusion answers it, plus each column's one-line doc from the
/// table spec (carried in the field metadata; NULL for tables without docs).
fn describe_with_docs(schema: &Schema) -> Result<RecordBatch, Error> {
    let fields = schema.fields();
    let names: StringArray = fields.iter().map(|f| Some(f.name().as_str())).collect();
    let types: StringArray = fields
        .iter()
        .map(|f| Some(f.data_type().to_string()))
        .collect();
    let nullable: StringArray = fields
        .iter()
        .map(|f| Some(if f.is_nullable() { "YES" } else { "NO" }))
        .collect();
    let docs: StringArray = fields
        .iter()
        .map(|f| f.metadata().get(tables::DOC_KEY).map(String::as_str))
        .collect();
    let out = Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("is_nullable", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(names),
        Arc::new(types),
        Arc::new(nullable),
        Arc::new(docs),
    ];
    Ok(RecordBatch::try_new(Arc::new(out), columns)?)
}
