//! What every request shares: the bearer-token check, statement handles, a query being
//! streamed (its deadline, its slot, its log line), and errors as gRPC statuses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::error::FlightError;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Request, Status};

use crate::error::Error;

/// Checks `authorization: Bearer <token>` on every call, in constant time.
#[derive(Clone)]
pub(super) struct Auth(crate::access::Token);

impl Auth {
    pub(super) fn new(token: Option<String>) -> Self {
        Auth(crate::access::Token::new(token))
    }

    pub(super) fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if self.0.allows(given) {
            return Ok(request);
        }
        let status = Status::unauthenticated("a valid bearer token is required");
        log(
            request.remote_addr(),
            "auth",
            "",
            0,
            0,
            Duration::ZERO,
            &status_name(&status),
        );
        Err(status)
    }
}

/// A statement as its handle carries it: the SQL and any bound parameters. Handles are
/// the whole state of a prepared statement, so the server keeps none between calls.
#[derive(Default)]
pub(super) struct Handle {
    pub(super) sql: String,
    /// The one row of parameters bound, `$1` its first column, as the client sent it
    /// (its types, its NULLs).
    pub(super) params: Option<RecordBatch>,
}

impl Handle {
    /// `{"sql": ..., "params": [the bytes of an Arrow IPC stream of the row]}`.
    pub(super) fn encode(&self) -> Result<Vec<u8>, Status> {
        let params = match &self.params {
            None => None,
            Some(row) => {
                let failed = |e: ArrowError| Status::internal(format!("parameters: {e}"));
                let mut bytes = Vec::new();
                let mut writer =
                    StreamWriter::try_new(&mut bytes, &row.schema()).map_err(failed)?;
                writer.write(row).map_err(failed)?;
                writer.finish().map_err(failed)?;
                drop(writer);
                Some(bytes)
            }
        };
        Ok(serde_json::json!({ "sql": self.sql, "params": params })
            .to_string()
            .into_bytes())
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Handle, Status> {
        let bad =
            |why: &str| Status::invalid_argument(format!("not a netsql statement handle: {why}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        let sql = value["sql"]
            .as_str()
            .ok_or_else(|| bad("no sql"))?
            .to_string();
        let params = match &value["params"] {
            serde_json::Value::Null => None,
            serde_json::Value::Array(items) => {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("parameters are not bytes"))?;
                let mut reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                    .map_err(|e| bad(&format!("parameters: {e}")))?;
                let row = reader
                    .next()
                    .transpose()
                    .map_err(|e| bad(&format!("parameters: {e}")))?
                    .filter(|row| row.num_rows() == 1)
                    .ok_or_else(|| bad("parameters are not one row"))?;
                Some(row)
            }
            _ => return Err(bad("parameters are not bytes")),
        };
        Ok(Handle { sql, params })
    }
}

/// A query being streamed to a client.
pub(super) struct Running {
    stream: datafusion::execution::SendableRecordBatchStream,
    deadline: tokio::time::Instant,
    timeout: Duration,
    rows: usize,
    bytes: usize,
    started: Instant,
    peer: Option<SocketAddr>,
    sql: String,
    /// Set when it ended in an error.
    status: Option<String>,
    ended: bool,
    _permit: OwnedSemaphorePermit,
    _ctx: SessionContext,
}

impl Running {
    /// A query's stream with the slot and session it holds until it ends; its deadline
    /// is `timeout` after the request `started`.
    pub(super) fn new(
        stream: datafusion::execution::SendableRecordBatchStream,
        timeout: Duration,
        started: Instant,
        peer: Option<SocketAddr>,
        sql: String,
        permit: OwnedSemaphorePermit,
        ctx: SessionContext,
    ) -> Running {
        Running {
            stream,
            deadline: tokio::time::Instant::from_std(started) + timeout,
            timeout,
            rows: 0,
            bytes: 0,
            started,
            peer,
            sql,
            status: None,
            ended: false,
            _permit: permit,
            _ctx: ctx,
        }
    }

    pub(super) async fn next(&mut self) -> Option<Result<RecordBatch, FlightError>> {
        if self.ended {
            return None;
        }
        let next = tokio::time::timeout_at(self.deadline, self.stream.next()).await;
        let failed = match next {
            Ok(None) => {
                self.ended = true;
                return None;
            }
            Ok(Some(Ok(batch))) => {
                self.rows += batch.num_rows();
                self.bytes += batch.get_array_memory_size();
                return Some(Ok(batch));
            }
            Ok(Some(Err(err))) => status(Error::DataFusion(err)),
            Err(_) => deadline_exceeded(self.timeout),
        };
        self.ended = true;
        self.status = Some(status_name(&failed));
        Some(Err(FlightError::Tonic(Box::new(failed))))
    }
}

/// The rows `running` streams, fed by a task of its own that owns the query (its
/// stream, slot and session). At the deadline the task drops the query whether or not
/// the client is reading (hyper stops polling a response while HTTP/2 flow control holds
/// it, so a deadline checked only as rows are asked for would wait on a client that
/// stopped reading, holding the slot); the client then gets what was already sent and
/// DEADLINE_EXCEEDED, as fleet tasks do (limited.rs). A client that goes away drops the
/// query at once, even before its first batch.
pub(super) fn relay(
    running: Running,
) -> impl futures::Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static {
    let (rows, received) = tokio::sync::mpsc::channel(2);
    let ended = Arc::new(AtomicU8::new(RUNNING));
    let ending = ended.clone();
    let timeout = running.timeout;
    tokio::spawn(async move {
        let mut running = running;
        let deadline = running.deadline;
        let pump = async {
            loop {
                tokio::select! {
                    biased;
                    () = rows.closed() => return, // the client went away
                    item = running.next() => match item {
                        Some(item) => {
                            if rows.send(item).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    },
                }
            }
        };
        if tokio::time::timeout_at(deadline, pump).await.is_err() {
            running.status = Some(status_name(&deadline_exceeded(timeout)));
            ending.store(EXPIRED, Ordering::Release);
        } else {
            ending.store(DONE, Ordering::Release);
        }
        // The query, its slot and its log line go now; the rows already sent stay
        // for the client.
        drop(running);
    });
    futures::stream::unfold(Some(received), move |received| {
        let ended = ended.clone();
        async move {
            let mut received = received?;
            if let Some(item) = received.recv().await {
                return Some((item, Some(received)));
            }
            // The task ended: by the deadline, or without ending its query (it panicked),
            // which must not read as a complete answer.
            let failed = match ended.load(Ordering::Acquire) {
                DONE => return None,
                EXPIRED => deadline_exceeded(timeout),
                _ => Status::internal("the query ended without its result"),
            };
            Some((Err(FlightError::Tonic(Box::new(failed))), None))
        }
    })
}

/// How a [`relay`]'s task ended.
const RUNNING: u8 = 0;
const DONE: u8 = 1;
const EXPIRED: u8 = 2;

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped before its end: the client went away, and the query with it.
        let outcome = match (&self.status, self.ended) {
            (Some(status), _) => status.clone(),
            (None, true) => "OK".to_string(),
            (None, false) => "Cancelled (client went away)".to_string(),
        };
        log(
            self.peer,
            "DoGet",
            &self.sql,
            self.rows,
            self.bytes,
            self.started.elapsed(),
            &outcome,
        );
    }
}

pub(super) fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the query ran longer than {} s (--query-timeout)",
        timeout.as_secs_f64()
    ))
}

/// Every one of `--max-queries` slots is taken: refused at once, never queued.
pub(super) fn busy(max_queries: usize) -> Status {
    Status::resource_exhausted(format!(
        "netsql serves at most {max_queries} queries at once (--max-queries); try again"
    ))
}

/// netsql's error as the gRPC status a client should see.
pub(super) fn status(err: Error) -> Status {
    let text = err.to_string();
    if let Error::DataFusion(df) = &err {
        if matches!(df.find_root(), DataFusionError::ResourcesExhausted(_)) {
            return Status::resource_exhausted(text);
        }
    }
    if text.starts_with("read-only") || text.contains("not allowed here") {
        return Status::permission_denied(text);
    }
    Status::invalid_argument(text)
}

pub(super) fn status_name(status: &Status) -> String {
    format!("{:?}", status.code())
}

/// One line per request on stderr: time, peer, call, statement (first 200 characters,
/// control characters escaped), rows, bytes, duration, status.
pub(super) fn log(
    peer: Option<SocketAddr>,
    call: &str,
    sql: &str,
    rows: usize,
    bytes: usize,
    took: Duration,
    status: &str,
) {
    let short: String = sql.chars().take(200).collect();
    let short = crate::output::table::escape_text(&short);
    let peer = peer.map_or("-".to_string(), |p| p.to_string());
    crate::warn!(
        "{} peer={peer} call={call} rows={rows} bytes={bytes} ms={:.1} status={status} sql=\"{}\"",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        took.as_secs_f64() * 1000.0,
        short.replace('"', "\\\"")
    );
}
