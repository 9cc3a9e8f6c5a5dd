//! The command line: clap parses [`Args`], which are checked into a [`Config`] (in
//! `args`); this half runs a `Config`: one session, one path (`exec`), one sink per mode.

mod args;
mod commands;

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

pub use args::{split_netstat, Args, Config, Input, Mode};

/// clap's message for a bad command line as one line: its first, with the possible
/// values it lists after it (no usage block, no tips).
fn usage_error(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .to_string();
    for more in lines.filter(|l| l.starts_with('[')) {
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
    let args = match Args::try_parse_from(&ours) {
        Ok(args) => args,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version: exit 0
        Err(err) => {
            eprintln!("netsql: {}", usage_error(&err));
            eprintln!("For more information, try 'netsql --help'.");
            return Exit::Error.into();
        }
    };
    let netstat = match netstat.map(|flags| crate::netstat::Flags::parse(&flags)) {
        None => None,
        Some(Ok(flags)) => Some(flags),
        Some(Err(err)) => {
            eprintln!("netsql netstat: {err}\n{}", crate::netstat::flags::USAGE);
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
            eprintln!("netsql: {err}");
            Exit::Error.into()
        }
    }
}

fn run(config: &Config, stdout: &mut (dyn Write + Send)) -> Result<Exit, Error> {
    if let Mode::Query {
        inputs,
        kill,
        dry_run,
        ..
    } = &config.mode
    {
        if inputs.as_slice() == [Input::Repl] {
            crate::repl::run(
                &config.tables,
                &config.queries,
                config.mode.read_only(),
                (*kill, *dry_run),
            )?;
            return Ok(Exit::Success);
        }
    }
    // One thread for everything but the server: a run's heavy work is the dump, the
    // /proc walk and the Arrow building, on threads of their own (spawn_blocking); the
    // planner and the one output stream gain nothing from worker threads, whose start,
    // hand-offs and shutdown cost a short query ~0.3 ms (10k connections: `SELECT 1`
    // 2.5 -> 2.2 ms, a port filter 4.9 -> 4.4 ms; the 100k queries unchanged, 2x5 runs).
    // The server answers clients at once, each on a worker.
    let runtime = match config.mode {
        Mode::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
    .map_err(Error::Io)?;
    runtime.block_on(async {
        if let Mode::Serve(serving) = &config.mode {
            crate::serve::run(serving, &config.tables, config.history.clone()).await?;
            return Ok(Exit::Success);
        }
        let ctx = exec::context(&config.tables)?;
        if let Some(history) = &config.history {
            history.register(&ctx).await?;
        }
        // The one session every mode runs on; read-only as the mode requires.
        let runner = Runner {
            ctx: &ctx,
            root: &config.tables.root,
            read_only: config.mode.read_only(),
            kill: config.mode.kill(),
            dry_run: matches!(config.mode, Mode::Query { dry_run: true, .. }),
        };
        let work = async {
            match &config.output {
                None => execute(config, &runner, stdout).await,
                Some(path) => {
                    let mut file = AtomicFile::create(path).map_err(|source| Error::Output {
                        path: path.clone(),
                        // Name the target, not the temporary file the error speaks of.
                        source: source
                            .raw_os_error()
                            .map_or(source, std::io::Error::from_raw_os_error),
                    })?;
                    let exit = {
                        let mut writer = file.writer();
                        let exit = execute(config, &runner, &mut writer).await?;
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
        // A recording ends on SIGINT or SIGTERM after the snapshot under way.
        if let Mode::Record(target, recording) = &config.mode {
            return crate::history::record::record(
                &runner,
                &crate::history::dest::Dest::parse(&target.dest)?,
                &target.tables,
                &target.host,
                recording,
            )
            .await;
        }
        // Ctrl-C drops the work, and with it any half-written file.
        let interrupted = crate::interrupt::flag()?;
        let result = tokio::select! {
            result = work => result,
            () = crate::interrupt::raised(interrupted) => Err(Error::Usage("interrupted".into())),
        };
        match (result, &config.history) {
            (Err(err), Some(history)) => match history.culprit(&err).await {
                Some(culprit) => Err(Error::Usage(culprit)),
                None => Err(err),
            },
            (result, _) => result,
        }
    })
}

async fn execute(
    config: &Config,
    runner: &Runner<'_>,
    out: &mut (dyn Write + Send),
) -> Result<Exit, Error> {
    let format = config.format;
    match &config.mode {
        Mode::Query { inputs, .. } => {
            let texts: Vec<String> = inputs.iter().map(read_input).collect::<Result<_, _>>()?;
            // Every statement parses before any runs: a typo in the last -e prints nothing.
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
        Mode::Saved { name, params } => {
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
            let mut to = Formatted { format, out };
            runner.run_statements(statements, &values, &mut to).await?;
            Ok(Exit::Success)
        }
        Mode::List => {
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            let batch = queries::listing(&files)?;
            let mut sink = crate::output::sink(format, batch.schema(), out)?;
            sink.write(&batch)?;
            sink.finish()?;
            Ok(Exit::Success)
        }
        Mode::Netstat(flags) => {
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            // netstat's text by default; any other format gets the views' typed rows.
            let mut rows = Formatted { format, out };
            let mut to = match format {
                Format::Table => crate::netstat::Out::Text(&mut *rows.out),
                _ => crate::netstat::Out::Rows(&mut rows),
            };
            crate::netstat::run(flags, runner, &files, &mut to).await
        }
        Mode::Snapshot(target) => {
            let written = crate::history::write::snapshot(
                runner,
                &crate::history::dest::Dest::parse(&target.dest)?,
                &target.tables,
                &target.host,
                chrono::Utc::now(),
            )
            .await?;
            for file in &written.files {
                writeln!(out, "{file}")?;
            }
            Ok(Exit::Success)
        }
        Mode::Ddl(target, dialect) => {
            let tables: Vec<_> = crate::tables::infos()
                .into_iter()
                .filter(|t| target.tables.iter().any(|n| n == t.name))
                .collect();
            out.write_all(
                crate::history::ddl::statements(&tables, &target.dest, *dialect).as_bytes(),
            )?;
            Ok(Exit::Success)
        }
        Mode::Record(..) => unreachable!("run() records before it gets here"),
        Mode::Serve(_) => unreachable!("run() serves before it gets here"),
        Mode::Connect {
            urls,
            inputs,
            token_file,
            tls_ca,
        } => {
            let sql = inputs
                .iter()
                .map(read_input)
                .collect::<Result<Vec<_>, _>>()?
                .join(";\n");
            let token = token_file
                .as_deref()
                .map(crate::serve::read_token)
                .transpose()?;
            let ca = tls_ca
                .as_ref()
                .map(|path| {
                    std::fs::read(path).map_err(|source| Error::Input {
                        path: path.clone(),
                        source,
                    })
                })
                .transpose()?;
            let mut to = Formatted { format, out };
            crate::serve::client::run(urls, token, ca, &sql, &mut to).await
        }
        Mode::Audit {
            paths,
            params,
            junit,
        } => {
            let outcomes = audit::run(runner, audit::load(paths)?, params).await?;
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
            let failed = outcomes.iter().any(|o| !o.passed());
            Ok(if failed {
                Exit::Findings
            } else {
                Exit::Success
            })
        }
    }
}

fn read_input(input: &Input) -> Result<String, Error> {
    match input {
        Input::Sql(sql) => Ok(sql.clone()),
        Input::File(path) => std::fs::read_to_string(path).map_err(|source| Error::Input {
            path: path.clone(),
            source,
        }),
        Input::Repl => Err(Error::Usage("the REPL takes no other input".into())),
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
