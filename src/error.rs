//! Errors that reach the user, and the exit codes they map to.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

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
}

impl From<crate::queries::QueryError> for Error {
    fn from(err: crate::queries::QueryError) -> Self {
        Error::Usage(one_line(&err.to_string()))
    }
}

impl From<crate::collect::CollectError> for Error {
    fn from(err: crate::collect::CollectError) -> Self {
        Error::Usage(one_line(&err.to_string()))
    }
}

/// DataFusion wraps our collector errors as `External`; show the collector's own message.
fn one_line_datafusion(err: &DataFusionError) -> String {
    let text = match err.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(_, inner) => inner.to_string(),
        root => root.to_string(),
    };
    one_line(&text)
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
}
