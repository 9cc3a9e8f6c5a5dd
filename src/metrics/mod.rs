//! `netsql metrics` and `netsql serve --metrics`: saved queries as a Prometheus endpoint.
//! `GET /metrics` answers the text format 0.0.4, or OpenMetrics 1.0 when the scraper's
//! `Accept` asks for it.
//!
//! Each metric is a query under `queries/metrics/` or a user queries folder's `metrics/`
//! ([`family`]), checked at start. A scrape collects every table those queries read once
//! and runs them all against that copy ([`scrape`]); scrapes that arrive while one runs
//! share it, and `--metrics-min-interval` serves a recent one again. A query that fails or
//! outlives the scrape's time (`X-Prometheus-Scrape-Timeout-Seconds`) is left out and
//! counted in `netsql_query_errors_total`; the scrape still answers.
//!
//! Security as for Flight: the same bearer token (401 without it) and TLS; without a
//! token only loopback.

pub mod exposition;
pub mod family;
pub mod scrape;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use self::exposition::{Format, Sample, Written};
use self::family::Family;
use self::scrape::Scraped;
use crate::access::{Access, Token};
use crate::error::Error;
use crate::tables::TablesConfig;

/// What an exporter answers and how often it collects: the options `netsql metrics` and
/// `serve --metrics` share.
#[derive(Debug, Clone)]
pub struct Exporting {
    pub listen: SocketAddr,
    /// `--metrics-min-interval`: a scrape sooner than this after the last is answered
    /// from it.
    pub min_interval: Duration,
    /// `--metrics-param NAME=VALUE`.
    pub params: BTreeMap<String, String>,
    /// The longest a scrape's queries may run when the scraper does not say.
    pub query_timeout: Duration,
    /// Folders whose `metrics/` holds more metric queries.
    pub queries: Vec<PathBuf>,
    /// `--metrics-only`: these metric queries alone (all when empty).
    pub only: Vec<String>,
}

/// The part of a scrape's time its queries may take: the rest is for writing the answer.
const SHARE_OF_TIMEOUT: f64 = 0.9;

/// A running exporter: its checked families, the scrape under way, the last one.
pub struct Exporter {
    tables: TablesConfig,
    families: Arc<Vec<Family>>,
    min_interval: Duration,
    query_timeout: Duration,
    state: Mutex<State>,
    auth: Token,
    /// Per family: whether its query still runs (a late one runs on until its next
    /// yield; the next scrape does not start a second copy beside it).
    busy: Vec<Arc<AtomicBool>>,
}

/// Clears the scrape under way when its task ends, however it ends.
struct ClearRunning<'a>(&'a Exporter);

impl Drop for ClearRunning<'_> {
    fn drop(&mut self) {
        self.0.state().running = None;
    }
}

/// A scrape under way, which every request that comes meanwhile awaits.
type Running = Shared<BoxFuture<'static, Option<Arc<Scraped>>>>;

#[derive(Default)]
struct State {
    last: Option<(Instant, Arc<Scraped>)>,
    /// The scrape under way, and its deadline, which a scraper joining it may extend.
    running: Option<(Running, scrape::Deadline)>,
    /// `netsql_query_errors_total`, per query, since start.
    errors: BTreeMap<String, u64>,
    /// Each query's last error, so a repeated one is logged once.
    logged: BTreeMap<String, String>,
}

impl Exporter {
    /// Loads and checks the metric queries: a bad one is an error here, at start.
    pub async fn new(
        exporting: &Exporting,
        tables: &TablesConfig,
        token: Option<String>,
    ) -> Result<Arc<Exporter>, Error> {
        let ctx = crate::exec::context(tables)?;
        let runner = crate::exec::Runner::queries(&ctx, &tables.root);
        let mut families = Vec::new();
        for family in family::load(
            &runner,
            &exporting.queries,
            &exporting.only,
            &exporting.params,
        )
        .await?
        {
            // A metric of a table this host may not have (conntrack without
            // nf_conntrack): asked once now, and left out, said once, when it cannot be
            // answered, rather than counted as an error in every scrape.
            if family.optional {
                if let Err(why) = runner.collect(&family.sql, &family.params).await {
                    crate::warn!("netsql: metric {} left out: {why}", family.sample_name());
                    continue;
                }
            }
            families.push(family);
        }
        Ok(Arc::new(Exporter {
            tables: tables.clone(),
            min_interval: exporting.min_interval,
            query_timeout: exporting.query_timeout,
            state: Mutex::new(State::default()),
            auth: Token::new(token),
            busy: families.iter().map(|_| Arc::default()).collect(),
            families: Arc::new(families),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A scrape's result: a recent one, the one under way, or a new one, by `deadline`
    /// (this request's; a scrape it joins keeps its own). `None` when none is to be had
    /// by then.
    async fn scraped(self: &Arc<Self>, deadline: Instant) -> Option<Arc<Scraped>> {
        let running = {
            let mut state = self.state();
            match (&state.last, &state.running) {
                (Some((at, last)), _) if at.elapsed() < self.min_interval => {
                    return Some(last.clone())
                }
                (_, Some((running, until))) => {
                    until.extend(deadline);
                    running.clone()
                }
                (_, None) => {
                    // A task of its own: it goes on when the requests that wait for it
                    // go away, and a panic in it is an answer, not a stuck exporter.
                    let this = self.clone();
                    let until = scrape::Deadline::new(deadline);
                    let scrape_until = until.clone();
                    let running = tokio::spawn(async move {
                        let _clear = ClearRunning(&this);
                        let scraped = Arc::new(
                            scrape::scrape(&this.tables, &this.families, &this.busy, &scrape_until)
                                .await,
                        );
                        this.finished(&scraped);
                        scraped
                    })
                    .map(Result::ok)
                    .boxed()
                    .shared();
                    state.running = Some((running.clone(), until));
                    running
                }
            }
        };
        // The scrape's deadline is the latest of its scrapers': one who joins it waits no
        // longer than its own, then takes the last scrape, if any.
        // One where nothing finished in time is no answer either (served, its empty
        // families read as "no sockets").
        match tokio::time::timeout_at(deadline + Duration::from_millis(50), running).await {
            Ok(Some(scraped)) if !scraped.nothing_in_time() => Some(scraped),
            Ok(_) | Err(_) => self.state().last.as_ref().map(|(_, last)| last.clone()),
        }
    }

    /// Files a finished scrape: the last one now, its errors counted and logged.
    fn finished(&self, scraped: &Arc<Scraped>) {
        let mut state = self.state();
        // One scraper's tiny timeout made every query late: the last good scrape stays
        // (it was served, empty, to every scraper within --metrics-min-interval).
        if !scraped.nothing_in_time() {
            state.last = Some((Instant::now(), scraped.clone()));
        }
        for (family, answer) in self.families.iter().zip(&scraped.answers) {
            let Some(error) = &answer.error else {
                state.logged.remove(&family.query);
                continue;
            };
            *state.errors.entry(family.query.clone()).or_default() += 1;
            if state.logged.get(&family.query) != Some(error) {
                crate::warn!("netsql: metric query {}: {error}", family.query);
                state.logged.insert(family.query.clone(), error.clone());
            }
        }
    }

    /// The exposition of one scrape, with netsql's own metrics.
    fn render(&self, scraped: &Scraped, format: Format) -> String {
        let mut out = String::new();
        for (family, answer) in self.families.iter().zip(&scraped.answers) {
            exposition::family(
                &mut out,
                format,
                &Written {
                    name: &family.name,
                    kind: family.kind,
                    help: &family.help,
                    samples: &answer.samples,
                },
            );
        }
        let by_query = |value: &dyn Fn(&Family, &scrape::Answer) -> String| -> Vec<Sample> {
            self.families
                .iter()
                .zip(&scraped.answers)
                .map(|(family, answer)| Sample {
                    labels: vec![("query".into(), family.query.clone())],
                    value: value(family, answer),
                })
                .collect()
        };
        let durations = by_query(&|_, answer| exposition::float(answer.took.as_secs_f64()));
        let errors = {
            let state = self.state();
            by_query(&|family, _| {
                state
                    .errors
                    .get(&family.query)
                    .copied()
                    .unwrap_or(0)
                    .to_string()
            })
        };
        let collected: Vec<Sample> = scraped
            .collected
            .iter()
            .map(|(table, took)| Sample {
                labels: vec![("table".into(), table.clone())],
                value: exposition::float(took.as_secs_f64()),
            })
            .collect();
        for (name, kind, help, samples) in [
            (
                family::QUERY_DURATION.0,
                family::QUERY_DURATION.1,
                "How long each metric query took in the last scrape",
                &durations,
            ),
            (
                family::QUERY_ERRORS.0,
                family::QUERY_ERRORS.1,
                "Scrapes in which each metric query failed or ran out of time",
                &errors,
            ),
            (
                family::TABLE_COLLECT.0,
                family::TABLE_COLLECT.1,
                "How long collecting each table took in the last scrape",
                &collected,
            ),
        ] {
            exposition::family(
                &mut out,
                format,
                &Written {
                    name,
                    kind,
                    help,
                    samples,
                },
            );
        }
        exposition::end(&mut out, format);
        out
    }

    /// Answers one HTTP request.
    async fn answer(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if !self.auth.allows(header("authorization").as_deref()) {
            return reply(
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "a valid bearer token is required\n".into(),
                Some(("www-authenticate", "Bearer")),
            );
        }
        match (request.method(), request.uri().path()) {
            (&Method::GET | &Method::HEAD, "/metrics") => {}
            (&Method::GET | &Method::HEAD, "/") => {
                return plain(StatusCode::OK, "netsql metrics: GET /metrics\n");
            }
            (_, "/metrics" | "/") => {
                return reply(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "text/plain; charset=utf-8",
                    "GET /metrics\n".into(),
                    Some(("allow", "GET, HEAD")),
                );
            }
            _ => return plain(StatusCode::NOT_FOUND, "not found: GET /metrics\n"),
        }
        let format = Format::from_accept(header("accept").as_deref());
        let allowed = header("x-prometheus-scrape-timeout-seconds")
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| Duration::from_secs_f64((t * SHARE_OF_TIMEOUT).min(86_400.0)))
            .map_or(self.query_timeout, |t| t.min(self.query_timeout));
        let Some(scraped) = self.scraped(Instant::now() + allowed).await else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no scrape finished in the time given: the one under way goes on\n",
            );
        };
        let body = self.render(&scraped, format);
        reply(StatusCode::OK, format.content_type(), body, None)
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", text.into(), None)
}

/// A response with its content type (and one more header); a plain 500 should the
/// builder refuse them.
fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    extra: Option<(&'static str, &'static str)>,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", content_type);
    if let Some((name, value)) = extra {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| {
            let mut response = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
}

/// `netsql metrics`: answers scrapes until SIGTERM or SIGINT.
pub async fn run(
    exporting: &Exporting,
    access: &Access,
    tables: &TablesConfig,
) -> Result<(), Error> {
    let endpoint = bind(exporting, access, tables).await?;
    let stop = crate::interrupt::termination().map_err(Error::Io)?;
    endpoint.serve(stop).await;
    Ok(())
}

/// An exporter listening, its metric queries checked, not answering yet.
pub struct Endpoint {
    exporter: Arc<Exporter>,
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<tokio::sync::Semaphore>,
}

/// Connections served at once: scrapers are few; idle or slow clients get no more.
const CONNECTIONS: usize = 64;

/// How long a client may take to send a request's headers (or its TLS handshake).
const HEADERS_WITHIN: Duration = Duration::from_secs(10);

/// Checks the metric queries and listens on `exporting.listen`: every refusal (a bad
/// metric file, no token beyond loopback, a port in use) happens here, before serving.
pub async fn bind(
    exporting: &Exporting,
    access: &Access,
    tables: &TablesConfig,
) -> Result<Endpoint, Error> {
    let token = access.token()?;
    access.check_reach(exporting.listen, token.is_some())?;
    let tls = access.rustls()?;
    let exporter = Exporter::new(exporting, tables, token).await?;
    let listener = tokio::net::TcpListener::bind(exporting.listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", exporting.listen)))?;
    let bound = listener.local_addr().map_err(Error::Io)?;
    crate::warn!(
        "netsql: serving {} metrics on {}://{bound}/metrics",
        exporter.families.len(),
        if tls.is_some() { "https" } else { "http" }
    );
    Ok(Endpoint {
        exporter,
        listener,
        acceptor: tls.map(tokio_rustls::TlsAcceptor::from),
        connections: Arc::new(tokio::sync::Semaphore::new(CONNECTIONS)),
    })
}

impl Endpoint {
    /// Answers scrapes until `stop` is set.
    pub async fn serve(self, stop: crate::interrupt::Termination) {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = stop.raised() => return,
            };
            let Ok((stream, _peer)) = accepted else {
                // Out of descriptors, say: the next accept would fail at once as well.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            // At most CONNECTIONS at once; one more is closed at once.
            let Ok(slot) = self.connections.clone().try_acquire_owned() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (exporter, acceptor) = (self.exporter.clone(), self.acceptor.clone());
            tokio::spawn(async move {
                connection(exporter, acceptor, stream).await;
                drop(slot);
            });
        }
    }
}

/// One client's connection: TLS if configured, then HTTP/1.1 or h2 until it closes. A
/// client that fails its handshake or goes away is its own problem.
async fn connection(
    exporter: Arc<Exporter>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stream: tokio::net::TcpStream,
) {
    let service = hyper::service::service_fn(move |request| {
        let exporter = exporter.clone();
        async move { Ok::<_, Infallible>(exporter.answer(request).await) }
    });
    let mut http =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADERS_WITHIN);
    // An HTTP/2 client that does not answer pings (one that sent the preface and stops
    // there) is closed, as an HTTP/1 one that sends no headers is.
    http.http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(HEADERS_WITHIN)
        .keep_alive_timeout(HEADERS_WITHIN);
    let _ = match acceptor {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HEADERS_WITHIN, acceptor.accept(stream)).await;
            let Ok(Ok(stream)) = handshake else {
                return;
            };
            http.serve_connection(
                hyper_util::rt::TokioIo::new(WriteDeadline::new(stream)),
                service,
            )
            .await
        }
        None => {
            // hyper's header timeout runs from an HTTP/1 request's first byte, once the
            // protocol is told: a client that connects and sends nothing, or one byte of
            // what could be HTTP/2's preface, would hold its slot for good (64 such, and
            // no scrape is served). It has as long to be told apart as to send headers.
            if !tokio::time::timeout(HEADERS_WITHIN, told_apart(&stream))
                .await
                .unwrap_or(false)
            {
                return;
            }
            http.serve_connection(
                hyper_util::rt::TokioIo::new(WriteDeadline::new(stream)),
                service,
            )
            .await
        }
    };
}

/// HTTP/2's connection preface, which hyper-util reads in full before it decides.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until the client has sent enough to tell HTTP/1 from HTTP/2: the whole preface,
/// or bytes that are not its start. False when the client closed first.
async fn told_apart(stream: &tokio::net::TcpStream) -> bool {
    let mut seen = [0u8; H2_PREFACE.len()];
    loop {
        match stream.peek(&mut seen).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n == seen.len() || !H2_PREFACE.starts_with(&seen[..n]) => return true,
            // peek returns at once while those bytes wait unread: wait for more.
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A connection whose writes fail once they have waited `HEADERS_WITHIN` for the
/// client to read: one that asks and never reads kept its slot, and its answer in
/// memory, for good (64 such: no scrape served, 580 MB more for an 8 MB answer).
struct WriteDeadline<S> {
    inner: S,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S) -> Self {
        WriteDeadline {
            inner,
            stalled: None,
        }
    }

    /// `poll`'s answer, or an error once writes have waited too long.
    fn waited<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        poll: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(HEADERS_WITHIN)));
        match stalled.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.waited(cx, poll)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.waited(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.waited(cx, poll)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
