//! How the client reaches its hosts: one gRPC channel per host, kept for the run, with
//! the bearer token on every call, TLS as `--tls-ca` says, and `--host-timeout` both to
//! connect and to answer the connection's pings while a query runs; every error a host
//! causes names that host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::{create_worker_client, BoxCloneSyncChannel};
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, ExecuteTaskRequest, GetWorkerInfoRequest,
    GetWorkerInfoResponse, SetPlanRequest, WorkerChannel, WorkerToCoordinatorMsg,
};
use futures::stream::BoxStream;
use futures::StreamExt;
use http::HeaderMap;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use url::Url;

/// The client's channels to its hosts.
#[derive(Clone)]
pub struct Channels {
    token: Option<http::HeaderValue>,
    ca: Option<Vec<u8>>,
    /// `--host-timeout`.
    timeout: Duration,
    /// What each host is called in messages (the URL as given).
    labels: Arc<HashMap<Url, String>>,
    /// Each host's `--name` as its probe answered, sent with every request after it: a
    /// host that answers to another name since refuses the work (worker::known_as).
    names: Arc<std::sync::RwLock<HashMap<Url, http::HeaderValue>>>,
    open: Arc<Mutex<HashMap<Url, BoxCloneSyncChannel>>>,
}

impl Channels {
    pub fn new(
        token: Option<&str>,
        ca: Option<Vec<u8>>,
        timeout: Duration,
        labels: HashMap<Url, String>,
    ) -> std::result::Result<Self, String> {
        let token = token
            .map(|t| {
                let mut value = http::HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| "the token is not a valid header value".to_string())?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        Ok(Channels {
            token,
            ca,
            timeout,
            labels: Arc::new(labels),
            names: Arc::default(),
            open: Arc::default(),
        })
    }

    /// The names the hosts answered their probes with.
    pub fn know(&self, live: &[(Url, String)]) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        for (url, name) in live {
            // A name no header can carry goes unchecked.
            if let Ok(value) = http::HeaderValue::from_str(name) {
                names.insert(url.clone(), value);
            }
        }
    }

    /// What `url` is called in messages.
    pub fn label(&self, url: &Url) -> String {
        self.labels
            .get(url)
            .cloned()
            .unwrap_or_else(|| url.to_string())
    }

    fn channel(&self, url: &Url) -> Result<BoxCloneSyncChannel> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = open.get(url) {
            return Ok(channel.clone());
        }
        let external = |e: &dyn std::fmt::Display| {
            DataFusionError::Execution(format!("{}: {e}", self.label(url)))
        };
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| external(&e))?
            .connect_timeout(self.timeout)
            // A host that hangs during a query (stopped, or its machine gone) answers no
            // ping: the query fails naming it within about twice the timeout, where it
            // would wait on the stream for good. A busy host still answers them.
            .http2_keep_alive_interval(self.timeout)
            .keep_alive_timeout(self.timeout);
        if url.scheme() == "https" {
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| external(&e))?;
        }
        let token = self.token.clone();
        let (names, host) = (self.names.clone(), url.clone());
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: http::Request<tonic::body::Body>| {
                if let Some(token) = &token {
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, token.clone());
                }
                let names = names.read().unwrap_or_else(|e| e.into_inner());
                if let Some(name) = names.get(&host) {
                    request
                        .headers_mut()
                        .insert(super::worker::KNOWN_AS, name.clone());
                }
                request
            })
            .service(endpoint.connect_lazy());
        let channel = BoxCloneSyncChannel::new(service);
        open.insert(url.clone(), channel.clone());
        Ok(channel)
    }
}

impl Channels {
    /// A host's worker channel whose errors are the host's own words (the caller names
    /// the host).
    pub fn unnamed(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        Ok(create_worker_client(self.channel(url)?))
    }
}

#[async_trait]
impl ChannelResolver for Channels {
    async fn get_worker_client_for_url(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        Ok(Box::new(Named {
            inner: create_worker_client(self.channel(url)?),
            host: Arc::from(self.label(url)),
            timeout: self.timeout,
        }))
    }
}

/// A host's worker channel whose errors say which host.
struct Named {
    inner: Box<dyn WorkerChannel>,
    host: Arc<str>,
    /// `--host-timeout`: the connection's ping interval and how long a ping may wait.
    timeout: Duration,
}

fn named(host: &str, err: DataFusionError) -> DataFusionError {
    DataFusionError::Execution(format!("{host}: {}", one_line(&err)))
}

/// `stream`'s errors named by its host. A connection lost after the stream had heard
/// nothing from its host for `timeout` or more is how a hung host shows: the pings,
/// sent every `timeout`, went unanswered. Its line gives that silence and the setting,
/// beside the transport's words ("stream closed because of a broken pipe"). A host
/// that crashes after as long a silence gets the same line, which is true of it too.
fn named_stream<T: Send + 'static>(
    stream: BoxStream<'static, Result<T>>,
    host: Arc<str>,
    timeout: Duration,
) -> BoxStream<'static, Result<T>> {
    let mut heard = Instant::now();
    stream
        .map(move |item| match item {
            Ok(item) => {
                heard = Instant::now();
                Ok(item)
            }
            Err(err) => {
                let silent = heard.elapsed();
                if silent >= timeout && lost_connection(&err) {
                    Err(DataFusionError::Execution(format!(
                        "{host}: connection lost after {:.1} s with no reply (--host-timeout {} s): {}",
                        silent.as_secs_f64(),
                        timeout.as_secs_f64(),
                        one_line(&err)
                    )))
                } else {
                    Err(named(&host, err))
                }
            }
        })
        .boxed()
}

/// Whether `err` is the connection failing under a call: an I/O error beneath the
/// HTTP/2 stream, not a reset or GOAWAY from the host, nor a status it sent.
fn lost_connection(err: &DataFusionError) -> bool {
    let DataFusionError::External(root) = err.find_root() else {
        return false;
    };
    let Some(status) = root.downcast_ref::<tonic::Status>() else {
        return false;
    };
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_io();
        }
        cause = error.source();
    }
    false
}

/// An error from a host as one line: a gRPC status as its message.
pub fn one_line(err: &DataFusionError) -> String {
    let text = match err.find_root() {
        DataFusionError::External(e) => match e.downcast_ref::<tonic::Status>() {
            Some(status) => with_causes(status.message(), std::error::Error::source(status)),
            None => with_causes(&e.to_string(), e.source()),
        },
        root => root.to_string(),
    };
    text.lines().collect::<Vec<_>>().join(" ")
}

/// `text` and what caused it ("tcp connect error: Connection refused"), each once.
fn with_causes(text: &str, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut text = text.to_string();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl WorkerChannel for Named {
    async fn coordinator_channel(
        &mut self,
        headers: HeaderMap,
        set_plan_request: SetPlanRequest,
        c2w_stream: BoxStream<'static, CoordinatorToWorkerMsg>,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<WorkerToCoordinatorMsg>>> {
        let stream = self
            .inner
            .coordinator_channel(headers, set_plan_request, c2w_stream, metrics, task_ctx)
            .await
            .map_err(|e| named(&self.host, e))?;
        Ok(named_stream(stream, self.host.clone(), self.timeout))
    }

    async fn execute_task(
        &mut self,
        headers: HeaderMap,
        request: ExecuteTaskRequest,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<Vec<BoxStream<'static, Result<RecordBatch>>>> {
        let streams = self
            .inner
            .execute_task(headers, request, metrics, task_ctx)
            .await
            .map_err(|e| named(&self.host, e))?;
        Ok(streams
            .into_iter()
            .map(|s| named_stream(s, self.host.clone(), self.timeout))
            .collect())
    }

    async fn get_worker_info(
        &mut self,
        request: GetWorkerInfoRequest,
    ) -> Result<GetWorkerInfoResponse> {
        self.inner
            .get_worker_info(request)
            .await
            .map_err(|e| named(&self.host, e))
    }
}
