//! The one path every mode takes: SQL text -> statements -> plans -> batch stream -> sink.

use std::io::Write;

use datafusion::error::Result as DfResult;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use futures::StreamExt;

use crate::catalog::{self, BATCH_ROWS};
use crate::error::Error;
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
    sql: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Error> {
    // DataFusion's default (generic) dialect; one call may hold several statements.
    let statements = DFParser::parse_sql(sql)?;
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
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
