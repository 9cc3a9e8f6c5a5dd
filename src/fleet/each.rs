//! Questions written for one host, asked of each host of a fleet by itself: saved queries
//! (`-q`, the REPL's `\run`) and audits. Such a query joins and groups on pid, inode and
//! namespace, which every host has: run over the whole fleet as one query, a join on pid
//! alone would pair one host's sockets with every host's processes. Host by host (the
//! hosts at once), each row is its own host's, and says so in a first `host` column.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::sql::parser::Statement;

use crate::error::{Error, Exit};
use crate::exec::{Capture, Captured, Destination, Runner};
use crate::output;

/// Runs `statements` in order, each on every host by itself, and writes each statement's
/// rows host after host (in `--connect`'s order) as one result. A host where a statement
/// fails costs one stderr line naming it (exit 2) and the others' rows are written; with
/// `--all-hosts` it fails the run. Outside a fleet, the statements run as they are.
pub async fn run(
    runner: &Runner<'_>,
    statements: Vec<Statement>,
    params: &BTreeMap<String, String>,
    to: &mut dyn Destination,
) -> Result<Exit, Error> {
    let sessions = super::sessions(runner.ctx)?;
    let hosts: Vec<(&str, Runner<'_>)> = sessions
        .iter()
        .filter_map(|(host, ctx)| Some((host.as_deref()?, runner.on(ctx))))
        .collect();
    if hosts.is_empty() {
        runner.run_statements(statements, params, to).await?;
        return Ok(Exit::Success);
    }
    let all_hosts = super::all_hosts(runner.ctx);
    let mut exit = Exit::Success;
    for statement in statements {
        let answers = futures::future::join_all(
            hosts
                .iter()
                .map(|(_, runner)| one(runner, statement.clone(), params)),
        )
        .await;
        let mut found = Vec::new();
        for ((host, _), answer) in hosts.iter().zip(answers) {
            match answer? {
                Ok(rows) => found.push(hosted(host, rows)?),
                Err(why) if all_hosts => {
                    return Err(Error::Usage(format!("{host}: {why} (--all-hosts)")))
                }
                Err(why) => {
                    crate::error::report(&format!("{host}: {why}"));
                    exit = Exit::Error;
                }
            }
        }
        let Some((schema, _)) = found.first() else {
            continue;
        };
        let mut sink = to.open(schema.clone())?;
        for batch in found.iter().flat_map(|(_, batches)| batches) {
            sink.write(batch)?;
        }
        sink.finish()?;
    }
    Ok(exit)
}

/// One statement on one host, whole: an error planning it is the statement's (the
/// `Err`: the same SQL fails to plan on every host); one while it runs is that host's
/// (the inner `Err`, one line).
pub async fn one(
    runner: &Runner<'_>,
    statement: Statement,
    params: &BTreeMap<String, String>,
) -> Result<Result<Captured, String>, Error> {
    let plan = runner.plan(statement, params).await?;
    let mut capture = Capture::default();
    match runner.send(plan, &mut capture).await {
        Ok(()) => Ok(Ok(capture.into_one()?)),
        Err(err) => Ok(Err(err.to_string())),
    }
}

/// One host's rows: its name first, then the query's columns (unless the query selects
/// `host` itself).
pub fn hosted(host: &str, found: Captured) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
    const HOST: &str = super::scan::HOST_COLUMN;
    if found.schema.column_with_name(HOST).is_some() {
        return Ok((found.schema, found.batches));
    }
    let schema = output::first_column(Field::new(HOST, DataType::Utf8, false), &found.schema);
    let batches = found
        .batches
        .iter()
        .map(|batch| {
            let hosts = Arc::new(StringArray::from(vec![host; batch.num_rows()]));
            output::with_first_column(&schema, hosts, batch)
        })
        .collect::<Result<_, _>>()?;
    Ok((schema, batches))
}
