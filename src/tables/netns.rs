//! What every per-namespace table shares: which namespaces a scan reads (the session's
//! `netsql.netns`, or filters on `netns`/`netns_name`, which choose by themselves), the
//! two columns saying which namespace a row is from, and the `net_namespaces` table.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray, UInt64Array};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

use super::columns::{int32, uint64, utf8, utf8_owned};
use super::literals::column_name;
use super::{external, Column, Kind, Snapshot, TableSpec, TablesConfig};
use crate::catalog::Scan;
use crate::collect::containers::{self, Container};
use crate::collect::netns::{self, Access, Namespace, Scope};
use crate::collect::socket_row::path_text;
use crate::collect::{CollectError, Root};

pub const NETNS: &str = "netns";
pub const NETNS_NAME: &str = "netns_name";
pub const NETNS_DOC: &str =
    "Inode of the row's network namespace (as in /proc/<pid>/ns/net; joins net_namespaces.inode)";
pub const NETNS_NAME_DOC: &str =
    "`ip netns` name of that namespace when one is bound under /run/netns; NULL otherwise";

/// Which namespace each run of rows came from: rows are appended one namespace after
/// another, so a namespace is a range, not a column stored per row.
#[derive(Debug, Default)]
pub struct Spans {
    /// (end of the namespace's rows, inode, name), ascending by end.
    parts: Vec<(usize, u64, Option<String>)>,
}

impl Spans {
    /// The rows up to `end` belong to `ns`.
    pub fn push(&mut self, end: usize, ns: &Namespace) {
        self.parts.push((end, ns.inode, ns.name.clone()));
    }

    fn at(&self, row: usize) -> &(usize, u64, Option<String>) {
        let i = self.parts.partition_point(|(end, _, _)| *end <= row);
        &self.parts[i]
    }
}

/// A snapshot whose rows came from one or more namespaces.
pub trait HasSpans {
    fn spans(&self) -> &Spans;
}

pub fn inode_column<S: HasSpans>(s: &S, range: Range<usize>) -> ArrayRef {
    let spans = s.spans();
    // Inode 0: our own namespace, whose link could not be read.
    Arc::new(
        range
            .map(|i| Some(spans.at(i).1).filter(|&inode| inode != 0))
            .collect::<UInt64Array>(),
    )
}

pub fn name_column<S: HasSpans>(s: &S, range: Range<usize>) -> ArrayRef {
    let spans = s.spans();
    Arc::new(
        range
            .map(|i| spans.at(i).2.as_deref())
            .collect::<StringArray>(),
    )
}

/// A table's rows from every namespace it read.
#[derive(Default)]
pub struct PerNs<R> {
    pub rows: Vec<R>,
    pub spans: Spans,
}

impl<R> Snapshot for PerNs<R> {
    fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

impl<R> HasSpans for PerNs<R> {
    fn spans(&self) -> &Spans {
        &self.spans
    }
}

/// A whole-number literal (also under a cast DataFusion added to compare it), as an inode.
fn int_literal(expr: &Expr) -> Option<u64> {
    u64::try_from(super::literals::cast_int_literal(expr)?).ok()
}

/// What a filter on `netns`/`netns_name` that the table applies exactly asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Inodes(Vec<u64>),
    Names(Vec<String>),
    /// `netns IS NOT NULL`: every namespace, whatever the scope (what a saved query
    /// about the whole host says).
    Every,
}

/// The namespaces one value of `netns` or `netns_name` selects.
fn one(column: &str, value: &Expr) -> Option<Wanted> {
    match column {
        NETNS => Some(Wanted::Inodes(vec![int_literal(value)?])),
        NETNS_NAME => Some(Wanted::Names(vec![
            super::literals::literal(value)?.to_string()
        ])),
        _ => None,
    }
}

/// `netns = N`, `netns_name = 'x'`, `IN` lists and ORs of those on one column;
/// `netns IS NOT NULL` for every namespace: the filters a scan answers exactly by the
/// namespaces it reads.
pub fn translate(expr: &Expr) -> Option<Wanted> {
    match expr {
        Expr::IsNotNull(inner) if column_name(inner) == Some(NETNS) => Some(Wanted::Every),
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            match (column_name(&b.left), column_name(&b.right)) {
                (Some(c), None) => one(c, &b.right),
                (None, Some(c)) => one(c, &b.left),
                _ => None,
            }
        }
        Expr::BinaryExpr(b) if b.op == Operator::Or => {
            match (translate(&b.left)?, translate(&b.right)?) {
                (Wanted::Inodes(mut a), Wanted::Inodes(b)) => {
                    a.extend(b);
                    Some(Wanted::Inodes(a))
                }
                (Wanted::Names(mut a), Wanted::Names(b)) => {
                    a.extend(b);
                    Some(Wanted::Names(a))
                }
                _ => None,
            }
        }
        Expr::InList(list) if !list.negated => {
            let column = column_name(&list.expr)?;
            let mut all: Option<Wanted> = None;
            for value in &list.list {
                all = Some(match (all, one(column, value)?) {
                    (None, w) => w,
                    (Some(Wanted::Inodes(mut a)), Wanted::Inodes(b)) => {
                        a.extend(b);
                        Wanted::Inodes(a)
                    }
                    (Some(Wanted::Names(mut a)), Wanted::Names(b)) => {
                        a.extend(b);
                        Wanted::Names(a)
                    }
                    _ => return None,
                });
            }
            all
        }
        _ => None,
    }
}

/// Whether `expr` reads `netns` or `netns_name`: such a filter chooses the namespaces a
/// scan reads, whatever the session's scope.
pub fn mentions_namespace(expr: &Expr) -> bool {
    expr.column_refs()
        .iter()
        .any(|c| c.name == NETNS || c.name == NETNS_NAME)
}

/// How a table applies a filter on the namespace columns: exactly when it is one
/// [`translate`] knows; otherwise as a hint (it still chooses which namespaces are read,
/// and DataFusion checks every row against it again); `None` for other filters.
pub fn namespace_pushdown(expr: &Expr) -> Option<TableProviderFilterPushDown> {
    if translate(expr).is_some() {
        Some(TableProviderFilterPushDown::Exact)
    } else if mentions_namespace(expr) {
        Some(TableProviderFilterPushDown::Inexact)
    } else {
        None
    }
}

/// Pushdown for tables whose only filters are on the namespace columns.
pub fn pushdown(expr: &Expr) -> TableProviderFilterPushDown {
    namespace_pushdown(expr).unwrap_or(TableProviderFilterPushDown::Unsupported)
}

/// Whether a row of namespace `ns` could pass `filter`: the filter with `netns` and
/// `netns_name` replaced by that namespace's values, simplified by DataFusion, is not
/// plainly false or NULL. Whatever cannot be decided without the other columns could
/// match (the rows are checked again).
fn could_match(filter: &Expr, ns: &Namespace, schema: &Arc<DFSchema>) -> bool {
    // Inode 0: our own namespace, whose link could not be read (a NULL `netns`).
    let inode = ScalarValue::UInt64(Some(ns.inode).filter(|&i| i != 0));
    let name = ScalarValue::Utf8(ns.name.clone());
    let bound = filter.clone().transform(|e| {
        Ok(match e {
            Expr::Column(c) if c.name == NETNS => {
                Transformed::yes(Expr::Literal(inode.clone(), None))
            }
            Expr::Column(c) if c.name == NETNS_NAME => {
                Transformed::yes(Expr::Literal(name.clone(), None))
            }
            Expr::Column(c) => Transformed::yes(Expr::Column(
                datafusion::common::Column::new_unqualified(c.name),
            )),
            other => Transformed::no(other),
        })
    });
    let Ok(bound) = bound else { return true };
    let context = SimplifyContext::builder()
        .with_schema(schema.clone())
        .build();
    match ExprSimplifier::new(context).simplify(bound.data) {
        Ok(Expr::Literal(ScalarValue::Boolean(value), _)) => value == Some(true),
        Ok(Expr::Literal(value, _)) if value.is_null() => false,
        _ => true,
    }
}

/// Says once per value and run when a filter asks for a namespace (`netns_name = 'x'`,
/// `netns = N`, in `=` or `IN`, not under a NOT) that does not exist: an empty answer
/// would read as "no sockets".
fn warn_unmatched(filters: &[&Expr], all: &[Namespace]) {
    static SAID: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut missing = std::collections::BTreeSet::new();
    for filter in filters {
        let _ = filter.apply(|e| {
            if matches!(e, Expr::Not(_)) {
                return Ok(datafusion::common::tree_node::TreeNodeRecursion::Jump);
            }
            let (column, values): (Option<&str>, Vec<&Expr>) = match e {
                Expr::BinaryExpr(b) if b.op == Operator::Eq => {
                    match (column_name(&b.left), column_name(&b.right)) {
                        (Some(c), None) => (Some(c), vec![b.right.as_ref()]),
                        (None, Some(c)) => (Some(c), vec![b.left.as_ref()]),
                        _ => (None, vec![]),
                    }
                }
                Expr::InList(list) if !list.negated => {
                    (column_name(&list.expr), list.list.iter().collect())
                }
                _ => (None, vec![]),
            };
            for value in values {
                match (column, one(column.unwrap_or_default(), value)) {
                    (Some(NETNS_NAME), Some(Wanted::Names(names))) => {
                        for n in names {
                            if all.iter().any(|ns| ns.name.as_deref() == Some(n.as_str())) {
                                continue;
                            }
                            missing.insert(match all.iter().find(|ns| ns.other_names.contains(&n)) {
                                Some(ns) => format!(
                                    "network namespace {n:?} is also named {:?}, the name netns_name shows; filter on that, or use --netns {n}",
                                    ns.name.as_deref().unwrap_or_default()
                                ),
                                None => format!("no network namespace is named {n:?}"),
                            });
                        }
                    }
                    (Some(NETNS), Some(Wanted::Inodes(inodes))) => {
                        for i in inodes {
                            if !all.iter().any(|ns| ns.inode == i) {
                                missing.insert(format!("no network namespace has inode {i}"));
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
    }
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    for line in missing {
        if said.insert(line.clone()) {
            crate::warn!("netsql: {line}");
        }
    }
}

/// The session's scope, as `SET netsql.netns` or `--netns` left it.
pub fn scope(scan: &Scan) -> Result<Scope, DataFusionError> {
    scan.netns()
        .parse()
        .map_err(|e| DataFusionError::Plan(format!("netsql.netns: {e}")))
}

/// The namespaces a scan reads: those its filters on `netns`/`netns_name` could match,
/// out of every namespace on the host, whatever the session's scope (so a filter gives
/// the rows `--netns all` would); without such filters, the session's scope.
pub fn namespaces(config: &TablesConfig, scan: &Scan) -> Result<Vec<Namespace>, DataFusionError> {
    let choosing: Vec<&Expr> = scan
        .filters
        .iter()
        .filter(|f| mentions_namespace(f))
        .collect();
    if !choosing.is_empty() {
        let all = netns::discover(&config.root).map_err(external)?;
        netns::check(&config.root, &scope(scan)?, &all).map_err(external)?;
        warn_unmatched(&choosing, &all);
        let schema = Arc::new(DFSchema::try_from(scan.table_schema.as_ref().clone())?);
        return Ok(all
            .into_iter()
            .filter(|ns| choosing.iter().all(|f| could_match(f, ns, &schema)))
            .collect());
    }
    let scope = scope(scan)?;
    // Our own namespace's name takes listing /run/netns and docker's netns folder and a
    // stat of each entry, for every scan: only `netns_name` shows it.
    if scope == Scope::Current && scan.schema.column_with_name(NETNS_NAME).is_none() {
        return Ok(vec![netns::current_unnamed(&config.root)]);
    }
    netns::select(&config.root, &scope).map_err(external)
}

/// Reads `read` in each namespace the scan selects and appends the rows in order.
pub fn per_namespace<R: Send>(
    config: &TablesConfig,
    scan: &Scan,
    read: impl Fn(&Root, Access) -> Result<Vec<R>, CollectError> + Sync,
) -> Result<PerNs<R>, DataFusionError> {
    let visited = netns::visit(&config.root, namespaces(config, scan)?, read).map_err(external)?;
    netns::warn_invisible(&visited.invisible);
    let mut all = PerNs {
        rows: Vec::new(),
        spans: Spans::default(),
    };
    for (ns, rows) in visited.read {
        all.rows.extend(rows);
        all.spans.push(all.rows.len(), &ns);
    }
    Ok(all)
}

/// One row of `net_namespaces`.
pub struct NsRow {
    ns: Namespace,
    cgroup: Option<String>,
    container: Option<Container>,
}

pub struct NetNamespaces(Vec<NsRow>);

impl Snapshot for NetNamespaces {
    fn num_rows(&self) -> usize {
        self.0.len()
    }
}

pub static SPEC: TableSpec<NetNamespaces> = TableSpec {
    name: "net_namespaces",
    doc: "One row per network namespace on the host that a process is in or a bind mount keeps: from every /proc/<pid>/ns/net we may read and every bind mount under /run/netns and /run/docker/netns (one kept alive only by a socket or an open descriptor is not found, as lsns does not find it)",
    columns: &[
        Column {
            name: "inode",
            kind: Kind::UInt64,
            doc: "Namespace inode (joins the netns column of sockets, interfaces, routes, ...)",
            needs: &[],
            build: |s, range| uint64(&s.0[range.clone()], |r| Some(r.ns.inode)),
        },
        Column {
            name: "name",
            kind: Kind::Utf8,
            doc: "`ip netns` name (bound under /run/netns; bound under several, the first in byte order, which filters match; `--netns` takes any; a byte that is not UTF-8 as \\xNN); NULL if none",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |r| r.ns.name.as_deref()),
        },
        Column {
            name: "path",
            kind: Kind::Utf8,
            doc: "Bind mount that keeps it alive (/run/netns/NAME, /run/docker/netns/ID; a byte that is not UTF-8 as \\xNN, as in name); NULL if none",
            needs: &[],
            build: |s, range| {
                utf8_owned(&s.0[range.clone()], |r| {
                    r.ns.path
                        .as_deref()
                        .map(|p| path_text(p.as_os_str().as_encoded_bytes()))
                })
            },
        },
        Column {
            name: "processes",
            kind: Kind::UInt64,
            doc: "Processes in it (those whose /proc/<pid>/ns/net we may read)",
            needs: &[],
            build: |s, range| uint64(&s.0[range.clone()], |r| Some(r.ns.pids.len() as u64)),
        },
        Column {
            name: "pid",
            kind: Kind::Int32,
            doc: "Lowest of those pids; NULL when no visible process is in it",
            needs: &[],
            build: |s, range| int32(&s.0[range.clone()], |r| r.ns.pids.first().copied()),
        },
        Column {
            name: "cgroup",
            kind: Kind::Utf8,
            doc: "cgroup path of that process (the v2 hierarchy's; a v1 hierarchy's where only that one names a container; with cgroup v1 alone, systemd's named hierarchy's)",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |r| r.cgroup.as_deref()),
        },
        Column {
            name: "container_id",
            kind: Kind::Utf8,
            doc: "Container id from that cgroup (docker, containerd, cri-o, podman: 64 hex; kubernetes: pod uid; nspawn, lxc: machine name)",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |r| r.container.as_ref().map(|c| c.id.as_str())),
        },
        Column {
            name: "runtime",
            kind: Kind::Utf8,
            doc: "docker, containerd, cri-o, podman, kubernetes, systemd-nspawn, libvirt-lxc or lxc; NULL when not a container's",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |r| r.container.as_ref().map(|c| c.runtime)),
        },
        Column {
            name: "is_current",
            kind: Kind::Utf8,
            doc: "'yes' for the namespace netsql runs in, else 'no'",
            needs: &[],
            build: |s, range| utf8(&s.0[range.clone()], |r| Some(if r.ns.is_current { "yes" } else { "no" })),
        },
    ],
};

pub fn collect(config: &TablesConfig, _scan: &Scan) -> Result<NetNamespaces, DataFusionError> {
    let root = &config.root;
    let rows = netns::discover(root)
        .map_err(external)?
        .into_iter()
        .map(|ns| {
            let cgroup = ns.cgroup(root)?;
            let container = cgroup.as_deref().and_then(containers::of_cgroup);
            Ok(NsRow {
                ns,
                cgroup,
                container,
            })
        })
        .collect::<Result<_, _>>()
        .map_err(external)?;
    Ok(NetNamespaces(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn namespace_filters_translate() {
        assert_eq!(
            translate(&col(NETNS_NAME).eq(lit("blue"))),
            Some(Wanted::Names(vec!["blue".into()]))
        );
        assert_eq!(
            translate(
                &col(NETNS)
                    .eq(lit(4026532001_i64))
                    .or(lit(7_i64).eq(col(NETNS)))
            ),
            Some(Wanted::Inodes(vec![4026532001, 7]))
        );
        assert_eq!(
            translate(&col(NETNS_NAME).in_list(vec![lit("a"), lit("b")], false)),
            Some(Wanted::Names(vec!["a".into(), "b".into()]))
        );
        assert_eq!(translate(&col(NETNS).is_not_null()), Some(Wanted::Every));
        for unsupported in [
            col(NETNS_NAME).is_not_null(),
            col(NETNS_NAME).not_eq(lit("blue")),
            col(NETNS_NAME)
                .eq(lit("blue"))
                .or(col(NETNS).eq(lit(1_i64))),
            col(NETNS_NAME).in_list(vec![lit("a")], true),
            col(NETNS_NAME).like(lit("b%")),
            col(NETNS).gt(lit(1_i64)),
        ] {
            assert_eq!(translate(&unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn any_filter_on_the_namespace_columns_chooses_namespaces() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(
            DFSchema::try_from(Schema::new(vec![
                Field::new(NETNS, DataType::UInt64, true),
                Field::new(NETNS_NAME, DataType::Utf8, true),
                Field::new("state", DataType::Utf8, true),
                Field::new("local_port", DataType::Int32, true),
            ]))
            .unwrap(),
        );
        let ns = |inode, name: Option<&str>| Namespace {
            name: name.map(String::from),
            ..Namespace::new(inode, 0)
        };
        let all = [ns(10, Some("nw1")), ns(11, Some("nw2")), ns(12, None)];
        let chosen = |filter: Expr| -> Vec<u64> {
            all.iter()
                .filter(|n| could_match(&filter, n, &schema))
                .map(|n| n.inode)
                .collect()
        };
        let name = || col(NETNS_NAME);
        assert_eq!(
            chosen(
                name()
                    .eq(lit("nw1"))
                    .and(col("state").eq(lit("LISTEN")))
                    .or(name().eq(lit("nw2")))
            ),
            [10, 11]
        );
        assert_eq!(
            chosen(name().eq(lit("nw1")).or(col("local_port").eq(lit(45001)))),
            [10, 11, 12]
        );
        assert_eq!(chosen(name().like(lit("nw%"))), [10, 11]);
        assert_eq!(chosen(name().eq(lit("nosuchns"))), Vec::<u64>::new());
        assert_eq!(
            chosen(name().not_eq(lit("nw1"))),
            [11],
            "NULL != 'nw1' is not true"
        );
        assert_eq!(chosen(col(NETNS).eq(lit(12_u64))), [12]);
        assert_eq!(chosen(col(NETNS).is_not_null()), [10, 11, 12]);
        for hint in [
            name().like(lit("b%")),
            name().eq(lit("a")).or(col(NETNS).eq(lit(1_u64))),
        ] {
            assert_eq!(
                namespace_pushdown(&hint),
                Some(TableProviderFilterPushDown::Inexact),
                "{hint}"
            );
        }
        assert_eq!(namespace_pushdown(&col("state").eq(lit("LISTEN"))), None);
    }

    #[test]
    fn spans_name_each_row() {
        let ns = |inode, name: Option<&str>| Namespace {
            name: name.map(String::from),
            ..Namespace::new(inode, 0)
        };
        let mut spans = Spans::default();
        spans.push(2, &ns(10, None));
        spans.push(2, &ns(11, Some("empty")));
        spans.push(5, &ns(12, Some("blue")));
        let got: Vec<u64> = (0..5).map(|i| spans.at(i).1).collect();
        assert_eq!(got, [10, 10, 12, 12, 12]);
    }
}
