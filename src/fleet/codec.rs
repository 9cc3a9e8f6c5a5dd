//! How a fleet scan crosses the network: the client writes one host's [`FleetScan`] as a
//! small protobuf message (the table's name, projection, filters, limit, namespaces and
//! the schema the client planned with); a worker reads it back as its own [`HostScan`].
//! Nothing else of netsql's travels in a plan: any other extension node fails to decode.

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
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf;
use prost::Message;

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
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !inputs.is_empty() {
            return Err(bad("a scan has no inputs"));
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
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(scan) = node.downcast_ref::<FleetScan>() else {
            return Err(DataFusionError::Internal(format!(
                "netsql's codec writes fleet scans, not {}",
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
