//! `netsql serve`: the live tables over Arrow Flight SQL (gRPC), read-only, for any Flight
//! SQL client (ADBC, the JDBC driver, Grafana). Every request gets a session of its own
//! and takes the one path (`exec::Runner`) in read-only mode: no DELETE, no SET, no
//! COPY, no file or URL tables, nothing shared between clients.
//!
//! Security: a bearer token (compared in constant time, read from a file only its owner
//! may read) on every call, required to listen beyond loopback; TLS with rustls,
//! optionally requiring client certificates. Limits: a timeout and a memory cap per
//! query, at most `--max-queries` running (more are refused at once, never queued).
//!
//! The same port, token and TLS serve fleet queries' stages (`worker.WorkerService`):
//! see [`crate::fleet::worker`]. They share the `--max-queries` slots and the timeout.

mod counted;
mod limited;
mod request;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::sync::Semaphore;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::error::Error;
use crate::history::read::History;
use crate::tables::TablesConfig;

use crate::access::Access;

/// `netsql serve`'s checked options.
#[derive(Debug, Clone)]
pub struct Serving {
    pub listen: SocketAddr,
    pub access: Access,
    pub query_timeout: Duration,
    pub max_queries: usize,
    /// `--name`: this host in fleet queries' `host` column.
    pub name: String,
    /// `--metrics ADDR`: also a Prometheus endpoint, behind the same token and TLS.
    pub metrics: Option<crate::metrics::Exporting>,
}

/// The largest message a client may send a worker: a stage's plan is a few KiB; the
/// engine's own default (no limit) would let one client fill this host's memory.
const MAX_PLAN_BYTES: usize = 16 << 20;

/// How long running queries may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM or SIGINT, then lets running queries finish (up to
/// 10 s) and returns.
pub async fn run(
    serving: &Serving,
    tables: &TablesConfig,
    history: Option<History>,
) -> Result<(), Error> {
    let token = serving.access.token()?;
    serving
        .access
        .check_reach(serving.listen, token.is_some())?;
    let mut builder = Server::builder();
    if let Some(tls) = tonic_tls(&serving.access)? {
        builder = builder
            .tls_config(tls)
            .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
    }
    // A bad metric query is refused here, before anything listens.
    let metrics = match &serving.metrics {
        Some(exporting) => Some(crate::metrics::bind(exporting, &serving.access, tables).await?),
        None => None,
    };
    // Flight SQL queries and fleet tasks share the slots.
    let slots = Arc::new(Semaphore::new(serving.max_queries));
    let service = service::Netsql::new(
        tables.clone(),
        history,
        serving.query_timeout,
        serving.max_queries,
        slots.clone(),
    );
    let auth = request::Auth::new(token);
    let worker = crate::fleet::worker::worker(crate::fleet::codec::Local {
        tables: tables.clone(),
        name: std::sync::Arc::from(serving.name.as_str()),
    })?;
    let worker_auth = auth.clone();
    let listener = tokio::net::TcpListener::bind(serving.listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", serving.listen)))?;
    let bound = listener.local_addr().map_err(Error::Io)?;
    crate::warn!(
        "netsql: serving Flight SQL and fleet queries as {:?} on {}{}",
        serving.name,
        if serving.access.tls_cert.is_some() {
            "grpc+tls://"
        } else {
            "grpc://"
        },
        bound
    );
    let stop = crate::interrupt::termination().map_err(Error::Io)?;
    if let Some(metrics) = metrics {
        tokio::spawn(metrics.serve(stop.clone()));
    }
    let incoming = tokio_stream_of(listener);
    let server = builder
        .add_service(FlightServiceServer::with_interceptor(service, move |r| {
            auth.check(r)
        }))
        .add_service(counted::Logged::new(InterceptedService::new(
            limited::Limited::new(
                worker
                    .into_worker_server()
                    .max_decoding_message_size(MAX_PLAN_BYTES),
                slots,
                serving.max_queries,
                serving.query_timeout,
            ),
            move |r| worker_auth.check(r),
        )))
        .serve_with_incoming_shutdown(incoming, async {
            stop.raised().await;
            crate::warn!("netsql: stopping: no new requests, running queries get up to 10 s");
        });
    let mut server = std::pin::pin!(server);
    let stopping = async {
        // Once shutdown begins, running queries have DRAIN to finish.
        stop.raised().await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        result = &mut server => result.map_err(|e| Error::Usage(format!("server: {e}"))),
        () = stopping => Ok(()),
    }
}

/// tonic's TLS settings, when a certificate is given.
fn tonic_tls(access: &Access) -> Result<Option<ServerTlsConfig>, Error> {
    let (Some(cert), Some(key)) = (&access.tls_cert, &access.tls_key) else {
        return Ok(None);
    };
    let mut tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(Access::read(cert)?, Access::read(key)?));
    if let Some(ca) = &access.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(Access::read(ca)?));
    }
    Ok(Some(tls))
}

/// The accepted connections of `listener` as the stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}
