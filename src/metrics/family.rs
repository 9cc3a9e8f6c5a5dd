//! A metric query: a saved query under `queries/metrics/` (or a user queries folder's
//! `metrics/`) whose header declares the metric it answers, checked when the exporter
//! starts so that a bad file is one line at start, never a broken scrape.
//!
//! ```sql
//! -- metric: netsql_sockets
//! -- type: gauge
//! -- help: Sockets by state, protocol and namespace
//! -- labels: state, proto, netns
//! SELECT state, proto, netns, count(*) AS sockets FROM sockets GROUP BY 1, 2, 3
//! ```
//!
//! Labels default to every column that is not a number; the rest are values. One value
//! column is the metric's value; with several, a `value` label names each column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::error::Error;
use crate::exec::Runner;
use crate::queries::{self, QueryFile};

pub use super::exposition::Kind;

/// One checked metric query.
#[derive(Debug, Clone)]
pub struct Family {
    /// The query's name: the `query` label of netsql's own metrics.
    pub query: String,
    /// Where it came from, for messages.
    pub origin: String,
    /// The family's name without the suffix its type adds (`_total`, `_info`).
    pub name: String,
    pub kind: Kind,
    pub help: String,
    /// Label columns, in the query's order.
    pub labels: Vec<String>,
    /// Value columns; with more than one, a `value` label names each.
    pub values: Vec<String>,
    pub sql: String,
    /// Its parameters, bound.
    pub params: BTreeMap<String, String>,
    /// The live tables it reads, each with the columns it reads of it (its scans'
    /// projections and filters, after DataFusion's optimizer): a scrape collects each
    /// table once, and no column no query reads.
    pub columns: BTreeMap<String, BTreeSet<String>>,
    /// `-- optional: true`: left out when it fails at start.
    pub optional: bool,
}

impl Family {
    /// The name its samples carry.
    pub fn sample_name(&self) -> String {
        self.kind.sample_name(&self.name)
    }

    /// Whether it and the family `name` of `kind` would share a name in an exposition.
    fn clashes(&self, name: &str, kind: Kind) -> bool {
        clash((&self.name, self.kind), (name, kind))
    }
}

/// Whether two families would share a name in an exposition: a family's name, its
/// samples' name, and for a counter its `_created` (OpenMetrics' parsers refuse a gauge
/// `x_created` or a counter `x_total` beside a counter `x`; Prometheus takes both).
fn clash(a: (&str, Kind), b: (&str, Kind)) -> bool {
    let names = |(name, kind): (&str, Kind)| {
        let mut names = vec![name.to_string(), kind.sample_name(name)];
        if kind == Kind::Counter {
            names.push(format!("{name}_created"));
        }
        names
    };
    let theirs = names(b);
    names(a).iter().any(|n| theirs.contains(n))
}

/// netsql's own metrics: how long each query took, how often each failed, how long each
/// table took to collect. No query may declare their names.
pub const QUERY_DURATION: (&str, Kind) = ("netsql_query_duration_seconds", Kind::Gauge);
pub const QUERY_ERRORS: (&str, Kind) = ("netsql_query_errors", Kind::Counter);
pub const TABLE_COLLECT: (&str, Kind) = ("netsql_table_collect_duration_seconds", Kind::Gauge);

/// The metric queries: the built-in ones, then each user queries folder's `metrics/`
/// (a file of the same name replaces a built-in one), each checked against the session
/// (`-p` values bound; a `-p` no metric declares is an error, as for audits).
pub async fn load(
    runner: &Runner<'_>,
    dirs: &[PathBuf],
    only: &[String],
    params: &BTreeMap<String, String>,
) -> Result<Vec<Family>, Error> {
    let bad = |e: queries::QueryError| Error::Usage(e.to_string());
    let mut by_name: BTreeMap<String, QueryFile> = BTreeMap::new();
    for file in queries::builtin("metrics").map_err(bad)? {
        by_name.insert(file.name.clone(), file);
    }
    for dir in dirs
        .iter()
        .map(|d| d.join("metrics"))
        .filter(|d| d.is_dir())
    {
        for file in queries::load(&dir).map_err(bad)? {
            by_name.insert(file.name.clone(), file);
        }
    }
    if let Some(unknown) = only.iter().find(|name| !by_name.contains_key(*name)) {
        let known: Vec<&str> = by_name.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "--metrics-only: no metric query {unknown} (there are {})",
            known.join(", ")
        )));
    }
    if !only.is_empty() {
        by_name.retain(|name, _| only.contains(name));
    }
    if let Some(name) = queries::undeclared(&by_name.values().collect::<Vec<_>>(), params) {
        return Err(Error::Usage(format!(
            "--metrics-param {name}: no metric query takes it"
        )));
    }
    let mut families: Vec<Family> = Vec::new();
    for file in by_name.into_values() {
        let family = check(runner, file, params).await?;
        if let Some(same) = families
            .iter()
            .find(|f| f.clashes(&family.name, family.kind))
        {
            return Err(Error::Usage(format!(
                "{}: metric {} is also declared by {}",
                family.origin, family.name, same.origin
            )));
        }
        families.push(family);
    }
    Ok(families)
}

/// A metric name as Prometheus takes it.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name as Prometheus takes it (`__` is reserved for Prometheus's own).
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Whether a column holds a metric's value.
fn is_number(data_type: &DataType) -> bool {
    data_type.is_numeric() || matches!(data_type, DataType::Boolean)
}

/// Checks one file: its header, its one query, the columns that query answers.
async fn check(
    runner: &Runner<'_>,
    file: QueryFile,
    params: &BTreeMap<String, String>,
) -> Result<Family, Error> {
    let fail = |why: String| Error::Usage(format!("{}: {why}", file.origin));
    let header = |key: &str| {
        file.other
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let kind = match header("type").as_deref() {
        None | Some("gauge") => Kind::Gauge,
        Some("counter") => Kind::Counter,
        Some("info") => Kind::Info,
        Some(other) => {
            return Err(fail(format!(
                "type {other:?}: a metric is a gauge, a counter or info"
            )))
        }
    };
    let declared = header("metric").unwrap_or_else(|| format!("netsql_{}", file.name));
    if !is_metric_name(&declared) {
        return Err(fail(format!(
            "metric {declared:?} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        )));
    }
    let name = match kind {
        Kind::Counter => declared.strip_suffix("_total").unwrap_or(&declared),
        Kind::Info => declared.strip_suffix("_info").unwrap_or(&declared),
        Kind::Gauge => &declared,
    }
    .to_string();
    if [QUERY_DURATION, QUERY_ERRORS, TABLE_COLLECT]
        .into_iter()
        .any(|own| clash(own, (&name, kind)))
    {
        return Err(fail(format!("metric {name} is netsql's own")));
    }
    let optional = match header("optional").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(fail(format!("optional {other:?}: true or false"))),
    };
    let help = header("help")
        .or_else(|| file.description.clone())
        .unwrap_or_else(|| file.name.clone());
    let declared_labels: Option<Vec<String>> = header("labels").map(|text| {
        text.split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    });
    let bound = queries::bind_declared(&file, params).map_err(|e| Error::Usage(e.to_string()))?;
    let mut statements = runner
        .read_only()
        .statements(&file.sql)
        .map_err(|e| fail(e.to_string()))?;
    if statements.len() != 1 {
        return Err(fail(format!(
            "a metric is one query, found {} statements",
            statements.len()
        )));
    }
    let statement = statements.remove(0);
    if !matches!(&statement, Statement::Statement(s) if matches!(**s, SqlStatement::Query(_))) {
        return Err(fail("a metric is a SELECT".into()));
    }
    let plan = runner
        .plan(statement, &bound)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let schema: Schema = plan.schema().as_arrow().clone();
    let read = read_columns(runner, &plan).map_err(|e| fail(e.to_string()))?;
    if let Some(stream) = read
        .keys()
        .find(|t| crate::tables::streams().contains(&t.as_str()))
    {
        return Err(fail(format!(
            "{stream} is a stream that never ends: a scrape reads tables"
        )));
    }
    let (labels, values) = columns(&schema, declared_labels.as_deref(), kind).map_err(fail)?;
    Ok(Family {
        query: file.name.clone(),
        origin: file.origin.clone(),
        name,
        kind,
        help,
        labels,
        values,
        sql: file.sql.clone(),
        params: bound,
        columns: read,
        optional,
    })
}

/// The live tables a plan scans, each with the columns it reads of it.
fn read_columns(
    runner: &Runner<'_>,
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Result<BTreeMap<String, BTreeSet<String>>, Error> {
    let live: Vec<&str> = crate::tables::infos().iter().map(|i| i.name).collect();
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let optimized = runner.ctx.state().optimize(plan)?;
    let mut columns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut namespaces = false;
    optimized.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let table = scan.table_name.table();
            // `history.sockets` and the like are not live tables.
            let qualifier = scan.table_name.schema();
            if live.contains(&table) && matches!(qualifier, None | Some("public")) {
                let schema = scan.source.schema();
                let read = columns.entry(table.to_string()).or_default();
                match &scan.projection {
                    Some(indices) => {
                        read.extend(indices.iter().map(|&i| schema.field(i).name().clone()))
                    }
                    None => read.extend(schema.fields().iter().map(|f| f.name().clone())),
                }
                for filter in &scan.filters {
                    if crate::tables::netns::mentions_namespace(filter) {
                        namespaces = true;
                    }
                    read.extend(filter.column_refs().into_iter().map(|c| c.name.clone()));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    // On a live table such a filter chooses the namespaces read; a scrape reads each
    // table once, in --netns's namespaces, so it would silently find nothing.
    if namespaces {
        return Err(Error::Usage(
            "a metric cannot choose namespaces with a filter on netns or netns_name: \
             the exporter's --netns does (group or label by netns instead)"
                .into(),
        ));
    }
    Ok(columns)
}

/// The query's label and value columns.
fn columns(
    schema: &Schema,
    declared: Option<&[String]>,
    kind: Kind,
) -> Result<(Vec<String>, Vec<String>), String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let labels: Vec<String> = match (declared, kind) {
        (Some(labels), _) => {
            if let Some(missing) = labels.iter().find(|l| !names.contains(&l.as_str())) {
                return Err(format!(
                    "label {missing:?} is not a column of the query (it has {})",
                    names.join(", ")
                ));
            }
            labels.to_vec()
        }
        (None, Kind::Info) => names.iter().map(|n| n.to_string()).collect(),
        (None, _) => schema
            .fields()
            .iter()
            .filter(|f| !is_number(f.data_type()))
            .map(|f| f.name().clone())
            .collect(),
    };
    if let Some(twice) = labels
        .iter()
        .enumerate()
        .find(|(i, l)| labels[..*i].contains(l))
        .map(|(_, l)| l)
    {
        return Err(format!("label {twice:?} is named twice"));
    }
    if let Some(bad) = labels.iter().find(|l| !is_label_name(l)) {
        return Err(format!(
            "label {bad:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)"
        ));
    }
    let values: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| !labels.contains(f.name()))
        .map(|f| f.name().clone())
        .collect();
    if kind == Kind::Info {
        if let Some(value) = values.first() {
            return Err(format!(
                "an info metric is labels only; column {value:?} is not one of its labels"
            ));
        }
        return Ok((labels, values));
    }
    if let Some(bad) = values
        .iter()
        .find(|v| !is_number(schema.field_with_name(v).expect("a column").data_type()))
    {
        return Err(format!(
            "column {bad:?} is neither a label nor a number: name it in `-- labels:` or cast it"
        ));
    }
    match values.len() {
        0 => Err("no value column: a metric needs one numeric column that is not a label".into()),
        1 => Ok((labels, values)),
        _ if labels.iter().any(|l| l == "value") => Err(
            "several value columns are told apart by a `value` label, and `value` is already a label"
                .into(),
        ),
        _ => Ok((labels, values)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn names_follow_prometheus() {
        assert!(is_metric_name("netsql_sockets"));
        assert!(is_metric_name("a:b_c9"));
        assert!(!is_metric_name("9lives"));
        assert!(!is_metric_name("netsql-sockets"));
        assert!(!is_metric_name(""));
        assert!(is_label_name("local_port"));
        assert!(!is_label_name("__name__"));
        assert!(!is_label_name("local port"));
    }

    #[test]
    fn labels_default_to_the_columns_that_are_not_numbers() {
        let s = schema(&[
            ("state", DataType::Utf8),
            ("local_port", DataType::Int32),
            ("n", DataType::Int64),
        ]);
        let (labels, values) = columns(&s, None, Kind::Gauge).unwrap();
        assert_eq!(labels, ["state"]);
        assert_eq!(values, ["local_port", "n"]);
        let declared = ["state".to_string(), "local_port".to_string()];
        let (labels, values) = columns(&s, Some(&declared), Kind::Gauge).unwrap();
        assert_eq!(labels, ["state", "local_port"]);
        assert_eq!(values, ["n"]);
    }

    /// Pairs prometheus_client's strict OpenMetrics parser refused ("Clashing name")
    /// while promtool and Prometheus took them (helper-48), and pairs that share nothing.
    #[test]
    fn families_that_would_share_a_name_clash() {
        let counter = ("hl_x", Kind::Counter);
        assert!(clash(counter, ("hl_x_created", Kind::Gauge)));
        // A counter declared `hl_x_total_total` is the family `hl_x_total`.
        assert!(clash(counter, ("hl_x_total", Kind::Counter)));
        assert!(clash(counter, ("hl_x_total", Kind::Gauge)));
        assert!(clash(counter, ("hl_x", Kind::Gauge)));
        assert!(!clash(counter, ("hl_y", Kind::Counter)));
        assert!(!clash(counter, ("hl_x_errors", Kind::Counter)));
        assert!(!clash(("hl_x", Kind::Gauge), ("hl_x_created", Kind::Gauge)));
    }

    #[test]
    fn a_bad_declaration_is_refused_with_its_reason() {
        let s = schema(&[("state", DataType::Utf8), ("n", DataType::Int64)]);
        let missing = ["nope".to_string()];
        assert!(columns(&s, Some(&missing), Kind::Gauge)
            .unwrap_err()
            .contains("\"nope\" is not a column"));
        let all = ["state".to_string(), "n".to_string()];
        assert!(columns(&s, Some(&all), Kind::Gauge)
            .unwrap_err()
            .contains("no value column"));
        let text = schema(&[("state", DataType::Utf8), ("other", DataType::Utf8)]);
        let one = ["state".to_string()];
        assert!(columns(&text, Some(&one), Kind::Gauge)
            .unwrap_err()
            .contains("neither a label nor a number"));
        assert!(columns(&s, None, Kind::Info)
            .map(|(l, _)| l == ["state", "n"])
            .unwrap());
    }
}
