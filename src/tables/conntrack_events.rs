//! `conntrack_events`: an unbounded table, one row per event of the kernel's connection
//! tracking (a new entry, a change, an entry destroyed) from the moment the query starts,
//! as `conntrack -E`, in each namespace read. A destroy carries the entry's counters.
//! It ends on LIMIT, `--for` or Ctrl-C.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};

use super::columns::{timestamp_us, utf8};
use super::conntrack::Flows;
use super::{external, Column, Kind, TableSpec, TablesConfig};
use crate::catalog::{Collected, LiveTable, Scan};
use crate::collect::conntrack::events::Subscription;
use crate::collect::netns::{self, Namespace};
use crate::collect::CollectError;

pub const NAME: &str = "conntrack_events";

const EVENT: Column<Flows> = Column {
    name: "event",
    kind: Kind::Utf8,
    doc: "What happened: new, update (state, status, mark or timeout changed) or destroy",
    needs: &[],
    build: |s, range| utf8(&s.rows[range], |r| r.event.map(|e| e.name())),
};

const TIME: Column<Flows> = Column {
    name: "time",
    kind: Kind::Timestamp,
    doc: "When netsql received the event (UTC, microseconds)",
    needs: &[],
    build: |s, range| timestamp_us(&s.rows[range], |r| r.received_us),
};

/// event, time, then every column of `conntrack` (those an event does not carry, such as
/// `use`, NULL).
pub static SPEC: LazyLock<TableSpec<Flows>> = LazyLock::new(|| {
    let mut columns = vec![EVENT, TIME];
    columns.extend(super::conntrack::SPEC.columns.iter().cloned());
    TableSpec {
        name: NAME,
        doc: "One row per connection-tracking event from the time the query starts (conntrack -E): new, update, destroy (with the entry's counters); runs until LIMIT, --for or Ctrl-C",
        // Made once per process: the spec is as static as the other tables'.
        columns: Box::leak(columns.into_boxed_slice()),
    }
});

#[derive(Debug)]
pub struct ConntrackEvents {
    config: TablesConfig,
    schema: SchemaRef,
}

impl LiveTable for ConntrackEvents {
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
        Err(DataFusionError::Internal(format!(
            "{NAME} is read as a stream"
        )))
    }

    fn stream(&self, scan: &Scan) -> Option<SendableRecordBatchStream> {
        Some(match subscribe(&self.config, scan) {
            Ok(subscriptions) => {
                super::events::stream(&SPEC, subscriptions, scan, self.config.events_for)
            }
            Err(err) => super::events::failed(scan.schema.clone(), err),
        })
    }
}

/// A subscription in each namespace the scan selects.
fn subscribe(config: &TablesConfig, scan: &Scan) -> Result<Vec<(Namespace, Subscription)>> {
    let namespaces = super::netns::namespaces(config, scan)?;
    let visited = netns::visit(&config.root, namespaces, |_, access| {
        super::conntrack::entered(access)?;
        Subscription::open()
    });
    let visited = visited.map_err(external)?;
    netns::warn_invisible(&visited.invisible);
    Ok(visited.read)
}

impl super::events::Source for Subscription {
    type Rows = Flows;

    fn drain_into(
        &mut self,
        events: &mut Flows,
        ns: &Namespace,
        most: usize,
    ) -> std::result::Result<usize, CollectError> {
        let before = events.rows.len();
        let read = self.drain(&mut events.rows, most)?;
        if read > 0 {
            let now = chrono::Utc::now().timestamp_micros();
            for flow in &mut events.rows[before..] {
                flow.received_us = Some(now);
            }
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

pub fn table(config: &TablesConfig) -> Arc<dyn LiveTable> {
    Arc::new(ConntrackEvents {
        config: config.clone(),
        schema: SPEC.schema(),
    })
}
