//! One module per table: its spec, declared once, and the code that turns collector
//! output into Arrow columns. Only projected columns are ever built.

pub mod columns;
pub mod conntrack;
pub mod conntrack_events;
pub mod conntrack_stats;
pub mod events;
pub mod interfaces;
pub mod literals;
pub mod multicast_groups;
pub mod netns;
pub mod processes;
pub mod protocol_stats;
pub mod routes;
pub mod services;
pub mod socket_events;
pub mod socket_names;
pub mod socket_owners;
pub mod sockets;
pub mod sockets_filter;
pub mod tcp_info;
pub mod users;

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};

use crate::catalog::{Collected, LiveTable, Scan};
use crate::collect::sockets::Source;
use crate::collect::Root;

/// A column's Arrow type, kept to the few the tables use so specs can be `static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Utf8,
    Int32,
    Int64,
    UInt32,
    UInt64,
    /// A list of strings (`services.aliases`).
    Utf8List,
    /// Microseconds since the epoch, UTC.
    Timestamp,
    Boolean,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Utf8 => DataType::Utf8,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::UInt32 => DataType::UInt32,
            Kind::UInt64 => DataType::UInt64,
            Kind::Utf8List => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Boolean => DataType::Boolean,
        }
    }
}

/// One column: its name, type, one-line doc, what it needs from the OS beyond its
/// table's bare rows, and how to build it for a range of a snapshot `S`'s rows.
pub struct Column<S> {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
    /// Asked for only when a scan projects the column: a scan's needs are its
    /// projection's ([`TableSpec::needed`]).
    pub needs: &'static [Need],
    pub build: fn(&S, Range<usize>) -> ArrayRef,
}

/// What a column needs read beyond its table's bare rows (for sockets, sock_diag's
/// message header or the /proc/net line; for processes, the pid): a sock_diag attribute
/// to ask for, a /proc file, or a lookup elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// INET_DIAG_INFO for its two timer counters (retransmits, probes).
    TimerCounters,
    /// INET_DIAG_INFO, the whole `struct tcp_info`.
    TcpInfo,
    /// INET_DIAG_CONG.
    Congestion,
    /// INET_DIAG_SKMEMINFO / UNIX_DIAG_MEMINFO.
    SocketMemory,
    /// INET_DIAG_TOS / INET_DIAG_TCLASS.
    Tos,
    /// INET_DIAG_SHUTDOWN (sent unasked; decoded only when wanted).
    Shutdown,
    /// INET_DIAG_MARK (sent unasked to CAP_NET_ADMIN).
    Mark,
    /// INET_DIAG_CGROUP_ID (sent unasked).
    CgroupId,
    /// INET_DIAG_SOCKOPT (sent unasked, Linux 5.10+).
    SocketOptions,
    /// The cgroup2 tree walked, to name a cgroup id's path.
    CgroupPaths,
    /// /proc/net/unix's RefCount and Flags (sock_diag has neither).
    UnixExtras,
    /// The walk of every /proc/<pid>/fd for each socket's holder.
    Owners,
    /// The holders' program names.
    Programs,
    /// /etc/passwd's names.
    UserNames,
    /// /proc/<pid>/stat.
    ProcStat,
    /// /proc/<pid>/status (uid, gid).
    ProcStatus,
    /// /proc/<pid>/statm (resident memory, exact).
    ProcStatm,
    /// /proc/<pid>/cmdline.
    ProcCmdline,
    /// /proc/<pid>/exe.
    ProcExe,
    /// /proc/<pid>/cgroup.
    ProcCgroup,
    /// /proc/<pid>/ns/net.
    ProcNetns,
    /// The boot time (/proc/stat's btime), to date a process's start.
    BootTime,
}

/// The needs of a scan's projected columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needed(u32);

impl Needed {
    pub fn has(self, need: Need) -> bool {
        self.0 & (1 << need as u32) != 0
    }
}

impl<S> Clone for Column<S> {
    fn clone(&self) -> Self {
        Column {
            name: self.name,
            kind: self.kind,
            doc: self.doc,
            needs: self.needs,
            build: self.build,
        }
    }
}

/// What a table collects in one scan.
pub trait Snapshot {
    fn num_rows(&self) -> usize;
}

/// A table's single declaration: it drives the schema, the docs and docs/tables.md.
pub struct TableSpec<S: 'static> {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column<S>],
}

impl<S: Snapshot> TableSpec<S> {
    /// The Arrow schema. Docs stay out of it: DataFusion compares field metadata as part
    /// of a type (a `$port` compared with `local_port` and `remote_port` would be two
    /// types), so DESCRIBE finds them through [`docs_of`].
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name, c.kind.data_type(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Builds the projected columns of `snapshot`'s rows in `rows`; an empty projection
    /// (`count(*)`) gives a batch with a row count and no columns.
    pub fn batch(
        &self,
        schema: SchemaRef,
        projection: &[usize],
        snapshot: &S,
        rows: Range<usize>,
    ) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = projection
            .iter()
            .map(|&i| (self.columns[i].build)(snapshot, rows.clone()))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(schema, columns, &options)
    }

    pub fn info(&self) -> TableInfo {
        TableInfo {
            name: self.name,
            doc: self.doc,
            columns: self
                .columns
                .iter()
                .map(|c| (c.name, c.kind.data_type(), c.doc))
                .collect(),
        }
    }
}

/// A live table made from a spec and a collector: every table is one of these.
pub struct SpecTable<S: 'static> {
    spec: &'static TableSpec<S>,
    config: TablesConfig,
    schema: SchemaRef,
    collect: fn(&TablesConfig, &Scan) -> Result<S, DataFusionError>,
    /// Which filters the collector applies itself (`Exact`) or uses as hints.
    pushdown: fn(&Expr) -> TableProviderFilterPushDown,
    /// What a scan asks of the kernel, for EXPLAIN.
    kernel_request: Option<KernelRequest<S>>,
    /// Collects in parts as they are read, when the table can (see
    /// [`LiveTable::collect_parts`]).
    parts: Option<Parts<S>>,
}

/// Collects a scan's rows in parts, handing each to the closure until it answers `false`.
type Parts<S> = fn(&TablesConfig, &Scan, &mut dyn FnMut(S) -> bool) -> Result<(), DataFusionError>;

/// Says what a scan of a spec asks of the kernel, as EXPLAIN shows it.
type KernelRequest<S> = fn(&TableSpec<S>, &Scan) -> String;

/// For tables that take no filters.
fn no_pushdown(_: &Expr) -> TableProviderFilterPushDown {
    TableProviderFilterPushDown::Unsupported
}

impl<S: Snapshot> SpecTable<S> {
    pub fn new(
        spec: &'static TableSpec<S>,
        config: &TablesConfig,
        collect: fn(&TablesConfig, &Scan) -> Result<S, DataFusionError>,
    ) -> Self {
        SpecTable {
            spec,
            config: config.clone(),
            schema: spec.schema(),
            collect,
            pushdown: no_pushdown,
            kernel_request: None,
            parts: None,
        }
    }

    /// Lets the table hand its rows on in parts as they are read.
    pub fn with_parts(mut self, parts: Parts<S>) -> Self {
        self.parts = Some(parts);
        self
    }

    /// Lets EXPLAIN show what a scan asks the kernel for.
    pub fn with_kernel_request(mut self, request: KernelRequest<S>) -> Self {
        self.kernel_request = Some(request);
        self
    }

    /// Lets the collector take filters: `pushdown` says which it applies exactly.
    pub fn with_pushdown(mut self, pushdown: fn(&Expr) -> TableProviderFilterPushDown) -> Self {
        self.pushdown = pushdown;
        self
    }
}

impl<S> std::fmt::Debug for SpecTable<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecTable")
            .field("name", &self.spec.name)
            .finish()
    }
}

impl<S: Snapshot + Send + 'static> LiveTable for SpecTable<S>
where
    TableSpec<S>: Sync,
{
    fn name(&self) -> &'static str {
        self.spec.name
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn filter_pushdown(&self, filter: &Expr) -> TableProviderFilterPushDown {
        (self.pushdown)(filter)
    }

    fn kernel_request(&self, scan: &Scan) -> Option<String> {
        self.kernel_request.map(|request| request(self.spec, scan))
    }

    fn collect(&self, scan: &Scan) -> Result<Box<dyn Collected>, DataFusionError> {
        Ok(Box::new(
            self.built(scan, (self.collect)(&self.config, scan)?),
        ))
    }

    fn collect_parts(
        &self,
        scan: &Scan,
        part: &mut dyn FnMut(Box<dyn Collected>) -> bool,
    ) -> Result<(), DataFusionError> {
        match self.parts {
            Some(parts) => parts(&self.config, scan, &mut |snapshot| {
                part(Box::new(self.built(scan, snapshot)))
            }),
            None => {
                part(self.collect(scan)?);
                Ok(())
            }
        }
    }
}

impl<S: Snapshot> SpecTable<S> {
    fn built(&self, scan: &Scan, snapshot: S) -> LazyBatches<S> {
        LazyBatches {
            spec: self.spec,
            schema: scan.schema.clone(),
            projection: scan.projection.clone(),
            snapshot,
        }
    }
}

/// A snapshot whose Arrow columns are built one batch at a time, as the query pulls
/// them: the plain rows and one batch are in memory, never a second copy of every row.
struct LazyBatches<S: 'static> {
    spec: &'static TableSpec<S>,
    schema: SchemaRef,
    projection: Vec<usize>,
    snapshot: S,
}

impl<S: Snapshot + Send> Collected for LazyBatches<S> {
    fn num_rows(&self) -> usize {
        self.snapshot.num_rows()
    }

    fn batch(&self, rows: Range<usize>) -> Result<RecordBatch, DataFusionError> {
        Ok(self
            .spec
            .batch(self.schema.clone(), &self.projection, &self.snapshot, rows)?)
    }
}

impl<S> TableSpec<S> {
    /// What the columns `scan` projects need from the OS, together.
    pub fn needed(&self, scan: &Scan) -> Needed {
        self.needed_by(scan.projection.iter().copied())
    }

    /// What the columns at `indices` need, together.
    pub fn needed_by(&self, indices: impl Iterator<Item = usize>) -> Needed {
        let bits = indices
            .flat_map(|i| self.columns[i].needs)
            .fold(0, |bits, &need| bits | 1 << need as u32);
        Needed(bits)
    }
}

/// A spec without its builders: what docs and the REPL need.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: Vec<(&'static str, DataType, &'static str)>,
}

/// How the live tables reach the OS.
#[derive(Debug, Clone, Default)]
pub struct TablesConfig {
    pub root: Root,
    pub source: Source,
    /// `--memory-limit`: the most DataFusion's operators (sorts, joins, aggregates) may hold.
    pub memory_limit: Option<usize>,
    /// `--netns`: the namespaces per-namespace tables read until `SET netsql.netns`.
    pub netns: String,
    /// `--for`: how long a query over `socket_events` listens (until Ctrl-C or LIMIT
    /// without it).
    pub events_for: Option<std::time::Duration>,
    /// How a large TCP table is walked: `record`, `serve` and metrics scrapes take one
    /// walk (less CPU), every other mode two at once (less time) where a namespace has
    /// two cores to itself.
    pub walks: crate::collect::sockets::Walks,
}

/// One table: its name, its docs, and how a session's copy is made.
struct Entry {
    name: &'static str,
    info: fn() -> TableInfo,
    make: fn(&TablesConfig) -> Arc<dyn LiveTable>,
}

/// Every table, with its docs: the one list a new table is added to.
fn registry() -> Vec<Entry> {
    vec![
        Entry {
            name: sockets::SPEC.name,
            info: || sockets::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&sockets::SPEC, config, sockets::collect)
                        .with_pushdown(sockets::pushdown)
                        .with_kernel_request(sockets::kernel_request)
                        .with_parts(sockets::collect_parts),
                )
            },
        },
        Entry {
            name: tcp_info::SPEC.name,
            info: || tcp_info::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&tcp_info::SPEC, config, tcp_info::collect)
                        .with_pushdown(sockets::pushdown)
                        .with_kernel_request(sockets::kernel_request)
                        .with_parts(tcp_info::collect_parts),
                )
            },
        },
        Entry {
            name: socket_events::SPEC.name,
            info: || socket_events::SPEC.info(),
            make: |config| socket_events::table(config),
        },
        Entry {
            name: socket_owners::SPEC.name,
            info: || socket_owners::SPEC.info(),
            make: |config| {
                Arc::new(SpecTable::new(
                    &socket_owners::SPEC,
                    config,
                    socket_owners::collect,
                ))
            },
        },
        Entry {
            name: processes::SPEC.name,
            info: || processes::SPEC.info(),
            make: |config| Arc::new(SpecTable::new(&processes::SPEC, config, processes::collect)),
        },
        Entry {
            name: services::SPEC.name,
            info: || services::SPEC.info(),
            make: |config| Arc::new(SpecTable::new(&services::SPEC, config, services::collect)),
        },
        Entry {
            name: users::SPEC.name,
            info: || users::SPEC.info(),
            make: |config| Arc::new(SpecTable::new(&users::SPEC, config, users::collect)),
        },
        Entry {
            name: interfaces::SPEC.name,
            info: || interfaces::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&interfaces::SPEC, config, interfaces::collect)
                        .with_pushdown(netns::pushdown),
                )
            },
        },
        Entry {
            name: routes::SPEC.name,
            info: || routes::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&routes::SPEC, config, routes::collect)
                        .with_pushdown(netns::pushdown),
                )
            },
        },
        Entry {
            name: protocol_stats::SPEC.name,
            info: || protocol_stats::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&protocol_stats::SPEC, config, protocol_stats::collect)
                        .with_pushdown(netns::pushdown),
                )
            },
        },
        Entry {
            name: multicast_groups::SPEC.name,
            info: || multicast_groups::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&multicast_groups::SPEC, config, multicast_groups::collect)
                        .with_pushdown(netns::pushdown),
                )
            },
        },
        Entry {
            name: conntrack::SPEC.name,
            info: || conntrack::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&conntrack::SPEC, config, conntrack::collect)
                        .with_pushdown(conntrack::pushdown)
                        .with_kernel_request(conntrack::kernel_request),
                )
            },
        },
        Entry {
            name: conntrack_events::SPEC.name,
            info: || conntrack_events::SPEC.info(),
            make: |config| conntrack_events::table(config),
        },
        Entry {
            name: conntrack_stats::SPEC.name,
            info: || conntrack_stats::SPEC.info(),
            make: |config| {
                Arc::new(
                    SpecTable::new(&conntrack_stats::SPEC, config, conntrack_stats::collect)
                        .with_pushdown(netns::pushdown),
                )
            },
        },
        Entry {
            name: netns::SPEC.name,
            info: || netns::SPEC.info(),
            make: |config| Arc::new(SpecTable::new(&netns::SPEC, config, netns::collect)),
        },
    ]
}

/// Every table by name, each made for a session only when first asked for.
pub fn makers(config: &TablesConfig) -> Vec<(&'static str, crate::catalog::Maker)> {
    registry()
        .into_iter()
        .map(|entry| {
            let config = config.clone();
            let maker: crate::catalog::Maker = Box::new(move || (entry.make)(&config));
            (entry.name, maker)
        })
        .collect()
}

/// A session's copy of the table called `name`, if there is one.
pub fn make(config: &TablesConfig, name: &str) -> Option<Arc<dyn LiveTable>> {
    registry()
        .into_iter()
        .find(|entry| entry.name == name)
        .map(|entry| (entry.make)(config))
}

/// The tables whose rows arrive over time (no snapshot: listened to, until LIMIT,
/// `--for` or Ctrl-C).
pub fn streams() -> Vec<&'static str> {
    let config = TablesConfig::default();
    registry()
        .into_iter()
        .filter(|entry| (entry.make)(&config).unbounded())
        .map(|entry| entry.name)
        .collect()
}

/// Docs of every table, in registration order (docs/tables.md, `\d`).
pub fn infos() -> Vec<TableInfo> {
    registry().iter().map(|entry| (entry.info)()).collect()
}

/// The one-line doc of each of a described table's columns: those of the live table
/// whose columns these are (a history table's are the same plus its `taken`, `date`
/// and `host`); all `None` when no table has them all.
pub fn docs_of(columns: &[&str]) -> Vec<Option<&'static str>> {
    const HISTORY: [&str; 3] = ["taken", "date", "host"];
    let infos = infos();
    let doc = |info: &TableInfo, name: &str| {
        info.columns
            .iter()
            .find(|(c, _, _)| *c == name)
            .map(|(_, _, doc)| *doc)
    };
    let owner = infos.iter().find(|info| {
        info.columns.len() + HISTORY.len() >= columns.len()
            && columns
                .iter()
                .all(|c| HISTORY.contains(c) || doc(info, c).is_some())
            && info.columns.iter().all(|(c, _, _)| columns.contains(c))
    });
    columns
        .iter()
        .map(|c| owner.and_then(|info| doc(info, c)))
        .collect()
}

/// A collector error as DataFusion carries it.
pub fn external(err: crate::collect::CollectError) -> DataFusionError {
    DataFusionError::External(Box::new(err))
}

/// Whether the owner note is worded as net-tools' netstat words it (`netsql netstat`).
static NOTE_AS_NETSTAT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on the owner note is net-tools' own text, as `netstat` prints it: `netsql
/// netstat` prints what netstat prints, on stderr too.
pub fn note_as_netstat() {
    NOTE_AS_NETSTAT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// netstat's note when some processes' descriptors could not be read: once per run, and
/// only for a non-root user (even root may not read PID 1's in some sandboxes, as here).
pub fn warn_unidentified(denied: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: geteuid has no preconditions.
    if denied > 0 && unsafe { libc::geteuid() } != 0 {
        ONCE.call_once(|| {
            if NOTE_AS_NETSTAT.load(std::sync::atomic::Ordering::Relaxed) {
                // net-tools' netstat.c, two lines.
                crate::warn!(
                    "(Not all processes could be identified, non-owned process info\n will not be shown, you would have to be root to see it all.)"
                );
            } else {
                crate::warn!(
                    "netsql: (Not all processes could be identified, non-owned process info will not be shown, you would have to be root to see it all.)"
                );
            }
        });
    }
}

/// docs/tables.md's table reference, generated from the specs (a test keeps them in step).
pub fn reference_markdown() -> String {
    let mut text = String::new();
    for info in infos() {
        text.push_str(&format!(
            "### `{}`\n\n{}.\n\n| column | type | meaning |\n|---|---|---|\n",
            info.name, info.doc
        ));
        for (name, data_type, doc) in &info.columns {
            text.push_str(&format!("| `{name}` | {data_type} | {doc} |\n"));
        }
        text.push('\n');
    }
    text
}

/// What a moment's scans (see [`crate::collect::sockets::SharedDump`]) ask of a shared TCP dump, from
/// `reads`: each table the moment reads and the columns it reads of it (every column
/// when `None`). When two or more are `sockets` or `tcp_info`, one dump asking for what
/// they want together; `None` when at most one is, whose dump streams as a query's.
pub fn moment_dump<'a>(
    reads: impl IntoIterator<Item = (&'a str, Option<Vec<&'a str>>)>,
) -> Option<crate::collect::sockdiag::wire::Extensions> {
    let mut readers = 0;
    let mut ext = crate::collect::sockdiag::wire::Extensions::default();
    for (table, columns) in reads {
        let Some(spec) = [&sockets::SPEC, &tcp_info::SPEC]
            .into_iter()
            .find(|spec| spec.name == table)
        else {
            continue;
        };
        let read =
            |c: &Column<sockets::Sockets>| columns.as_ref().is_none_or(|n| n.contains(&c.name));
        let indices = spec.columns.iter().enumerate();
        let needed = spec.needed_by(indices.filter(|(_, c)| read(c)).map(|(i, _)| i));
        ext = ext.union(sockets::extensions(needed));
        readers += 1;
    }
    (readers >= 2).then_some(ext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::sockdiag::wire::Extensions;

    /// Each table names each column once: socket_events copied tcp_info's new cookie
    /// beside its own, and every query of it failed to plan.
    #[test]
    fn every_table_names_each_column_once() {
        let config = TablesConfig::default();
        for entry in registry() {
            let schema = (entry.make)(&config).schema();
            let mut seen = std::collections::HashSet::new();
            for field in schema.fields() {
                assert!(
                    seen.insert(field.name()),
                    "{}: {} twice",
                    entry.name,
                    field.name()
                );
            }
        }
    }

    #[test]
    fn a_moment_shares_a_dump_only_among_two_socket_tables() {
        let info = Extensions {
            tcp_info: true,
            ..Extensions::default()
        };
        let read = |t, c: &[&'static str]| (t, Some(c.to_vec()));
        // One socket table: its dump streams as a query's.
        assert_eq!(moment_dump([read("sockets", &["state"])]), None);
        assert_eq!(moment_dump([("sockets", None), ("processes", None)]), None);
        // Two: one dump asking for what both want.
        let both = [read("sockets", &["state"]), read("tcp_info", &["rtt_us"])];
        assert_eq!(moment_dump(both), Some(info));
        let whole = moment_dump([("sockets", None), ("tcp_info", None)]).unwrap();
        assert!(whole.tcp_info && whole.congestion && whole.skmem && whole.tos);
    }
}
