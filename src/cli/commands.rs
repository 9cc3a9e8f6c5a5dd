//! The subcommands' arguments (snapshot, record, serve, audit) and their checks.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand};

use crate::error::Error;

/// The subcommands. clap builds a subcommand's arguments only when it is the one given
/// (`Command::defer`), where the derive builds all four on every start, a query's too
/// (clap-rs/clap#4959): so this enum's `Subcommand` is written out below.
#[derive(Debug)]
pub(super) enum Command {
    Snapshot(SnapshotArgs),
    Record(RecordArgs),
    Serve(ServeArgs),
    Metrics(MetricsArgs),
    Audit(AuditArgs),
    Completions(CompletionsArgs),
    Man,
    Doctor,
}

/// One subcommand: its name, what `--help` says of it, what adds its arguments to its
/// `clap::Command`, and what reads them back.
struct Sub {
    name: &'static str,
    about: &'static str,
    args: fn(clap::Command) -> clap::Command,
    parse: fn(&mut ArgMatches) -> Result<Command, clap::Error>,
}

const SUBCOMMANDS: [Sub; 8] = [
    Sub {
        name: "snapshot",
        about: "Write one snapshot of tables to a Parquet dataset: \
                DEST/<table>/date=YYYY-MM-DD/host=<host>/<time>-<id>.parquet (with \
                --connect, each host's under its --name)",
        args: SnapshotArgs::augment_args,
        parse: |m| SnapshotArgs::from_arg_matches_mut(m).map(Command::Snapshot),
    },
    Sub {
        name: "record",
        about: "Write snapshots on the wall clock's ticks until --count, --for or a signal",
        args: RecordArgs::augment_args,
        parse: |m| RecordArgs::from_arg_matches_mut(m).map(Command::Record),
    },
    Sub {
        name: "serve",
        about: "Serve the live tables over Arrow Flight SQL, read-only (ADBC, JDBC, Grafana)",
        args: ServeArgs::augment_args,
        parse: |m| ServeArgs::from_arg_matches_mut(m).map(Command::Serve),
    },
    Sub {
        name: "metrics",
        about: "Serve the metric queries (queries/metrics/, DIR/metrics/) to Prometheus: \
                GET /metrics, text format 0.0.4 or OpenMetrics",
        args: MetricsArgs::augment_args,
        parse: |m| MetricsArgs::from_arg_matches_mut(m).map(Command::Metrics),
    },
    Sub {
        name: "audit",
        about: "Run audit queries (a .sql file, or every .sql in a folder; the built-in \
                audits when no path is given, or one by its name). Exit 0 when all pass, 1 \
                when any finds rows, 2 when any could not run or on an error; over a fleet \
                (--connect) host by host, one verdict",
        args: AuditArgs::augment_args,
        parse: |m| AuditArgs::from_arg_matches_mut(m).map(Command::Audit),
    },
    Sub {
        name: "completions",
        about: "Print a completion script for bash, zsh, fish, elvish or powershell \
                (bash: `source <(netsql completions bash)`)",
        args: CompletionsArgs::augment_args,
        parse: |m| CompletionsArgs::from_arg_matches_mut(m).map(Command::Completions),
    },
    Sub {
        name: "man",
        about: "Print the man page (roff): `netsql man > netsql.1; man -l netsql.1`",
        args: |cmd| cmd,
        parse: |_| Ok(Command::Man),
    },
    Sub {
        name: "doctor",
        about: "Print the version and what this kernel and user allow netsql (sock_diag, \
                SOCK_DESTROY, destroy events, tcp_info, cgroup v2, conntrack, capabilities), \
                each found by trying it here: for issue reports",
        args: |cmd| cmd,
        parse: |_| Ok(Command::Doctor),
    },
];

// `netsql completions`' argument.
#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub(super) shell: clap_complete::Shell,
}

impl Subcommand for Command {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        SUBCOMMANDS.iter().fold(cmd, |cmd, sub| {
            cmd.subcommand(
                clap::Command::new(sub.name)
                    .about(sub.about)
                    .defer(sub.args),
            )
        })
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        SUBCOMMANDS.iter().any(|sub| sub.name == name)
    }
}

impl FromArgMatches for Command {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, mut args)) = matches.remove_subcommand() else {
            return Err(clap::Error::new(ErrorKind::MissingSubcommand));
        };
        match SUBCOMMANDS.iter().find(|sub| sub.name == name) {
            Some(sub) => (sub.parse)(&mut args),
            None => Err(clap::Error::raw(
                ErrorKind::InvalidSubcommand,
                format!("no subcommand {name}"),
            )),
        }
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

// `netsql snapshot`'s arguments.
#[derive(Debug, Args)]
pub(super) struct SnapshotArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// Print the CREATE TABLE statements for Hive/Spark/Athena or Trino instead
    #[arg(long, value_name = "DIALECT")]
    pub(super) print_ddl: Option<crate::history::ddl::Dialect>,
}

// `netsql record`'s arguments.
#[derive(Debug, Args)]
pub(super) struct RecordArgs {
    #[command(flatten)]
    pub(super) target: Target,
    /// Interval between snapshots (30s, 5m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub(super) every: std::time::Duration,
    /// Stop after N snapshots (1 or more)
    #[arg(long, value_name = "N", conflicts_with = "period", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) count: Option<u64>,
    /// Stop after this long (6h, 2d)
    #[arg(long = "for", id = "period", value_name = "DURATION", value_parser = parse_duration)]
    pub(super) period: Option<std::time::Duration>,
    /// Delete whole date= partitions older than this (14d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(super) retain: Option<std::time::Duration>,
}

// `netsql audit`'s arguments.
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    /// Audit files or folders, or built-in audits by name
    #[arg(value_parser = super::names::audit_names(), hide_possible_values = true)]
    pub(super) paths: Vec<PathBuf>,
    /// Override an audit parameter
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub(super) params: Vec<String>,
    /// Also write JUnit XML, one test case per audit, to FILE
    #[arg(long, value_name = "FILE")]
    pub(super) junit: Option<PathBuf>,
}

// Where and what a snapshot writes (a doc comment here would be clap's `about` for
// every subcommand that flattens it).
#[derive(Debug, Args)]
pub(super) struct Target {
    /// The dataset's directory, or s3://bucket/prefix, gs://..., az://...
    #[arg(long, value_name = "DEST")]
    to: String,
    /// Tables to write, comma-separated (default: sockets,socket_owners,processes,interfaces)
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = super::names::table_names(), hide_possible_values = true)]
    tables: Vec<String>,
    /// The host name rows are filed under (default: this machine's)
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
}

/// `ADDR:PORT`, or `HOST:PORT` with the host resolved (its first address).
fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut found = text
        .to_socket_addrs()
        .map_err(|e| format!("{text}: {e} (expected ADDR:PORT or HOST:PORT)"))?;
    found
        .next()
        .ok_or_else(|| format!("{text}: the host name has no address"))
}

pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::history::parse_duration(text)
}

impl Target {
    /// The checked target: live tables only, a host name fit for a path. Over a fleet
    /// (`connected`) each host's rows go under its own `--name`, not `--host`.
    pub(super) fn check(self, recording: bool, connected: bool) -> Result<SnapshotTarget, Error> {
        if connected && self.host.is_some() {
            return Err(Error::Usage(
                "--host goes without --connect: a fleet's rows are filed under each server's --name".into(),
            ));
        }
        let known: Vec<&str> = crate::tables::infos().iter().map(|i| i.name).collect();
        let tables: Vec<String> = if self.tables.is_empty() {
            crate::history::DEFAULT_TABLES
                .iter()
                .map(|t| t.to_string())
                .collect()
        } else {
            self.tables
        };
        let streams = crate::tables::streams();
        if let Some(stream) = tables
            .iter()
            .find(|t| !recording && streams.contains(&t.as_str()))
        {
            return Err(Error::Usage(format!(
                "--tables: {stream} is a stream with no snapshot: record it (netsql record), or query it with --for"
            )));
        }
        if let Some(bad) = tables.iter().find(|t| !known.contains(&t.as_str())) {
            return Err(Error::Usage(format!(
                "--tables: no table {bad} (there are {})",
                known.join(", ")
            )));
        }
        // A name given is kept as given or refused: rewritten, `WHERE host = 'a b'` would
        // find nothing, and two names could share one partition. The machine's own name
        // cannot be refused; it is made safe.
        let host = match self.host {
            Some(host) if crate::history::path_safe(&host) == host => host,
            Some(host) => {
                return Err(Error::Usage(format!(
                    "--host {host:?}: a host partition's name holds only letters, digits, '.', '_' and '-', and does not start with '.'"
                )))
            }
            None => crate::history::path_safe(&dns_lookup::get_hostname().map_err(Error::Io)?),
        };
        Ok(SnapshotTarget {
            dest: self.to,
            tables,
            host,
        })
    }
}

/// Where snapshots go and of what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotTarget {
    /// A directory or an object store URL (history::dest::Dest::parse).
    pub dest: String,
    pub tables: Vec<String>,
    /// Already made safe for a path segment.
    pub host: String,
}

// Who may connect to a server of netsql's (a doc comment would be clap's `about`).
#[derive(Debug, Args)]
pub(super) struct AccessArgs {
    /// Require `authorization: Bearer <token>`, the token the first line of FILE (which
    /// group and others must not be able to read)
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

impl AccessArgs {
    fn check(self) -> crate::access::Access {
        crate::access::Access {
            token_file: self.token_file,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            tls_client_ca: self.tls_client_ca,
        }
    }
}

// How metrics are collected, for `metrics` and `serve --metrics`.
#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// Answer a scrape sooner than this after the last one with the last one's values
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    metrics_min_interval: Option<std::time::Duration>,
    /// Set a metric query's parameter (top = 20: how many peers get a series)
    #[arg(long = "metrics-param", value_name = "NAME=VALUE")]
    metrics_params: Vec<String>,
    /// Serve only these metric queries, by name (comma-separated)
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = super::names::metric_names(), hide_possible_values = true)]
    metrics_only: Vec<String>,
}

impl ExportArgs {
    fn check(
        self,
        listen: std::net::SocketAddr,
        query_timeout: std::time::Duration,
        queries: Vec<PathBuf>,
    ) -> Result<crate::metrics::Exporting, Error> {
        Ok(crate::metrics::Exporting {
            listen,
            min_interval: self.metrics_min_interval.unwrap_or_default(),
            params: crate::queries::parse_assignments(
                self.metrics_params.iter().map(String::as_str),
            )
            .map_err(|pair| {
                Error::Usage(format!("--metrics-param {pair:?}: expected NAME=VALUE"))
            })?,
            query_timeout,
            queries,
            only: self.metrics_only,
        })
    }

    fn given(&self) -> bool {
        self.metrics_min_interval.is_some()
            || !self.metrics_params.is_empty()
            || !self.metrics_only.is_empty()
    }
}

// `netsql serve`'s options (a doc comment would be clap's `about`).
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address (or host name) and port to listen on; anything but loopback needs
    /// --token-file
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:50051", value_parser = parse_listen)]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    access: AccessArgs,
    /// End a query that runs longer (DeadlineExceeded)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    query_timeout: std::time::Duration,
    /// Queries running at once; more are refused (ResourceExhausted), not queued
    #[arg(long, value_name = "N", default_value_t = 8)]
    max_queries: usize,
    /// This host's name in fleet queries' `host` column [default: the host name]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Also serve the metric queries to Prometheus on ADDR:PORT (GET /metrics), behind
    /// the same token and TLS
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    export: ExportArgs,
}

impl ServeArgs {
    pub(super) fn check(self, queries: Vec<PathBuf>) -> Result<crate::serve::Serving, Error> {
        if self.max_queries == 0 {
            return Err(Error::Usage("--max-queries must be at least 1".into()));
        }
        if self.metrics.is_none() && self.export.given() {
            return Err(Error::Usage(
                "--metrics-min-interval, --metrics-param and --metrics-only go with --metrics ADDR"
                    .into(),
            ));
        }
        let metrics = match self.metrics {
            Some(listen) => Some(self.export.check(listen, self.query_timeout, queries)?),
            None => None,
        };
        Ok(crate::serve::Serving {
            listen: self.listen,
            access: self.access.check(),
            query_timeout: self.query_timeout,
            max_queries: self.max_queries,
            name: match self.name {
                Some(name) if name.trim().is_empty() => {
                    return Err(Error::Usage("--name must not be empty".into()))
                }
                Some(name) => name,
                None => dns_lookup::get_hostname().map_err(Error::Io)?,
            },
            metrics,
        })
    }
}

// `netsql metrics`' options.
#[derive(Debug, Args)]
pub(super) struct MetricsArgs {
    /// Address (or host name) and port to listen on; anything but loopback needs
    /// --token-file
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9469", value_parser = parse_listen)]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    access: AccessArgs,
    /// The longest a scrape's queries may run (a scraper's
    /// X-Prometheus-Scrape-Timeout-Seconds may shorten it)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    query_timeout: std::time::Duration,
    #[command(flatten)]
    export: ExportArgs,
}

impl MetricsArgs {
    pub(super) fn check(
        self,
        queries: Vec<PathBuf>,
    ) -> Result<(crate::metrics::Exporting, crate::access::Access), Error> {
        Ok((
            self.export
                .check(self.listen, self.query_timeout, queries)?,
            self.access.check(),
        ))
    }
}
