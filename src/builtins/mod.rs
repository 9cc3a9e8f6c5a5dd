//! DataFusion's own functions, registered when a statement names them. Making the ~230
//! of them (with their signatures) and registering them under ~300 names is half a
//! millisecond of every start, a sixth of `netsql -e "SELECT 1"`; most statements name
//! none or a few. They come in DataFusion's groups (string, math, aggregates, ...), so a
//! statement that says `count(*)` makes the aggregates and nothing else.
//!
//! Exactness does not depend on finding every name: the SQL planner also asks for some
//! functions by itself (`TRIM` for `btrim`, `^` for `power`), and a statement whose
//! planning fails is planned again with everything registered (see `exec::Runner::plan`),
//! so it fails, if it still does, with DataFusion's own message and suggestions. A name
//! the index does not know registers everything at once for the same reason.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::registry::FunctionRegistry;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_relations, Expr, ObjectNamePart, Statement as SqlStatement,
};

mod index;
use index::INDEX;

/// A group of functions DataFusion makes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Core,
    Datetime,
    Encoding,
    Math,
    Regex,
    Crypto,
    Unicode,
    String,
    Nested,
    HigherOrder,
    Aggregate,
    Window,
}

const GROUPS: [Group; 12] = [
    Group::Core,
    Group::Datetime,
    Group::Encoding,
    Group::Math,
    Group::Regex,
    Group::Crypto,
    Group::Unicode,
    Group::String,
    Group::Nested,
    Group::HigherOrder,
    Group::Aggregate,
    Group::Window,
];

/// A group's functions: every name and alias each goes by, as registering it records
/// them.
#[cfg(test)]
fn names(group: Group) -> Vec<String> {
    let mut state = datafusion::execution::session_state::SessionStateBuilder::new().build();
    register(&mut state, group);
    state
        .scalar_functions()
        .keys()
        .chain(state.higher_order_functions().keys())
        .chain(state.aggregate_functions().keys())
        .chain(state.window_functions().keys())
        .cloned()
        .collect()
}

enum GroupFunctions {
    Scalar(Vec<Arc<datafusion::logical_expr::ScalarUDF>>),
    HigherOrder(Vec<Arc<datafusion::logical_expr::HigherOrderUDF>>),
    Aggregate(Vec<Arc<datafusion::logical_expr::AggregateUDF>>),
    Window(Vec<Arc<datafusion::logical_expr::WindowUDF>>),
}

/// Makes a group's functions (the costly part).
fn functions(group: Group) -> GroupFunctions {
    use datafusion::functions as f;
    match group {
        Group::Core => GroupFunctions::Scalar(f::core::functions()),
        Group::Datetime => GroupFunctions::Scalar(f::datetime::functions()),
        Group::Encoding => GroupFunctions::Scalar(f::encoding::functions()),
        Group::Math => GroupFunctions::Scalar(f::math::functions()),
        Group::Regex => GroupFunctions::Scalar(f::regex::functions()),
        Group::Crypto => GroupFunctions::Scalar(f::crypto::functions()),
        Group::Unicode => GroupFunctions::Scalar(f::unicode::functions()),
        Group::String => GroupFunctions::Scalar(f::string::functions()),
        Group::Nested => {
            GroupFunctions::Scalar(datafusion::functions_nested::all_default_nested_functions())
        }
        Group::HigherOrder => GroupFunctions::HigherOrder(
            datafusion::functions_nested::all_default_higher_order_functions(),
        ),
        Group::Aggregate => GroupFunctions::Aggregate(
            datafusion::functions_aggregate::all_default_aggregate_functions(),
        ),
        Group::Window => {
            GroupFunctions::Window(datafusion::functions_window::all_default_window_functions())
        }
    }
}

/// Registers a group on `state` as DataFusion's session builder does: a scalar function
/// that depends on the settings (the time zone) is made for the current ones.
fn register(state: &mut SessionState, group: Group) {
    // A failed registration only means the name is looked up in vain later, which the
    // planner reports; the builder ignores these errors too.
    match functions(group) {
        GroupFunctions::Scalar(list) => {
            for udf in list {
                let udf = match udf.inner().with_updated_config(state.config().options()) {
                    Some(updated) => Arc::new(updated),
                    None => udf,
                };
                let _ = state.register_udf(udf);
            }
        }
        GroupFunctions::HigherOrder(list) => {
            for f in list {
                let _ = state.register_higher_order_function(f);
            }
        }
        GroupFunctions::Aggregate(list) => {
            for f in list {
                let _ = state.register_udaf(f);
            }
        }
        GroupFunctions::Window(list) => {
            for f in list {
                let _ = state.register_udwf(f);
            }
        }
    }
}

/// The groups already registered on one session (a session extension).
#[derive(Debug, Default)]
pub struct Registered(Mutex<BTreeSet<Group>>);

impl Registered {
    fn of(ctx: &SessionContext) -> Option<Arc<Registered>> {
        ctx.state_ref()
            .read()
            .config()
            .get_extension::<Registered>()
    }
}

/// Registers the groups `statement` names that are not registered yet. A name that is
/// neither DataFusion's nor already registered (netsql's own functions are) may be a
/// typo: everything is registered, so the planner can suggest the closest name.
pub fn register_named(ctx: &SessionContext, statement: &Statement) {
    let Some(names) = named(statement) else {
        register_all(ctx);
        return;
    };
    let mut groups = BTreeSet::new();
    for name in names {
        let at = INDEX.partition_point(|(n, _)| *n < name.as_str());
        let hits: Vec<Group> = INDEX[at..]
            .iter()
            .take_while(|(n, _)| *n == name)
            .map(|&(_, g)| g)
            .collect();
        if hits.is_empty() && !registered_name(ctx, &name) {
            register_all(ctx);
            return;
        }
        groups.extend(hits);
    }
    register_groups(ctx, groups);
}

/// Whether a function of this name is registered on the session.
fn registered_name(ctx: &SessionContext, name: &str) -> bool {
    let state = ctx.state_ref();
    let state = state.read();
    state.scalar_functions().contains_key(name)
        || state.aggregate_functions().contains_key(name)
        || state.window_functions().contains_key(name)
}

/// Registers every group not registered yet: whether there was one.
pub fn register_all(ctx: &SessionContext) -> bool {
    register_groups(ctx, GROUPS.into_iter().collect())
}

fn register_groups(ctx: &SessionContext, wanted: BTreeSet<Group>) -> bool {
    let Some(registered) = Registered::of(ctx) else {
        return false; // a session made with every function already
    };
    let mut done = registered.0.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<Group> = wanted.difference(&done).copied().collect();
    if missing.is_empty() {
        return false;
    }
    let state = ctx.state_ref();
    let mut state = state.write();
    for group in missing {
        register(&mut state, group);
        done.insert(group);
    }
    true
}

/// The names of the functions a statement calls; `None` when it needs all of them (a
/// statement that lists functions, one that is not SQL, a compound name).
fn named(statement: &Statement) -> Option<Vec<String>> {
    let sql = match statement {
        Statement::Statement(sql) => sql.as_ref(),
        Statement::Explain(explain) => return named(&explain.statement),
        _ => return None,
    };
    if matches!(sql, SqlStatement::ShowFunctions { .. }) {
        return None;
    }
    // information_schema.routines and .parameters list the registered functions.
    let lists = visit_relations(sql, |name| match name.0.last() {
        Some(ObjectNamePart::Identifier(id))
            if ["routines", "parameters"].contains(&id.value.to_lowercase().as_str()) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    if lists.is_break() {
        return None;
    }
    let mut names = Vec::new();
    let found = visit_expressions(sql, |expr| {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        match function.name.0.as_slice() {
            // Unquoted names are lower-cased by the planner; quoted ones are kept.
            [ObjectNamePart::Identifier(id)] if id.quote_style.is_none() => {
                names.push(id.value.to_lowercase())
            }
            [ObjectNamePart::Identifier(id)] => names.push(id.value.clone()),
            _ => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    });
    match found {
        ControlFlow::Break(()) => None,
        ControlFlow::Continue(()) => Some(names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_datafusions() {
        let mut expected: Vec<(String, Group)> = GROUPS
            .into_iter()
            .flat_map(|g| names(g).into_iter().map(move |n| (n, g)))
            .collect();
        expected.sort();
        expected.dedup();
        let actual: Vec<(String, Group)> = INDEX.iter().map(|&(n, g)| (n.to_string(), g)).collect();
        if actual != expected {
            let table: String = expected
                .iter()
                .map(|(n, g)| format!("    ({n:?}, Group::{g:?}),\n"))
                .collect();
            panic!(
                "src/builtins/index.rs is out of date with DataFusion; INDEX should read:\n{table}"
            );
        }
    }

    fn statement(sql: &str) -> Statement {
        datafusion::sql::parser::DFParser::parse_sql(sql)
            .unwrap()
            .pop_front()
            .unwrap()
    }

    #[test]
    fn the_names_a_statement_calls() {
        let named = |sql: &str| named(&statement(sql));
        assert_eq!(named("SELECT 1"), Some(vec![]));
        assert_eq!(
            named("SELECT state, COUNT(*) FROM sockets WHERE upper(state) = 'X' GROUP BY state"),
            Some(vec!["count".to_string(), "upper".to_string()])
        );
        assert_eq!(
            named("EXPLAIN SELECT max(x) FROM (SELECT abs(1) AS x)"),
            Some(vec!["max".to_string(), "abs".to_string()])
        );
        assert_eq!(
            named(r#"SELECT "Upper"('a')"#),
            Some(vec!["Upper".to_string()])
        );
        assert_eq!(named("SELECT a.b(1)"), None);
        assert_eq!(named("SHOW FUNCTIONS"), None);
        assert_eq!(named("SELECT * FROM information_schema.routines"), None);
        assert_eq!(
            named("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 'x'"),
            None
        );
    }

    fn registered(ctx: &SessionContext) -> (usize, usize, bool) {
        let state = ctx.state();
        (
            state.scalar_functions().len(),
            state.aggregate_functions().len(),
            state.scalar_functions().contains_key("upper"),
        )
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Result<String, crate::error::Error> {
        let root = crate::collect::Root::default();
        let runner = crate::exec::Runner {
            ctx,
            root: &root,
            read_only: true,
            kill: crate::kill::Kill::Refused,
            dry_run: false,
        };
        let statement = runner.statements(sql)?.remove(0);
        let plan = runner.plan(statement, &Default::default()).await?;
        let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
        Ok(datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
    }

    #[tokio::test]
    async fn a_session_registers_what_its_statements_name() {
        let ctx = crate::exec::context(&crate::tables::TablesConfig::default()).unwrap();
        let none = registered(&ctx);
        assert_eq!(none.1, 0, "no aggregate before a statement asks");
        assert!(!none.2);
        assert!(rows(&ctx, "SELECT 1 AS one")
            .await
            .unwrap()
            .contains("| 1   |"));
        let after_one = registered(&ctx);
        assert_eq!(
            (after_one.1, after_one.2),
            (0, false),
            "SELECT 1 names none"
        );
        let counted = rows(&ctx, "SELECT count(*) AS n FROM (VALUES (1), (2)) AS t(x)")
            .await
            .unwrap();
        assert!(counted.contains("| 2 |"), "{counted}");
        let (_, aggregates, upper) = registered(&ctx);
        assert!(aggregates > 30, "the aggregates, all of them: {aggregates}");
        assert!(!upper, "and not the string functions");
        // TRIM names no function; the planner asks for btrim itself: planned again.
        let trimmed = rows(&ctx, "SELECT trim('  x  ') AS t").await.unwrap();
        assert!(trimmed.contains("| x |"), "{trimmed}");
        assert!(registered(&ctx).2, "everything, after the retry");
    }

    #[tokio::test]
    async fn an_unknown_name_gets_datafusions_suggestion() {
        let ctx = crate::exec::context(&crate::tables::TablesConfig::default()).unwrap();
        let err = rows(&ctx, "SELECT uper('a')")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("Did you mean 'upper'"), "{err}");
        let ctx = crate::exec::context(&crate::tables::TablesConfig::default()).unwrap();
        let listed = rows(
            &ctx,
            "SELECT DISTINCT routine_name FROM information_schema.routines \
             WHERE routine_name = 'array_length'",
        )
        .await
        .unwrap();
        assert!(
            listed.contains("array_length"),
            "every function is listed: {listed}"
        );
    }
}
