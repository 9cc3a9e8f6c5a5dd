//! Where each stage of a fleet query runs: a scan's stage as one task per host, each
//! sent to its host; every stage above it on the client, in process. Hosts never pull
//! from one another (each may have its own token), and only what the scan's stage
//! sends (rows, or partial aggregates) crosses the network.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedLeafExec, NetworkBoundaryExt,
    RouteTasksEvent, RouteTasksEventResponse, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse,
};
use url::Url;

use super::scan::FleetScan;

/// A scan's stage runs as many tasks as the scan has parts: one per host, and a filler
/// when there is one host (a stage of one task on both sides of its boundary would be
/// run on the client, where a host's scan must not run). A stage above the scans runs
/// as one task, on the client: the engine gives a stage's tasks on one worker one copy
/// of the plan, so two would read each other's inputs.
pub fn task_count(ev: DesiredTaskCountEvent) -> Option<Result<DesiredTaskCountEventResponse>> {
    if let Some(scan) = ev.plan.downcast_ref::<FleetScan>() {
        return Some(Ok(DesiredTaskCountEventResponse::desired(
            scan.properties().partitioning.partition_count(),
        )));
    }
    if gathers(ev.plan.as_ref()) || ev.plan.children().iter().any(|c| crosses(c.as_ref())) {
        return Some(Ok(DesiredTaskCountEventResponse::maximum(1)));
    }
    None
}

/// Whether the engine puts a stage boundary under `node` (it gathers its input's parts).
pub(super) fn gathers(node: &dyn ExecutionPlan) -> bool {
    node.downcast_ref::<CoalescePartitionsExec>().is_some()
        || node.downcast_ref::<SortPreservingMergeExec>().is_some()
}

/// Whether a stage boundary lies at or under `node`: its parent is in a later stage.
fn crosses(node: &dyn ExecutionPlan) -> bool {
    let shuffles = node
        .downcast_ref::<RepartitionExec>()
        .is_some_and(|r| matches!(r.partitioning(), Partitioning::Hash(..)));
    shuffles || gathers(node) || node.children().iter().any(|c| crosses(c.as_ref()))
}

/// Task i of a scan's stage reads host i.
pub fn scale_up(ev: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let scan = ev.plan.downcast_ref::<FleetScan>()?;
    if ev.task_count < scan.hosts.len() {
        return Some(Err(super::scan::not_distributed(&scan.request.table)));
    }
    let variants =
        (0..ev.task_count).map(|task| Arc::new(scan.for_task(task)) as Arc<dyn ExecutionPlan>);
    Some(
        DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// Sends a scan's task to its host (the filler to the client); every other stage runs
/// on the client (`client`, its in-process worker).
pub fn route(client: Url) -> impl Fn(RouteTasksEvent) -> Option<Result<RouteTasksEventResponse>> {
    move |ev| {
        let mut urls: Option<Vec<Url>> = None;
        let walked = ev.plan.apply(|node| {
            if node.is_network_boundary() {
                return Ok(TreeNodeRecursion::Jump);
            }
            let Some(leaf) = node.downcast_ref::<DistributedLeafExec>() else {
                return Ok(TreeNodeRecursion::Continue);
            };
            if leaf.original().downcast_ref::<FleetScan>().is_none() {
                return Ok(TreeNodeRecursion::Continue);
            }
            urls = Some(
                leaf.variants()
                    .iter()
                    .map(|variant| {
                        variant
                            .downcast_ref::<FleetScan>()
                            .and_then(|scan| scan.hosts.first().cloned())
                            .unwrap_or_else(|| client.clone())
                    })
                    .collect(),
            );
            Ok(TreeNodeRecursion::Stop)
        });
        if let Err(err) = walked {
            return Some(Err(err));
        }
        let urls = urls.unwrap_or_else(|| vec![client.clone(); ev.task_count]);
        if urls.len() != ev.task_count {
            return Some(Err(DataFusionError::Internal(format!(
                "a fleet stage of {} tasks has {} hosts",
                ev.task_count,
                urls.len()
            ))));
        }
        Some(Ok(RouteTasksEventResponse::new(urls)))
    }
}
