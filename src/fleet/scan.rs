//! A live table over a fleet: the client plans [`FleetScan`]s, which the distributed
//! engine splits into one per host and sends to that host, where each becomes a
//! [`HostScan`]: the host's own live scan, with the `host` column filled there.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;
use url::Url;

use crate::catalog::LiveTable;

/// The column every fleet table adds: the name of the server (`serve --name`) a row
/// comes from, filled on that server.
pub const HOST_COLUMN: &str = "host";

/// A live table as the client of a fleet sees it: the table's columns and `host`.
#[derive(Debug)]
pub struct FleetProvider {
    table: Arc<dyn LiveTable>,
    schema: SchemaRef,
    hosts: Arc<[Url]>,
}

impl FleetProvider {
    pub fn new(table: Arc<dyn LiveTable>, hosts: Arc<[Url]>) -> Self {
        FleetProvider {
            schema: with_host(&table.schema()),
            table,
            hosts,
        }
    }

    /// Whether `filter` names the `host` column, which only the fleet knows.
    fn names_host(&self, filter: &Expr) -> bool {
        filter
            .column_refs()
            .iter()
            .any(|column| column.name == HOST_COLUMN)
    }
}

/// `schema` with `host` last.
pub fn with_host(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(HOST_COLUMN, DataType::Utf8, false)));
    Arc::new(Schema::new(fields))
}

#[async_trait]
impl TableProvider for FleetProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
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
            .map(|f| {
                if self.names_host(f) {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    self.table.filter_pushdown(f)
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.table.unbounded() {
            return Err(DataFusionError::Plan(format!(
                "{} is a stream: a fleet query (--connect) reads tables that end",
                self.table.name()
            )));
        }
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let request = Request {
            table: self.table.name().to_string(),
            projection,
            filters: filters.to_vec(),
            limit,
            netns: crate::catalog::Settings::of(state.config()).to_string(),
        };
        Ok(Arc::new(FleetScan::new(
            request,
            &self.schema,
            self.hosts.to_vec(),
            self.hosts.len().max(2),
        )?))
    }
}

/// What a host is asked to scan: the same on every host.
#[derive(Debug, Clone)]
pub struct Request {
    pub table: String,
    /// Indices into the table's columns and `host` (the last).
    pub projection: Vec<usize>,
    /// The filters the table takes (none names `host`).
    pub filters: Vec<Expr>,
    pub limit: Option<usize>,
    /// `netsql.netns` on the client: which namespaces each host reads.
    pub netns: String,
}

/// A fleet table's scan as the client plans it: `hosts` are read, one task each; a scan
/// for no host (the filler that keeps a one-host query distributed) yields no rows.
#[derive(Debug, Clone)]
pub struct FleetScan {
    pub request: Request,
    pub hosts: Vec<Url>,
    /// Its schema, and as many parts as the query has tasks: the planner sees a scan in
    /// several parts, so it always splits what runs on each host from what runs on the
    /// client.
    properties: Arc<PlanProperties>,
}

impl FleetScan {
    pub fn new(request: Request, full: &SchemaRef, hosts: Vec<Url>, parts: usize) -> Result<Self> {
        let schema = Arc::new(full.project(&request.projection)?);
        Ok(FleetScan {
            properties: Arc::new(properties(schema, parts)),
            request,
            hosts,
        })
    }

    /// The scan for task `task`: its host's, or the filler.
    pub fn for_task(&self, task: usize) -> FleetScan {
        let mut one = self.clone();
        one.hosts = self.hosts.get(task).cloned().into_iter().collect();
        one.properties = Arc::new(properties(self.schema(), 1));
        one
    }
}

fn properties(schema: SchemaRef, parts: usize) -> PlanProperties {
    PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(parts),
        EmissionType::Incremental,
        Boundedness::Bounded,
    )
}

impl DisplayAs for FleetScan {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let hosts: Vec<String> = self.hosts.iter().map(|u| u.to_string()).collect();
        write!(
            f,
            "FleetScan: table={}, hosts=[{}], projection=[{}]",
            self.request.table,
            hosts.join(", "),
            self.schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        if !self.request.filters.is_empty() {
            let filters: Vec<String> = self.request.filters.iter().map(|e| e.to_string()).collect();
            write!(f, ", filters=[{}]", filters.join(", "))?;
        }
        if let Some(limit) = self.request.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for FleetScan {
    fn name(&self) -> &str {
        "FleetScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
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

    /// Only the filler runs where it was planned; a host's scan runs on that host, and
    /// one run here would answer with this machine's rows under no host's name.
    fn execute(&self, _: usize, _: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if self.hosts.is_empty() {
            let empty = futures::stream::empty();
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                self.schema(),
                empty,
            )));
        }
        Err(not_distributed(&self.request.table))
    }
}

/// A host's part of a fleet scan, as that host runs it: its own live scan, and the
/// `host` column (this server's name) wherever the projection puts it.
#[derive(Debug)]
pub struct HostScan {
    live: Arc<dyn ExecutionPlan>,
    name: Arc<str>,
    /// Per output column: `None` for `host`, else the live scan's column.
    columns: Vec<Option<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl HostScan {
    /// `live` reads the projection's table columns in order; `host_at` are the output
    /// positions of `host`.
    pub fn new(
        live: Arc<dyn ExecutionPlan>,
        name: Arc<str>,
        schema: SchemaRef,
        host_at: &[usize],
    ) -> Self {
        let mut next = 0;
        let columns = (0..schema.fields().len())
            .map(|i| {
                if host_at.contains(&i) {
                    None
                } else {
                    next += 1;
                    Some(next - 1)
                }
            })
            .collect();
        let mut props = live.properties().as_ref().clone();
        props.eq_properties = EquivalenceProperties::new(schema.clone());
        HostScan {
            live,
            name,
            columns,
            schema,
            properties: Arc::new(props),
        }
    }
}

impl DisplayAs for HostScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "HostScan: host={}, ", self.name)?;
        self.live.fmt_as(t, f)
    }
}

impl ExecutionPlan for HostScan {
    fn name(&self) -> &str {
        "HostScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
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
        let rows = self.live.execute(partition, context)?;
        let schema = self.schema.clone();
        let name = self.name.clone();
        let columns = self.columns.clone();
        let batches = rows.map(move |batch| {
            let batch = batch?;
            // Built only when the query asked for `host`.
            let mut hosts: Option<ArrayRef> = None;
            let arrays: Vec<ArrayRef> = columns
                .iter()
                .map(|c| match c {
                    Some(i) => batch.column(*i).clone(),
                    None => hosts
                        .get_or_insert_with(|| {
                            Arc::new(StringArray::from(vec![&*name; batch.num_rows()]))
                        })
                        .clone(),
                })
                .collect();
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            Ok(RecordBatch::try_new_with_options(
                schema.clone(),
                arrays,
                &options,
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}

/// A fleet table under an operator the engine runs as one task (it cannot be split by
/// host): refused in one line that says what to do instead.
pub(super) fn not_distributed(table: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "{table}: this query's shape is not distributed over a fleet yet (a cross join, a join \
         on no equal keys, NOT IN, an uncorrelated EXISTS, a UNION with a constant row over a \
         fleet table); a saved query (-q, --queries DIR) runs on each host by itself"
    ))
}
