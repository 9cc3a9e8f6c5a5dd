//! Fleet stages under the limits a Flight SQL query has. Each task a client runs on this
//! host takes one of the `--max-queries` slots the Flight SQL service also takes from,
//! for as long as its rows stream (ExecuteTask), refused at once when none is free; every
//! worker call ends at `--query-timeout`, its stream cut with DEADLINE_EXCEEDED (which
//! drops the stage's streams, so its work stops).
//!
//! The slot is taken by the call that streams rows, not by the coordinator channel that
//! brings the plan: a refused channel reaches the client only as its plan never arriving
//! (after the engine's 10 s wait), a refused stream as the refusal itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::body::Body as TonicBody;
use tonic::server::NamedService;

use super::request::{busy, deadline_exceeded};

/// The worker call that runs a task's plan on this host and streams its rows.
const RUNS_A_TASK: &str = "ExecuteTask";

/// Wraps the worker's gRPC service: slots for tasks, a deadline for every call.
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
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> Self::Future {
        let runs_a_task = request.uri().path().rsplit('/').next() == Some(RUNS_A_TASK);
        let permit = if runs_a_task {
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let refused = busy(self.max_queries).into_http();
                    return Box::pin(std::future::ready(Ok(refused)));
                }
            }
        } else {
            None
        };
        let timeout = self.timeout;
        let deadline = Instant::now() + timeout;
        let response = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = tokio::time::timeout_at(deadline, response).await else {
                return Ok(deadline_exceeded(timeout).into_http());
            };
            Ok(response?.map(|body| {
                TonicBody::new(Bounded {
                    body: Some(Box::pin(body)),
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout,
                    permit,
                })
            }))
        })
    }
}

/// A response body that ends at the deadline with DEADLINE_EXCEEDED in its trailers,
/// holding its task's slot until it ends or is dropped.
struct Bounded<B> {
    /// None once the deadline has cut it.
    body: Option<Pin<Box<B>>>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    permit: Option<OwnedSemaphorePermit>,
}

impl<B> Body for Bounded<B>
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
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        if this.deadline.as_mut().poll(cx).is_ready() {
            // Dropping the stage's stream stops its work.
            this.body = None;
            this.permit = None;
            let mut trailers = http::HeaderMap::new();
            // A status whose message holds only printable text always fits a header.
            let _ = deadline_exceeded(this.timeout).add_header(&mut trailers);
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let polled = body.as_mut().poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}
