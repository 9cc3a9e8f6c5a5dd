//! Arguments: clap's [`Args`], checked into the [`Config`] the rest of netsql runs.
//! Nothing past this module sees clap.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

pub use super::commands::SnapshotTarget;
use super::commands::{parse_duration, AuditArgs, Command, RecordArgs, SnapshotArgs};

/// netsql's whole command line as clap sees it (for completions and the man page).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

use crate::collect::sockets::{Source, Walks};
use crate::collect::Root;
use crate::error::Error;
use crate::output::Format;
use crate::tables::TablesConfig;

/// Ask your host's sockets, processes and services questions in SQL.
#[derive(Debug, Parser)]
#[command(
    name = "netsql",
    version,
    long_version = long_version(),
    about,
    max_term_width = 100,
    after_help = "Also: netsql netstat [FLAGS]   the classic netstat views, computed by saved queries (netsql netstat -h)"
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Run SQL (several statements separated by `;` allowed); repeatable
    // SQL may start with `-`: a `-- comment` line, `-1 AS x`.
    #[arg(
        short = 'e',
        long = "execute",
        value_name = "SQL",
        allow_hyphen_values = true
    )]
    execute: Vec<String>,

    /// Run the SQL in FILE; repeatable, after every -e
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,

    /// Run the saved query NAME (read-only; see --list)
    #[arg(short = 'q', long = "query", value_name = "NAME", conflicts_with_all = ["execute", "file"], value_parser = super::names::query_names(), hide_possible_values = true)]
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

    /// Let `DELETE FROM sockets WHERE ...` close the sockets it selects (SOCK_DESTROY, as
    /// ss -K); `=all` also allows a DELETE that selects every socket
    #[arg(long, value_name = "all", num_args = 0..=1, require_equals = true, default_missing_value = "filtered", value_parser = ["filtered", "all"], hide_possible_values = true)]
    allow_kill: Option<String>,

    /// List what a DELETE would close, and close nothing
    #[arg(long)]
    dry_run: bool,

    /// Query a fleet of netsql servers (`netsql serve`) as one host: grpc://host:port or
    /// grpc+tls://host:port, comma-separated, or @FILE (one a line); every table gains a
    /// `host` column, and each host's part of the query runs on that host (a saved query
    /// and an audit run on each host by itself)
    #[arg(long, value_name = "URL,...|@FILE", value_delimiter = ',')]
    connect: Vec<String>,

    /// With --connect: how long a host may take to connect and answer before a query,
    /// and to answer the connection's pings during one
    #[arg(long, value_name = "DURATION", requires = "connect", default_value = "10s", value_parser = parse_duration)]
    host_timeout: std::time::Duration,

    /// With --connect: fail when any host does not answer, or a saved query fails on one
    /// (by default the others answer, the missing ones are named, and the exit status is 2)
    #[arg(long, requires = "connect")]
    all_hosts: bool,

    /// With --connect: the bearer token, the first line of FILE
    #[arg(long, value_name = "FILE", requires = "connect")]
    token_file: Option<PathBuf>,

    /// With --connect to grpc+tls://: trust this CA certificate (PEM) too
    #[arg(long, value_name = "FILE", requires = "connect")]
    tls_ca: Option<PathBuf>,

    /// How long a query over socket_events listens (10s, 10m, 2h); default: until
    /// Ctrl-C or its LIMIT
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    events_for: Option<std::time::Duration>,

    /// Output format [default: from -o's extension, else table]
    #[arg(long, value_enum, global = true)]
    format: Option<Format>,

    /// Write the result to FILE, all or nothing (the format follows the extension:
    /// .csv .tsv .json .ndjson .jsonl .parquet .arrow .feather, .txt the table)
    #[arg(short = 'o', long = "output", value_name = "FILE", global = true)]
    output: Option<PathBuf>,

    /// Where socket rows come from: sock_diag netlink (protocols the kernel has no
    /// sock_diag module for, such as raw without CONFIG_INET_RAW_DIAG, from /proc as ss
    /// does), /proc/net, or auto: netlink, falling back to /proc when the kernel refuses
    #[arg(long, value_enum, default_value_t = Source::Auto, global = true)]
    source: Source,

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

    /// Network namespaces to read: all, or a comma list of `ip netns` names, /run/netns
    /// paths, pids and namespace inodes (default: the current one)
    #[arg(long, value_name = "all|LIST", value_parser = parse_netns, global = true)]
    netns: Option<String>,

    /// Register `history.<table>` for each table of the snapshot dataset at DEST
    #[arg(long, value_name = "DEST", global = true)]
    history: Option<String>,

    /// Leave corrupt Parquet files of the --history dataset out, with a warning each,
    /// instead of failing
    #[arg(long, requires = "history", global = true)]
    history_skip_corrupt: bool,

    /// Print the settings in effect (config.toml files, NETSQL_* variables, this command
    /// line) and where each came from, then exit
    #[arg(long)]
    print_config: bool,

    /// Read /etc files (services, passwd, hosts) from DIR
    #[arg(
        long = "etc",
        value_name = "DIR",
        default_value = "/etc",
        global = true
    )]
    etc_root: PathBuf,
}

/// `netsql --netns`: checked here, resolved against the host's namespaces when a table is read.
fn parse_netns(text: &str) -> Result<String, String> {
    text.parse::<crate::collect::netns::Scope>()?;
    Ok(text.to_string())
}

/// Where SQL comes from, in the order it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Sql(String),
    File(PathBuf),
    Stdin,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Mode {
    /// No query and a terminal on stdin: the interactive REPL.
    Repl {
        read_only: bool,
        /// `--allow-kill`, `--dry-run`.
        kill: crate::kill::Kill,
        dry_run: bool,
    },
    /// `-e`, `-f`, or SQL on stdin.
    Query {
        inputs: Vec<Input>,
        read_only: bool,
        /// `--allow-kill`, `--dry-run`.
        kill: crate::kill::Kill,
        dry_run: bool,
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
    /// `netsql snapshot`.
    Snapshot(SnapshotTarget),
    /// `netsql snapshot --print-ddl`.
    Ddl(SnapshotTarget, crate::history::ddl::Dialect),
    /// `netsql record`.
    Record(SnapshotTarget, crate::history::record::Recording),
    /// `netsql serve`.
    Serve(crate::serve::Serving),
    /// `netsql metrics`.
    Metrics(crate::metrics::Exporting, crate::access::Access),
    Audit {
        paths: Vec<PathBuf>,
        params: BTreeMap<String, String>,
        junit: Option<PathBuf>,
    },
    /// `netsql completions SHELL`.
    Completions(clap_complete::Shell),
    /// `netsql man`.
    Man,
    /// `netsql doctor`.
    Doctor,
}

impl Mode {
    /// Whether the session refuses anything but queries: saved queries, netstat views
    /// and audits always, SQL of one's own with `--read-only`.
    pub fn read_only(&self) -> bool {
        match self {
            Mode::Repl { read_only, .. } | Mode::Query { read_only, .. } => *read_only,
            Mode::Saved { .. }
            | Mode::List
            | Mode::Netstat(_)
            | Mode::Audit { .. }
            | Mode::Snapshot(_)
            | Mode::Ddl(..)
            | Mode::Record(..)
            | Mode::Serve(_)
            | Mode::Metrics(..)
            | Mode::Completions(_)
            | Mode::Man
            | Mode::Doctor => true,
        }
    }
}

impl Mode {
    /// Whether the mode's process collects again and again (a server, a recording, the
    /// REPL, `netstat -c`), so that loading the kernel's socket-owner iterator once pays
    /// for itself (collect::task_files); a one-shot query walks /proc.
    pub fn collects_often(&self) -> bool {
        match self {
            Mode::Serve(_) | Mode::Metrics(..) | Mode::Record(..) | Mode::Repl { .. } => true,
            Mode::Netstat(flags) => flags.continuous,
            _ => false,
        }
    }

    /// What `DELETE FROM sockets` may do: only `-e`/`-f`/REPL SQL given `--allow-kill`.
    pub fn kill(&self) -> crate::kill::Kill {
        match self {
            Mode::Repl { kill, .. } | Mode::Query { kill, .. } => *kill,
            _ => crate::kill::Kill::Refused,
        }
    }

    /// `--dry-run`: a DELETE lists what it would close.
    pub fn dry_run(&self) -> bool {
        matches!(
            self,
            Mode::Repl { dry_run: true, .. } | Mode::Query { dry_run: true, .. }
        )
    }

    /// The runtime the mode runs on. The server answers clients at once, each on a worker,
    /// and the REPL keeps its workers between statements; every other mode runs on one
    /// thread: a run's heavy work is the dump, the /proc walk and the Arrow building, on
    /// threads of their own, and the planner and the one output stream gain nothing from
    /// workers whose start, hand-offs and shutdown cost a short query ~0.3 ms (10k
    /// connections: `SELECT 1` 2.5 -> 2.2 ms, a port filter 4.9 -> 4.4 ms).
    pub fn runtime(&self, network: bool) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self {
            Mode::Serve(_) | Mode::Metrics(..) | Mode::Repl { .. } => {
                let mut workers = tokio::runtime::Builder::new_multi_thread();
                // The main thread's 8 MiB, not tokio's 2: a statement may chain up to
                // exec::MOST_OPERATORS operators, which the parser's tree walks (clone,
                // drop) take one frame each.
                workers.thread_stack_size(8 << 20);
                workers
            }
            _ => tokio::runtime::Builder::new_current_thread(),
        };
        // Sockets only for a run that talks to the network: with them comes tokio's
        // signal driver (datafusion-distributed builds tokio with it), whose unix
        // socketpair would show among the sockets a local query reports.
        if network {
            builder.enable_io();
        }
        builder.enable_time().build()
    }
}

/// What `--connect` goes with: a fleet answers SQL, saved queries, audits and snapshots.
const CONNECT_GOES_WITH: &str =
    "--connect goes with SQL (-e, -f, stdin, the REPL), -q, audit and snapshot (not --list, netstat, --print-ddl or other subcommands)";

/// A validated invocation.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub tables: TablesConfig,
    /// User query folders (`--queries`), after the XDG one.
    pub queries: Vec<PathBuf>,
    /// `--history DEST`: a snapshot dataset to register as `history.<table>`.
    pub history: Option<crate::history::read::History>,
    /// `--connect`: the session's tables are a fleet's.
    pub connect: Option<Connect>,
}

impl Config {
    /// Whether the run talks to the network: it serves, queries a fleet, or reads or
    /// writes a dataset on object storage.
    pub fn network(&self) -> bool {
        let remote = |dest: &str| dest.contains("://");
        matches!(self.mode, Mode::Serve(_) | Mode::Metrics(..))
            || self.connect.is_some()
            || self.history.as_ref().is_some_and(|h| remote(&h.dest))
            || match &self.mode {
                Mode::Snapshot(target) | Mode::Record(target, _) => remote(&target.dest),
                _ => false,
            }
    }
}

/// `--connect` and the options that go with it, before any file is read.
#[derive(Debug, Clone)]
pub struct Connect {
    pub hosts: Vec<String>,
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub host_timeout: std::time::Duration,
    pub all_hosts: bool,
}

/// `--connect`'s hosts, `@FILE` read (one a line; blank lines and `#` comments skipped).
fn expand_hosts(given: Vec<String>) -> Result<Vec<String>, Error> {
    let mut hosts = Vec::new();
    for item in given {
        let item = item.trim().to_string();
        match item.strip_prefix('@') {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Input {
                    path: PathBuf::from(path),
                    source,
                })?;
                hosts.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string),
                );
            }
            None if item.is_empty() => {}
            None => hosts.push(item),
        }
    }
    if hosts.is_empty() {
        return Err(Error::Usage("--connect names no host".into()));
    }
    Ok(hosts)
}

impl Args {
    /// `--print-config`: show the settings instead of running anything.
    pub fn print_config(&self) -> bool {
        self.print_config
    }

    /// Checks the arguments; the terminal flags decide what no query means and whether a
    /// binary format may go to stdout.
    pub fn into_config(
        self,
        netstat: Option<crate::netstat::Flags>,
        stdin_is_terminal: bool,
        stdout_is_terminal: bool,
    ) -> Result<Config, Error> {
        // -o and --format are global (they follow a subcommand's name too), but these
        // print no result: taking them in silence wrote nothing where -o said.
        let prints_no_result = match &self.command {
            Some(Command::Completions(_)) => Some(("completions", "redirect it: > FILE")),
            Some(Command::Man) => Some(("man", "redirect it: > FILE")),
            Some(Command::Doctor) => Some(("doctor", "redirect it: > FILE")),
            Some(Command::Record(_)) => Some(("record", "it writes Parquet to --to")),
            Some(Command::Serve(_)) => Some(("serve", "its clients choose")),
            Some(Command::Metrics(_)) => Some(("metrics", "Prometheus reads it")),
            _ => None,
        };
        if let Some((name, instead)) = prints_no_result.filter(|_| netstat.is_none()) {
            if self.output.is_some() || self.format.is_some() {
                return Err(Error::Usage(format!(
                    "-o and --format are for results (queries, netstat, snapshot, audit), \
                     not netsql {name} ({instead})"
                )));
            }
        }
        let format = match (self.format, &self.output) {
            (Some(format), _) => format,
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
        // Options that pick what to run are the subcommand's business when there is one;
        // options of the session (--netns, --source, --history, --format) go with any.
        if self.command.is_some()
            && (!self.execute.is_empty()
                || !self.file.is_empty()
                || self.query.is_some()
                || self.list
                || self.read_only
                || self.allow_kill.is_some()
                || self.dry_run)
        {
            return Err(Error::Usage(
                "-e, -f, -q, --list, --read-only, --allow-kill and --dry-run do not go with a subcommand".into(),
            ));
        }
        // A fleet answers SQL, saved queries and audits (host by host) and snapshots (each
        // host's rows in its own partition, written here). Not netstat: its text has no
        // place for a host.
        let connected = !self.connect.is_empty();
        if connected
            && (netstat.is_some()
                || !matches!(
                    self.command,
                    None | Some(Command::Audit(_))
                        | Some(Command::Snapshot(SnapshotArgs {
                            print_ddl: None,
                            ..
                        }))
                ))
        {
            return Err(Error::Usage(CONNECT_GOES_WITH.into()));
        }
        let kill = match self.allow_kill.as_deref() {
            None => crate::kill::Kill::Refused,
            Some("all") => crate::kill::Kill::All,
            Some(_) => crate::kill::Kill::Filtered,
        };
        if kill != crate::kill::Kill::Refused
            && (self.read_only
                || self.query.is_some()
                || self.list
                || netstat.is_some()
                || !self.connect.is_empty())
        {
            return Err(Error::Usage(
                "--allow-kill goes with -e, -f or the REPL only (never --read-only, saved queries, netstat or audits)".into(),
            ));
        }
        let mode = match (netstat, self.command) {
            (Some(flags), _) => {
                check_netstat_format(&flags, format)?;
                Mode::Netstat(Box::new(flags))
            }
            (
                None,
                Some(Command::Audit(AuditArgs {
                    paths,
                    params,
                    junit,
                })),
            ) => {
                if !matches!(format, Format::Table | Format::Json) {
                    return Err(Error::Usage("audit writes --format table or json".into()));
                }
                Mode::Audit {
                    paths,
                    params: parse_params(&params)?,
                    junit,
                }
            }
            (None, Some(Command::Snapshot(SnapshotArgs { target, print_ddl }))) => {
                match print_ddl {
                    Some(dialect) => Mode::Ddl(target.check(false, false)?, dialect),
                    None => Mode::Snapshot(target.check(false, connected)?),
                }
            }
            (
                None,
                Some(Command::Record(RecordArgs {
                    target,
                    every,
                    count,
                    period,
                    retain,
                })),
            ) => Mode::Record(
                target.check(true, false)?,
                crate::history::record::Recording {
                    every,
                    count,
                    period,
                    retain,
                },
            ),
            (None, Some(Command::Serve(serve))) => {
                Mode::Serve(serve.check(crate::queries::user_dirs(&self.queries))?)
            }
            (None, Some(Command::Metrics(metrics))) => {
                let (exporting, access) =
                    metrics.check(crate::queries::user_dirs(&self.queries))?;
                Mode::Metrics(exporting, access)
            }
            (None, Some(Command::Completions(args))) => Mode::Completions(args.shell),
            (None, Some(Command::Man)) => Mode::Man,
            (None, Some(Command::Doctor)) => Mode::Doctor,
            (None, None) if !self.connect.is_empty() && self.list => {
                return Err(Error::Usage(CONNECT_GOES_WITH.into()));
            }
            (None, None) if self.list => Mode::List,
            (None, None) if self.query.is_some() => Mode::Saved {
                name: self.query.unwrap_or_default(),
                params: parse_params(&self.params)?,
            },
            // clap's `requires = "query"` does not hold once -e or -f is given: the
            // values were dropped without a word.
            (None, None) if !self.params.is_empty() => {
                return Err(Error::Usage(
                    "-p sets the parameters of a saved query (-q NAME); -e, -f and stdin take none"
                        .into(),
                ));
            }
            (None, None) => {
                let mut inputs: Vec<Input> = self.execute.into_iter().map(Input::Sql).collect();
                inputs.extend(self.file.into_iter().map(Input::File));
                if inputs.is_empty() && stdin_is_terminal {
                    if self.output.is_some() {
                        return Err(Error::Usage(
                            "-o is for the results of -e, -f or stdin; in the REPL, \\o FILE sends them to a file".into(),
                        ));
                    }
                    Mode::Repl {
                        read_only: self.read_only || !self.connect.is_empty(),
                        kill,
                        dry_run: self.dry_run,
                    }
                } else {
                    if inputs.is_empty() {
                        inputs.push(Input::Stdin);
                    }
                    Mode::Query {
                        inputs,
                        read_only: self.read_only || !self.connect.is_empty(),
                        kill,
                        dry_run: self.dry_run,
                    }
                }
            }
        };
        let connect = if self.connect.is_empty() {
            None
        } else {
            if self.history.is_some() {
                return Err(Error::Usage(
                    "--history reads this host's snapshots; a fleet's history is read where it is stored (Spark, DuckDB)".into(),
                ));
            }
            Some(Connect {
                hosts: expand_hosts(self.connect)?,
                token_file: self.token_file,
                tls_ca: self.tls_ca,
                host_timeout: self.host_timeout,
                all_hosts: self.all_hosts,
            })
        };
        let source = self.source;
        // A recorder, an exporter and a server are agents on a host whose cores are its
        // workloads': one walk of a large TCP table, the least CPU per answer, rather than
        // two at once, each visiting all of it. Eight servers on two cores, each
        // splitting, answered a fleet GROUP BY in 1.42 s against 0.99-1.01 s walking once
        // (benches/fleet.sh).
        let walks = match mode {
            Mode::Record(..) | Mode::Metrics(..) | Mode::Serve(_) => Walks::Serial,
            _ => Walks::Parallel,
        };
        Ok(Config {
            mode,
            format,
            output: self.output,
            tables: TablesConfig {
                root: Root {
                    proc: self.proc_root,
                    etc: self.etc_root,
                    ..Root::default()
                },
                source,
                memory_limit: self.memory_limit,
                netns: self.netns.unwrap_or_default(),
                events_for: self.events_for,
                walks,
            },
            queries: self.queries,
            history: self.history.map(|dest| crate::history::read::History {
                dest,
                skip_corrupt: self.history_skip_corrupt,
            }),
            connect,
        })
    }
}

/// `--version`: netsql's version and commit, and the DataFusion and Arrow it carries
/// (what an issue report needs first).
pub(super) fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (commit {})\nDataFusion {}\nArrow {}",
            env!("CARGO_PKG_VERSION"),
            env!("NETSQL_COMMIT"),
            datafusion::DATAFUSION_VERSION,
            datafusion::arrow::ARROW_VERSION,
        )
    })
}

/// `--format`'s values: the output formats by their names (clap stays in cli/).
impl clap::ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Format::Table,
            Format::Csv,
            Format::Tsv,
            Format::Json,
            Format::Ndjson,
            Format::Parquet,
            Format::Arrow,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
        }))
    }
}

/// `--source`'s values.
impl clap::ValueEnum for Source {
    fn value_variants<'a>() -> &'a [Self] {
        &[Source::Auto, Source::Netlink, Source::Proc]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Source::Auto => "auto",
            Source::Netlink => "netlink",
            Source::Proc => "proc",
        }))
    }
}

/// netstat's views in another format than its text: each view is one result, so a
/// binary file can hold only a single view, printed once.
fn check_netstat_format(flags: &crate::netstat::Flags, format: Format) -> Result<(), Error> {
    if !format.is_binary() || flags.help {
        return Ok(());
    }
    let views = flags.views();
    if views.len() != 1 {
        return Err(Error::Usage(format!(
            "{} holds one result, and this netstat shows {} ({}): pick one with -t/-u/-w/-x/-g",
            format!("{format:?}").to_lowercase(),
            views.len(),
            views
                .iter()
                .map(|v| v.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if flags.continuous {
        return Err(Error::Usage(format!(
            "{} holds one result: netstat -c repeats it",
            format!("{format:?}").to_lowercase()
        )));
    }
    Ok(())
}

/// `32M`, `1G`, `512K`, `4096`: bytes, with an optional binary suffix.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    // 512M, 512MB, 512MiB (binary all), 512 or 512B.
    let unit = unit.to_ascii_uppercase();
    let prefix = unit
        .strip_suffix("IB")
        .filter(|p| !p.is_empty())
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let scale: usize = match prefix {
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
    crate::queries::parse_assignments(pairs.iter().map(String::as_str))
        .map_err(|pair| Error::Usage(format!("-p {pair:?}: expected NAME=VALUE")))
}

/// Splits `netsql [OPTIONS] netstat FLAGS...`: netstat's flags (its own `-o`, `-p`, `-e`,
/// `-h`) are not ours, so they never reach clap. After the `netstat` word only our long
/// `--format` and `--output` are ours (netstat has neither). `None` when there is no
/// `netstat` word.
pub fn split_netstat(argv: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    use clap::CommandFactory;
    // Our options that take a value: the word after one is that value, not `netstat`.
    let command = Args::command();
    let takes_value: Vec<String> = command
        .get_arguments()
        .filter(|arg| arg.get_action().takes_values())
        .flat_map(|arg| {
            let short = arg.get_short().map(|c| format!("-{c}"));
            let long = arg.get_long().map(|l| format!("--{l}"));
            short.into_iter().chain(long)
        })
        .collect();
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].as_str();
        if arg == "netstat" {
            let mut ours = argv[..i].to_vec();
            let mut theirs = Vec::new();
            let mut rest = argv[i + 1..].iter();
            while let Some(arg) = rest.next() {
                let option = arg.split('=').next().unwrap_or("");
                if ["--format", "--output", "--netns"].contains(&option) {
                    ours.push(arg.clone());
                    if !arg.contains('=') {
                        ours.extend(rest.next().cloned());
                    }
                } else {
                    theirs.push(arg.clone());
                }
            }
            return Some((ours, theirs));
        }
        if arg == "--" || !arg.starts_with('-') {
            return None;
        }
        if takes_value.iter().any(|t| t == arg) {
            i += 1;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str], stdout_is_terminal: bool) -> Result<Config, Error> {
        let mut argv = vec!["netsql"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .unwrap()
            .into_config(None, false, stdout_is_terminal)
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("32M"), Ok(32 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("512b"), Ok(512));
        for odd in ["512i", "512MBIB", "512iB", "512MIB2"] {
            assert!(parse_size(odd).is_err(), "{odd}");
        }
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
