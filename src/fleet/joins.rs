//! A join of two fleet tables on `host` runs on each host. DataFusion plans such a join
//! as a partitioned hash join over both sides repartitioned by every key, which here
//! would ship both tables off every host. But part i of every fleet scan is host i's
//! rows (hosts in the same order, names unique), so part i of one side can only meet
//! part i of the other: the join needs no repartition at all.
//!
//! Declaring that on the scans instead (`Hash([host])`) would be a false claim: the
//! engine takes a declared hash partitioning to mean its own hash of the key, and would
//! pair our part i with part i of anything it repartitioned by host itself. So nothing is
//! declared; this rule, run after the planner's own (and after its sanity check), replaces
//! a join whose two sides it can see are fleet scans over the same hosts, joined on their
//! `host` columns, by a [`HostJoinExec`] over the scans without the repartitions. Over
//! one host (the session per host that saved queries and audits run in) every row of
//! each side is in that host's part, so any join of two such scans runs there, whatever
//! its keys.

use std::sync::{Arc, Mutex, PoisonError};

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, JoinSide, NullEquality};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{Partitioning, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::utils::build_join_schema;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode,
};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, ReplaceChildrenOptions,
};

use super::placement;
use super::scan::{FleetScan, HOST_COLUMN};

/// Joins of fleet tables on `host` (or over one host), host by host (see the module's
/// comment).
#[derive(Debug, Default)]
pub struct PerHost;

impl PhysicalOptimizerRule for PerHost {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rewritten = plan.clone().transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some((left, right)) = per_host(join) else {
                return Ok(Transformed::no(node));
            };
            let host_join = HostJoinExec::try_new(node.clone(), left, right)?;
            Ok(Transformed::yes(Arc::new(host_join)))
        })?;
        // A host join's parts are hosts, no longer the hashes of its keys: a node that
        // pairs its inputs' parts (a join planned over it, say, the other side hashed)
        // would pair rows of different hosts. Such a plan keeps the planner's joins.
        if !rewritten.transformed || meets_others(&rewritten.data, false) {
            return Ok(plan);
        }
        Ok(rewritten.data)
    }

    fn name(&self) -> &str {
        "fleet_joins_per_host"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The join's two inputs without their repartitions, when the join can run host by host.
fn per_host(join: &HashJoinExec) -> Option<(Arc<dyn ExecutionPlan>, Arc<dyn ExecutionPlan>)> {
    // NULL keys never match: a NULL `host` (an outer join's padding) pairs with none, on
    // its own host as on all of them.
    if *join.partition_mode() != PartitionMode::Partitioned
        || join.null_equality() != NullEquality::NullEqualsNothing
    {
        return None;
    }
    let left = unhashed(join.left());
    let right = unhashed(join.right());
    let keys: Vec<(&FleetScan, &str, &FleetScan, &str)> = join
        .on()
        .iter()
        .filter_map(|(l, r)| {
            let (l, l_name) = scan_of(left, l.downcast_ref::<Column>()?.index())?;
            let (r, r_name) = scan_of(right, r.downcast_ref::<Column>()?.index())?;
            Some((l, l_name, r, r_name))
        })
        .collect();
    let on_hosts = keys
        .iter()
        .find(|(_, l, _, r)| *l == HOST_COLUMN && *r == HOST_COLUMN)
        // One host's scans (a session per host, as saved queries and audits run): all of
        // each side's rows are in that host's part, whatever the keys.
        .or_else(|| {
            keys.iter()
                .find(|(l, _, r, _)| l.hosts.len() == 1 && r.hosts.len() == 1)
        });
    // The same hosts give the same parts, in the same order (one per host, or a filler).
    let (l, _, r, _) = on_hosts?;
    (l.hosts == r.hosts).then(|| (left.clone(), right.clone()))
}

/// A side of the join without the repartition by hash the planner put under it; a side
/// without one is taken as it is (a host join below, whose hashing the planner counted
/// on, is traced like any other input).
fn unhashed(side: &Arc<dyn ExecutionPlan>) -> &Arc<dyn ExecutionPlan> {
    match side.downcast_ref::<RepartitionExec>() {
        Some(r) if matches!(r.partitioning(), Partitioning::Hash(..)) => r.input(),
        _ => side,
    }
}

/// Whether a host join's parts reach a node that pairs the parts of its inputs (other
/// than a host join) without a repartition or a gathering in between. `paired`: an
/// ancestor since the last such boundary pairs parts.
fn meets_others(plan: &Arc<dyn ExecutionPlan>, paired: bool) -> bool {
    if plan.downcast_ref::<HostJoinExec>().is_some() && paired {
        return true;
    }
    let boundary =
        plan.downcast_ref::<RepartitionExec>().is_some() || placement::gathers(plan.as_ref());
    let pairs = plan.children().len() > 1 && !collects_or_concatenates(plan.as_ref());
    let paired = !boundary && (paired || pairs);
    plan.children()
        .into_iter()
        .any(|child| meets_others(child, paired))
}

/// Nodes of several inputs that pair no parts: a union lines its inputs' parts up one
/// after another; a join that collects one side whole (and the host join, whose inputs
/// are hosts' parts, checked when it was made).
fn collects_or_concatenates(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<HostJoinExec>().is_some()
        || node.downcast_ref::<UnionExec>().is_some()
        || node.downcast_ref::<CrossJoinExec>().is_some()
        || node.downcast_ref::<NestedLoopJoinExec>().is_some()
        || node
            .downcast_ref::<HashJoinExec>()
            .is_some_and(|j| *j.partition_mode() == PartitionMode::CollectLeft)
}

/// The fleet scan that column `index` of `plan`'s output is read from, and the column's
/// name there, found through operators that keep each part's rows in their part
/// (filters, projections, host joins).
fn scan_of(plan: &Arc<dyn ExecutionPlan>, index: usize) -> Option<(&FleetScan, &str)> {
    if let Some(scan) = plan.downcast_ref::<FleetScan>() {
        let name = scan
            .properties()
            .eq_properties
            .schema()
            .fields()
            .get(index)?
            .name();
        return Some((scan, name.as_str()));
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        let index = match filter.projection() {
            Some(projection) => *projection.get(index)?,
            None => index,
        };
        return scan_of(filter.input(), index);
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let column = projection
            .expr()
            .get(index)?
            .expr
            .downcast_ref::<Column>()?;
        return scan_of(projection.input(), column.index());
    }
    if let Some(coop) = plan.downcast_ref::<CooperativeExec>() {
        return scan_of(coop.input(), index);
    }
    if let Some(host_join) = plan.downcast_ref::<HostJoinExec>() {
        // Each part of a host join is one host's, as each part of its inputs is: the
        // column is traced to the input it comes from.
        let join = host_join.join.downcast_ref::<HashJoinExec>()?;
        let index = match &join.projection {
            Some(projection) => *projection.get(index)?,
            None => index,
        };
        let (_, columns) = build_join_schema(
            &join.left().schema(),
            &join.right().schema(),
            join.join_type(),
        );
        let column = columns.get(index)?;
        return match column.side {
            JoinSide::Left => scan_of(&host_join.left, column.index),
            JoinSide::Right => scan_of(&host_join.right, column.index),
            JoinSide::None => None,
        };
    }
    None
}

/// A hash join run part by part: part i of its output joins part i of each input (both
/// host i's rows). Each part runs `join`, the planner's own join, over that part of each
/// side; `join`'s inputs are placeholders with the sides' schemas.
#[derive(Debug)]
pub struct HostJoinExec {
    join: Arc<dyn ExecutionPlan>,
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// The joins its parts ran: their metrics are this node's.
    ran: Mutex<Vec<Arc<dyn ExecutionPlan>>>,
}

impl HostJoinExec {
    fn try_new(
        join: Arc<dyn ExecutionPlan>,
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
    ) -> Result<Self> {
        let placeholders = vec![
            Arc::new(EmptyExec::new(left.schema())) as Arc<dyn ExecutionPlan>,
            Arc::new(EmptyExec::new(right.schema())),
        ];
        let join = join.replace_children(
            placeholders,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        HostJoinExec::over(join, left, right)
    }

    /// `join` (a hash join over placeholders, as [`HostJoinExec::join`] gives it) part by
    /// part over `left` and `right`: how a worker rebuilds the node.
    pub fn over(
        join: Arc<dyn ExecutionPlan>,
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
    ) -> Result<Self> {
        let Some(hash_join) = join.downcast_ref::<HashJoinExec>() else {
            return internal_err!("a host join runs a hash join, not {}", join.name());
        };
        if *hash_join.partition_mode() != PartitionMode::Partitioned {
            return internal_err!("a host join runs a partitioned hash join");
        }
        let placeholder =
            |side: &Arc<dyn ExecutionPlan>| side.downcast_ref::<EmptyExec>().is_some();
        if !placeholder(hash_join.left()) || !placeholder(hash_join.right()) {
            return internal_err!("a host join's hash join reads only its own inputs");
        }
        if hash_join.left().schema() != left.schema()
            || hash_join.right().schema() != right.schema()
        {
            return internal_err!("a host join's inputs are not its hash join's");
        }
        let parts = left.output_partitioning().partition_count();
        if right.output_partitioning().partition_count() != parts {
            return internal_err!(
                "a host join's inputs have {parts} and {} parts",
                right.output_partitioning().partition_count()
            );
        }
        let mut properties = join.properties().as_ref().clone();
        properties.partitioning = Partitioning::UnknownPartitioning(parts);
        Ok(HostJoinExec {
            join,
            left,
            right,
            properties: Arc::new(properties),
            ran: Mutex::default(),
        })
    }

    /// The hash join each part runs, over placeholders.
    pub fn join(&self) -> &Arc<dyn ExecutionPlan> {
        &self.join
    }
}

impl DisplayAs for HostJoinExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "HostJoinExec: per host, ")?;
        self.join.fmt_as(t, f)
    }
}

impl ExecutionPlan for HostJoinExec {
    fn name(&self) -> &str {
        "HostJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.join.apply_expressions(f)
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // Another part count would break the pairing of parts.
        vec![false, false]
    }

    #[allow(deprecated)] // required by the trait in DataFusion 55
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [left, right]: [Arc<dyn ExecutionPlan>; 2] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("a host join has two inputs".into()))?;
        Ok(Arc::new(HostJoinExec::over(
            self.join.clone(),
            left,
            right,
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let parts = self.properties.partitioning.partition_count();
        if partition >= parts {
            return internal_err!("a host join of {parts} parts has no part {partition}");
        }
        let part = |side: &Arc<dyn ExecutionPlan>| {
            Arc::new(OnePart::new(side.clone(), partition)) as Arc<dyn ExecutionPlan>
        };
        // A join of its own per part: the template's metrics would be every part's at
        // once, and its dynamic filter would carry one host's bounds to every host.
        let join = self.join.clone().reset_state()?.replace_children(
            vec![part(&self.left), part(&self.right)],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        let stream = join.execute(0, context)?;
        self.ran
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(join);
        Ok(stream)
    }

    /// The metrics of the joins the parts ran (rows in and out, build and join time).
    /// A worker's node runs one part, its host's.
    fn metrics(&self) -> Option<MetricsSet> {
        let mut metrics = MetricsSet::new();
        let ran = self.ran.lock().unwrap_or_else(PoisonError::into_inner);
        for join in ran.iter() {
            for metric in join.metrics().iter().flat_map(MetricsSet::iter) {
                metrics.push(metric.clone());
            }
        }
        Some(metrics)
    }
}

/// Part `part` of `input`, as a plan of one part.
#[derive(Debug)]
struct OnePart {
    input: Arc<dyn ExecutionPlan>,
    part: usize,
    properties: Arc<PlanProperties>,
}

impl OnePart {
    fn new(input: Arc<dyn ExecutionPlan>, part: usize) -> Self {
        let mut properties = input.properties().as_ref().clone();
        properties.partitioning = Partitioning::UnknownPartitioning(1);
        OnePart {
            input,
            part,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for OnePart {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "OnePart: part={}", self.part)
    }
}

impl ExecutionPlan for OnePart {
    fn name(&self) -> &str {
        "OnePart"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
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
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input]: [Arc<dyn ExecutionPlan>; 1] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("a part has one input".into()))?;
        Ok(Arc::new(OnePart::new(input, self.part)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("a part of one plan has one part, not {partition}");
        }
        self.input.execute(self.part, context)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::JoinType;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::execution::TaskContext;

    use super::*;

    /// Two parts (hosts a and b), each row a (host, pid) pair.
    fn hosts(parts: [&[i32]; 2]) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", DataType::Utf8, false),
            Field::new("pid", DataType::Int32, false),
        ]));
        let batches: Vec<Vec<RecordBatch>> = ["a", "b"]
            .iter()
            .zip(parts)
            .map(|(host, pids)| {
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from(vec![*host; pids.len()])),
                    Arc::new(Int32Array::from(pids.to_vec())),
                ];
                vec![RecordBatch::try_new(schema.clone(), columns).unwrap()]
            })
            .collect();
        MemorySourceConfig::try_new_exec(&batches, schema, None).unwrap()
    }

    /// Each part's join counts its own rows, once: the metrics add up to the answer.
    #[tokio::test]
    async fn each_part_counts_its_own_rows() {
        let left = hosts([&[1, 2, 3], &[1]]);
        let right = hosts([&[1, 2], &[1, 7]]);
        let on = ["host", "pid"]
            .iter()
            .map(|name| {
                let l = Column::new_with_schema(name, &left.schema()).unwrap();
                let r = Column::new_with_schema(name, &right.schema()).unwrap();
                (
                    Arc::new(l) as Arc<dyn PhysicalExpr>,
                    Arc::new(r) as Arc<dyn PhysicalExpr>,
                )
            })
            .collect();
        let join = HashJoinExec::try_new(
            left.clone(),
            right.clone(),
            on,
            None,
            &JoinType::Inner,
            None,
            PartitionMode::Partitioned,
            NullEquality::NullEqualsNothing,
            false,
        )
        .unwrap();
        let host_join: Arc<dyn ExecutionPlan> =
            Arc::new(HostJoinExec::try_new(Arc::new(join), left, right).unwrap());
        let rows =
            datafusion::physical_plan::collect(host_join.clone(), Arc::new(TaskContext::default()))
                .await
                .unwrap();
        // a: pids 1 and 2 on both sides; b: pid 1.
        let answer: usize = rows.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(answer, 3);
        let metrics = host_join.metrics().unwrap();
        assert_eq!(metrics.output_rows(), Some(3), "{metrics}");
        let built = metrics
            .sum_by_name("build_input_rows")
            .map(|v| v.as_usize());
        assert_eq!(built, Some(4), "{metrics}");
    }
}
