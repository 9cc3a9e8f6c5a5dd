//! The command line: clap parses [`Args`], which are checked into a [`Config`]; nothing
//! past this module sees clap.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::prelude::SessionContext;

use crate::audit;
use crate::collect::sockets::Source;
use crate::collect::Root;
use crate::error::{Error, Exit};
use crate::exec::{self, Runner};
use crate::output::atomic::{self, AtomicFile};
use crate::output::Format;
use crate::queries;
use crate::tables::TablesConfig;

/// Ask your host's sockets, processes and services questions in SQL.
#[derive(Debug, Parser)]
#[command(
    name = "netsql",
    version,
    about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true,
    after_help = "Also: netsql netstat [FLAGS]   the classic netstat views, computed by saved queries (netsql netstat -h)"
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Run SQL (several statements separated by `;` allowed); repeatable
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    execute: Vec<String>,

    /// Run the SQL in FILE; repeatable, after every -e
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,

    /// Run the saved query NAME (read-only; see --list)
    #[arg(short = 'q', long = "query", value_name = "NAME", conflicts_with_all = ["execute", "file"])]
    query: Option<String>,

    /// List the saved queries: built-in, in $XDG_CONFIG_HOME/netsql/queries, in --queries
    #[arg(long, conflicts_with_all = ["execute", "file", "query"])]
    list: bool,

    /// Set a saved query's parameter (repeatable)
    #[arg(
        short = 'p',
        long = "param",
        value_name = "NAME=VALUE",
        requires = "query"
    )]
    params: Vec<String>,

    /// Also look for saved queries (.sql files) in DIR; repeatable, later ones win
    #[arg(long = "queries", value_name = "DIR", global = true)]
    queries: Vec<PathBuf>,

    /// Refuse statements that write or read files (COPY, CREATE, INSERT, SET, ...)
    #[arg(long)]
    read_only: bool,

    /// Output format [default: from -o's extension, else table]
    #[arg(long, value_enum, global = true)]
    format: Option<FormatArg>,

    /// Write the result to FILE, all or nothing (the format follows the extension:
    /// .csv .tsv .json .ndjson .jsonl .parquet .arrow .feather)
    #[arg(short = 'o', long = "output", value_name = "FILE", global = true)]
    output: Option<PathBuf>,

    /// Where socket rows come from: sock_diag netlink (protocols the kernel has no
    /// sock_diag module for, such as raw without CONFIG_INET_RAW_DIAG, from /proc as ss
    /// does), /proc/net, or auto: netlink, falling back to /proc when the kernel refuses
    #[arg(long, value_enum, default_value_t = SourceArg::Auto, global = true)]
    source: SourceArg,

    /// Read /proc from DIR (for tests)
    #[arg(
        long = "proc",
        value_name = "DIR",
        default_value = "/proc",
        hide = true,
        global = true
    )]
    proc_root: PathBuf,

    /// Cap the memory queries may use for sorts, joins and aggregates (e.g. 512M, 2G);
    /// a query that needs more fails with a clear error
    #[arg(long, value_name = "SIZE", value_parser = parse_size, global = true)]
    memory_limit: Option<usize>,

    /// Read /etc files (services, passwd, hosts) from DIR
    #[arg(
        long = "etc",
        value_name = "DIR",
        default_value = "/etc",
        global = true
    )]
    etc_root: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run audit queries (a .sql file, or every .sql in a folder; the built-in audits when
    /// no path is given). Exit 0 when all pass, 1 when any finds rows, 2 on an error.
    Audit {
        /// Audit files or folders
        paths: Vec<PathBuf>,
        /// Override an audit parameter
        #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Also write JUnit XML, one test case per audit, to FILE
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
    Parquet,
    Arrow,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SourceArg {
    Auto,
    Netlink,
    Proc,
}

/// Where SQL comes from, in the order it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Sql(String),
    File(PathBuf),
    Stdin,
    /// No query and a terminal on stdin: the interactive REPL.
    Repl,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Mode {
    Query {
        inputs: Vec<Input>,
        read_only: bool,
    },
    /// `-q NAME`: a saved query with its parameters.
    Saved {
        name: String,
        params: BTreeMap<String, String>,
    },
    /// `--list`: the saved queries.
    List,
    /// `netsql netstat FLAGS`.
    Netstat(Box<crate::netstat::Flags>),
    Audit {
        paths: Vec<PathBuf>,
        params: BTreeMap<String, String>,
        junit: Option<PathBuf>,
    },
}

/// A validated invocation.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub tables: TablesConfig,
    /// User query folders (`--queries`), after the XDG one.
    pub queries: Vec<PathBuf>,
}

impl Args {
    /// Checks the arguments; the terminal flags decide what no query means and whether a
    /// binary format may go to stdout.
    pub fn into_config(
        self,
        stdin_is_terminal: bool,
        stdout_is_terminal: bool,
    ) -> Result<Config, Error> {
        let format = match (self.format, &self.output) {
            (Some(format), _) => format.into(),
            (None, Some(path)) => Format::from_extension(path).ok_or_else(|| {
                Error::Usage(format!(
                    "cannot tell the format of {} from its extension: use --format",
                    path.display()
                ))
            })?,
            (None, None) => Format::Table,
        };
        if format.is_binary() && self.output.is_none() && stdout_is_terminal {
            return Err(Error::Usage(
                format!(
                    "{format:?} is binary: not writing it to a terminal (use -o FILE or a pipe)"
                )
                .to_lowercase(),
            ));
        }
        let mode = match self.command {
            Some(Command::Audit {
                paths,
                params,
                junit,
            }) => {
                if !matches!(format, Format::Table | Format::Json) {
                    return Err(Error::Usage("audit writes --format table or json".into()));
                }
                Mode::Audit {
                    paths,
                    params: parse_params(&params)?,
                    junit,
                }
            }
            None if self.list => Mode::List,
            None if self.query.is_some() => Mode::Saved {
                name: self.query.unwrap_or_default(),
                params: parse_params(&self.params)?,
            },
            None => {
                let mut inputs: Vec<Input> = self.execute.into_iter().map(Input::Sql).collect();
                inputs.extend(self.file.into_iter().map(Input::File));
                if inputs.is_empty() {
                    inputs.push(if stdin_is_terminal {
                        Input::Repl
                    } else {
                        Input::Stdin
                    });
                }
                Mode::Query {
                    inputs,
                    read_only: self.read_only,
                }
            }
        };
        let source = match self.source {
            SourceArg::Auto => Source::Auto,
            SourceArg::Netlink => Source::Netlink,
            SourceArg::Proc => Source::Proc,
        };
        Ok(Config {
            mode,
            format,
            output: self.output,
            tables: TablesConfig {
                root: Root {
                    proc: self.proc_root,
                    etc: self.etc_root,
                },
                source,
                memory_limit: self.memory_limit,
            },
            queries: self.queries,
        })
    }
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Table => Format::Table,
            FormatArg::Csv => Format::Csv,
            FormatArg::Tsv => Format::Tsv,
            FormatArg::Json => Format::Json,
            FormatArg::Ndjson => Format::Ndjson,
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Arrow => Format::Arrow,
        }
    }
}

/// `32M`, `1G`, `512K`, `4096`: bytes, with an optional binary suffix.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: usize = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("{text:?}: expected a size such as 512M or 2G")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?}: expected a size such as 512M or 2G"))
}

/// `-p name=value` pairs.
fn parse_params(pairs: &[String]) -> Result<BTreeMap<String, String>, Error> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_string(), value.to_string()))
            }
            _ => Err(Error::Usage(format!("-p {pair:?}: expected NAME=VALUE"))),
        })
        .collect()
}

/// The whole program: parse arguments, run, map the outcome to an exit code.
/// Options of ours that take a value: the word after one is that value, not `netstat`.
const TAKES_VALUE: &[&str] = &[
    "-e",
    "--execute",
    "-f",
    "--file",
    "-q",
    "--query",
    "-p",
    "--param",
    "-o",
    "--output",
    "--format",
    "--source",
    "--proc",
    "--etc",
    "--queries",
    "--memory-limit",
];

/// Splits `netsql [OPTIONS] netstat FLAGS...`: netstat's flags (its own `-o`, `-p`, `-e`,
/// `-h`) are not ours, so they never reach clap. `None` when there is no `netstat` word.
pub fn split_netstat(argv: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].as_str();
        if arg == "netstat" {
            return Some((argv[..i].to_vec(), argv[i + 1..].to_vec()));
        }
        if arg == "--" || !arg.starts_with('-') {
            return None;
        }
        if TAKES_VALUE.contains(&arg) {
            i += 1;
        }
        i += 1;
    }
    None
}

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
        // clap prints usage errors (exit 2) and --help/--version (exit 0) itself.
        Err(err) => err.exit(),
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
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
        )
        .map(|mut config| {
            if let Some(flags) = netstat {
                config.mode = Mode::Netstat(Box::new(flags));
            }
            config
        })
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
    if let Mode::Query { inputs, .. } = &config.mode {
        if inputs.as_slice() == [Input::Repl] {
            crate::repl::run(&config.tables, &config.queries)?;
            return Ok(Exit::Success);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    runtime.block_on(async {
        let ctx = exec::context(&config.tables)?;
        let work = async {
            match &config.output {
                None => execute(config, &ctx, stdout).await,
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
                        let exit = execute(config, &ctx, &mut writer).await?;
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
        // Ctrl-C drops the work, and with it any half-written file.
        let interrupted = crate::interrupt::flag()?;
        tokio::select! {
            result = work => result,
            () = crate::interrupt::raised(interrupted) => Err(Error::Usage("interrupted".into())),
        }
    })
}

async fn execute(
    config: &Config,
    ctx: &SessionContext,
    out: &mut (dyn Write + Send),
) -> Result<Exit, Error> {
    let root = &config.tables.root;
    match &config.mode {
        Mode::Query { inputs, read_only } => {
            let runner = Runner {
                ctx,
                root,
                read_only: *read_only,
            };
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
            if config.format.is_binary() && statements.len() != 1 {
                return Err(Error::Usage(
                    format!(
                        "{:?} output holds one result: give one query, not {}",
                        config.format,
                        statements.len()
                    )
                    .to_lowercase(),
                ));
            }
            runner
                .run_statements(statements, config.format, out)
                .await?;
            Ok(Exit::Success)
        }
        Mode::Saved { name, params } => {
            let runner = Runner {
                ctx,
                root,
                read_only: true,
            };
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            let file = queries::find(&files, name)?;
            let values = queries::bind(file, params)?;
            let statements = runner.statements(&file.sql)?;
            if config.format.is_binary() && statements.len() != 1 {
                return Err(Error::Usage(format!(
                    "{} holds {} statements: a binary format takes one",
                    file.origin,
                    statements.len()
                )));
            }
            for statement in statements {
                let plan = runner.plan(statement, &values).await?;
                runner.write(plan, config.format, out).await?;
            }
            Ok(Exit::Success)
        }
        Mode::List => {
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            let batch = queries::listing(&files)?;
            let mut sink = crate::output::sink(config.format, batch.schema(), out)?;
            sink.write(&batch)?;
            sink.finish()?;
            Ok(Exit::Success)
        }
        Mode::Netstat(flags) => {
            let runner = Runner {
                ctx,
                root,
                read_only: true,
            };
            let files = queries::saved(&queries::user_dirs(&config.queries))?;
            crate::netstat::run(flags, &runner, &files, out).await
        }
        Mode::Audit {
            paths,
            params,
            junit,
        } => {
            let runner = Runner {
                ctx,
                root,
                read_only: true,
            };
            let outcomes = audit::run(&runner, audit::load(paths)?, params).await?;
            match config.format {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str], stdout_is_terminal: bool) -> Result<Config, Error> {
        let mut argv = vec!["netsql"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .unwrap()
            .into_config(false, stdout_is_terminal)
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("32M"), Ok(32 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn binary_formats_never_go_to_a_terminal() {
        let err = config(&["--format", "parquet", "-e", "SELECT 1"], true).unwrap_err();
        assert!(
            err.to_string().contains("not writing it to a terminal"),
            "{err}"
        );
        assert!(config(&["--format", "parquet", "-e", "SELECT 1"], false).is_ok());
        assert!(config(&["-o", "x.parquet", "-e", "SELECT 1"], true).is_ok());
        assert!(config(&["--format", "csv", "-e", "SELECT 1"], true).is_ok());
    }

    #[test]
    fn the_extension_picks_the_format() {
        assert_eq!(
            config(&["-o", "a.feather", "-e", "SELECT 1"], false)
                .unwrap()
                .format,
            Format::Arrow
        );
        assert_eq!(
            config(&["-o", "a.jsonl", "-e", "SELECT 1"], false)
                .unwrap()
                .format,
            Format::Ndjson
        );
        assert_eq!(
            config(&["--format", "tsv", "-o", "a.csv", "-e", "SELECT 1"], false)
                .unwrap()
                .format,
            Format::Tsv
        );
        assert!(config(&["audit", "--format", "csv"], false).is_err());
        assert!(config(&["audit", "-p", "novalue"], false).is_err());
    }
}
