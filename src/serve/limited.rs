//! Fleet stages under the limits a Flight SQL query has. Each task a client runs on this
//! host takes one of the `--max-queries` slots the Flight SQL service also takes from,
//! for as long as its rows stream (ExecuteTask), refused at once when none is free; that
//! stream ends at `--query-timeout`: it is dropped (so the stage's work stops) and its
//! slot freed even if the client stopped reading, and the client is told
//! DEADLINE_EXCEEDED.
//!
//! The slot is taken by the call that streams rows, not by the coordinator channel that
//! brings the plan: a refused channel reaches the client only as its plan never arriving
//! (after the engine's 10 s wait), a refused stream as the refusal itself.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::body::Body as TonicBody;
use tonic::server::NamedService;

use super::request::{busy, deadline_exceeded};

/// The worker call that runs a task's plan on this host and streams its rows.
const RUNS_A_TASK: &str = "ExecuteTask";

/// Wraps the worker's gRPC service: a slot and a deadline for each task's row stream.
#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    slots: Arc<Semaphore>,
    max_queries: usize,
    timeout: Duration,
}

impl<S> Limited<S> {
    pub fn new(inner: S, slots: Arc<Semaphore>, max_queries: usize, timeout: Duration) -> Self {
        Limited {
            inner,
            slots,
            max_queries,
            timeout,
        }
    }
}

impl<S: NamedService> NamedService for Limited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<TonicBody>> for Limited<S>
where
    S: tower::Service<http::Request<TonicBody>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> Self::Future {
        let runs_a_task = request.uri().path().rsplit('/').next() == Some(RUNS_A_TASK);
        if !runs_a_task {
            // The coordinator channel lives as long as the client's query: cutting it
            // would make the worker end the task's row stream as if finished, a clean
            // end the client could not tell from a complete answer.
            let response = self.inner.call(request);
            return Box::pin(async move { Ok(response.await?.map(TonicBody::new)) });
        }
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let refused = busy(self.max_queries).into_http();
                return Box::pin(std::future::ready(Ok(refused)));
            }
        };
        let timeout = self.timeout;
        let deadline = Instant::now() + timeout;
        let response = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = tokio::time::timeout_at(deadline, response).await else {
                return Ok(deadline_exceeded(timeout).into_http());
            };
            Ok(response?.map(|body| relay(body, deadline, timeout, permit)))
        })
    }
}

/// A relayed frame, or the inner body's error.
type Relayed = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// The response body, fed by a task of its own that owns the stage's stream and the
/// slot. At the deadline the task drops both, whether or not the client is reading
/// (hyper stops polling a body while HTTP/2 flow control holds it, so a deadline kept
/// in the body itself would wait on a client that stopped reading); the body then ends
/// with DEADLINE_EXCEEDED once the client has what was already sent.
fn relay<B>(
    body: B,
    deadline: Instant,
    timeout: Duration,
    permit: OwnedSemaphorePermit,
) -> TonicBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let (frames, received) = tokio::sync::mpsc::channel::<Relayed>(2);
    let expired = Arc::new(AtomicBool::new(false));
    let expiring = expired.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let mut body = std::pin::pin!(body);
        let pump = async {
            while let Some(frame) = body.frame().await {
                if frames.send(frame.map_err(Into::into)).await.is_err() {
                    return; // the client went away
                }
            }
        };
        if tokio::time::timeout_at(deadline, pump).await.is_err() {
            expiring.store(true, Ordering::Release);
        }
    });
    TonicBody::new(Received {
        received,
        expired,
        timeout,
        ended: false,
    })
}

/// What the client reads: the relayed frames, then DEADLINE_EXCEEDED if the relay was
/// cut.
struct Received {
    received: tokio::sync::mpsc::Receiver<Relayed>,
    expired: Arc<AtomicBool>,
    timeout: Duration,
    ended: bool,
}

impl Body for Received {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match this.received.poll_recv(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                if !this.expired.load(Ordering::Acquire) {
                    return Poll::Ready(None);
                }
                let mut trailers = http::HeaderMap::new();
                // A status whose message holds only printable text always fits a header.
                let _ = deadline_exceeded(this.timeout).add_header(&mut trailers);
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
