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
//! see [`crate::fleet::worker`].

mod counted;
mod request;
mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::error::Error;
use crate::history::read::History;
use crate::tables::TablesConfig;

pub(crate) use request::Auth;

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

/// Who may connect: the bearer token and TLS every server of netsql's takes (Flight,
/// fleet workers, metrics).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
}

impl Access {
    /// The token, read from its file.
    pub fn token(&self) -> Result<Option<String>, Error> {
        self.token_file.as_deref().map(read_token).transpose()
    }

    /// Refuses to listen beyond loopback without a token.
    pub fn check_reach(&self, listen: SocketAddr, token: bool) -> Result<(), Error> {
        if !token && !listen.ip().is_loopback() {
            return Err(Error::Usage(format!(
                "refusing to serve on {listen} without --token-file: anyone who can reach it could read this host's sockets and processes"
            )));
        }
        Ok(())
    }

    fn read(path: &PathBuf) -> Result<Vec<u8>, Error> {
        std::fs::read(path).map_err(|source| Error::Input {
            path: path.clone(),
            source,
        })
    }

    /// tonic's TLS settings, when a certificate is given.
    fn tonic(&self) -> Result<Option<ServerTlsConfig>, Error> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(Self::read(cert)?, Self::read(key)?));
        if let Some(ca) = &self.tls_client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(Self::read(ca)?));
        }
        Ok(Some(tls))
    }

    /// The same settings for rustls itself (the metrics endpoint, plain HTTP).
    pub fn rustls(&self) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, Error> {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{server::WebPkiClientVerifier, RootCertStore, ServerConfig};
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let bad = |what: &PathBuf, e: &dyn std::fmt::Display| {
            Error::Usage(format!("TLS: {}: {e}", what.display()))
        };
        let certs = |path: &PathBuf| -> Result<Vec<CertificateDer<'static>>, Error> {
            CertificateDer::pem_slice_iter(&Self::read(path)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(path, &e))
        };
        let chain = certs(cert)?;
        let private = PrivateKeyDer::from_pem_slice(&Self::read(key)?).map_err(|e| bad(key, &e))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
        let builder = match &self.tls_client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for root in certs(ca)? {
                    roots.add(root).map_err(|e| bad(ca, &e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| bad(ca, &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, private)
            .map_err(|e| bad(cert, &e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

/// How long running queries may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// Reads a token file that only its owner may read; the token is its first line.
pub fn read_token(path: &std::path::Path) -> Result<String, Error> {
    use std::os::unix::fs::PermissionsExt;
    let input = |source| Error::Input {
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(input)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{}: mode {:o} lets group or others read the token; chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(input)?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(Error::Usage(format!("{}: no token in it", path.display())));
    }
    Ok(token)
}

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
    if let Some(tls) = serving.access.tonic()? {
        builder = builder
            .tls_config(tls)
            .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
    }
    // A bad metric query is refused here, before anything listens.
    let metrics = match &serving.metrics {
        Some(exporting) => Some(crate::metrics::bind(exporting, &serving.access, tables).await?),
        None => None,
    };
    let service = service::Netsql::new(
        tables.clone(),
        history,
        serving.query_timeout,
        serving.max_queries,
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
    eprintln!(
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
            worker.into_worker_server(),
            move |r| worker_auth.check(r),
        )))
        .serve_with_incoming_shutdown(incoming, async {
            crate::interrupt::until_set(&stop).await;
            eprintln!("netsql: stopping: no new requests, running queries get up to 10 s");
        });
    let mut server = std::pin::pin!(server);
    let stopping = async {
        // Once shutdown begins, running queries have DRAIN to finish.
        crate::interrupt::until_set(&stop).await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        result = &mut server => result.map_err(|e| Error::Usage(format!("server: {e}"))),
        () = stopping => Ok(()),
    }
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
