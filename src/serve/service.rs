//! The Flight SQL service: statements, prepared statements with parameters, and the
//! metadata calls clients browse with, each request on a fresh read-only session.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

use super::request::{self, busy, deadline_exceeded, log, status, status_name, Handle, Running};
use crate::error::Error;
use crate::exec::{self, Runner};
use crate::history::read::History;
use crate::kill::Kill;
use crate::tables::TablesConfig;

/// The catalog the live tables are in (DataFusion's default).
const CATALOG: &str = "datafusion";

pub struct Netsql {
    tables: TablesConfig,
    history: Option<History>,
    timeout: Duration,
    max_queries: usize,
    slots: Arc<Semaphore>,
}

impl Netsql {
    pub fn new(
        tables: TablesConfig,
        history: Option<History>,
        timeout: Duration,
        max_queries: usize,
        slots: Arc<Semaphore>,
    ) -> Self {
        Netsql {
            tables,
            history,
            timeout,
            max_queries,
            slots,
        }
    }

    /// A session of its own for one request.
    async fn session(&self) -> Result<SessionContext, Status> {
        let ctx = exec::context(&self.tables).map_err(|e| status(Error::DataFusion(e)))?;
        if let Some(history) = &self.history {
            history.register(&ctx).await.map_err(status)?;
        }
        Ok(ctx)
    }

    /// Plans the one read-only statement of `handle`.
    async fn plan(&self, ctx: &SessionContext, handle: &Handle) -> Result<LogicalPlan, Status> {
        let runner = Runner {
            ctx,
            root: &self.tables.root,
            read_only: true,
            kill: Kill::Refused,
            dry_run: false,
        };
        let mut statements = runner.statements(&handle.sql).map_err(status)?;
        if statements.len() != 1 {
            return Err(Status::invalid_argument(format!(
                "one statement per request, not {}",
                statements.len()
            )));
        }
        let plan = runner
            .plan(statements.remove(0), &BTreeMap::new())
            .await
            .map_err(status)?;
        match &handle.params {
            None => Ok(plan),
            Some(row) => bind(plan, row),
        }
    }

    /// The result schema of `handle`'s statement (planning collects nothing).
    async fn schema(&self, handle: &Handle) -> Result<SchemaRef, Status> {
        let ctx = self.session().await?;
        let plan = self.plan(&ctx, handle).await?;
        exec::result_schema(&ctx, &plan).map_err(status)
    }

    /// Runs `handle`'s statement as a stream of Flight data: one of `max_queries`
    /// slots, a deadline, a log line when it ends (or the client goes away).
    async fn execute(
        &self,
        handle: Handle,
        peer: Option<SocketAddr>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let started = Instant::now();
        let fail = |status: Status| {
            log(
                peer,
                "DoGet",
                &handle.sql,
                0,
                0,
                started.elapsed(),
                &status_name(&status),
            );
            status
        };
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| fail(busy(self.max_queries)))?;
        let deadline = tokio::time::Instant::from_std(started) + self.timeout;
        let timeout = self.timeout;
        let opened = tokio::time::timeout_at(deadline, async {
            let ctx = self.session().await?;
            let plan = self.plan(&ctx, &handle).await?;
            let runner = Runner {
                ctx: &ctx,
                root: &self.tables.root,
                read_only: true,
                kill: Kill::Refused,
                dry_run: false,
            };
            // The schema GetFlightInfo announced: clients check each batch against it.
            let schema = exec::result_schema(&ctx, &plan).map_err(status)?;
            let stream = announced(runner.stream(plan).await.map_err(status)?, schema);
            Ok::<_, Status>((ctx, stream))
        })
        .await
        .map_err(|_| fail(deadline_exceeded(timeout)))?
        .map_err(fail)?;
        let (ctx, stream) = opened;
        let schema = stream.schema();
        let running = Running::new(stream, timeout, started, peer, handle.sql, permit, ctx);
        let batches = request::relay(running);
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(flight)))
    }
}

/// `status`, after its log line: a request refused before any query ran.
fn logged(peer: Option<SocketAddr>, call: &str, sql: &str, status: Status) -> Status {
    log(peer, call, sql, 0, 0, Duration::ZERO, &status_name(&status));
    status
}

/// `stream` under `schema`, the statement's logical schema: the physical plan's may say
/// NOT NULL where the logical one does not (a constant folded, `hostname()`), and a
/// client refuses batches whose schema is not the one announced.
fn announced(stream: SendableRecordBatchStream, schema: SchemaRef) -> SendableRecordBatchStream {
    if stream.schema() == schema {
        return stream;
    }
    let relabelled = schema.clone();
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream.map(move |batch| {
            let batch = batch?;
            Ok(RecordBatch::try_new(
                relabelled.clone(),
                batch.columns().to_vec(),
            )?)
        }),
    ))
}

/// Binds `row` to the plan's placeholders, `$1` its first column, each value with the
/// type and NULL the client sent it with (see [`exec::Param`]).
fn bind(plan: LogicalPlan, row: &RecordBatch) -> Result<LogicalPlan, Status> {
    if uses_question_marks(&plan) {
        return Err(Status::invalid_argument(
            "parameters are written $1, $2, ...: ? is not supported",
        ));
    }
    // A value no placeholder takes is a client's mistake (a list bound to the wrong
    // statement), not something to answer around.
    let takes = plan
        .get_parameter_types()
        .map_err(|e| status(e.into()))?
        .keys()
        .filter_map(|id| id.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    if row.num_columns() > takes {
        return Err(Status::invalid_argument(format!(
            "{} parameters bound; the statement takes {takes}",
            row.num_columns()
        )));
    }
    let mut params = Vec::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = ScalarValue::try_from_array(column, 0)
            .map_err(|e| Status::invalid_argument(format!("parameter ${}: {e}", i + 1)))?;
        params.push(((i + 1).to_string(), exec::Param::Typed(value)));
    }
    exec::bind(plan, params).map_err(status)
}

/// Whether the plan holds a `?` placeholder: DataFusion takes every `?` for one
/// parameter, which positions cannot bind.
fn uses_question_marks(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if matches!(e, Expr::Placeholder(p) if p.id == "?") {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}

/// What GetSqlInfo answers.
static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "netsql");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.build().expect("static sql info")
});

fn ticket_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket {
        ticket: ticket.into(),
    });
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// The FlightInfo of a metadata command: its ticket is the command itself, which
/// `do_get` routes back to the matching `do_get_*`.
fn command_info(
    schema: &Schema,
    command: &impl ProstMessageExt,
    request: Request<FlightDescriptor>,
) -> Result<Response<FlightInfo>, Status> {
    ticket_info(
        schema,
        command.as_any().encode_to_vec(),
        request.into_inner(),
    )
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

fn one_batch(batch: Result<RecordBatch, FlightError>) -> Response<DoGetStream> {
    let schema = batch.as_ref().map(|b| b.schema()).ok();
    let mut builder = FlightDataEncoderBuilder::new();
    if let Some(schema) = schema {
        builder = builder.with_schema(schema);
    }
    let stream = builder
        .build(futures::stream::once(async { batch }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("schema: {e}")))?;
    Ok(message.0)
}

#[tonic::async_trait]
impl FlightSqlService for Netsql {
    type FlightService = Netsql;

    /// Bearer tokens are checked on every call (the interceptor); a handshake only
    /// confirms the token works.
    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(response)
        }))))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let peer = request.remote_addr();
        let handle = Handle {
            sql: query.query,
            params: None,
        };
        let schema = self
            .schema(&handle)
            .await
            .map_err(|s| logged(peer, "GetFlightInfo", &handle.sql, s))?;
        let ticket = TicketStatementQuery {
            statement_handle: handle.encode()?.into(),
        };
        ticket_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let peer = request.remote_addr();
        let handle =
            Handle::decode(&ticket.statement_handle).map_err(|s| logged(peer, "DoGet", "", s))?;
        self.execute(handle, peer).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let peer = request.remote_addr();
        let handle = Handle::decode(&query.prepared_statement_handle)
            .map_err(|s| logged(peer, "GetFlightInfo", "", s))?;
        let schema = self
            .schema(&handle)
            .await
            .map_err(|s| logged(peer, "GetFlightInfo", &handle.sql, s))?;
        ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let peer = request.remote_addr();
        let handle = Handle::decode(&query.prepared_statement_handle)
            .map_err(|s| logged(peer, "DoGet", "", s))?;
        self.execute(handle, peer).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let handle = Handle {
            sql: query.query,
            params: None,
        };
        let peer = request.remote_addr();
        let refused = |s: Status| logged(peer, "Prepare", &handle.sql, s);
        let ctx = self.session().await?;
        let plan = self.plan(&ctx, &handle).await.map_err(refused)?;
        let mut parameters: Vec<(String, Option<DataType>)> = plan
            .get_parameter_types()
            .map_err(|e| refused(status(Error::DataFusion(e))))?
            .into_iter()
            .collect();
        // $1, $2, ... in order; a named one after them.
        parameters.sort_by_key(|(name, _)| {
            let digits = name.trim_start_matches('$');
            (digits.parse::<u64>().unwrap_or(u64::MAX), name.clone())
        });
        let parameter_schema = Schema::new(
            parameters
                .into_iter()
                .map(|(name, t)| Field::new(name, t.unwrap_or(DataType::Utf8), true))
                .collect::<Vec<_>>(),
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.encode()?.into(),
            dataset_schema: ipc_schema(
                exec::result_schema(&ctx, &plan)
                    .map_err(|e| refused(status(e)))?
                    .as_ref(),
            )?,
            parameter_schema: ipc_schema(&parameter_schema)?,
        })
    }

    /// Keeps the one row of parameters, `$1` its first column, for the calls that run
    /// the statement.
    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let peer = request.remote_addr();
        let mut handle = Handle::decode(&query.prepared_statement_handle)
            .map_err(|s| logged(peer, "DoPut", "", s))?;
        let refused = |s: Status| logged(peer, "DoPut", &handle.sql, s);
        // The peeked first message carries the parameters' schema: keep it.
        let flight = request.into_inner().map_err(FlightError::from);
        let mut batches =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight);
        // A row a run: several would be several runs, whose results one stream cannot
        // tell apart. Refused at the second row, not after the client sent them all.
        let mut row = None;
        while let Some(batch) = batches.next().await {
            let batch =
                batch.map_err(|e| refused(Status::invalid_argument(format!("parameters: {e}"))))?;
            if batch.num_rows() == 0 {
                continue;
            }
            if row.is_some() || batch.num_rows() > 1 {
                return Err(refused(Status::invalid_argument(
                    "parameters: more than one row given; a query binds one row (run it once \
                     for each)",
                )));
            }
            row = Some(batch);
        }
        handle.params = row;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode()?.into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        command_info(&query.into_builder().schema(), &query, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        command_info(&query.clone().into_builder().schema(), &query, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.session().await?;
        let mut builder = query.into_builder();
        for schema in schema_names(&ctx) {
            builder.append(CATALOG, schema);
        }
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        command_info(&query.clone().into_builder().schema(), &query, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.session().await?;
        let mut builder = query.into_builder();
        let catalog = ctx.catalog(CATALOG).expect("the default catalog");
        for schema_name in schema_names(&ctx) {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Ok(Some(table)) = schema.table(&name).await else {
                    continue;
                };
                builder
                    .append(CATALOG, &schema_name, &name, "TABLE", &table.schema())
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
        }
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        command_info(&query.into_builder().schema(), &query, request)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        command_info(
            &query.clone().into_builder(&SQL_INFO).schema(),
            &query,
            request,
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(one_batch(query.into_builder(&SQL_INFO).build()))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "netsql does not answer {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

use arrow_flight::Action;

/// The schemas a client may browse: the live tables, and `history` when served.
fn schema_names(ctx: &SessionContext) -> Vec<String> {
    let mut names = ctx
        .catalog(CATALOG)
        .map(|c| c.schema_names())
        .unwrap_or_default();
    names.retain(|n| n != "information_schema");
    names.sort();
    names
}
