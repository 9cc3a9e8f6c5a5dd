//! Every `netsql serve` is a worker of fleet queries: beside Flight SQL, on the same
//! port, token and TLS, it runs the stages a client sends it. A worker runs plans from
//! the network, so it runs only its own live scans and DataFusion's operators over them:
//! a plan that reads anything else (a file, a listing table, another worker) or writes
//! anything is refused before it runs.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext,
};

use super::codec::{Local, ScanCodec};
use super::scan::HostScan;
use crate::collect::Root;

/// The worker a server runs: its tables, read under its name, within `--memory-limit`.
pub fn worker(local: Local) -> Result<Worker> {
    let root = local.tables.root.clone();
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = local.tables.memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    let version = identity(&local.name);
    let name = local.name.clone();
    let codec = Arc::new(ScanCodec::worker(local));
    Ok(
        Worker::from_session_builder(move |ctx: WorkerQueryContext| {
            let codec = codec.clone();
            let root = root.clone();
            let known = known_as(&ctx.headers, &name);
            async move {
                known?;
                Ok(session(ctx, codec, &root, true))
            }
        })
        .with_runtime_env(runtime.build_arc()?)
        .with_version(version),
    )
}

/// The header a client's requests carry: the `--name` this server answered its probe
/// with.
pub const KNOWN_AS: &str = "x-netsql-host";

/// Refuses a stage for a client that knows this server by another name: it restarted
/// under a new `--name` since the client's probe (a REPL's session lives long), and its
/// rows, filled with the new name, would merge with another host's.
fn known_as(headers: &http::HeaderMap, name: &str) -> Result<()> {
    match headers.get(KNOWN_AS) {
        Some(known) if known.as_bytes() != name.as_bytes() => Err(DataFusionError::Plan(format!(
            "this server is now named {name:?}, not {:?} as when the client connected: \
             connect again",
            String::from_utf8_lossy(known.as_bytes())
        ))),
        _ => Ok(()),
    }
}

/// What a worker answers a client's probe: `netsql/VERSION/NAME`, so the client knows
/// each host's name and that it runs the same netsql.
pub fn identity(name: &str) -> String {
    format!("netsql/{}/{name}", env!("CARGO_PKG_VERSION"))
}

/// A probe's answer as (version, name), if it is a netsql server's.
pub fn parse_identity(answer: &str) -> Option<(&str, &str)> {
    answer.strip_prefix("netsql/")?.split_once('/')
}

/// A stage's session: DataFusion's functions and netsql's, netsql's codec, and on a
/// server, the check of what the plan reads.
pub fn session(
    ctx: WorkerQueryContext,
    codec: Arc<ScanCodec>,
    root: &Root,
    checked: bool,
) -> datafusion::execution::SessionState {
    let mut builder = ctx.builder.with_distributed_user_codec_arc(codec);
    if checked {
        builder = builder.with_distributed_worker_plan_rewrite_handler(check);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    crate::functions::register(&ctx, root);
    ctx.state()
}

/// Refuses a plan whose data comes from anything but this server's live scans (or
/// constants), or that writes anything.
fn check(ev: WorkerPlanRewriteEvent<'_>) -> Result<WorkerPlanRewriteEventResponse> {
    ev.plan.apply(|node| {
        if node.name() == "DataSinkExec" {
            return Err(refused(node.as_ref(), "it writes"));
        }
        if node.children().is_empty() && !readable(node.as_ref()) {
            return Err(refused(
                node.as_ref(),
                "a worker reads only its own live tables",
            ));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(WorkerPlanRewriteEventResponse::new(ev.plan))
}

/// Leaves a worker runs: its scans, and rows the plan itself carries.
fn readable(node: &dyn ExecutionPlan) -> bool {
    if node.downcast_ref::<HostScan>().is_some()
        || node.downcast_ref::<EmptyExec>().is_some()
        || node.downcast_ref::<PlaceholderRowExec>().is_some()
    {
        return true;
    }
    node.downcast_ref::<DataSourceExec>().is_some_and(|d| {
        d.data_source()
            .downcast_ref::<MemorySourceConfig>()
            .is_some()
    })
}

fn refused(node: &dyn ExecutionPlan, why: &str) -> DataFusionError {
    let shown = datafusion::physical_plan::displayable(node)
        .one_line()
        .to_string();
    DataFusionError::Plan(format!(
        "permission denied: this netsql server refuses a plan holding {}: {why}",
        shown.trim()
    ))
}
