//! What the unbounded tables (`socket_events`, `conntrack_events`) share: a thread that
//! polls one kernel subscription per scanned namespace and hands a batch per wake-up to
//! the query, so rows reach the output as they happen, until LIMIT, `--for` or Ctrl-C.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::{external, Snapshot, TableSpec};
use crate::catalog::{Scan, BATCH_ROWS};
use crate::collect::netns::Namespace;
use crate::collect::CollectError;
use crate::interrupt::Claim;

/// A kernel subscription in one namespace, read without blocking.
pub trait Source: AsRawFd + Send + 'static {
    /// What a read adds rows to: a table's snapshot, with each row's time and namespace.
    type Rows: Snapshot + Default + Send;

    /// Adds what is queued now (about `most` rows) to `rows` as `ns`'s; how many.
    fn drain_into(
        &mut self,
        rows: &mut Self::Rows,
        ns: &Namespace,
        most: usize,
    ) -> std::result::Result<usize, CollectError>;

    /// ENOBUFS seen: the kernel dropped messages at least once.
    fn overflowed(&self) -> bool;

    /// How many messages the kernel dropped, where it says.
    fn lost(&self) -> Option<u64>;
}

/// A stream that fails at once with `err`.
pub fn failed(schema: SchemaRef, err: DataFusionError) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::once(async { Err(err) }),
    ))
}

/// The rows of `spec`'s table from `subscriptions`, as they come, for `scan`.
pub fn stream<S: Source>(
    spec: &'static TableSpec<S::Rows>,
    subscriptions: Vec<(Namespace, S)>,
    scan: &Scan,
    events_for: Option<Duration>,
) -> SendableRecordBatchStream
where
    TableSpec<S::Rows>: Sync,
{
    let schema = scan.schema.clone();
    // Two batches in flight: with the one being built, what netsql holds is bounded.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let pump = Pump {
        spec,
        subscriptions,
        schema: schema.clone(),
        projection: scan.projection.clone(),
        until: events_for.map(|d| Instant::now() + d),
        claim: Claim::new(),
    };
    // A pump that panics drops its sender like one that ended: say so, never end the
    // output quietly short.
    let failed_tx = tx.clone();
    let name = spec.name;
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| pump.run(tx));
            if std::panic::catch_unwind(run).is_err() {
                let err = DataFusionError::Execution(format!("{name}: reader failed"));
                let _ = failed_tx.blocking_send(Err(err));
            }
        });
    if let Err(err) = spawned {
        return failed(schema, DataFusionError::External(Box::new(err)));
    }
    let batches = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}

/// The thread between the kernel and the query.
struct Pump<S: Source> {
    spec: &'static TableSpec<S::Rows>,
    subscriptions: Vec<(Namespace, S)>,
    schema: SchemaRef,
    projection: Vec<usize>,
    until: Option<Instant>,
    claim: Claim,
}

/// How long a poll waits before looking again at Ctrl-C, `--for` and the reader.
const TICK: Duration = Duration::from_millis(100);

/// The shortest time between two batches: under a storm of closes, events are read
/// together (a row still shows within this of its event) instead of a batch of one
/// row each, whose building and writing cost a core at 10,000 closes a second.
const GATHER: Duration = Duration::from_millis(20);

impl<S: Source> Pump<S> {
    fn run(mut self, tx: tokio::sync::mpsc::Sender<Result<RecordBatch>>) {
        let mut fds: Vec<libc::pollfd> = self
            .subscriptions
            .iter()
            .map(|(_, s)| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut sent = Instant::now() - GATHER;
        loop {
            // Ctrl-C and --for end the stream after what the kernel has already queued:
            // those sockets were destroyed before the end.
            let wait = match self.until {
                Some(until) => until
                    .checked_duration_since(Instant::now())
                    .unwrap_or_default()
                    .min(TICK),
                None => TICK,
            };
            let last = tx.is_closed() || self.claim.take() || wait.is_zero();
            if !last {
                // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
                let ready = unsafe {
                    libc::poll(
                        fds.as_mut_ptr(),
                        fds.len() as libc::nfds_t,
                        wait.as_millis() as i32,
                    )
                };
                if ready > 0 {
                    let since = sent.elapsed();
                    if since < GATHER {
                        std::thread::sleep(GATHER - since);
                    }
                }
            }
            // At the end, everything queued; otherwise a batch's worth.
            let more = loop {
                match self.read() {
                    Ok(None) => break true,
                    Ok(Some(events)) => {
                        sent = Instant::now();
                        if !self.send(&events, &tx) {
                            break false;
                        }
                    }
                    Err(err) => {
                        let _ = tx.blocking_send(Err(external(err)));
                        break false;
                    }
                }
                if !last {
                    break true;
                }
            };
            if last || !more {
                break;
            }
        }
        self.report_loss();
    }

    /// What is queued in every subscription (a batch's worth from each at most), a
    /// namespace's rows together.
    fn read(&mut self) -> std::result::Result<Option<S::Rows>, CollectError> {
        let mut events = S::Rows::default();
        for (ns, subscription) in &mut self.subscriptions {
            subscription.drain_into(&mut events, ns, BATCH_ROWS)?;
        }
        Ok((events.num_rows() > 0).then_some(events))
    }

    /// Hands the rows to the query a batch at a time; false once it wants no more.
    fn send(&self, events: &S::Rows, tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>) -> bool {
        let rows = events.num_rows();
        for start in (0..rows).step_by(BATCH_ROWS) {
            let range = start..rows.min(start + BATCH_ROWS);
            let batch = self
                .spec
                .batch(self.schema.clone(), &self.projection, events, range)
                .map_err(DataFusionError::from);
            if tx.blocking_send(batch).is_err() {
                return false;
            }
        }
        true
    }

    /// Says how many events the kernel dropped because we fell behind, if any.
    fn report_loss(&self) {
        let overflowed = self.subscriptions.iter().any(|(_, s)| s.overflowed());
        let lost: Option<u64> = self.subscriptions.iter().map(|(_, s)| s.lost()).sum();
        match lost {
            Some(0) if !overflowed => {}
            Some(n) => crate::warn!(
                "netsql: {}: the kernel dropped {n} events: netsql did not read them fast enough (its receive buffer was full)",
                self.spec.name
            ),
            None if overflowed => crate::warn!(
                "netsql: {}: the kernel dropped events (receive buffer full); this kernel does not say how many",
                self.spec.name
            ),
            None => {}
        }
    }
}
