//! `socket_events`: an unbounded table, one row per TCP or UDP socket the kernel frees
//! from the moment the query starts (sock_diag's destroy groups, as `ss -E`), with the
//! `tcp_info` totals a TCP connection ended with. It ends on LIMIT, `--for`, or Ctrl-C.
//!
//! One subscription per scanned namespace, opened inside it; a thread polls them all and
//! hands a batch per wake-up to the query, so rows reach the output as they happen.

use std::os::fd::AsRawFd;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::columns::{timestamp_us, utf8};
use super::sockets::{self, Sockets};
use super::{external, Column, Kind, TableSpec, TablesConfig};
use crate::catalog::{Collected, LiveTable, Scan, BATCH_ROWS};
use crate::collect::netns::{self, Access, Namespace};
use crate::collect::sockdiag::events::Subscription;
use crate::collect::CollectError;
use crate::interrupt::Claim;

pub const NAME: &str = "socket_events";

const EVENT: Column<Sockets> = Column {
    name: "event",
    kind: Kind::Utf8,
    doc: "What happened: destroy (the kernel freed the socket)",
    needs: &[],
    build: |s, range| utf8(&s.rows[range], |_| Some("destroy")),
};

const TIME: Column<Sockets> = Column {
    name: "time",
    kind: Kind::Timestamp,
    doc: "When netsql received the event (UTC, microseconds)",
    needs: &[],
    build: |s, range| timestamp_us(&s.times[range], |t| Some(*t)),
};

/// Identity columns of `tcp_info` a destroyed socket no longer has: the kernel sends no
/// inode, uid or congestion algorithm with the event.
const NOT_SENT: &[&str] = &["inode", "uid", super::tcp_info::CONGESTION];

/// event, time, the identity columns of `sockets` with its cookie, then every
/// `tcp_info` column (NULL for UDP).
pub static SPEC: LazyLock<TableSpec<Sockets>> = LazyLock::new(|| {
    let mut columns = vec![EVENT, TIME];
    for column in super::tcp_info::SPEC.columns {
        if NOT_SENT.contains(&column.name) {
            continue;
        }
        columns.push(column.clone());
        if column.name == sockets::col::NETNS_NAME {
            columns.push(sockets::column::COOKIE);
        }
    }
    TableSpec {
        name: NAME,
        doc: "One row per TCP or UDP socket the kernel destroys from the time the query starts (ss -E), with its tcp_info totals at the end; runs until LIMIT, --for or Ctrl-C",
        // Made once per process: the spec is as static as the other tables'.
        columns: Box::leak(columns.into_boxed_slice()),
    }
});

#[derive(Debug)]
pub struct SocketEvents {
    config: TablesConfig,
    schema: SchemaRef,
}

impl SocketEvents {
    pub fn new(config: &TablesConfig) -> Self {
        SocketEvents {
            config: config.clone(),
            schema: SPEC.schema(),
        }
    }
}

impl LiveTable for SocketEvents {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn filter_pushdown(&self, filter: &Expr) -> TableProviderFilterPushDown {
        super::netns::pushdown(filter)
    }

    fn unbounded(&self) -> bool {
        true
    }

    fn collect(&self, _scan: &Scan) -> Result<Box<dyn Collected>> {
        Err(DataFusionError::Internal(
            "socket_events is read as a stream".into(),
        ))
    }

    fn stream(&self, scan: &Scan) -> Option<SendableRecordBatchStream> {
        let schema = scan.schema.clone();
        let subscriptions = match subscribe(&self.config, scan) {
            Ok(subscriptions) => subscriptions,
            Err(err) => {
                return Some(Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::once(async { Err(err) }),
                )))
            }
        };
        // Two batches in flight: with the one being built, what netsql holds is bounded.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let pump = Pump {
            subscriptions,
            schema: schema.clone(),
            projection: scan.projection.clone(),
            until: self.config.events_for.map(|d| Instant::now() + d),
            claim: Claim::new(),
        };
        // A pump that panics drops its sender like one that ended: say so, never end
        // the output quietly short.
        let failed = tx.clone();
        let spawned = std::thread::Builder::new()
            .name("socket_events".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| pump.run(tx));
                if std::panic::catch_unwind(run).is_err() {
                    let err = DataFusionError::Execution("socket_events: reader failed".into());
                    let _ = failed.blocking_send(Err(err));
                }
            });
        if let Err(err) = spawned {
            let err = DataFusionError::External(Box::new(err));
            return Some(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async { Err(err) }),
            )));
        }
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        Some(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// A subscription in each namespace the scan selects.
fn subscribe(config: &TablesConfig, scan: &Scan) -> Result<Vec<(Namespace, Subscription)>> {
    let namespaces = super::netns::namespaces(config, scan)?;
    let visited = netns::visit(&config.root, namespaces, |_, access| match access {
        Access::Current | Access::Entered => Subscription::open(),
        Access::Files => Err(CollectError::Netns(
            "socket_events: cannot enter that network namespace to subscribe (needs CAP_SYS_ADMIN)"
                .into(),
        )),
    });
    let visited = match visited {
        Ok(visited) => visited,
        Err(CollectError::NetlinkRefused { errno, .. }) => {
            return Err(DataFusionError::Plan(format!(
                "socket_events: the kernel refused the sock_diag destroy-event subscription: {errno} (it takes CAP_NET_ADMIN on some kernels)"
            )))
        }
        Err(err) => return Err(external(err)),
    };
    netns::warn_invisible(&visited.invisible);
    Ok(visited.read)
}

/// The thread between the kernel and the query.
struct Pump {
    subscriptions: Vec<(Namespace, Subscription)>,
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

impl Pump {
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
    fn read(&mut self) -> std::result::Result<Option<Sockets>, CollectError> {
        let mut events = Sockets::default();
        for (ns, subscription) in &mut self.subscriptions {
            let read = subscription.drain(&mut events.rows, BATCH_ROWS)?;
            if read > 0 {
                let now = chrono::Utc::now().timestamp_micros();
                events.times.resize(events.rows.len(), now);
                events.spans.push(events.rows.len(), ns);
            }
        }
        Ok((!events.rows.is_empty()).then_some(events))
    }

    /// Hands the rows to the query a batch at a time; false once it wants no more.
    fn send(&self, events: &Sockets, tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>) -> bool {
        let rows = events.rows.len();
        for start in (0..rows).step_by(BATCH_ROWS) {
            let range = start..rows.min(start + BATCH_ROWS);
            let batch = SPEC
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
        let overflowed = self.subscriptions.iter().any(|(_, s)| s.overflowed);
        let lost: Option<u64> = self.subscriptions.iter().map(|(_, s)| s.lost()).sum();
        match lost {
            Some(0) if !overflowed => {}
            Some(n) => eprintln!(
                "netsql: socket_events: the kernel dropped {n} events: netsql did not read them fast enough (its receive buffer was full)"
            ),
            None if overflowed => eprintln!(
                "netsql: socket_events: the kernel dropped events (receive buffer full); this kernel does not say how many"
            ),
            None => {}
        }
    }
}

pub fn table(config: &TablesConfig) -> Arc<dyn LiveTable> {
    Arc::new(SocketEvents::new(config))
}
