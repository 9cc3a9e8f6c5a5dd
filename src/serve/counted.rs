//! One log line per fleet worker call, as per Flight SQL request: what a client's query
//! made this host send (a partial aggregate, or rows), in bytes on the wire, counted as
//! the response body goes out.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::body::Body as TonicBody;
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;

/// Wraps a gRPC service: each response's bytes are counted and logged when it ends.
#[derive(Clone)]
pub struct Logged<S> {
    inner: S,
}

impl<S> Logged<S> {
    pub fn new(inner: S) -> Self {
        Logged { inner }
    }
}

impl<S: NamedService> NamedService for Logged<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<TonicBody>> for Logged<S>
where
    S: tower::Service<http::Request<TonicBody>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> Self::Future {
        let call = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(|i| i.remote_addr());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let status = grpc_status(response.headers());
            Ok(response.map(|body| {
                TonicBody::new(Counted {
                    body: Box::pin(body),
                    bytes: 0,
                    status,
                    line: Some(Line {
                        peer,
                        call: format!("worker.{call}"),
                        started,
                    }),
                })
            }))
        })
    }
}

/// What the log line says besides the bytes and status.
struct Line {
    peer: Option<std::net::SocketAddr>,
    call: String,
    started: Instant,
}

/// A response body that counts what passes and logs once it ends (or is dropped).
struct Counted<B> {
    body: Pin<Box<B>>,
    bytes: usize,
    status: Option<String>,
    line: Option<Line>,
}

/// The gRPC status a header or trailer block carries, by name.
fn grpc_status(headers: &http::HeaderMap) -> Option<String> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(format!("{:?}", tonic::Code::from_i32(code)))
}

impl<B> Counted<B> {
    fn log(&mut self) {
        if let Some(line) = self.line.take() {
            super::request::log(
                line.peer,
                &line.call,
                "",
                0,
                self.bytes,
                line.started.elapsed(),
                self.status.as_deref().unwrap_or("Cancelled"),
            );
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = this.body.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len();
                }
                if let Some(status) = frame.trailers_ref().and_then(grpc_status) {
                    this.status = Some(status);
                }
            }
            Poll::Ready(None) => this.log(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        self.log();
    }
}
