//! The command line: clap parses [`Args`], which are checked into a [`Config`] (in
//! `args`); this half runs a `Config`: one session, one path (`exec`), one sink per mode.

mod args;
mod commands;
mod config;
mod man;
mod names;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::audit;
use crate::error::{Error, Exit};
use crate::exec::{self, Formatted, Runner};
use crate::output::atomic::{self, AtomicFile};
use crate::output::Format;
use crate::queries;
use datafusion::prelude::SessionContext;

pub use args::{split_netstat, Args, Config, Input, Mode};

/// clap's message for a bad command line as one line: its first, with what the lines
/// under it name (missing arguments, possible values, a similar flag), without the usage
/// block and the --help hint (which follows on a line of its own).
fn usage_error(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut lines = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let mut line = lines
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .to_string();
    for more in lines {
        line.push(' ');
        line.push_str(more);
    }
    line
}

/// The whole program: parse arguments, run, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (ours, netstat) = match split_netstat(&argv) {
        Some((ours, theirs)) => (ours, Some(theirs)),
        None => (argv, None),
    };
    let files = config::files();
    let layered = match config::layer(&ours, &files, netstat.is_some()) {
        Ok(layered) => layered,
        Err(line) => {
            crate::warn!("netsql: {line}");
            return Exit::Error.into();
        }
    };
    let args = match Args::try_parse_from(&layered.argv) {
        Ok(args) => args,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version: exit 0
        Err(err) => {
            crate::warn!("netsql: {}", usage_error(&err));
            crate::warn!("For more information, try 'netsql --help'.");
            return Exit::Error.into();
        }
    };
    if args.print_config() {
        let mut out = std::io::stdout().lock();
        return match config::print(&layered.shown, &files, &mut out) {
            Ok(()) => Exit::Success.into(),
            // As everywhere: a closed pipe (`| head`) ends netsql quietly.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success.into(),
            Err(_) => Exit::Error.into(),
        };
    }
    let netstat = match netstat.map(|flags| crate::netstat::Flags::parse(&flags)) {
        None => None,
        Some(Ok(flags)) => Some(flags),
        Some(Err(err)) => {
            crate::warn!("netsql netstat: {err}\n{}", crate::netstat::flags::USAGE);
            return Exit::Error.into();
        }
    };
    let mut stdout = PipeGuard::new(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stdout(),
    ));
    let result = args
        .into_config(
            netstat,
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
        )
        .and_then(|config| run(&config, &mut stdout))
        .and_then(|exit| stdout.flush().map(|()| exit).map_err(Error::Io));
    match result {
        Ok(exit) => exit.into(),
        // A broken pipe means the reader (`| head`) has all it wanted.
        Err(_) if stdout.broken => Exit::Success.into(),
        Err(err) => {
            let _ = stdout.flush();
            crate::error::report(&err);
            Exit::Error.into()
        }
    }
}

/// Runs the validated mode: the one place a mode is dispatched on. Each mode's runtime,
/// read-only-ness and what may be killed are its own properties (`Mode::runtime`,
/// `read_only`, `kill`).
fn run(config: &Config, stdout: &mut (dyn Write + Send)) -> Result<Exit, Error> {
    let runtime = config.mode.runtime(config.network()).map_err(Error::Io)?;
    let format = config.format;
    if config.mode.collects_often() && config.connect.is_none() {
        // Where it cannot be loaded the walk of /proc answers; `netsql doctor` says why.
        let _ = crate::collect::task_files::load(&config.tables.root);
    }
    match &config.mode {
        Mode::Repl { .. } => {
            let ctx = runtime.block_on(session(config))?;
            crate::repl::run(&runtime, &runner(config, &ctx), &config.queries)?;
            Ok(Exit::Success)
        }
        Mode::Serve(serving) => runtime.block_on(async {
            crate::serve::run(serving, &config.tables, config.history.clone()).await?;
            Ok(Exit::Success)
        }),
        Mode::Metrics(exporting, access) => runtime.block_on(async {
            crate::metrics::run(exporting, access, &config.tables).await?;
            Ok(Exit::Success)
        }),
        // A recording ends on SIGINT or SIGTERM after the snapshot under way.
        Mode::Record(target, recording) => runtime.block_on(async {
            let ctx = session(config).await?;
            crate::history::record::record(
                &runner(config, &ctx),
                &crate::history::dest::Dest::parse(&target.dest)?,
                &target.tables,
                &target.host,
                recording,
            )
            .await
        }),
        Mode::Query { inputs, .. } => answer(&runtime, config, stdout, async |runner, out| {
            query(inputs, runner, format, out).await
        }),
        Mode::Saved { name, params } => answer(&runtime, config, stdout, async |runner, out| {
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            let file = queries::find(&files, name)?;
            let values = queries::bind(file, params)?;
            let statements = runner.statements(&file.sql)?;
            if format.is_binary() && statements.len() != 1 {
                return Err(Error::Usage(format!(
                    "{} holds {} statements: a binary format takes one",
                    file.origin,
                    statements.len()
                )));
            }
            // Over a fleet, host by host: saved queries are written for one host.
            let mut to = Formatted { format, out };
            crate::fleet::each::run(runner, statements, &values, &mut to).await
        }),
        Mode::List => answer(&runtime, config, stdout, async |_, out| {
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            let batch = queries::listing(&files)?;
            let mut sink = crate::output::sink(format, batch.schema(), out)?;
            sink.write(&batch)?;
            sink.finish()?;
            Ok(Exit::Success)
        }),
        Mode::Netstat(flags) => answer(&runtime, config, stdout, async |runner, out| {
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            // netstat's text by default; any other format gets the views' typed rows.
            let mut rows = Formatted { format, out };
            let mut to = match format {
                Format::Table => crate::netstat::Rendering::Text(&mut *rows.out),
                _ => crate::netstat::Rendering::Rows(&mut rows),
            };
            crate::netstat::run(flags, runner, &files, &mut to).await
        }),
        Mode::Snapshot(target) => answer(&runtime, config, stdout, async |runner, out| {
            let dest = crate::history::dest::Dest::parse(&target.dest)?;
            let taken = chrono::Utc::now();
            let snapshot = async |runner: Runner<'_>, host: String| {
                let mut written = crate::history::write::Written::default();
                let result = crate::history::write::snapshot(
                    &runner,
                    &dest,
                    &target.tables,
                    &host,
                    taken,
                    &mut written,
                )
                .await;
                (host, written, result)
            };
            // Over a fleet, each host's rows under its own name, written here: a worker is
            // read-only, and holds no credentials for the destination.
            let sessions = crate::fleet::sessions(runner.ctx)?;
            let fleet = sessions.iter().any(|(name, _)| name.is_some());
            // Names that differ only where a path cannot say it would share a partition,
            // and its rows could never be told apart.
            let mut filed: BTreeMap<String, &str> = BTreeMap::new();
            for name in sessions.iter().filter_map(|(name, _)| name.as_deref()) {
                let safe = crate::history::path_safe(name);
                if let Some(other) = filed.insert(safe.clone(), name) {
                    return Err(Error::Usage(format!(
                        "hosts named {other:?} and {name:?} would share the partition host={safe}: give each server a --name of letters, digits, '.', '_' and '-'"
                    )));
                }
            }
            let written = futures::future::join_all(sessions.iter().map(|(name, ctx)| {
                let host = name
                    .as_deref()
                    .map_or_else(|| target.host.clone(), crate::history::path_safe);
                snapshot(runner.on(ctx), host)
            }))
            .await;
            // Every file written whole is listed, a failed host's or table's too.
            let mut exit = Exit::Success;
            let mut failed_here = None;
            for (host, written, result) in written {
                for file in &written.files {
                    writeln!(out, "{file}")?;
                }
                match result {
                    Ok(()) => {}
                    Err(err) if fleet => {
                        crate::error::report(&format!("{host}: {err}"));
                        exit = Exit::Error;
                    }
                    Err(err) => failed_here = Some(err),
                }
            }
            failed_here.map_or(Ok(exit), Err)
        }),
        Mode::Ddl(target, dialect) => answer(&runtime, config, stdout, async |_, out| {
            let tables: Vec<_> = crate::tables::infos()
                .into_iter()
                .filter(|t| target.tables.iter().any(|n| n == t.name))
                .collect();
            out.write_all(
                crate::history::ddl::statements(&tables, &target.dest, *dialect).as_bytes(),
            )?;
            Ok(Exit::Success)
        }),
        Mode::Completions(shell) => {
            clap_complete::generate(*shell, &mut args::command(), "netsql", stdout);
            Ok(Exit::Success)
        }
        Mode::Man => {
            man::render(stdout)?;
            Ok(Exit::Success)
        }
        Mode::Doctor => {
            writeln!(stdout, "netsql {}", args::long_version())?;
            crate::doctor::write(&crate::doctor::probe(&config.tables.root), stdout)?;
            Ok(Exit::Success)
        }
        Mode::Audit {
            paths,
            params,
            junit,
        } => answer(&runtime, config, stdout, async |runner, out| {
            // Over a fleet, host by host: an audit's joins on pid and inode must not mix
            // hosts' rows.
            let sessions = crate::fleet::sessions(runner.ctx)?;
            let targets: Vec<audit::Target> = sessions
                .iter()
                .map(|(host, ctx)| audit::Target {
                    host: host.clone(),
                    runner: runner.on(ctx),
                })
                .collect();
            let mut outcomes = audit::run(&targets, audit::load(paths)?, params).await?;
            // A host that did not answer was not audited: no audit passed there.
            let unanswered: Vec<String> = crate::fleet::hosts(runner.ctx)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(host, answer)| answer.err().map(|why| format!("{host}: {why}")))
                .collect();
            for outcome in &mut outcomes {
                outcome.errors.extend(unanswered.iter().cloned());
            }
            match format {
                Format::Json => audit::write_json(&outcomes, out)?,
                _ => audit::write_summary(&outcomes, out)?,
            }
            if let Some(path) = junit {
                atomic::write(path, audit::junit(&outcomes)?.as_bytes()).map_err(|source| {
                    Error::Output {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
            Ok(audit::exit(&outcomes))
        }),
    }
}

/// The one session a run uses, with `--history`'s tables registered; with `--connect`,
/// the fleet's.
async fn session(config: &Config) -> Result<SessionContext, Error> {
    if let Some(connect) = &config.connect {
        let fleet = crate::fleet::Fleet {
            hosts: connect.hosts.clone(),
            token: connect
                .token_file
                .as_deref()
                .map(crate::access::read_token)
                .transpose()?,
            ca: connect
                .tls_ca
                .as_ref()
                .map(|path| {
                    std::fs::read(path).map_err(|source| Error::Input {
                        path: path.clone(),
                        source,
                    })
                })
                .transpose()?,
            host_timeout: connect.host_timeout,
            all_hosts: connect.all_hosts,
        };
        return crate::fleet::connect(&fleet, &config.tables).await;
    }
    let ctx = exec::context(&config.tables)?;
    if let Some(history) = &config.history {
        history.register(&ctx).await?;
    }
    Ok(ctx)
}

/// The session's runner, read-only and killing as the mode allows.
fn runner<'a>(config: &'a Config, ctx: &'a SessionContext) -> Runner<'a> {
    Runner {
        ctx,
        root: &config.tables.root,
        read_only: config.mode.read_only(),
        kill: config.mode.kill(),
        dry_run: config.mode.dry_run(),
    }
}

/// Runs `work` on the run's session to stdout or `-o`'s file (all or nothing); Ctrl-C,
/// SIGTERM or SIGHUP drops the work, and with it any half-written file.
fn answer(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    stdout: &mut (dyn Write + Send),
    work: impl AsyncFnOnce(&Runner<'_>, &mut (dyn Write + Send)) -> Result<Exit, Error>,
) -> Result<Exit, Error> {
    runtime.block_on(async {
        let ctx = session(config).await?;
        let runner = runner(config, &ctx);
        let written = async {
            match &config.output {
                None => work(&runner, stdout).await,
                Some(path) => {
                    let mut file = AtomicFile::create(path).map_err(|source| Error::Output {
                        path: path.clone(),
                        source,
                    })?;
                    let exit = {
                        let mut writer = file.writer();
                        let exit = work(&runner, &mut writer).await?;
                        writer.flush()?;
                        exit
                    };
                    file.commit().map_err(|source| Error::Output {
                        path: path.clone(),
                        source,
                    })?;
                    Ok(exit)
                }
            }
        };
        let interrupted = crate::interrupt::one_shot_flag()?;
        let result = tokio::select! {
            result = written => result,
            () = crate::interrupt::raised(interrupted) => Err(Error::Usage("interrupted".into())),
        };
        match (result, &config.history) {
            (Err(err), Some(history)) => match history.culprit(&err).await {
                Some(culprit) => Err(Error::Usage(culprit)),
                None => Err(err),
            },
            (result, _) => result.map(|exit| crate::fleet::exit(&ctx, exit)),
        }
    })
}

/// `-e`, `-f`, stdin: every statement parses before any runs (a typo in the last -e
/// prints nothing), then each runs in order.
async fn query(
    inputs: &[Input],
    runner: &Runner<'_>,
    format: Format,
    out: &mut (dyn Write + Send),
) -> Result<Exit, Error> {
    let texts: Vec<String> = inputs.iter().map(read_input).collect::<Result<_, _>>()?;
    let mut statements = Vec::new();
    for sql in &texts {
        statements.extend(runner.statements(sql)?);
    }
    if statements.is_empty() {
        return Err(Error::Usage(
            "no SQL statement to run (the input is empty or only comments)".into(),
        ));
    }
    // A binary file holds one result.
    if format.is_binary() && statements.len() != 1 {
        return Err(Error::Usage(
            format!(
                "{format:?} output holds one result: give one query, not {}",
                statements.len()
            )
            .to_lowercase(),
        ));
    }
    let mut to = Formatted { format, out };
    runner
        .run_statements(statements, &BTreeMap::new(), &mut to)
        .await?;
    Ok(Exit::Success)
}

fn read_input(input: &Input) -> Result<String, Error> {
    match input {
        Input::Sql(sql) => Ok(sql.clone()),
        Input::File(path) => std::fs::read_to_string(path)
            .map(|sql| crate::queries::without_bom(&sql).to_string())
            .map_err(|source| Error::Input {
                path: path.clone(),
                source,
            }),
        Input::Stdin => {
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .map_err(|source| Error::Input {
                    path: PathBuf::from("<stdin>"),
                    source,
                })?;
            Ok(sql)
        }
    }
}

/// Remembers whether a write failed with EPIPE, however the error was wrapped later.
struct PipeGuard<W: Write> {
    inner: W,
    broken: bool,
}

impl<W: Write> PipeGuard<W> {
    fn new(inner: W) -> Self {
        PipeGuard {
            inner,
            broken: false,
        }
    }

    fn check<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(err) = &result {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                self.broken = true;
            }
        }
        result
    }
}

impl<W: Write> Write for PipeGuard<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.check(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.check(result)
    }
}
