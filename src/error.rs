//! Errors that reach the user, and the exit codes they map to.

use std::path::PathBuf;

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

/// netsql's exit statuses (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// `netsql audit`: some audit found rows.
    Findings = 1,
    /// Usage, SQL or runtime error.
    Error = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", one_line_datafusion(.0))]
    DataFusion(#[from] DataFusionError),
    #[error("{}", one_line(&.0.to_string()))]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A collector could not read what it reads (the error names the file or request).
    #[error("{}", one_line(&.0.to_string()))]
    Collect(#[from] crate::collect::CollectError),
}

impl From<crate::queries::QueryError> for Error {
    fn from(err: crate::queries::QueryError) -> Self {
        Error::Usage(one_line(&err.to_string()))
    }
}

/// DataFusion wraps our collector errors as `External`; show the collector's own message.
/// Parser errors and unknown tables are said the way a person reads them.
fn one_line_datafusion(err: &DataFusionError) -> String {
    let text = match err.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(_, inner) => inner.to_string(),
        DataFusionError::SQL(parser, _) => syntax(parser),
        DataFusionError::Plan(message) => match missing_table(message) {
            Some(name) => no_table(name),
            None => err.find_root().to_string(),
        },
        root => root.to_string(),
    };
    one_line(&text)
}

/// `Expected: an SQL statement, found: SELEC at Line: 1, Column: 1` ->
/// `syntax error at line 1, column 1: expected an SQL statement, found SELEC`.
fn syntax(err: &ParserError) -> String {
    let message = match err {
        ParserError::ParserError(message) | ParserError::TokenizerError(message) => message,
        ParserError::RecursionLimitExceeded => {
            return "syntax error: the query nests too deeply (RecursionLimitExceeded)".into()
        }
    };
    let (what, at) = match message.rsplit_once(" at Line: ") {
        Some((what, at)) => match at.split_once(", Column: ") {
            Some((line, column)) => (what, format!(" at line {line}, column {column}")),
            None => (message.as_str(), String::new()),
        },
        None => (message.as_str(), String::new()),
    };
    let what = match what
        .strip_prefix("Expected: ")
        .and_then(|w| w.split_once(", found: "))
    {
        Some((expected, found)) => format!("expected {expected}, found {found}"),
        None => {
            let mut chars = what.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    };
    format!("syntax error{at}: {what}")
}

/// The table named in DataFusion's `table 'datafusion.public.sockts' not found`.
fn missing_table(message: &str) -> Option<&str> {
    let name = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?;
    Some(name.strip_prefix("datafusion.public.").unwrap_or(name))
}

/// `no table sockts (did you mean sockets?)`: the closest table name, if one is close.
fn no_table(name: &str) -> String {
    if let Some(table) = name.strip_prefix("datafusion.history.") {
        return format!(
            "no table history.{table} (history.* tables are those of the dataset --history names, \
             none without it)"
        );
    }
    let wanted = name.to_ascii_lowercase();
    let closest = crate::tables::infos()
        .into_iter()
        .map(|info| (strsim::levenshtein(&wanted, info.name), info.name))
        .min();
    match closest {
        Some((distance, table)) if distance <= (wanted.len() / 3).max(2) => {
            format!("no table {name} (did you mean {table}?)")
        }
        _ => format!("table {name} not found (SHOW TABLES lists the tables)"),
    }
}

/// `eprintln!` that cannot panic: the line is dropped when stderr is gone (a terminal
/// hung up gives EIO, on which `eprintln!` panics, and a panic in the spinner's cleanup
/// aborted the REPL).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Says `message` on stderr as netsql's errors are said: `netsql: ...`, control
/// characters escaped (errors quote what they failed on: a process's name, a file's, a
/// server's message), line breaks kept.
pub fn report(message: &dyn std::fmt::Display) {
    crate::warn!(
        "netsql: {}",
        crate::output::table::escape_lines(&message.to_string())
    );
}

/// Errors are one line on stderr: fold any newlines the message carries.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_messages_become_one_line() {
        assert_eq!(one_line("a\n  b\tc\n"), "a b c");
        let err = Error::from(DataFusionError::Plan("table 'x'\nnot found".into()));
        assert_eq!(
            err.to_string(),
            "Error during planning: table 'x' not found"
        );
    }

    #[test]
    fn syntax_errors_and_unknown_tables_read_plainly() {
        let err = Error::from(DataFusionError::from(ParserError::ParserError(
            "Expected: an SQL statement, found: SELEC at Line: 1, Column: 1".into(),
        )));
        assert_eq!(
            err.to_string(),
            "syntax error at line 1, column 1: expected an SQL statement, found SELEC"
        );
        let plan = |m: &str| Error::from(DataFusionError::Plan(m.into())).to_string();
        assert_eq!(
            plan("table 'datafusion.public.sockts' not found"),
            "no table sockts (did you mean sockets?)"
        );
        assert_eq!(
            plan("table 'datafusion.public.prcesses' not found"),
            "no table prcesses (did you mean processes?)"
        );
        assert_eq!(
            plan("table 'datafusion.public.nope' not found"),
            "table nope not found (SHOW TABLES lists the tables)"
        );
        assert_eq!(
            plan("table 'datafusion.history.sockets' not found"),
            "no table history.sockets (history.* tables are those of the dataset --history \
             names, none without it)"
        );
    }
}
