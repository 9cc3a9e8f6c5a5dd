//! The one path every mode takes: SQL text -> statements -> plans -> batch stream -> sink.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    execute_stream, ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};

use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SessionStateDefaults;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;

use crate::catalog::{self, BATCH_ROWS};
use crate::collect::owners::SharedWalk;
use crate::collect::sockdiag::wire::Extensions;
use crate::collect::sockets::SharedDump;
use crate::collect::Root;
use crate::error::Error;
use crate::kill::{self, Deletion, Kill};
use crate::output::{self, Format, Sink};
use crate::tables::{self, TablesConfig};
use crate::{builtins, functions};

/// A session with every live table registered (each made when a statement first names
/// it). Nothing is collected until a query runs.
pub fn context(config: &TablesConfig) -> DfResult<SessionContext> {
    let ctx = SessionContext::new_with_state(state(config)?.build());
    catalog::register_lazy(&ctx, tables::makers(config))?;
    Ok(ctx)
}

/// What every session of netsql's is, before its tables: settings, limits, the planner's
/// rules (a fleet's client adds the distributed planner to it).
pub fn state(config: &TablesConfig) -> DfResult<SessionStateBuilder> {
    let session = SessionConfig::new()
        .with_information_schema(true)
        .with_batch_size(BATCH_ROWS)
        .with_option_extension(catalog::Settings::new(&config.netns, {
            // A value names namespaces that exist (or `all`, `current`): a typo fails at
            // the SET, not at the next query.
            let root = config.root.clone();
            Arc::new(move |text: &str| {
                let scope = text.parse::<crate::collect::netns::Scope>()?;
                crate::collect::netns::select(&root, &scope)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        }))
        .with_extension(Arc::new(SharedWalk::default()))
        .with_extension(Arc::new(SharedDump::default()))
        .with_extension(Arc::new(builtins::Registered::default()));
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = config.memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    // Everything DataFusion's default session has (`with_default_features`, which also
    // makes every function) but its functions, which each statement registers as it
    // names them (see builtins). Its extension types are none.
    Ok(SessionStateBuilder::new()
        .with_config(session)
        .with_runtime_env(runtime.build_arc()?)
        .with_physical_optimizer_rules(catalog::physical_optimizer_rules())
        .with_table_factories(SessionStateDefaults::default_table_factories())
        .with_file_formats(SessionStateDefaults::default_file_formats())
        .with_expr_planners(SessionStateDefaults::default_expr_planners())
        .with_table_function_list(SessionStateDefaults::default_table_functions()))
}

/// Until dropped, the session's scans are of one moment: they share one walk of every
/// process's descriptors (see [`SharedWalk`]) and, given `dump` (what the moment's scans
/// ask of it together, `tables::moment_dump`), one dump of each namespace's
/// TCP table (see [`SharedDump`]). The tables of one snapshot or one scrape are taken as
/// of one moment, and the kernel walks its tables once for them.
pub struct OneMoment(Option<Arc<SharedWalk>>, Option<Arc<SharedDump>>);

impl OneMoment {
    pub fn begin(ctx: &SessionContext, dump: Option<Extensions>) -> OneMoment {
        let state = ctx.state_ref();
        let state = state.read();
        let walk = state.config().get_extension::<SharedWalk>();
        if let Some(walk) = &walk {
            walk.begin();
        }
        let shared = dump.and_then(|ext| {
            let shared = state.config().get_extension::<SharedDump>()?;
            shared.begin(ext);
            Some(shared)
        });
        OneMoment(walk, shared)
    }
}

impl Drop for OneMoment {
    fn drop(&mut self) {
        if let Some(walk) = &self.0 {
            walk.end();
        }
        if let Some(dump) = &self.1 {
            dump.end();
        }
    }
}

/// The session's `netsql.netns`.
pub fn netns_setting(ctx: &SessionContext) -> String {
    ctx.state_ref()
        .read()
        .config()
        .options()
        .extensions
        .get::<catalog::Settings>()
        .map(|s| s.netns.clone())
        .unwrap_or_default()
}

/// Sets `netsql.netns` for the statements that follow (a value already checked).
pub fn set_netns_setting(ctx: &SessionContext, value: &str) {
    let state = ctx.state_ref();
    let mut state = state.write();
    if let Some(settings) = state
        .config_mut()
        .options_mut()
        .extensions
        .get_mut::<catalog::Settings>()
    {
        settings.netns = value.to_string();
    }
}

/// Runs statements against one session; every mode goes through here.
#[derive(Clone, Copy)]
pub struct Runner<'a> {
    pub ctx: &'a SessionContext,
    pub root: &'a Root,
    /// Refuse anything but queries (audits and saved queries always; `--read-only`).
    pub read_only: bool,
    /// Whether `DELETE FROM sockets` may close sockets (`--allow-kill`).
    pub kill: Kill,
    /// `--dry-run`: a DELETE lists what it would close and closes nothing.
    pub dry_run: bool,
}

impl<'a> Runner<'a> {
    /// A runner of queries only (no DELETE, SET, COPY, DDL) on `ctx`.
    pub fn queries(ctx: &'a SessionContext, root: &'a Root) -> Runner<'a> {
        Runner {
            ctx,
            root,
            read_only: true,
            kill: Kill::Refused,
            dry_run: false,
        }
    }

    /// The same session, refusing anything but queries: saved queries, audits, netstat.
    pub fn read_only(&self) -> Runner<'a> {
        Runner {
            read_only: true,
            kill: Kill::Refused,
            ..*self
        }
    }

    /// The same rules on another session (one host's of a fleet).
    pub fn on<'b>(&self, ctx: &'b SessionContext) -> Runner<'b>
    where
        'a: 'b,
    {
        Runner { ctx, ..*self }
    }

    /// Parses `sql` (DataFusion's generic dialect; several statements allowed).
    pub fn statements(&self, sql: &str) -> Result<Vec<Statement>, Error> {
        check_operators(sql)?;
        let statements: Vec<Statement> = DFParser::parse_sql(sql)?.into_iter().collect();
        for statement in &statements {
            if self.read_only {
                check_read_only(statement)?;
            }
            check_distinct_from(statement)?;
            kill::check_statement(statement, self.kill, self.dry_run)?;
            if let Statement::CopyTo(copy) = statement {
                check_copy_target(&copy.target)?;
            }
        }
        Ok(statements)
    }

    /// Plans one statement, binding `$name` placeholders to `params` (each value cast to
    /// the type the query gives its placeholder).
    pub async fn plan(
        &self,
        statement: Statement,
        params: &BTreeMap<String, String>,
    ) -> Result<LogicalPlan, Error> {
        // Fresh functions per statement: their caches last one query.
        functions::register(self.ctx, self.root);
        builtins::register_named(self.ctx, &statement);
        let plan = match self.ctx.state().statement_to_plan(statement.clone()).await {
            Ok(plan) => plan,
            // The planner asked for a function the statement does not name (TRIM's
            // btrim), or the statement is wrong: again with every function, which
            // either plans or fails with DataFusion's whole message.
            Err(_) if builtins::register_all(self.ctx) => {
                self.ctx.state().statement_to_plan(statement).await?
            }
            Err(err) => return Err(err.into()),
        };
        if params.is_empty() {
            return Ok(plan);
        }
        let types = plan.get_parameter_types()?;
        if let Some(missing) = types
            .keys()
            .find(|key| !params.contains_key(key.trim_start_matches('$')))
        {
            return Err(Error::Usage(format!(
                "the query uses {missing}, which no `-- param:` line declares and no -p sets"
            )));
        }
        let texts = params
            .iter()
            .map(|(name, value)| (name.clone(), Param::Text(value.clone())));
        bind(plan, texts)
    }

    /// A plan's result as a stream of batches; DESCRIBE is answered here, with docs.
    pub async fn stream(&self, plan: LogicalPlan) -> Result<SendableRecordBatchStream, Error> {
        Ok(self.answer(plan).await?.0)
    }

    /// A plan's result, and whether it comes from a stream that ends only at a LIMIT,
    /// `--for` or Ctrl-C (its rows are then written as they come).
    async fn answer(&self, plan: LogicalPlan) -> Result<(SendableRecordBatchStream, bool), Error> {
        if let LogicalPlan::DescribeTable(describe) = &plan {
            return Ok((one_batch(describe_with_docs(&describe.schema)?), false));
        }
        // A DELETE never reaches DataFusion's planner (see kill.rs).
        let plan = match kill::deletion(self.ctx, &plan, self.kill, self.dry_run)? {
            None => plan,
            Some(Deletion::List(input, subject)) => kill::listing(input, subject)?,
            Some(Deletion::Close(input, subject)) => {
                return Ok((
                    one_batch(kill::close(self.ctx, self.root, input, subject).await?),
                    false,
                ))
            }
        };
        let frame = self.ctx.execute_logical_plan(plan).await?;
        let (mut state, plan) = frame.into_parts();
        let physical = state.create_physical_plan(&plan).await?;
        if !reads_a_stream(&physical) {
            return Ok((execute_stream(physical, state.task_ctx())?, false));
        }
        // Rows of a stream go on as they come: planned again with batches of one row
        // so that no operator (a filter, a join) holds them back to fill a batch. (This
        // state is the statement's own copy; a state built anew from it would register
        // a fresh default catalog in the session's shared list.)
        let config = state.config().clone().with_batch_size(1);
        *state.config_mut() = config;
        let physical = state.create_physical_plan(&plan).await?;
        Ok((execute_stream(physical, state.task_ctx())?, true))
    }

    /// Runs a plan, its batches going to a sink `to` opens for its schema: a live sink
    /// when the result never ends by itself (it is written as it arrives).
    pub async fn send(&self, plan: LogicalPlan, to: &mut dyn Destination) -> Result<(), Error> {
        let (mut stream, unbounded) = self.answer(plan).await?;
        let mut sink = if unbounded {
            to.open_live(stream.schema())?
        } else {
            to.open(stream.schema())?
        };
        while let Some(batch) = stream.next().await {
            sink.write(&batch?)?;
        }
        Ok(sink.finish()?)
    }

    /// The result of `sql`'s first statement, whole, in memory. Unlike [`Runner::run`]
    /// its future is `Send` (no sink is held across an await): a task of its own may run
    /// it, as a metrics scrape does.
    pub async fn collect(
        &self,
        sql: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Captured, Error> {
        let statement = self
            .statements(sql)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Usage("no statement".into()))?;
        let stream = self.stream(self.plan(statement, params).await?).await?;
        let schema = stream.schema();
        Ok(Captured {
            schema,
            batches: futures::TryStreamExt::try_collect(stream).await?,
        })
    }

    /// Runs every statement in `sql`, in order, binding `params` in each.
    pub async fn run(
        &self,
        sql: &str,
        params: &BTreeMap<String, String>,
        to: &mut dyn Destination,
    ) -> Result<(), Error> {
        self.run_statements(self.statements(sql)?, params, to).await
    }

    /// Runs statements already parsed, in order.
    pub async fn run_statements(
        &self,
        statements: Vec<Statement>,
        params: &BTreeMap<String, String>,
        to: &mut dyn Destination,
    ) -> Result<(), Error> {
        for statement in statements {
            let plan = self.plan(statement, params).await?;
            self.send(plan, to).await?;
        }
        Ok(())
    }
}

/// A parameter's value: text (`-p name=value`, a saved query's default), or a value a
/// client bound with its type (Flight SQL).
pub enum Param {
    Text(String),
    Typed(ScalarValue),
}

impl Param {
    /// The value placeholder `name` takes: cast to the type the query gives it. Where the
    /// query gives none (`LIMIT $n`, `SELECT $1`), text is a number if it reads as one
    /// and writes back the same, and a typed value stays as it was sent.
    fn value_for(self, name: &str, wanted: Option<&DataType>) -> Result<ScalarValue, Error> {
        let mismatch = |value: &dyn std::fmt::Debug, data_type: &DataType| {
            Error::Usage(format!(
                "parameter {name}: {value:?} is not a value of type {data_type}"
            ))
        };
        Ok(match (self, wanted) {
            (Param::Text(text), Some(data_type)) => {
                ScalarValue::try_from_string(text.clone(), data_type)
                    .map_err(|_| mismatch(&text, data_type))?
            }
            // Only text that a number writes back the same: `-p allow=007` (a program
            // named 007) became 7, and an allowlist matched no program.
            (Param::Text(text), None) => match text.parse::<i64>() {
                Ok(n) if n.to_string() == text => ScalarValue::Int64(Some(n)),
                _ => ScalarValue::Utf8(Some(text)),
            },
            (Param::Typed(value), Some(data_type)) if value.data_type() != *data_type => {
                // A dictionary-encoded value is its value.
                let value = match value {
                    ScalarValue::Dictionary(_, inner) => *inner,
                    value => value,
                };
                let cast = value
                    .cast_to(data_type)
                    .map_err(|_| mismatch(&value, data_type))?;
                // A number or a truth value must survive the cast whole: 0.5 cast to an
                // integer column's 0 (or true to 1) would answer another question than
                // the one asked, where the literal compares 0.5 as it is.
                let source = value.data_type();
                let lossy = (source == DataType::Boolean && !value.is_null())
                    || (source.is_numeric() && cast.cast_to(&source).ok().as_ref() != Some(&value));
                if lossy {
                    return Err(mismatch(&value, data_type));
                }
                cast
            }
            (Param::Typed(value), _) => value,
        })
    }
}

/// The most operators one statement may hold. The parser builds `a OR b OR c ...` (and
/// `+`, `||`, `UNION`, `::` chains) as a tree as deep as the chain, without the limit it
/// puts on nesting, and walking it (a clone, a drop, the planner) takes a stack frame a
/// level: 5000 `+` fit the 8 MiB stack every statement runs on, 8000 overflowed it,
/// which aborts the process (a server, with every client's queries). A dashboard's
/// 2000-value filter (`port = 1 OR port = 2 ...`: 4000 operators) still fits; a longer
/// one is written `port IN (...)`, a flat list.
pub const MOST_OPERATORS: usize = 4096;

/// What a set operation (`UNION`, `INTERSECT`, `EXCEPT`) counts for: each level of its
/// chain is a whole query to plan, deeper frames than an operator's (2375 `UNION ALL`
/// overflowed the 8 MiB stack where 2374 fit), so at most 1024 of them.
const SET_OPERATION_WEIGHT: usize = 4;

/// Refuses a statement of more than [`MOST_OPERATORS`] operators, counted on its tokens
/// before any tree is built.
fn check_operators(sql: &str) -> Result<(), Error> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // How many operators a token counts for.
    let chains = |token: &Token| match token {
        Token::Word(word)
            if matches!(
                word.keyword,
                Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT | Keyword::MINUS
            ) =>
        {
            SET_OPERATION_WEIGHT
        }
        Token::Word(word) => usize::from(matches!(
            word.keyword,
            // Every other keyword the parser chains (its infix operators).
            Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::IS
                | Keyword::NOTNULL
                | Keyword::IN
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::MATCH
                | Keyword::MEMBER
                | Keyword::OVERLAPS
                | Keyword::OPERATOR
                | Keyword::DIV
                | Keyword::BETWEEN
                | Keyword::COLLATE
                | Keyword::AT
        )),
        Token::Number(..)
        | Token::Char(_)
        | Token::Whitespace(_)
        | Token::Comma
        | Token::LParen
        | Token::RParen
        | Token::SemiColon
        | Token::Period
        | Token::Placeholder(_)
        | Token::EOF => 0,
        // The rest are literals ('x', N'x', X'ff', $$x$$: a quote, a letter or `$` first)
        // or operators (punctuation).
        other => usize::from(other.to_string().starts_with(|c: char| {
            c.is_ascii_punctuation() && !matches!(c, '\'' | '"' | '`' | '$')
        })),
    };
    // A statement the tokenizer refuses is the parser's to explain.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut operators = 0;
    for token in &tokens {
        if *token == Token::SemiColon {
            operators = 0;
        } else {
            operators += chains(token);
            if operators > MOST_OPERATORS {
                return Err(Error::Usage(format!(
                    "a statement holds more than {MOST_OPERATORS} operators, more than netsql \
                     plans safely (write a long chain of ORs as IN (...))"
                )));
            }
        }
    }
    Ok(())
}

/// Binds `params` to `plan`'s placeholders by name (`$port` takes `port`, `$1` takes
/// `1`); a value no placeholder takes is left out.
pub fn bind(
    plan: LogicalPlan,
    params: impl IntoIterator<Item = (String, Param)>,
) -> Result<LogicalPlan, Error> {
    let mut types = plan.get_parameter_types()?;
    // DataFusion gives a placeholder used as LIMIT or OFFSET no type: it is a count, so
    // `-p limit=abc` is said to be no number here, not as a LIMIT of Utf8 by the planner.
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Limit(limit) = node {
            for count in [&limit.skip, &limit.fetch].into_iter().flatten() {
                if let Expr::Placeholder(p) = count.as_ref() {
                    types.entry(p.id.clone()).and_modify(|t| {
                        t.get_or_insert(DataType::Int64);
                    });
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut values = Vec::new();
    for (name, param) in params {
        let Some(wanted) = types.get(&format!("${name}")).or_else(|| types.get(&name)) else {
            continue; // declared but unused
        };
        values.push((name.clone(), param.value_for(&name, wanted.as_ref())?));
    }
    Ok(plan.with_param_values(values)?)
}

/// The schema of `plan`'s result as [`Runner::stream`] gives it: DESCRIBE's holds the
/// columns' docs too. Read after type coercion: `SELECT 1 UNION SELECT 2.5` plans with
/// its first branch's Int64 and answers Float64.
pub fn result_schema(ctx: &SessionContext, plan: &LogicalPlan) -> Result<SchemaRef, Error> {
    if let LogicalPlan::DescribeTable(describe) = plan {
        return Ok(describe_with_docs(&describe.schema)?.schema());
    }
    let state = ctx.state();
    let analyzed =
        state
            .analyzer()
            .execute_and_check(plan.clone(), state.config_options(), |_, _| {})?;
    Ok(Arc::new(analyzed.schema().as_arrow().clone()))
}

/// Whether some operator of `plan` reads a stream that does not end by itself (a LIMIT
/// over it ends, but its rows still come one by one).
fn reads_a_stream(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.exists(|node| Ok(node.boundedness().is_unbounded()))
        .unwrap_or(false)
}

fn one_batch(batch: RecordBatch) -> SendableRecordBatchStream {
    let schema = batch.schema();
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    ))
}

/// Where each statement's result goes: a sink per statement, opened with its schema.
pub trait Destination: Send {
    fn open(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error>;
    /// A sink for a result that arrives over time (rows of `socket_events`), where each
    /// batch must be seen when it comes; by default the same as [`Destination::open`].
    fn open_live(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        self.open(schema)
    }
}

/// Each result written in `format` to `out`.
pub struct Formatted<'a> {
    pub format: Format,
    pub out: &'a mut (dyn Write + Send),
}

impl Destination for Formatted<'_> {
    fn open(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        Ok(output::sink(self.format, schema, &mut *self.out)?)
    }

    fn open_live(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        Ok(output::live_sink(self.format, schema, &mut *self.out)?)
    }
}

/// One statement's whole result.
#[derive(Debug, Clone)]
pub struct Captured {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Keeps every result whole, for callers that read them (audits, netstat's renderer).
#[derive(Debug, Default)]
pub struct Capture {
    pub results: Vec<Captured>,
}

impl Capture {
    /// The one result of a single statement.
    pub fn into_one(mut self) -> Result<Captured, Error> {
        match self.results.len() {
            1 => Ok(self.results.remove(0)),
            n => Err(Error::Usage(format!("expected one query, found {n}"))),
        }
    }
}

impl Destination for Capture {
    fn open(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        self.results.push(Captured {
            schema,
            batches: Vec::new(),
        });
        let last = self.results.last_mut().expect("just pushed");
        Ok(Box::new(CaptureSink(&mut last.batches)))
    }
}

struct CaptureSink<'a>(&'a mut Vec<RecordBatch>);

impl Sink for CaptureSink<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.0.push(batch.clone());
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), ArrowError> {
        Ok(())
    }
}

/// A COPY to a local path goes into a directory that exists, as `-o` does: DataFusion
/// would make every missing directory on the way.
fn check_copy_target(target: &str) -> Result<(), Error> {
    if target.contains("://") {
        return Ok(());
    }
    let path = std::path::Path::new(target.trim_end_matches('/'));
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::Usage(format!(
            "COPY to {target}: no such directory {}",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// sqlparser 0.62 (DataFusion 55's) parses the right side of IS [NOT] DISTINCT FROM past
/// a following AND or OR: `a IS NOT DISTINCT FROM b AND c` is read as
/// `a IS NOT DISTINCT FROM (b AND c)`, a wrong answer with no error (later releases fix
/// it). A bare AND or OR there can only come from that reading: parentheses the user
/// wrote are kept (`Expr::Nested`). So it is refused, saying how to write it.
fn check_distinct_from(statement: &Statement) -> Result<(), Error> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, BinaryOperator, Expr};
    use std::ops::ControlFlow;
    let bare = |side: &Expr| {
        matches!(
            side,
            Expr::BinaryOp {
                op: BinaryOperator::And | BinaryOperator::Or,
                ..
            }
        )
    };
    let misread = |expr: &Expr| match expr {
        Expr::IsDistinctFrom(_, right) | Expr::IsNotDistinctFrom(_, right) if bare(right) => {
            ControlFlow::Break(expr.to_string())
        }
        _ => ControlFlow::Continue(()),
    };
    let found = match statement {
        Statement::Statement(sql) => visit_expressions(sql.as_ref(), misread),
        Statement::Explain(explain) => return check_distinct_from(&explain.statement),
        _ => ControlFlow::Continue(()),
    };
    match found {
        ControlFlow::Break(expr) => Err(Error::Usage(format!(
            "`{expr}`: put IS [NOT] DISTINCT FROM in parentheses next to AND or OR, as in \
             `(a IS NOT DISTINCT FROM b) AND c`: this SQL parser would read it as \
             `a IS NOT DISTINCT FROM (b AND c)`"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Only statements that read: SELECT/WITH, EXPLAIN, SHOW, DESCRIBE.
fn check_read_only(statement: &Statement) -> Result<(), Error> {
    let refused = |what: &str| {
        Err(Error::Usage(format!(
            "read-only: {what} is not allowed here (only SELECT, WITH, EXPLAIN, SHOW, DESCRIBE)"
        )))
    };
    match statement {
        Statement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_)
            | SqlStatement::ExplainTable { .. }
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. }
            | SqlStatement::ShowVariable { .. }
            | SqlStatement::ShowFunctions { .. } => Ok(()),
            SqlStatement::Explain { statement, .. } => {
                check_read_only(&Statement::Statement(statement.clone()))
            }
            other => {
                let text = other.to_string();
                let keyword = text
                    .split_whitespace()
                    .next()
                    .unwrap_or("statement")
                    .to_uppercase();
                refused(&keyword)
            }
        },
        Statement::Explain(explain) => check_read_only(&explain.statement),
        Statement::CopyTo(_) => refused("COPY"),
        Statement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE"),
        Statement::Reset(_) => refused("RESET"),
    }
}

/// `DESCRIBE table` as DataFusion answers it, plus each column's one-line doc from the
/// table spec (NULL for tables without docs).
fn describe_with_docs(schema: &Schema) -> Result<RecordBatch, Error> {
    let fields = schema.fields();
    let names: StringArray = fields.iter().map(|f| Some(f.name().as_str())).collect();
    let types: StringArray = fields
        .iter()
        .map(|f| Some(f.data_type().to_string()))
        .collect();
    let nullable: StringArray = fields
        .iter()
        .map(|f| Some(if f.is_nullable() { "YES" } else { "NO" }))
        .collect();
    let columns: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let docs: StringArray = tables::docs_of(&columns).into_iter().collect();
    let out = Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("is_nullable", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(names),
        Arc::new(types),
        Arc::new(nullable),
        Arc::new(docs),
    ];
    Ok(RecordBatch::try_new(Arc::new(out), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text given no type is a number only when the number writes back as the text: a
    /// program named `007` in an allowlist stays `007` (it became 7).
    #[test]
    fn untyped_text_is_a_number_only_when_it_writes_back_the_same() {
        let value = |text: &str| Param::Text(text.into()).value_for("p", None).unwrap();
        assert_eq!(value("7"), ScalarValue::Int64(Some(7)));
        assert_eq!(value("-12"), ScalarValue::Int64(Some(-12)));
        for text in ["007", "+7", " 7", "7 ", "1e3", "-0", "sshd"] {
            assert_eq!(value(text), ScalarValue::Utf8(Some(text.into())), "{text}");
        }
    }

    #[test]
    fn operators_are_counted_per_statement_and_literals_are_not() {
        let chain = |n: usize, op: &str| vec!["1"; n + 1].join(op);
        assert!(check_operators(&format!("SELECT {}", chain(MOST_OPERATORS, " + "))).is_ok());
        for op in [
            " + ",
            " OR ",
            " || ",
            "::INT",
            " UNION SELECT ",
            " IN (1) IN ",
            " SIMILAR TO ",
        ] {
            let sql = format!("SELECT {}", chain(MOST_OPERATORS + 1, op));
            let err = check_operators(&sql).expect_err(op).to_string();
            assert!(err.contains("more than 4096 operators"), "{err}");
        }
        // A set operation counts for four.
        let unions = |n: usize| format!("SELECT {}", chain(n, " UNION ALL SELECT "));
        assert!(check_operators(&unions(MOST_OPERATORS / 4)).is_ok());
        assert!(check_operators(&unions(MOST_OPERATORS / 4 + 1)).is_err());
        // Two statements of 3000 each; a flat list of 10000 strings, numbers, names.
        let two = format!("SELECT {0}; SELECT {0}", chain(3000, " + "));
        assert!(check_operators(&two).is_ok());
        let strings: Vec<String> = (0..10_000)
            .map(|i| format!("'s{i}', N'x', {i}, x{i}"))
            .collect();
        assert!(check_operators(&format!(
            "SELECT * FROM t WHERE a IN ({})",
            strings.join(", ")
        ))
        .is_ok());
    }
}
