//! Defaults people repeat, from `/etc/netsql/config.toml`, then
//! `$XDG_CONFIG_HOME/netsql/config.toml` (else `~/.config/...`), then `NETSQL_*`
//! variables, then the command line: each overrides the one before. A setting is a
//! command-line option by its long name, given only where the command line does not give
//! that option, so clap checks it as it checks a flag; a bad key or value is one line
//! naming the file and line (or the variable).
//!
//! ```toml
//! format = "json"            # queries and netstat
//! netns = "all"              # any mode that reads tables
//! connect = ["grpc://web1:50051", "grpc://db1:50051"]   # SQL run here: -e, -f, the REPL
//! token-file = "/etc/netsql/token"
//!
//! [serve]                     # every option of `netsql serve`, and so for
//! max-queries = 4             # [record], [snapshot], [metrics]
//! ```
//!
//! `NETSQL_FORMAT`, `NETSQL_SERVE_MAX_QUERIES`, ...: the same settings from the
//! environment; an empty one cancels the files' value. `NETSQL_CONFIG=FILE` reads that
//! file instead of the two (empty: none). `completions`, `man` and `doctor` read none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, CommandFactory};
use toml::de::{DeTable, DeValue};

use super::Args;

/// Settings of the top level that any mode reading tables takes.
const EVERY_MODE: [&str; 5] = ["netns", "history", "memory-limit", "source", "queries"];

/// Settings of the top level for modes that print results (queries, netstat).
const RESULTS: [&str; 1] = ["format"];

/// Settings of the top level for SQL run here (`-e`, `-f`, stdin, the REPL): the fleet.
const QUERIES: [&str; 5] = [
    "connect",
    "host-timeout",
    "all-hosts",
    "token-file",
    "tls-ca",
];

/// Subcommands whose every option may be a setting, in a section of their name.
const SECTIONS: [&str; 4] = ["serve", "record", "snapshot", "metrics"];

/// Subcommands that read no tables: no config is read for them, so a broken file never
/// stops `netsql doctor`.
const NO_SETTINGS: [&str; 3] = ["completions", "man", "doctor"];

/// `NETSQL_CONFIG=FILE` reads that file alone; empty, none.
const CONFIG_VARIABLE: &str = "NETSQL_CONFIG";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Env(String),
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(name) => f.write_str(name),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// A setting's value: words for the option (one, or one per list item), or a flag.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Words(Vec<String>),
    Flag(bool),
    /// An empty variable: the files' value does not apply.
    Cancelled,
}

/// One setting as found: its section (None: the top level), long name, value, origin.
#[derive(Debug, Clone)]
struct Found {
    section: Option<String>,
    key: String,
    value: Value,
    origin: Origin,
}

/// A setting in effect, as `--print-config` shows it.
#[derive(Debug)]
pub struct Setting {
    pub section: Option<&'static str>,
    pub key: String,
    pub value: Option<String>,
    pub origin: Option<Origin>,
    /// clap's default, when nothing sets it.
    pub default: Option<String>,
    /// Whether this command line takes it (a setting of another mode does not).
    pub used: bool,
}

/// The command line with the settings it does not give, and what each setting is.
#[derive(Debug)]
pub struct Layered {
    pub argv: Vec<String>,
    pub shown: Vec<Setting>,
}

/// The config files netsql reads, in order (later ones win): `NETSQL_CONFIG`'s alone
/// when it is set.
pub fn files() -> Vec<PathBuf> {
    if let Some(only) = std::env::var_os(CONFIG_VARIABLE) {
        return if only.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(only)]
        };
    }
    // The XDG spec: a relative XDG_CONFIG_HOME is to be ignored.
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
    let mut files = vec![PathBuf::from("/etc/netsql/config.toml")];
    files.extend(user.map(|dir| dir.join("netsql/config.toml")));
    files
}

/// A config file is a few lines; a larger one is refused before it is parsed (a
/// 40 MB file of blank lines took 1.9 GB to parse).
const LARGEST_CONFIG: u64 = 1 << 20;

/// Whether `path` is the file `NETSQL_CONFIG` names, which must be there.
fn named_by_variable(path: &Path) -> bool {
    std::env::var_os(CONFIG_VARIABLE).is_some_and(|v| Path::new(&v) == path)
}

/// The text of a config file, None when there is none for this user.
fn read_text(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let read = std::fs::File::open(path).and_then(|file| {
        let mut text = String::new();
        file.take(LARGEST_CONFIG + 1).read_to_string(&mut text)?;
        Ok(text)
    });
    match read {
        Ok(text) if text.len() as u64 > LARGEST_CONFIG => Err(format!(
            "{}: larger than {} KiB, more than a config file holds",
            path.display(),
            LARGEST_CONFIG / 1024
        )),
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && named_by_variable(path) => Err(
            format!("{}: {err} (named by {CONFIG_VARIABLE})", path.display()),
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // A directory this user may not look into (another user's HOME, as under
        // sudo -u): whether a file is there is not this user's to know.
        Err(err)
            if err.kind() == std::io::ErrorKind::PermissionDenied
                && std::fs::metadata(path).is_err() =>
        {
            Ok(None)
        }
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

/// Whether a variable could be a setting (NETSQL_CONFIG and the test switches are not).
fn setting_variable(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        n.starts_with("NETSQL_")
            && ![
                CONFIG_VARIABLE,
                "NETSQL_REQUIRE_NETNS",
                "NETSQL_DEBUG",
                "NETSQL_UPDATE_README",
            ]
            .contains(&n)
    })
}

/// `argv` with the settings of `files` and the environment it does not give itself.
/// `netstat`: the command line runs `netsql netstat` (its flags already split off).
/// A command line clap cannot read at all (`--help`, `--version`, an unknown flag) is
/// returned as it is, for clap to answer.
pub fn layer(argv: &[String], files: &[PathBuf], netstat: bool) -> Result<Layered, String> {
    let unchanged = || Layered {
        argv: argv.to_vec(),
        shown: Vec::new(),
    };
    let printing = argv.iter().any(|a| a == "--print-config");
    // Nothing to layer: no parse, no clap tree built (the common case costs nothing).
    if argv.is_empty()
        || !(printing
            || files.iter().any(|f| f.exists() || named_by_variable(f))
            || std::env::vars_os().any(|(k, _)| setting_variable(&k)))
    {
        return Ok(unchanged());
    }
    let mut cmd = Args::command();
    cmd.build();
    // What the command line gives, even when it lacks what a setting will supply (a
    // required --to, a --connect that --token-file requires).
    let Ok(matches) = cmd.clone().ignore_errors(true).try_get_matches_from(argv) else {
        return Ok(unchanged());
    };
    let running = matches.subcommand_name();
    if running.is_some_and(|r| NO_SETTINGS.contains(&r)) {
        return Ok(unchanged());
    }
    let mut found = Vec::new();
    for path in files {
        if let Some(text) = read_text(path)? {
            found.extend(read_file(&cmd, path, &text)?);
        }
    }
    found.extend(read_env(&cmd)?);
    // Later sources win: one value per (section, key).
    let mut effective: BTreeMap<(Option<String>, String), Found> = BTreeMap::new();
    for f in found {
        effective.insert((f.section.clone(), f.key.clone()), f);
    }
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    // SQL run here: not a subcommand, netstat, a saved query, the list, or a DELETE.
    let runs_sql = running.is_none()
        && !netstat
        && !["query", "list", "allow_kill"].iter().any(|id| given(id));
    let connect_set = effective
        .get(&(None, "connect".to_string()))
        .is_some_and(|f| matches!(&f.value, Value::Words(w) if !w.is_empty()));
    // A configured fleet is for SQL run here, and yields to a --history given here
    // (history is this host's); the fleet's other settings go wherever it is used.
    let configured_fleet = runs_sql && !given("history");
    let connected = given("connect") || (configured_fleet && connect_set);
    let mut argv = argv.to_vec();
    let mut shown = Vec::new();
    let mut top = Vec::new();
    let mut sub = Vec::new();
    for (section, key, arg) in settings(&cmd) {
        let (scope, scope_matches) = match section {
            None => (&cmd, Some(&matches)),
            Some(s) => (
                cmd.find_subcommand(s).expect("a section is a subcommand"),
                matches.subcommand_matches(s),
            ),
        };
        let on_command_line = scope_matches.is_some_and(|m| {
            m.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
        });
        let mut row = Setting {
            section,
            key: key.clone(),
            value: None,
            origin: None,
            default: arg
                .get_default_values()
                .first()
                .map(|v| quoted(&v.to_string_lossy())),
            used: true,
        };
        if on_command_line {
            row.value = scope_matches.and_then(|m| raw(m, arg));
            row.origin = Some(Origin::CommandLine);
        } else if let Some(f) = effective.get(&(section.map(String::from), key.clone())) {
            if f.value != Value::Cancelled {
                row.value = Some(shown_value(&f.value));
                row.origin = Some(f.origin.clone());
                let key = key.as_str();
                let applies = match section {
                    Some(s) => running == Some(s),
                    None if EVERY_MODE.contains(&key) => !(key == "history" && connected),
                    // -o's extension picks the format.
                    None if RESULTS.contains(&key) => running.is_none() && !given("output"),
                    None if key == "connect" => configured_fleet,
                    None => connected,
                };
                let applies =
                    applies && !scope_matches.is_some_and(|m| conflicts_with_given(scope, m, arg));
                row.used = applies;
                // Its kind (a flag or a value) is checked wherever it is used.
                shape(arg, &f.value).map_err(|why| format!("{}: {key}: {why}", f.origin))?;
                // A value is checked where it is used: `[serve] listen = "host:port"`
                // resolves a name, which `netsql -e` has no reason to wait for.
                if applies {
                    let words = words(&cmd, section, arg, key, &f.value)
                        .map_err(|why| format!("{}: {key}: {why}", f.origin))?;
                    if section.is_some() {
                        sub.extend(words);
                    } else {
                        top.extend(words);
                    }
                }
            }
        }
        shown.push(row);
    }
    let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    argv.splice(end..end, sub);
    argv.splice(1..1, top);
    Ok(Layered { argv, shown })
}

/// Whether the command line gave an option that `arg` conflicts with (either side may
/// declare it), so a setting for `arg` would make a conflict nobody typed.
fn conflicts_with_given(scope: &clap::Command, matches: &ArgMatches, arg: &Arg) -> bool {
    let given =
        |a: &Arg| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine);
    scope.get_arg_conflicts_with(arg).into_iter().any(given)
        || scope.get_arguments().filter(|a| given(a)).any(|a| {
            scope
                .get_arg_conflicts_with(a)
                .iter()
                .any(|c| c.get_id() == arg.get_id())
        })
}

/// Every setting's section and key, for the man page.
pub fn keys() -> Vec<(Option<&'static str>, String)> {
    let mut cmd = Args::command();
    cmd.build();
    settings(&cmd)
        .into_iter()
        .map(|(section, key, _)| (section, key))
        .collect()
}

/// Every setting: (section, key, the option it sets).
fn settings(cmd: &clap::Command) -> Vec<(Option<&'static str>, String, &Arg)> {
    let mut all = Vec::new();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            if EVERY_MODE.contains(&long) || RESULTS.contains(&long) || QUERIES.contains(&long) {
                all.push((None, long.to_string(), arg));
            }
        }
    }
    for section in SECTIONS {
        let Some(sub) = cmd.find_subcommand(section) else {
            continue;
        };
        for arg in sub.get_arguments() {
            match arg.get_long() {
                Some(long) if !arg.is_global_set() && !arg.is_hide_set() && long != "help" => {
                    all.push((Some(section), long.to_string(), arg))
                }
                _ => {}
            }
        }
    }
    all
}

/// The settings of one config file, each checked to name an option.
fn read_file(cmd: &clap::Command, path: &Path, text: &str) -> Result<Vec<Found>, String> {
    let table = DeTable::parse(text).map_err(|err| {
        let line = err
            .span()
            .map_or(String::new(), |s| format!(":{}", line_of(text, s.start)));
        let message = err.message().lines().next().unwrap_or("not TOML").trim();
        format!("{}{line}: {message}", path.display())
    })?;
    let known = settings(cmd);
    let at = |offset: usize| Origin::File {
        path: path.to_path_buf(),
        line: line_of(text, offset),
    };
    let mut found: Vec<Found> = Vec::new();
    let mut read = |section: Option<&str>, key: &str, value: &DeValue<'_>, offset: usize| {
        let key = key.replace('_', "-");
        let origin = at(offset);
        if let Some(first) = found
            .iter()
            .find(|f| f.section.as_deref() == section && f.key == key)
        {
            // TOML's table is in key order: name the later line as the one too many.
            let line = |o: &Origin| match o {
                Origin::File { line, .. } => *line,
                _ => 0,
            };
            let (earlier, later) = if line(&first.origin) <= line(&origin) {
                (&first.origin, &origin)
            } else {
                (&origin, &first.origin)
            };
            return Err(format!("{later}: {key} is set already, at {earlier}"));
        }
        if !known.iter().any(|(s, k, _)| *s == section && *k == key) {
            let mut names: Vec<&str> = known
                .iter()
                .filter(|(s, _, _)| *s == section)
                .map(|(_, k, _)| k.as_str())
                .collect();
            names.dedup();
            return Err(format!(
                "{origin}: unknown setting '{key}'{} (settings: {})",
                section.map_or(String::new(), |s| format!(" in [{s}]")),
                names.join(", ")
            ));
        }
        let value = toml_value(value).map_err(|why| format!("{origin}: {key}: {why}"))?;
        found.push(Found {
            section: section.map(String::from),
            key,
            value,
            origin,
        });
        Ok(())
    };
    for (key, value) in table.get_ref() {
        match value.get_ref() {
            DeValue::Table(inner) => {
                let section = SECTIONS
                    .iter()
                    .find(|s| **s == key.get_ref().as_ref())
                    .ok_or_else(|| {
                        format!(
                            "{}: unknown section [{}] (sections: {})",
                            at(key.span().start),
                            key.get_ref(),
                            SECTIONS.join(", ")
                        )
                    })?;
                for (key, value) in inner {
                    read(
                        Some(section),
                        key.get_ref(),
                        value.get_ref(),
                        key.span().start,
                    )?;
                }
            }
            other => read(None, key.get_ref(), other, key.span().start)?,
        }
    }
    Ok(found)
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A TOML value as a setting's: a string, number, boolean, or a list of strings.
fn toml_value(value: &DeValue<'_>) -> Result<Value, String> {
    let word = |value: &DeValue<'_>| match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => Ok(i.to_string()),
        DeValue::Float(f) => Ok(f.to_string()),
        _ => Err("expected a string, a number, true/false or a list of strings".to_string()),
    };
    match value {
        DeValue::Boolean(b) => Ok(Value::Flag(*b)),
        DeValue::Array(items) => Ok(Value::Words(
            items
                .iter()
                .map(|item| word(item.get_ref()))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(Value::Words(vec![word(other)?])),
    }
}

/// The settings the environment gives: `NETSQL_[SECTION_]KEY`.
fn read_env(cmd: &clap::Command) -> Result<Vec<Found>, String> {
    let known = settings(cmd);
    let mut found = Vec::new();
    for (name, text) in std::env::vars_os() {
        if !setting_variable(&name) {
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        // Not one of ours (cargo and build scripts set NETSQL_* variables of their own).
        let Some((section, key, arg)) = known
            .iter()
            .find(|(section, key, _)| env_name(*section, key) == name)
        else {
            continue;
        };
        let text = text
            .into_string()
            .map_err(|_| format!("{name}: not UTF-8"))?;
        let value = if text.is_empty() {
            Value::Cancelled
        } else if arg.get_action().takes_values() {
            Value::Words(vec![text])
        } else {
            match text.as_str() {
                "1" | "true" | "yes" => Value::Flag(true),
                "0" | "false" | "no" => Value::Flag(false),
                _ => return Err(format!("{name}: expected true or false, not {text:?}")),
            }
        };
        found.push(Found {
            section: section.map(String::from),
            key: key.clone(),
            value,
            origin: Origin::Env(name),
        });
    }
    Ok(found)
}

/// The variable of a setting: `NETSQL_FORMAT`, `NETSQL_SERVE_MAX_QUERIES`.
pub fn env_name(section: Option<&str>, key: &str) -> String {
    let mut name = String::from("NETSQL_");
    if let Some(section) = section {
        name.push_str(section);
        name.push('_');
    }
    name.push_str(key);
    name.replace('-', "_").to_uppercase()
}

/// Whether a setting's value is of its option's kind: true/false for a flag, a value
/// (or a list of them) for an option that takes one.
fn shape(arg: &Arg, value: &Value) -> Result<(), String> {
    match (value, arg.get_action().takes_values()) {
        (Value::Words(_), false) => Err("expected true or false".into()),
        (Value::Flag(_), true) => Err("expected a value, not true/false".into()),
        // Each item is a --key=item: an option given once takes one.
        (Value::Words(items), true)
            if items.len() > 1 && !matches!(arg.get_action(), clap::ArgAction::Append) =>
        {
            Err("expected one value, not a list".into())
        }
        _ => Ok(()),
    }
}

/// The command-line words of a setting, each value checked by the option's own parser.
fn words(
    cmd: &clap::Command,
    section: Option<&str>,
    arg: &Arg,
    key: &str,
    value: &Value,
) -> Result<Vec<String>, String> {
    match (value, arg.get_action().takes_values()) {
        (Value::Flag(true), false) => Ok(vec![format!("--{key}")]),
        (Value::Flag(false), false) | (Value::Cancelled, _) => Ok(Vec::new()),
        (Value::Words(_), false) => Err("expected true or false".into()),
        (Value::Flag(_), true) => Err("expected a value, not true/false".into()),
        (Value::Words(items), true) => items
            .iter()
            .map(|item| {
                check(cmd, section, key, item)?;
                Ok(format!("--{key}={item}"))
            })
            .collect(),
    }
}

/// Runs `item` through the option's value parser, as clap will: the command line
/// `netsql [SECTION] --KEY=ITEM`, where only a refused value counts (what else that
/// command line lacks is not this setting's business).
fn check(cmd: &clap::Command, section: Option<&str>, key: &str, item: &str) -> Result<(), String> {
    let mut argv = vec!["netsql".to_string()];
    argv.extend(section.map(String::from));
    argv.push(format!("--{key}={item}"));
    match cmd.clone().try_get_matches_from(argv) {
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) =>
        {
            Err(super::usage_error(&err))
        }
        _ => Ok(()),
    }
}

/// What the command line gave an option, as text.
fn raw(matches: &ArgMatches, arg: &Arg) -> Option<String> {
    if !arg.get_action().takes_values() {
        return Some("true".into());
    }
    let values: Vec<String> = matches
        .get_raw(arg.get_id().as_str())?
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    Some(match values.as_slice() {
        [] => "true".into(),
        [one] => quoted(one),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| quoted(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

fn shown_value(value: &Value) -> String {
    match value {
        Value::Flag(b) => b.to_string(),
        Value::Cancelled => String::new(),
        Value::Words(items) if items.len() == 1 => quoted(&items[0]),
        Value::Words(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|v| quoted(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `--print-config`: every setting, its value and where it came from, as TOML.
pub fn print(
    shown: &[Setting],
    files: &[PathBuf],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    writeln!(
        out,
        "# netsql's settings: {} < NETSQL_* variables < the command line",
        if files.is_empty() {
            "no config file (NETSQL_CONFIG is empty)".to_string()
        } else {
            files.join(" < ")
        }
    )?;
    let mut section = None;
    for row in shown {
        if row.section != section {
            section = row.section;
            writeln!(out, "\n[{}]", section.unwrap_or_default())?;
        }
        match (&row.value, &row.origin) {
            (Some(value), Some(origin)) => {
                let unused = if row.used {
                    ""
                } else {
                    ", not used by this command"
                };
                writeln!(out, "{} = {value}  # {origin}{unused}", row.key)?
            }
            _ => writeln!(
                out,
                "# {} is not set{} ({})",
                row.key,
                row.default
                    .as_ref()
                    .map_or(String::new(), |d| format!(": {d} by default")),
                env_name(row.section, &row.key)
            )?,
        }
    }
    Ok(())
}
