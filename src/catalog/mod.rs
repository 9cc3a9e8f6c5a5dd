//! The generic live table: a DataFusion `TableProvider` over any [`LiveTable`].
//!
//! Nothing is collected at registration or planning (`scan` runs even for a plain
//! `EXPLAIN`): collection happens when the plan's stream is first polled, on a blocking
//! thread, and
//! builds only the projected columns, one batch of at most [`BATCH_ROWS`]
//! rows at a time as the query pulls them. This module knows DataFusion and nothing of the OS.

use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::sanity_checker::{
    check_finiteness_requirements, SanityCheckPlan,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

/// The most rows one output batch holds.
pub const BATCH_ROWS: usize = 8192;

/// What one scan asks a table for.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Indices into the table's schema, in output order; empty for `count(*)`.
    pub projection: Vec<usize>,
    /// The projected schema the returned batch must have.
    pub schema: SchemaRef,
    /// The table's whole schema (filters may name columns the projection leaves out).
    pub table_schema: SchemaRef,
    /// Filters DataFusion offered; those for which [`LiveTable::filter_pushdown`] said
    /// `Exact` must be applied by the table, the rest are hints.
    pub filters: Vec<Expr>,
    /// At most this many rows are needed (only set when every filter is `Exact`).
    pub limit: Option<usize>,
    /// The session's configuration: its extensions carry what scans of one statement
    /// share (the snapshot's one walk of every process's descriptors).
    pub session: SessionConfig,
}

/// netsql's own session settings, `SET netsql.<name> = ...` (and `SHOW`, which needs the
/// prefixed key: DataFusion's `extensions_options!` would list the bare name).
#[derive(Clone)]
pub struct Settings {
    /// Network namespaces the per-namespace tables read: '' (the current one), 'all',
    /// or a comma list of `ip netns` names, /run/netns paths, pids, inodes.
    pub netns: String,
    /// Checks a `netns` value when it is set, so a typo fails at the SET.
    check_netns: CheckNetns,
}

/// Checks a value of `netsql.netns`: the namespaces it names exist.
pub type CheckNetns = Arc<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

impl Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("netns", &self.netns)
            .finish_non_exhaustive()
    }
}

const NETNS_KEY: &str = "netns";

impl Settings {
    /// The session's `netsql.netns` ('' when it has no netsql settings).
    pub fn of(session: &SessionConfig) -> &str {
        session
            .options()
            .extensions
            .get::<Settings>()
            .map_or("", |s| s.netns.as_str())
    }

    pub fn new(netns: &str, check_netns: CheckNetns) -> Self {
        Settings {
            netns: netns.to_string(),
            check_netns,
        }
    }
}

impl Scan {
    /// Which network namespaces per-namespace tables read: the session's `netsql.netns`.
    pub fn netns(&self) -> &str {
        Settings::of(&self.session)
    }
}

impl datafusion::common::config::ConfigExtension for Settings {
    const PREFIX: &'static str = "netsql";
}

impl datafusion::common::config::ExtensionOptions for Settings {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn datafusion::common::config::ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            NETNS_KEY => {
                (self.check_netns)(value)
                    .map_err(|e| DataFusionError::Configuration(format!("netsql.netns: {e}")))?;
                self.netns = value.to_string();
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "no setting netsql.{key} (there is netsql.{NETNS_KEY})"
            ))),
        }
    }

    fn entries(&self) -> Vec<datafusion::common::config::ConfigEntry> {
        vec![datafusion::common::config::ConfigEntry {
            key: format!("netsql.{NETNS_KEY}"),
            value: Some(self.netns.clone()),
            description: "Network namespaces per-namespace tables read: '' (current), 'all', or a list of names, paths, pids, inodes",
        }]
    }
}

/// Rows a scan collected, turned into Arrow a batch at a time as the query pulls them.
pub trait Collected: Send {
    fn num_rows(&self) -> usize;
    /// The batch of rows `rows` (at most [`BATCH_ROWS`] of them).
    fn batch(&self, rows: Range<usize>) -> Result<RecordBatch>;
}

/// A batch built all at once is served in zero-copy slices.
impl Collected for RecordBatch {
    fn num_rows(&self) -> usize {
        RecordBatch::num_rows(self)
    }

    fn batch(&self, rows: Range<usize>) -> Result<RecordBatch> {
        Ok(self.slice(rows.start, rows.len()))
    }
}

/// A table whose rows are read from the live system each time it is scanned.
pub trait LiveTable: Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn schema(&self) -> SchemaRef;
    /// Collects the rows (building the projected columns may wait for [`Collected::batch`]).
    /// Blocking I/O is fine: this runs on a blocking thread at execution time.
    fn collect(&self, scan: &Scan) -> Result<Box<dyn Collected>>;
    /// Collects the rows in parts, handing each to `part` as soon as it is read (so the
    /// query builds and writes one while the next is read) until `part` answers `false`
    /// (the query wants no more). By default, one part: [`LiveTable::collect`]'s.
    fn collect_parts(
        &self,
        scan: &Scan,
        part: &mut dyn FnMut(Box<dyn Collected>) -> bool,
    ) -> Result<()> {
        part(self.collect(scan)?);
        Ok(())
    }
    /// How far the table can apply `filter` itself.
    fn filter_pushdown(&self, _filter: &Expr) -> TableProviderFilterPushDown {
        TableProviderFilterPushDown::Unsupported
    }
    /// What a scan asks of the OS beyond the bare rows, in the table's words, shown by
    /// EXPLAIN; `None` for a table that has nothing of the kind.
    fn kernel_request(&self, _scan: &Scan) -> Option<String> {
        None
    }
    /// For a table whose rows arrive over time (`socket_events`): the stream of its
    /// batches, used instead of [`LiveTable::collect`]. Called when the query executes.
    fn stream(&self, _scan: &Scan) -> Option<SendableRecordBatchStream> {
        None
    }
    /// Whether the table's rows never end by themselves (a stream of events, ended by
    /// LIMIT, `--for` or Ctrl-C): its scans say so to DataFusion, so rows flow through
    /// filters and joins as they come, and the output is written as it arrives.
    fn unbounded(&self) -> bool {
        false
    }
}

/// Adapts a [`LiveTable`] to DataFusion.
#[derive(Debug)]
pub struct LiveProvider {
    table: Arc<dyn LiveTable>,
}

impl LiveProvider {
    pub fn new(table: Arc<dyn LiveTable>) -> Self {
        LiveProvider { table }
    }
}

/// The live table `provider` reads, if it is one: a table of the same name made by a
/// statement (`CREATE TABLE s.sockets AS ...`) or read from history is not.
pub fn live_table(provider: &dyn TableProvider) -> Option<&'static str> {
    live(provider).map(|table| table.name())
}

/// The live stream `provider` reads (`socket_events`), if it is one.
pub fn live_stream(provider: &dyn TableProvider) -> Option<&'static str> {
    live(provider)
        .filter(|table| table.unbounded())
        .map(|table| table.name())
}

fn live(provider: &dyn TableProvider) -> Option<&dyn LiveTable> {
    let any: &dyn std::any::Any = provider;
    any.downcast_ref::<LiveProvider>().map(|p| p.table.as_ref())
}

#[async_trait]
impl TableProvider for LiveProvider {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| self.table.filter_pushdown(f))
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.table.schema().fields().len()).collect(),
        };
        live_scan(
            self.table.clone(),
            projection,
            filters.to_vec(),
            limit,
            state.config().clone(),
        )
    }
}

/// The plan that reads `projection` of `table` (indices into its schema) when it runs:
/// what a local query plans, and what a fleet worker runs for the scan it was sent.
pub fn live_scan(
    table: Arc<dyn LiveTable>,
    projection: Vec<usize>,
    filters: Vec<Expr>,
    limit: Option<usize>,
    session: SessionConfig,
) -> Result<Arc<dyn ExecutionPlan>> {
    let full = table.schema();
    let schema = Arc::new(full.project(&projection)?);
    let partition = LivePartition {
        table: table.clone(),
        scan: Arc::new(Scan {
            projection,
            schema: schema.clone(),
            table_schema: full,
            filters,
            limit,
            session,
        }),
    };
    let request = table.kernel_request(&partition.scan);
    Ok(Arc::new(LiveScan::new(
        Arc::new(partition),
        table.name(),
        request,
        table.unbounded(),
        limit,
    )?))
}

/// A live table's scan: DataFusion's streaming scan of its one partition, which says in
/// EXPLAIN what it asks the kernel for, and whether it ends by itself.
#[derive(Debug)]
pub struct LiveScan {
    inner: Arc<StreamingTableExec>,
    partition: Arc<LivePartition>,
    table: &'static str,
    /// What the scan asks of the OS, in the table's words (EXPLAIN).
    request: Option<String>,
}

impl LiveScan {
    fn new(
        partition: Arc<LivePartition>,
        table: &'static str,
        request: Option<String>,
        unbounded: bool,
        limit: Option<usize>,
    ) -> Result<Self> {
        let schema = partition.scan.schema.clone();
        // The partition already projects, so the exec gets no projection of its own.
        let inner = StreamingTableExec::try_new(
            schema,
            vec![partition.clone() as Arc<dyn PartitionStream>],
            None,
            [],
            unbounded,
            limit,
        )?;
        Ok(LiveScan {
            inner: Arc::new(inner),
            partition,
            table,
            request,
        })
    }

    /// The same scan planned as one that ends: what a query that needs a stream's end
    /// to answer (an aggregate, a sort) reads; it ends at LIMIT, `--for` or Ctrl-C.
    fn ending(&self) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(LiveScan::new(
            self.partition.clone(),
            self.table,
            self.request.clone(),
            false,
            self.inner.limit(),
        )?))
    }
}

impl DisplayAs for LiveScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if let Some(request) = &self.request {
            write!(f, "LiveScan: table={}, {request}, ", self.table)?;
        }
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for LiveScan {
    fn name(&self) -> &str {
        "LiveScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)] // required by the trait in DataFusion 55
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }
}

/// A query over a stream that needs the stream's end to answer (an aggregate, a sort)
/// is answered when the stream ends: at its LIMIT, `--for` or Ctrl-C. DataFusion refuses
/// to run such an operator over an unbounded scan, so this rule, run just before that
/// check, plans the scans of such a query as ones that end; a query that can answer as
/// rows come (filters, projections, joins, LIMIT) keeps them unbounded.
#[derive(Debug)]
pub struct AnswerAtTheEnd;

impl PhysicalOptimizerRule for AnswerAtTheEnd {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut needs_end = false;
        plan.apply(|node| {
            needs_end = check_finiteness_requirements(node.as_ref(), &config.optimizer).is_err();
            Ok(if needs_end {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        if !needs_end {
            return Ok(plan);
        }
        plan.transform_up(|node| match node.downcast_ref::<LiveScan>() {
            Some(scan) if scan.properties().boundedness.is_unbounded() => {
                Ok(Transformed::yes(scan.ending()?))
            }
            _ => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "answer_at_the_end"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// DataFusion's physical optimizer rules with [`AnswerAtTheEnd`] just before the last,
/// the check of what a plan's operators can run on.
pub fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == SanityCheckPlan::new().name())
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(AnswerAtTheEnd));
    rules
}

/// A part of one batch or less is built into Arrow here, on the reader's thread, so the
/// query's thread only consumes it: the kernel's dump and the building overlap the
/// writing (`tcp_info`'s 64 columns to CSV: the query's thread was the bottleneck). A
/// larger collection (several namespaces at once) stays rows, built a batch at a time
/// as the query pulls, so every row is never held twice.
fn build_small(part: Box<dyn Collected>) -> Result<Box<dyn Collected>> {
    let rows = part.num_rows();
    if rows > BATCH_ROWS {
        return Ok(part);
    }
    Ok(Box::new(part.batch(0..rows)?))
}

/// The single partition of a live scan.
#[derive(Debug)]
pub struct LivePartition {
    table: Arc<dyn LiveTable>,
    scan: Arc<Scan>,
}

impl PartitionStream for LivePartition {
    fn schema(&self) -> &SchemaRef {
        &self.scan.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        if let Some(stream) = self.table.stream(&self.scan) {
            return stream;
        }
        let table = self.table.clone();
        let scan = self.scan.clone();
        let schema = self.scan.schema.clone();
        // Collection starts when the stream is first polled.
        let parts = futures::stream::once(async move { collected_aside(table, scan) }).flatten();
        // One batch per poll: a LIMIT that is satisfied stops the building too.
        let batches = parts.flat_map(|result| match result {
            Ok(collected) => {
                let rows = collected.num_rows();
                let starts = (0..rows.max(1)).step_by(BATCH_ROWS);
                let ranges: Vec<Range<usize>> = starts
                    .map(|start| start..rows.min(start + BATCH_ROWS))
                    .collect();
                futures::stream::iter(ranges)
                    .map(move |range| collected.batch(range))
                    .boxed()
            }
            Err(err) => futures::stream::once(async { Err(err) }).boxed(),
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }
}

/// Collects on a blocking thread, which sends its parts through a channel of two: it
/// reads ahead by at most two parts, and stops once the stream is dropped (a LIMIT met,
/// an error).
fn collected_aside(table: Arc<dyn LiveTable>, scan: Arc<Scan>) -> Parts {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Box<dyn Collected>>>(2);
    let name = table.name();
    let failed = tx.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut sent = false;
        let result = table.collect_parts(&scan, &mut |part| {
            sent = true;
            tx.blocking_send(build_small(part)).is_ok()
        });
        if let Some(last) = last_part(result, sent, &scan.schema) {
            let _ = tx.blocking_send(last);
        }
    });
    // A collector that panics has sent no error of its own: say so, never end the
    // output quietly short.
    tokio::spawn(async move {
        if let Err(err) = reader.await {
            let message = format!("{name}: collector failed: {err}");
            let _ = failed.send(Err(DataFusionError::Execution(message))).await;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|part| (part, rx))
    })
    .boxed()
}

/// A scan's collected parts, in order, an error last.
type Parts = futures::stream::BoxStream<'static, Result<Box<dyn Collected>>>;

/// What follows a collection's parts: its error, or an empty batch when it sent none
/// (so the output has its header).
fn last_part(
    result: Result<()>,
    sent: bool,
    schema: &SchemaRef,
) -> Option<Result<Box<dyn Collected>>> {
    match result {
        Ok(()) if !sent => Some(Ok(Box::new(RecordBatch::new_empty(schema.clone())))),
        Ok(()) => None,
        Err(err) => Some(Err(err)),
    }
}

/// Makes one live table for a session.
pub type Maker = Box<dyn FnOnce() -> Arc<dyn LiveTable> + Send>;

/// Turns a live table into what the session's schema holds: a [`LiveProvider`] locally,
/// a fleet's provider on the client of `--connect`.
pub type Provide = Box<dyn Fn(Arc<dyn LiveTable>) -> Result<Arc<dyn TableProvider>> + Send + Sync>;

/// Registers tables on `ctx` that are made when a statement first names one (or lists
/// the tables): a statement reads one or two of them, and making all a dozen is a tenth
/// of a short query's start. Otherwise the session's schema behaves as DataFusion's own.
pub fn register_lazy(ctx: &SessionContext, tables: Vec<(&'static str, Maker)>) -> Result<()> {
    register_lazy_as(
        ctx,
        tables,
        Box::new(|table| Ok(Arc::new(LiveProvider::new(table)))),
    )
}

/// [`register_lazy`], each table made into a provider by `provide`.
pub fn register_lazy_as(
    ctx: &SessionContext,
    tables: Vec<(&'static str, Maker)>,
    provide: Provide,
) -> Result<()> {
    let options = ctx.state().config().options().catalog.clone();
    let catalog = ctx
        .catalog(&options.default_catalog)
        .ok_or_else(|| DataFusionError::Internal("no default catalog".into()))?;
    let inner = catalog
        .schema(&options.default_schema)
        .unwrap_or_else(|| Arc::new(MemorySchemaProvider::new()));
    let schema = LazySchema {
        inner,
        pending: std::sync::Mutex::new(tables.into_iter().collect()),
        provide,
    };
    catalog.register_schema(&options.default_schema, Arc::new(schema))?;
    Ok(())
}

/// A schema whose live tables are made on first use; the rest is the schema it wraps.
struct LazySchema {
    inner: Arc<dyn SchemaProvider>,
    /// Tables not made yet.
    pending: std::sync::Mutex<std::collections::HashMap<&'static str, Maker>>,
    provide: Provide,
}

impl Debug for LazySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazySchema")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl LazySchema {
    /// Makes `name` now if it is pending, so the wrapped schema has it. The lock is held
    /// until it is registered: a concurrent lookup never finds it in neither place.
    fn make(&self, name: &str) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(maker) = pending.remove(name) {
            self.inner
                .register_table(name.to_string(), (self.provide)(maker())?)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SchemaProvider for LazySchema {
    fn table_names(&self) -> Vec<String> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut names = self.inner.table_names();
        names.extend(pending.keys().map(|n| n.to_string()));
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.make(name)?;
        self.inner.table(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        // A live table not made yet exists all the same.
        self.make(&name)?;
        self.inner.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.make(name)?;
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.contains_key(name) || self.inner.table_exist(name)
    }
}

#[cfg(test)]
mod tests;
