//! The command line: clap parses [`Args`], which are checked into a [`Config`]; nothing
//! past this module sees clap.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::collect::sockets::Source;
use crate::collect::Root;
use crate::error::{Error, Exit};
use crate::exec;
use crate::output::Format;
use crate::tables::TablesConfig;

/// Ask your host's sockets, processes and services questions in SQL.
#[derive(Debug, Parser)]
#[command(name = "netsql", version, about, max_term_width = 100)]
pub struct Args {
    /// Run SQL (several statements separated by `;` allowed); repeatable
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    execute: Vec<String>,

    /// Run the SQL in FILE; repeatable, after every -e
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,

    /// Where socket rows come from: sock_diag netlink (protocols the kernel has no
    /// sock_diag module for, such as raw without CONFIG_INET_RAW_DIAG, from /proc as ss
    /// does), /proc/net, or auto: netlink, falling back to /proc when the kernel refuses
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,

    /// Read /proc from DIR (for tests)
    #[arg(
        long = "proc",
        value_name = "DIR",
        default_value = "/proc",
        hide = true
    )]
    proc_root: PathBuf,

    /// Read /etc files (services, passwd) from DIR
    #[arg(long = "etc", value_name = "DIR", default_value = "/etc")]
    etc_root: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
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
}

/// A validated invocation.
#[derive(Debug, Clone)]
pub struct Config {
    pub inputs: Vec<Input>,
    pub format: Format,
    pub tables: TablesConfig,
}

impl Args {
    /// Checks the arguments; `stdin_is_terminal` decides what no query means.
    pub fn into_config(self, stdin_is_terminal: bool) -> Result<Config, Error> {
        let mut inputs: Vec<Input> = self.execute.into_iter().map(Input::Sql).collect();
        inputs.extend(self.file.into_iter().map(Input::File));
        if inputs.is_empty() {
            if stdin_is_terminal {
                return Err(Error::Usage(
                    "no query given: use -e SQL, -f FILE, or pipe SQL on stdin (try --help)".into(),
                ));
            }
            inputs.push(Input::Stdin);
        }
        let format = match self.format {
            FormatArg::Table => Format::Table,
            FormatArg::Csv => Format::Csv,
            FormatArg::Tsv => Format::Tsv,
            FormatArg::Json => Format::Json,
            FormatArg::Ndjson => Format::Ndjson,
        };
        let source = match self.source {
            SourceArg::Auto => Source::Auto,
            SourceArg::Netlink => Source::Netlink,
            SourceArg::Proc => Source::Proc,
        };
        Ok(Config {
            inputs,
            format,
            tables: TablesConfig {
                root: Root {
                    proc: self.proc_root,
                    etc: self.etc_root,
                },
                source,
            },
        })
    }
}

/// The whole program: parse arguments, run, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        // clap prints usage errors (exit 2) and --help/--version (exit 0) itself.
        Err(err) => err.exit(),
    };
    let mut stdout = PipeGuard::new(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stdout().lock(),
    ));
    let result = args
        .into_config(std::io::stdin().is_terminal())
        .and_then(|config| run(&config, &mut stdout))
        .and_then(|()| stdout.flush().map_err(Error::Io));
    match result {
        Ok(()) => Exit::Success.into(),
        // A broken pipe means the reader (`| head`) has all it wanted.
        Err(_) if stdout.broken => Exit::Success.into(),
        Err(err) => {
            let _ = stdout.flush();
            eprintln!("netsql: {err}");
            Exit::Error.into()
        }
    }
}

fn run(config: &Config, out: &mut dyn Write) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)?;
    runtime.block_on(async {
        let ctx = exec::context(&config.tables)?;
        for input in &config.inputs {
            let sql = read_input(input)?;
            exec::run(&ctx, &config.tables.root, &sql, config.format, out).await?;
        }
        Ok(())
    })
}

fn read_input(input: &Input) -> Result<String, Error> {
    match input {
        Input::Sql(sql) => Ok(sql.clone()),
        Input::File(path) => std::fs::read_to_string(path).map_err(|source| Error::Input {
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
