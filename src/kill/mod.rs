//! `DELETE FROM sockets WHERE ...`: closing the sockets a WHERE selects, as `ss -K` does;
//! and `DELETE FROM conntrack` (conntrack.rs), removing tracked connections under the
//! same rules.
//!
//! DataFusion 55 would hand a DELETE to `TableProvider::delete_from` while *planning* (so
//! even EXPLAIN would run it), with a subquery predicate reaching it as no filter at all,
//! and a LIMIT dropped. So netsql never plans a DELETE through DataFusion: the runner
//! takes the statement's own input plan (the table scan under the WHERE, joins and
//! subqueries included), runs it for the identity of each matching socket, and only
//! then, at execution, sends one SOCK_DESTROY per socket, named by its cookie so a port
//! reused meanwhile is not touched.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, UInt32Type, UInt64Type};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::JoinType;
use datafusion::logical_expr::dml::{DmlStatement, WriteOp};
use datafusion::logical_expr::utils::{split_binary, split_conjunction};
use datafusion::logical_expr::{col, Expr, LogicalPlan, LogicalPlanBuilder, Operator};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::collect::netns::{self, Access};
use crate::collect::sockdiag::destroy::{self, Tally, Target};
use crate::collect::socket_row::{Family, Protocol};
use crate::collect::{CollectError, Root};
use crate::error::Error;
use crate::tables::sockets::col as c;

mod conntrack;

/// Whether `DELETE FROM sockets` may close anything (`--allow-kill[=all]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kill {
    /// The default, and always in read-only modes, audits, saved queries and servers.
    #[default]
    Refused,
    /// `--allow-kill`: a DELETE whose WHERE narrows the sockets.
    Filtered,
    /// `--allow-kill=all`: also a DELETE of every socket.
    All,
}

/// Why a DELETE with LIMIT is refused (DataFusion would drop the LIMIT).
const NO_LIMIT: &str =
    "DELETE ... LIMIT is refused: which sockets a LIMIT picks is not defined; narrow the WHERE instead";

/// What a DELETE acts on: the tables it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `sockets`: closed with SOCK_DESTROY.
    Sockets,
    /// `conntrack`: entries deleted with IPCTNL_MSG_CT_DELETE.
    Conntrack,
}

impl Subject {
    fn of(table: &str) -> Option<Subject> {
        match table {
            "sockets" => Some(Subject::Sockets),
            "conntrack" => Some(Subject::Conntrack),
            _ => None,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Subject::Sockets => "sockets",
            Subject::Conntrack => "conntrack",
        }
    }
}

/// Checks a parsed statement: a DELETE must be of `sockets`, without LIMIT, and allowed
/// (a dry run lists and is always allowed). Anything else passes untouched.
pub fn check_statement(statement: &Statement, kill: Kill, dry_run: bool) -> Result<(), Error> {
    let inner = match statement {
        Statement::Statement(inner) => inner.as_ref(),
        Statement::Explain(explain) => return check_explained(&explain.statement),
        _ => return Ok(()),
    };
    let delete = match inner {
        SqlStatement::Delete(delete) => delete,
        SqlStatement::Prepare { statement, .. }
            if matches!(statement.as_ref(), SqlStatement::Delete(_)) =>
        {
            return Err(Error::Usage(
                "PREPARE of a DELETE is refused: run the DELETE itself (with --dry-run to list what it would do)".into(),
            ))
        }
        SqlStatement::Explain { statement, .. } => {
            return check_explained(&Statement::Statement(statement.clone()))
        }
        _ => return Ok(()),
    };
    if delete.limit.is_some() {
        return Err(Error::Usage(NO_LIMIT.into()));
    }
    if kill == Kill::Refused && !dry_run {
        return Err(Error::Usage(
            "DELETE acts on the host (it closes sockets, removes conntrack entries): run netsql with --allow-kill (or --dry-run to list what it would do)".into(),
        ));
    }
    Ok(())
}

/// EXPLAIN DELETE only lists: it needs no permission but keeps the LIMIT rule.
fn check_explained(statement: &Statement) -> Result<(), Error> {
    check_statement(statement, Kill::Filtered, true)
}

/// What a planned statement asks: nothing, a listing, or acting on what its input
/// selects.
pub enum Deletion {
    /// EXPLAIN DELETE, or `--dry-run`: what would be closed or removed.
    List(LogicalPlan, Subject),
    Close(LogicalPlan, Subject),
}

/// The DELETE in `plan`, checked: its input plan, to list or to close.
pub fn deletion(
    ctx: &SessionContext,
    plan: &LogicalPlan,
    kill: Kill,
    dry_run: bool,
) -> Result<Option<Deletion>, Error> {
    let (dml, explained) = match plan {
        LogicalPlan::Dml(dml) => (dml, false),
        LogicalPlan::Explain(explain) => match explain.plan.as_ref() {
            LogicalPlan::Dml(dml) => (dml, true),
            _ => return Ok(None),
        },
        LogicalPlan::Analyze(analyze) => match analyze.input.as_ref() {
            LogicalPlan::Dml(dml) => (dml, true),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    if dml.op != WriteOp::Delete {
        return Ok(None);
    }
    let subject = check_target(dml)?;
    let table = subject.table();
    let input = dml.input.as_ref().clone();
    if explained || dry_run {
        return Ok(Some(Deletion::List(input, subject)));
    }
    if kill == Kill::Refused {
        return Err(Error::Usage(format!(
            "DELETE FROM {table} acts on the host: not allowed here"
        )));
    }
    if kill == Kill::Filtered && !narrows(ctx, &input, dml.table_name.table())? {
        return Err(Error::Usage(format!(
            "DELETE FROM {table} without a WHERE that narrows it (beyond choosing namespaces) would act on every row: refused unless --allow-kill=all"
        )));
    }
    Ok(Some(Deletion::Close(input, subject)))
}

/// The live table a DELETE names. Its name alone does not say: `history.sockets`, or a
/// table a statement made, is not the host's, and deleting from it must not close the
/// host's sockets that its rows still describe.
fn check_target(dml: &DmlStatement) -> Result<Subject, Error> {
    let live = datafusion::datasource::source_as_provider(&dml.target)
        .ok()
        .and_then(|provider| crate::catalog::live_table(provider.as_ref()));
    let Some(subject) = live.and_then(Subject::of) else {
        let what = match live {
            Some(_) => "a live view of the host",
            None => "not a live table (history and tables a statement made cannot be deleted from)",
        };
        return Err(Error::Usage(format!(
            "DELETE works on sockets (it closes them) and conntrack (it removes entries) only; {} is {what}",
            dml.table_name
        )));
    };
    let limited = dml
        .input
        .exists(|node| Ok(matches!(node, LogicalPlan::Limit(_))))?;
    if limited {
        return Err(Error::Usage(NO_LIMIT.into()));
    }
    // The rows to act on are those there now; an event stream never ends (a dry run
    // never returned).
    let mut stream = None;
    dml.input.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = datafusion::datasource::source_as_provider(&scan.source)
                .ok()
                .and_then(|provider| crate::catalog::live_stream(provider.as_ref()));
            if let Some(name) = name {
                stream = Some(name);
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if let Some(name) = stream {
        return Err(Error::Usage(format!(
            "DELETE FROM {} reads {name}, whose rows never end: a DELETE acts on what is there now",
            dml.table_name
        )));
    }
    Ok(subject)
}

/// Whether the optimized input selects fewer than all the rows of the namespaces it
/// reads: by a predicate on a column of `target` other than the namespace ones, on the
/// path its rows take. A WHERE that simplifies to nothing (`WHERE true`) does not, nor
/// one that only chooses namespaces (`netns_name = 'blue'` is all of blue, as `--netns
/// blue` without a WHERE), nor one that reads no column of the table: `random() < 2`,
/// an uncorrelated `EXISTS (SELECT 1 FROM processes WHERE pid = 1)` (its filter narrows
/// the subquery's rows, not the table's).
fn narrows(ctx: &SessionContext, input: &LogicalPlan, target: &str) -> Result<bool, Error> {
    let optimized = ctx.state().optimize(input)?;
    Ok(selects_fewer(&optimized, target))
}

fn selects_fewer(plan: &LogicalPlan, target: &str) -> bool {
    let reads_target = |expr: &Expr| {
        expr.column_refs().iter().any(|column| {
            column.relation.as_ref().is_none_or(|r| r.table() == target)
                && column.name != c::NETNS
                && column.name != c::NETNS_NAME
        })
    };
    // Some conjunct, not volatile, each of whose OR branches reads the table:
    // `remote_port = 7301 OR random() < 2` is every row.
    let on_target = |expr: &Expr| {
        split_conjunction(expr).into_iter().any(|part| {
            !part.is_volatile()
                && split_binary(part, Operator::Or)
                    .into_iter()
                    .all(reads_target)
        })
    };
    let carries = |plan: &LogicalPlan| {
        plan.schema()
            .iter()
            .any(|(qualifier, _)| qualifier.is_some_and(|q| q.table() == target))
    };
    match plan {
        LogicalPlan::EmptyRelation(_) => true,
        LogicalPlan::Filter(filter) => {
            on_target(&filter.predicate) || selects_fewer(&filter.input, target)
        }
        LogicalPlan::TableScan(scan) => {
            scan.table_name.table() == target && scan.filters.iter().any(on_target)
        }
        LogicalPlan::Join(join) => {
            // Only a join that drops the target's unmatched rows narrows it: a left or
            // mark join (a correlated scalar subquery, `IN (...) OR ...`) keeps them.
            let drops_unmatched = match join.join_type {
                JoinType::Inner => true,
                JoinType::LeftSemi | JoinType::LeftAnti => carries(&join.left),
                JoinType::RightSemi | JoinType::RightAnti => carries(&join.right),
                _ => false,
            };
            drops_unmatched
                && (join.on.iter().any(|(l, r)| on_target(l) || on_target(r))
                    || join.filter.as_ref().is_some_and(on_target))
                || [&join.left, &join.right]
                    .into_iter()
                    .filter(|side| carries(side))
                    .any(|side| selects_fewer(side, target))
        }
        // Another relation's rows (a subquery's), even of the same table.
        LogicalPlan::SubqueryAlias(_) => false,
        other => other
            .inputs()
            .into_iter()
            .filter(|input| carries(input))
            .any(|input| selects_fewer(input, target)),
    }
}

/// The columns a listing shows: who the socket is and what it is doing.
const LISTED: &[&str] = &[
    c::NETNS,
    c::NETNS_NAME,
    c::PROTO,
    c::STATE,
    c::LOCAL_ADDRESS,
    c::LOCAL_PORT,
    c::REMOTE_ADDRESS,
    c::REMOTE_PORT,
    c::PID,
    c::PROGRAM,
    c::COOKIE,
];

/// The columns that name a socket to SOCK_DESTROY.
const IDENTITY: &[&str] = &[
    c::NETNS,
    c::PROTO,
    c::LOCAL_ADDRESS,
    c::LOCAL_PORT,
    c::REMOTE_ADDRESS,
    c::REMOTE_PORT,
    c::BOUND_IFINDEX,
    c::COOKIE,
];

fn project(input: LogicalPlan, columns: &[&str]) -> Result<LogicalPlan, Error> {
    Ok(LogicalPlanBuilder::from(input)
        .project(columns.iter().map(|name| col(*name)))?
        .build()?)
}

/// What a DELETE would close or remove.
pub fn listing(input: LogicalPlan, subject: Subject) -> Result<LogicalPlan, Error> {
    match subject {
        Subject::Sockets => project(input, LISTED),
        Subject::Conntrack => project(input, conntrack::LISTED),
    }
}

/// Runs the DELETE's input for the matching rows, acts on them, and returns the one-row
/// `count` result (DataFusion's DML shape); the summary goes to stderr.
pub async fn close(
    ctx: &SessionContext,
    root: &Root,
    input: LogicalPlan,
    subject: Subject,
) -> Result<RecordBatch, Error> {
    match subject {
        Subject::Sockets => close_sockets(ctx, root, input).await,
        Subject::Conntrack => delete_entries(ctx, root, input).await,
    }
}

/// The one-row `count` result.
fn count(n: u64) -> Result<RecordBatch, Error> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(UInt64Array::from(vec![n]))],
    )?)
}

async fn delete_entries(
    ctx: &SessionContext,
    root: &Root,
    input: LogicalPlan,
) -> Result<RecordBatch, Error> {
    let plan = project(input, conntrack::IDENTITY)?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    let mut by_namespace: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    let mut matched = 0u64;
    for batch in &batches {
        matched += batch.num_rows() as u64;
        for (netns, flow) in conntrack::entries(batch)? {
            by_namespace.entry(netns).or_default().push(flow);
        }
    }
    let root = root.clone();
    let tally = tokio::task::spawn_blocking(move || conntrack::delete_all(&root, by_namespace))
        .await
        .map_err(|e| Error::Usage(format!("deleting conntrack entries failed: {e}")))??;
    let summary = conntrack::summary(matched, &tally);
    if tally.deleted == 0 && tally.denied > 0 {
        return Err(Error::Usage(summary));
    }
    crate::warn!("netsql: {summary}");
    count(tally.deleted)
}

async fn close_sockets(
    ctx: &SessionContext,
    root: &Root,
    input: LogicalPlan,
) -> Result<RecordBatch, Error> {
    let plan = project(input, IDENTITY)?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    let mut by_namespace: BTreeMap<u64, Vec<Target>> = BTreeMap::new();
    let mut matched = 0u64;
    let mut not_closable = BTreeMap::<String, u64>::new();
    for batch in &batches {
        matched += batch.num_rows() as u64;
        for (netns, target) in targets(batch, &mut not_closable)? {
            by_namespace.entry(netns).or_default().push(target);
        }
    }
    let root = root.clone();
    let tally = tokio::task::spawn_blocking(move || close_all(&root, by_namespace))
        .await
        .map_err(|e| Error::Usage(format!("closing sockets failed: {e}")))??;
    let summary = summary(matched, &tally, &not_closable);
    let refused = tally.denied + tally.unsupported + tally.unreached;
    if tally.closed == 0 && (refused > 0 || !not_closable.is_empty()) {
        return Err(Error::Usage(summary));
    }
    crate::warn!("netsql: {summary}");
    count(tally.closed)
}

/// Each row of `batch` (the IDENTITY columns) as the namespace and socket to close;
/// sockets SOCK_DESTROY cannot name are counted by protocol instead.
fn targets(
    batch: &RecordBatch,
    not_closable: &mut BTreeMap<String, u64>,
) -> Result<Vec<(u64, Target)>, Error> {
    let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
    let netns = cast(batch.column(0), &DataType::UInt64)?;
    let netns = netns.as_primitive::<UInt64Type>();
    let proto = text(1)?;
    let proto = proto.as_string::<i32>();
    let local = text(2)?;
    let local = local.as_string::<i32>();
    let local_port = cast(batch.column(3), &DataType::Int32)?;
    let local_port = local_port.as_primitive::<Int32Type>();
    let remote = text(4)?;
    let remote = remote.as_string::<i32>();
    let remote_port = cast(batch.column(5), &DataType::Int32)?;
    let remote_port = remote_port.as_primitive::<Int32Type>();
    let bound_if = cast(batch.column(6), &DataType::UInt32)?;
    let bound_if = bound_if.as_primitive::<UInt32Type>();
    let cookie = cast(batch.column(7), &DataType::UInt64)?;
    let cookie = cookie.as_primitive::<UInt64Type>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let name = if proto.is_valid(row) {
            proto.value(row)
        } else {
            "?"
        };
        let kind = protocol(name).filter(|(p, _)| destroy::can_destroy(*p));
        let addr = |ips: &datafusion::arrow::array::StringArray,
                    ports: &datafusion::arrow::array::Int32Array| {
            let ip: IpAddr = ips
                .is_valid(row)
                .then(|| ips.value(row).parse().ok())
                .flatten()?;
            let port = u16::try_from(ports.is_valid(row).then(|| ports.value(row))?).ok()?;
            Some(SocketAddr::new(ip, port))
        };
        let (Some((protocol, family)), Some(local), Some(remote), true) = (
            kind,
            addr(local, local_port),
            addr(remote, remote_port),
            cookie.is_valid(row),
        ) else {
            // A socket read from /proc has no cookie to name it by.
            let why = match (kind, cookie.is_valid(row)) {
                (Some(_), false) => format!("{name} without a cookie (read from /proc)"),
                _ => name.to_string(),
            };
            *not_closable.entry(why).or_default() += 1;
            continue;
        };
        out.push((
            if netns.is_valid(row) {
                netns.value(row)
            } else {
                0
            },
            Target {
                protocol,
                family,
                local,
                remote,
                bound_if: if bound_if.is_valid(row) {
                    bound_if.value(row)
                } else {
                    0
                },
                cookie: cookie.value(row),
            },
        ));
    }
    Ok(out)
}

/// netstat's Proto back to protocol and family.
fn protocol(proto: &str) -> Option<(Protocol, Family)> {
    let (base, family) = match proto.strip_suffix('6') {
        Some(base) => (base, Family::Inet6),
        None => (proto, Family::Inet),
    };
    let protocol = match base {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "udplite" => Protocol::UdpLite,
        "raw" => Protocol::Raw,
        _ => return None,
    };
    Some((protocol, family))
}

/// Rows of one namespace, and that namespace if it is still there.
type InNamespace<T> = (Option<netns::Namespace>, Vec<T>);

/// Each group of rows with the namespace its inode names (0: the one we are in, or one
/// the row could not name); `None` for a namespace gone meanwhile, which took its
/// sockets or entries with it.
fn namespaces_of<T>(
    root: &Root,
    by_namespace: BTreeMap<u64, Vec<T>>,
) -> Result<Vec<InNamespace<T>>, Error> {
    if by_namespace.is_empty() {
        return Ok(Vec::new());
    }
    let current = netns::current(root).unwrap_or(0);
    let known = if by_namespace.keys().any(|&ns| ns != 0 && ns != current) {
        netns::discover(root)?
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    // Ours, looked up once however many groups name it (0 and `current` both do).
    let mut here: Option<netns::Namespace> = None;
    for (inode, rows) in by_namespace {
        let ns = if inode == 0 || inode == current {
            if here.is_none() {
                here = Some(netns::current_only(root)?);
            }
            here.clone()
        } else {
            known.iter().find(|ns| ns.inode == inode).cloned()
        };
        out.push((ns, rows));
    }
    Ok(out)
}

/// Closes each namespace's sockets inside it.
fn close_all(root: &Root, by_namespace: BTreeMap<u64, Vec<Target>>) -> Result<Tally, Error> {
    let mut tally = Tally::default();
    for (ns, targets) in namespaces_of(root, by_namespace)? {
        let Some(ns) = ns else {
            tally.gone += targets.len() as u64;
            continue;
        };
        let visited = netns::visit(root, vec![ns], |_, access| match access {
            Access::Current | Access::Entered => destroy::destroy(&targets),
            Access::Files => Err(CollectError::Netns("cannot enter".into())),
        });
        match visited {
            Ok(visited) => {
                for (_, part) in visited.read {
                    tally.add(part);
                }
                if !visited.invisible.is_empty() {
                    tally.denied += targets.len() as u64;
                }
            }
            // Not entered (no CAP_SYS_ADMIN): nothing of it can be closed from here.
            Err(CollectError::Netns(_)) => tally.denied += targets.len() as u64,
            Err(CollectError::NetlinkRefused { errno, .. }) => {
                return Err(Error::Usage(format!(
                    "cannot close sockets: sock_diag refused: {errno}"
                )))
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(tally)
}

/// The one line a DELETE prints: how many matched, closed, and why others were not.
fn summary(matched: u64, tally: &Tally, not_closable: &BTreeMap<String, u64>) -> String {
    let noun = if matched == 1 { "socket" } else { "sockets" };
    let mut text = format!("closed {} of {matched} matching {noun}", tally.closed);
    let mut why = Vec::new();
    if tally.gone > 0 {
        why.push(format!("{} already gone", tally.gone));
    }
    if tally.unreached > 0 {
        why.push(format!(
            "{} not reached (each shares its port through SO_REUSEPORT, and the kernel's lookup never picked it)",
            tally.unreached
        ));
    }
    if tally.denied > 0 {
        why.push(format!(
            "{} not permitted (closing needs CAP_NET_ADMIN in the socket's namespace)",
            tally.denied
        ));
    }
    if tally.unsupported > 0 {
        why.push(format!(
            "{} not supported by this kernel (CONFIG_INET_DIAG_DESTROY, or not for that protocol)",
            tally.unsupported
        ));
    }
    for (proto, n) in not_closable {
        why.push(format!("{n} {proto} cannot be closed by sock_diag"));
    }
    if tally.failed > 0 {
        why.push(format!(
            "{} failed: {}",
            tally.failed,
            tally.first_failure.as_deref().unwrap_or("unknown error")
        ));
    }
    if !why.is_empty() {
        text.push_str("; ");
        text.push_str(&why.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_names_map_back_to_protocol_and_family() {
        assert_eq!(protocol("tcp6"), Some((Protocol::Tcp, Family::Inet6)));
        assert_eq!(protocol("udplite"), Some((Protocol::UdpLite, Family::Inet)));
        assert_eq!(protocol("unix"), None);
    }

    #[test]
    fn the_summary_says_why_sockets_were_not_closed() {
        let tally = Tally {
            closed: 3,
            gone: 1,
            unreached: 1,
            denied: 2,
            ..Tally::default()
        };
        let skipped = BTreeMap::from([("unix".to_string(), 3)]);
        assert_eq!(
            summary(10, &tally, &skipped),
            "closed 3 of 10 matching sockets; 1 already gone, 1 not reached (each shares its port through SO_REUSEPORT, and the kernel's lookup never picked it), 2 not permitted (closing needs CAP_NET_ADMIN in the socket's namespace), 3 unix cannot be closed by sock_diag"
        );
        assert_eq!(
            summary(
                1,
                &Tally {
                    closed: 1,
                    ..Tally::default()
                },
                &BTreeMap::new()
            ),
            "closed 1 of 1 matching socket"
        );
    }
}
