//! How a fleet scan crosses the network: the client writes one host's [`FleetScan`] as a
//! small protobuf message (the table's name, projection, filters, limit, namespaces and
//! the schema the client planned with); a worker reads it back as its own [`HostScan`].
//! A [`HostJoinExec`] travels as the hash join it runs, over placeholders. Nothing else
//! of netsql's travels in a plan: any other extension node fails to decode.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::from_proto::parse_exprs;
use datafusion_proto::logical_plan::to_proto::serialize_exprs;
use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
use datafusion_proto::physical_plan::{
    DefaultPhysicalExtensionCodec, PhysicalExtensionCodec, PhysicalPlanNodeExt,
    PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use prost::Message;

use super::joins::HostJoinExec;
use super::scan::{with_host, FleetScan, HostScan, Request};
use crate::catalog::{live_scan, Settings};
use crate::collect::owners::SharedWalk;
use crate::tables::{self, TablesConfig};

/// One host's scan on the wire.
#[derive(Clone, PartialEq, Message)]
struct ScanMessage {
    #[prost(string, tag = "1")]
    table: String,
    /// Indices into the table's columns and `host` (the last).
    #[prost(uint64, repeated, tag = "2")]
    projection: Vec<u64>,
    #[prost(message, repeated, tag = "3")]
    filters: Vec<protobuf::LogicalExprNode>,
    #[prost(uint64, optional, tag = "4")]
    limit: Option<u64>,
    #[prost(string, tag = "5")]
    netns: String,
    /// The scan for no host (a one-host query's second task): no rows.
    #[prost(bool, tag = "6")]
    filler: bool,
    /// What the client planned with: a worker whose table differs refuses the scan.
    #[prost(message, optional, tag = "7")]
    schema: Option<protobuf::Schema>,
}

/// A join of two fleet tables run on each host: the planner's hash join over
/// placeholders. Its inputs travel as the node's.
#[derive(Clone, PartialEq, Message)]
struct JoinMessage {
    #[prost(message, optional, tag = "1")]
    join: Option<protobuf::PhysicalPlanNode>,
}

/// What a worker reads its scans with: its tables and its name.
#[derive(Debug, Clone)]
pub struct Local {
    pub tables: TablesConfig,
    pub name: Arc<str>,
}

/// netsql's codec: the client's encodes scans (and decodes only the filler, which its
/// own in-process worker runs); a server's decodes them into scans of its own tables.
#[derive(Debug, Clone)]
pub struct ScanCodec {
    local: Option<Local>,
}

impl ScanCodec {
    pub fn client() -> Self {
        ScanCodec { local: None }
    }

    pub fn worker(local: Local) -> Self {
        ScanCodec { local: Some(local) }
    }
}

fn bad(why: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("netsql fleet scan: {why}"))
}

impl PhysicalExtensionCodec for ScanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match inputs {
            [] => {}
            [left, right] => return host_join(buf, left, right, ctx, proto_converter),
            _ => return Err(bad("a scan has no inputs, a join two")),
        }
        let message = ScanMessage::decode(buf).map_err(bad)?;
        let schema: SchemaRef = Arc::new(Schema::try_from(
            message.schema.as_ref().ok_or_else(|| bad("no schema"))?,
        )?);
        if message.filler {
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let Some(local) = &self.local else {
            return Err(bad(format!(
                "a scan of {} reached the client instead of its host",
                message.table
            )));
        };
        let table = tables::make(&local.tables, &message.table)
            .ok_or_else(|| bad(format!("this server has no table {:?}", message.table)))?;
        if table.unbounded() {
            return Err(bad(format!("{} is a stream", message.table)));
        }
        let full = with_host(&table.schema());
        let host = full.fields().len() - 1;
        let mut live = Vec::new();
        let mut host_at = Vec::new();
        for (at, &index) in message.projection.iter().enumerate() {
            match usize::try_from(index) {
                Ok(i) if i == host => host_at.push(at),
                Ok(i) if i < host => live.push(i),
                _ => return Err(bad(format!("no column {index} in {}", message.table))),
            }
        }
        let planned = full.project(
            &message
                .projection
                .iter()
                .map(|&i| i as usize)
                .collect::<Vec<_>>(),
        )?;
        if planned.fields() != schema.fields() {
            return Err(bad(format!(
                "the client's {} has other columns than this server's (another netsql version?)",
                message.table
            )));
        }
        // The client's `netsql.netns` when it set one, else the server's `--netns`. A
        // client names namespaces as `ip netns` does, or all of them: never a path or a
        // process of the server's, which would let it probe the server's files.
        let netns = match message.netns.as_str() {
            "" => local.tables.netns.as_str(),
            given => {
                let named = |name: &str| {
                    !name.is_empty()
                        && !name.bytes().all(|b| b.is_ascii_digit())
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
                };
                if !given.split(',').all(|n| named(n.trim())) {
                    return Err(bad(format!(
                        "netns {given:?}: a fleet query names namespaces by their ip netns names, or all"
                    )));
                }
                given
            }
        };
        netns
            .parse::<crate::collect::netns::Scope>()
            .map_err(|e| bad(format!("netns {netns:?}: {e}")))?;
        let filters = parse_exprs(&message.filters, ctx, &DefaultLogicalExtensionCodec {})?;
        let session = SessionConfig::new()
            .with_option_extension(Settings::new(netns, Arc::new(|_: &str| Ok(()))))
            .with_extension(Arc::new(SharedWalk::default()));
        let scan = live_scan(
            table,
            live,
            filters,
            message.limit.map(|l| l as usize),
            session,
        )?;
        Ok(Arc::new(HostScan::new(
            scan,
            local.name.clone(),
            schema,
            &host_at,
        )))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(join) = node.downcast_ref::<HostJoinExec>() {
            // Its hash join holds only DataFusion's nodes (its inputs are placeholders).
            let join = protobuf::PhysicalPlanNode::try_from_physical_plan_with_converter(
                join.join().clone(),
                &DefaultPhysicalExtensionCodec {},
                proto_converter,
            )?;
            let message = JoinMessage { join: Some(join) };
            return message
                .encode(buf)
                .map_err(|e| DataFusionError::Internal(format!("netsql host join: {e}")));
        }
        let Some(scan) = node.downcast_ref::<FleetScan>() else {
            return Err(DataFusionError::Internal(format!(
                "netsql's codec writes fleet scans and host joins, not {}",
                node.name()
            )));
        };
        if scan.hosts.len() > 1 {
            return Err(DataFusionError::Internal(
                "a fleet scan is sent per host".into(),
            ));
        }
        let Request {
            table,
            projection,
            filters,
            limit,
            netns,
        } = &scan.request;
        let message = ScanMessage {
            table: table.clone(),
            projection: projection.iter().map(|&i| i as u64).collect(),
            filters: serialize_exprs(filters, &DefaultLogicalExtensionCodec {})?,
            limit: limit.map(|l| l as u64),
            netns: netns.clone(),
            filler: scan.hosts.is_empty(),
            schema: Some(scan.schema().as_ref().try_into()?),
        };
        message
            .encode(buf)
            .map_err(|e| DataFusionError::Internal(format!("netsql fleet scan: {e}")))
    }
}

/// A [`HostJoinExec`] read back. Its hash join is decoded without netsql's codec, so it
/// can hold no scan or other extension of its own; [`HostJoinExec::over`] then checks
/// that it is a hash join over placeholders shaped like `left` and `right`.
fn host_join(
    buf: &[u8],
    left: &Arc<dyn ExecutionPlan>,
    right: &Arc<dyn ExecutionPlan>,
    ctx: &TaskContext,
    proto_converter: &dyn PhysicalProtoConverterExtension,
) -> Result<Arc<dyn ExecutionPlan>> {
    let message = JoinMessage::decode(buf).map_err(bad)?;
    let join = message
        .join
        .ok_or_else(|| bad("a host join without its join"))?
        .try_into_physical_plan_with_converter(
            ctx,
            &DefaultPhysicalExtensionCodec {},
            proto_converter,
        )?;
    Ok(Arc::new(HostJoinExec::over(
        join,
        left.clone(),
        right.clone(),
    )?))
}

#[cfg(test)]
mod tests {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::execution::TaskContext;
    use datafusion::physical_plan::joins::HashJoinExec;
    use datafusion::physical_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
    use datafusion::prelude::{CsvReadOptions, SessionContext};
    use datafusion_proto::physical_plan::DefaultPhysicalProtoConverter;

    use super::*;

    /// The first hash join of `sql`'s plan over the context's tables.
    async fn hash_join(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut found = None;
        plan.apply(|node| {
            if node.downcast_ref::<HashJoinExec>().is_some() {
                found = Some(node.clone());
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        found.expect("a hash join")
    }

    /// What a worker makes of a host join message carrying `join` over `left`, `right`.
    fn decoded(
        join: Arc<dyn ExecutionPlan>,
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let message = JoinMessage {
            join: Some(
                protobuf::PhysicalPlanNode::try_from_physical_plan_with_converter(
                    join,
                    &DefaultPhysicalExtensionCodec {},
                    &DefaultPhysicalProtoConverter {},
                )?,
            ),
        };
        ScanCodec::client().try_decode(
            &message.encode_to_vec(),
            &[left, right],
            &TaskContext::default(),
            &DefaultPhysicalProtoConverter {},
        )
    }

    /// Why `decoded` was refused; a plan it let through fails the test.
    fn refused(decoded: Result<Arc<dyn ExecutionPlan>>) -> String {
        match decoded {
            Ok(plan) => panic!("decoded: {}", plan.name()),
            Err(err) => err.to_string(),
        }
    }

    fn placeholders(join: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
        join.children()
            .iter()
            .map(|side| Arc::new(EmptyExec::new(side.schema())) as Arc<dyn ExecutionPlan>)
            .collect()
    }

    #[tokio::test]
    async fn a_host_join_travels_as_its_hash_join_and_nothing_else() {
        let ctx = SessionContext::new();
        let dir = tempfile::tempdir().unwrap();
        for (table, text) in [("a", "host,pid\nh,1\n"), ("b", "host,pid,name\nh,1,x\n")] {
            let csv = dir.path().join(format!("{table}.csv"));
            std::fs::write(&csv, text).unwrap();
            ctx.register_csv(table, csv.to_str().unwrap(), CsvReadOptions::new())
                .await
                .unwrap();
        }
        let sql = "SELECT * FROM a JOIN b ON a.host = b.host AND a.pid = b.pid";
        let join = hash_join(&ctx, sql).await;
        let [left, right]: [_; 2] = placeholders(&join).try_into().unwrap();

        // The planner's join over placeholders: read back as a host join.
        let over = join
            .clone()
            .replace_children(
                vec![left.clone(), right.clone()],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )
            .unwrap();
        let back = decoded(over.clone(), left.clone(), right.clone()).unwrap();
        assert_eq!(back.name(), "HostJoinExec");

        // The same join over the files it read: refused, before anything runs.
        let err = refused(decoded(join, left.clone(), right.clone()));
        assert!(err.contains("reads only its own inputs"), "{err}");

        // A file scan of its own sent as the join: refused.
        let scan = ctx
            .sql("SELECT * FROM a")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let err = refused(decoded(scan, left.clone(), right.clone()));
        assert!(err.contains("runs a hash join, not"), "{err}");

        // Inputs other than the join was planned over: refused.
        let err = refused(decoded(over, right, left));
        assert!(err.contains("are not its hash join's"), "{err}");
    }
}
