//! `socket_events`: an unbounded table, one row per TCP or UDP socket the kernel frees
//! from the moment the query starts (sock_diag's destroy groups, as `ss -E`), with the
//! `tcp_info` totals a TCP connection ended with. It ends on LIMIT, `--for`, or Ctrl-C.
//!
//! One subscription per scanned namespace, opened inside it; a thread polls them all and
//! hands a batch per wake-up to the query, so rows reach the output as they happen.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};

use super::columns::{timestamp_us, utf8};
use super::sockets::Sockets;
use super::{external, Column, Kind, TableSpec, TablesConfig};
use crate::catalog::{Collected, LiveTable, Scan};
use crate::collect::netns::{self, Access, Namespace};
use crate::collect::sockdiag::events::Subscription;
use crate::collect::CollectError;

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

/// event, time, the identity columns of `tcp_info` the event carries (its cookie too),
/// then every other `tcp_info` column (NULL for UDP).
pub static SPEC: LazyLock<TableSpec<Sockets>> = LazyLock::new(|| {
    let mut columns = vec![EVENT, TIME];
    for column in super::tcp_info::SPEC.columns {
        if NOT_SENT.contains(&column.name) {
            continue;
        }
        columns.push(column.clone());
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
                return Some(super::events::failed(schema, err));
            }
        };
        Some(super::events::stream(
            &SPEC,
            subscriptions,
            scan,
            self.config.events_for,
        ))
    }
}

impl super::events::Source for Subscription {
    type Rows = Sockets;

    fn drain_into(
        &mut self,
        events: &mut Sockets,
        ns: &Namespace,
        most: usize,
    ) -> std::result::Result<usize, CollectError> {
        let read = self.drain(events.rows.to_mut(), most)?;
        if read > 0 {
            let now = chrono::Utc::now().timestamp_micros();
            events.times.resize(events.rows.len(), now);
            events.spans.push(events.rows.len(), ns);
        }
        Ok(read)
    }

    fn overflowed(&self) -> bool {
        Subscription::overflowed(self)
    }

    fn lost(&self) -> Option<u64> {
        Subscription::lost(self)
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

pub fn table(config: &TablesConfig) -> Arc<dyn LiveTable> {
    Arc::new(SocketEvents::new(config))
}
