//! The names completions offer: saved queries, tables, audits and metric queries, as
//! value parsers that accept any value but list these (clap_complete writes them into
//! the scripts; `--help` hides them). Each list is made (once) only when clap asks for
//! possible values: for a completion script, or a "value required" error. Every
//! argument using these must say `hide_possible_values = true`, or clap's help check
//! would make them on every start, a query's too.

/// A value parser that takes what `inner` takes and names the usual values for
/// completions (`clap_complete` emits a parser's possible values): `-q`'s saved queries,
/// `--tables`' tables, audit and metric names. Any other value still parses (a query of
/// one's own, a file), so these are suggestions, not a list to check against.
#[derive(Clone)]
pub(super) struct Hinted<P> {
    inner: P,
    names: fn() -> &'static [String],
}

impl<P: clap::builder::TypedValueParser> clap::builder::TypedValueParser for Hinted<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        self.inner.parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new((self.names)().iter().map(|name| {
            clap::builder::PossibleValue::new(name.as_str())
        })))
    }
}

/// The built-in saved queries (`-q`).
pub(super) fn query_names() -> Hinted<clap::builder::StringValueParser> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    Hinted {
        inner: clap::builder::StringValueParser::new(),
        names: || {
            NAMES.get_or_init(|| {
                crate::queries::saved(&[])
                    .map(|files| files.into_iter().map(|f| f.name).collect())
                    .unwrap_or_default()
            })
        },
    }
}

/// The live tables (`--tables`).
pub(super) fn table_names() -> Hinted<clap::builder::StringValueParser> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    Hinted {
        inner: clap::builder::StringValueParser::new(),
        names: || {
            NAMES.get_or_init(|| {
                crate::tables::infos()
                    .iter()
                    .map(|t| t.name.to_string())
                    .collect()
            })
        },
    }
}

/// The built-in queries of `queries/<folder>/` by name.
fn builtin_names(folder: &str) -> Vec<String> {
    crate::queries::builtin(folder)
        .map(|files| files.into_iter().map(|f| f.name).collect())
        .unwrap_or_default()
}

/// The built-in audits (`netsql audit NAME`), beside any path.
pub(super) fn audit_names() -> Hinted<clap::builder::PathBufValueParser> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    Hinted {
        inner: clap::builder::PathBufValueParser::new(),
        names: || NAMES.get_or_init(|| builtin_names("audits")),
    }
}

/// The built-in metric queries (`--metrics-only`).
pub(super) fn metric_names() -> Hinted<clap::builder::StringValueParser> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    Hinted {
        inner: clap::builder::StringValueParser::new(),
        names: || NAMES.get_or_init(|| builtin_names("metrics")),
    }
}
