//! Query files: saved queries and audits. A file starts with a comment header
//! (`-- key: value` lines) naming it and its parameters; the rest is SQL.
//! Built-in files under `queries/` are compiled into the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/builtin_queries.rs"));

/// A parsed query file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFile {
    /// Where it came from: `builtin:audits/x.sql` or a path.
    pub origin: String,
    pub name: String,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub remediation: Option<String>,
    /// Parameters and their defaults, in the order declared.
    pub params: Vec<(String, String)>,
    /// Every other `-- key: value` line (key lowercased), in order: free comments to
    /// saved queries and audits, a metric's declaration to `queries/metrics/`.
    pub other: Vec<(String, String)>,
    pub sql: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{origin}: {reason}")]
    Header { origin: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `text` without the byte-order mark some editors write first: it hid a file's header
/// and failed its SQL.
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parses a query file. Header lines are the leading `--` comments of the form
/// `-- key: value`; `-- param: name = default` declares a parameter used as `$name`.
/// A file without `-- name:` takes its file name.
pub fn parse(origin: &str, text: &str) -> Result<QueryFile, QueryError> {
    let text = without_bom(text);
    let fail = |reason: String| QueryError::Header {
        origin: origin.to_string(),
        reason,
    };
    let stem = Path::new(origin.trim_start_matches("builtin:"))
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = QueryFile {
        origin: origin.to_string(),
        name: stem,
        description: None,
        severity: None,
        remediation: None,
        params: Vec::new(),
        other: Vec::new(),
        sql: text.to_string(),
    };
    for line in text.lines() {
        let Some(comment) = line.trim_start().strip_prefix("--") else {
            if line.trim().is_empty() {
                continue;
            }
            break; // the header ends at the first line of SQL
        };
        let Some((key, value)) = comment.split_once(':') else {
            continue; // a plain comment
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_string());
        match key.as_str() {
            "name" if value.is_empty() => return Err(fail("empty name".into())),
            "name" => file.name = value,
            "description" => file.description = Some(value),
            "severity" => file.severity = Some(value),
            "remediation" => file.remediation = Some(value),
            "param" => {
                let (name, default) = value
                    .split_once('=')
                    .ok_or_else(|| fail(format!("param {value:?} is not `name = default`")))?;
                let name = name.trim();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(fail(format!("param name {name:?} is not a word")));
                }
                file.params
                    .push((name.to_string(), unquote(default.trim())));
            }
            _ => file.other.push((key, value)),
        }
    }
    Ok(file)
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .map_or_else(|| value.to_string(), |v| v.replace("''", "'"))
}

/// The built-in files under `queries/<folder>/`, parsed.
pub fn builtin(folder: &str) -> Result<Vec<QueryFile>, QueryError> {
    let prefix = format!("{folder}/");
    BUILTIN
        .iter()
        .filter(|(path, _)| path.starts_with(&prefix))
        .map(|(path, text)| parse(&format!("builtin:{path}"), text))
        .collect()
}

/// Where user queries live: `$XDG_CONFIG_HOME/netsql/queries` (`~/.config/...` when
/// unset) if it exists, then each `--queries DIR`, which must.
pub fn user_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")));
    let mut dirs: Vec<PathBuf> = config
        .map(|c| c.join("netsql").join("queries"))
        .filter(|d| d.is_dir())
        .into_iter()
        .collect();
    dirs.extend(extra.iter().cloned());
    dirs
}

/// Every saved query: the built-ins (all of `queries/` but `audits/` and `metrics/`),
/// then each user folder; a later query of the same name replaces an earlier one.
/// Sorted by name.
pub fn saved(dirs: &[PathBuf]) -> Result<Vec<QueryFile>, QueryError> {
    let mut by_name: BTreeMap<String, QueryFile> = BTreeMap::new();
    let listed = |path: &&str| !path.starts_with("audits/") && !path.starts_with("metrics/");
    for (path, text) in BUILTIN.iter().filter(|(p, _)| listed(p)) {
        let file = parse(&format!("builtin:{path}"), text)?;
        by_name.insert(file.name.clone(), file);
    }
    for dir in dirs {
        if !dir.is_dir() {
            return Err(QueryError::Read {
                path: dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
            });
        }
        // A bad file of the user's is left out, said once: it failed every saved query
        // and `netsql netstat`, the built-in ones too.
        for file in each(dir)? {
            match file {
                Ok(file) => {
                    by_name.insert(file.name.clone(), file);
                }
                Err(err) => crate::warn!("netsql: {err} (left out of the saved queries)"),
            }
        }
    }
    Ok(by_name.into_values().collect())
}

/// `--list` as a table: name, description, parameters (with defaults), origin.
#[cfg(feature = "sql")]
pub fn listing(
    files: &[QueryFile],
) -> Result<datafusion::arrow::array::RecordBatch, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let column = |value: &dyn Fn(&QueryFile) -> Option<String>| -> ArrayRef {
        std::sync::Arc::new(files.iter().map(value).collect::<StringArray>())
    };
    let schema = Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, true),
        Field::new("parameters", DataType::Utf8, true),
        Field::new("origin", DataType::Utf8, false),
    ]);
    datafusion::arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![
            column(&|f| Some(f.name.clone())),
            column(&|f| f.description.clone()),
            column(&|f| {
                (!f.params.is_empty()).then(|| {
                    f.params
                        .iter()
                        .map(|(n, d)| format!("{n} = {d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            }),
            column(&|f| Some(f.origin.clone())),
        ],
    )
}

/// The saved query called `name`.
pub fn find<'a>(files: &'a [QueryFile], name: &str) -> Result<&'a QueryFile, QueryError> {
    files.iter().find(|f| f.name == name).ok_or_else(|| {
        let near: Vec<&str> = files
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| n.contains(name) || name.contains(n) || typo_of(n, name))
            .collect();
        let hint = if near.is_empty() {
            "netsql --list shows them".to_string()
        } else {
            format!("did you mean {}?", near.join(", "))
        };
        QueryError::Header {
            origin: name.to_string(),
            reason: format!("no saved query of that name ({hint})"),
        }
    })
}

/// Whether `typed` is `name` with one or two letters wrong, missing or extra (`listner`
/// for `listeners`).
fn typo_of(name: &str, typed: &str) -> bool {
    name.len() > 3 && strsim::levenshtein(name, typed) <= 2
}

/// A `.sql` file, or every `.sql` file in a folder (sorted by name).
pub fn load(path: &Path) -> Result<Vec<QueryFile>, QueryError> {
    each(path)?.into_iter().collect()
}

/// [`load`], each file read and parsed apart: one bad file is its own error.
fn each(path: &Path) -> Result<Vec<Result<QueryFile, QueryError>>, QueryError> {
    let read = |path: &Path| {
        let text = std::fs::read_to_string(path).map_err(|source| QueryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse(&path.display().to_string(), &text)
    };
    if !path.is_dir() {
        return Ok(vec![read(path)]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| QueryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // `.SQL` too: a file people named so was left out without a word.
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("sql")))
        .collect();
    files.sort();
    Ok(files.iter().map(|p| read(p)).collect())
}

/// `name=value` pairs as `-p` and the REPL's `\run` take them; the first bad one is
/// returned as the error.
pub fn parse_assignments<'a>(
    pairs: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>, &'a str> {
    pairs
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_string(), value.to_string()))
            }
            _ => Err(pair),
        })
        .collect()
}

/// The values for a file's parameters: its defaults, overridden by `-p name=value`.
/// An override naming no declared parameter is an error.
pub fn bind(
    file: &QueryFile,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, QueryError> {
    let mut values: BTreeMap<String, String> = file.params.iter().cloned().collect();
    for (name, value) in overrides {
        if !values.contains_key(name) {
            let known: Vec<&str> = file.params.iter().map(|(n, _)| n.as_str()).collect();
            let takes = if known.is_empty() {
                "it takes no parameters".to_string()
            } else {
                format!("it takes: {}", known.join(", "))
            };
            return Err(QueryError::Header {
                origin: file.origin.clone(),
                reason: format!("unknown parameter {name:?} ({takes})"),
            });
        }
        values.insert(name.clone(), value.clone());
    }
    Ok(values)
}

/// The first of `params` that none of `files` declares: a typo when running many query
/// files with one set of `-p` values (audits, metrics).
pub fn undeclared<'a>(
    files: &[&QueryFile],
    params: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    params
        .keys()
        .find(|name| {
            !files
                .iter()
                .any(|f| f.params.iter().any(|(p, _)| p == *name))
        })
        .map(String::as_str)
}

/// [`bind`] with only the `params` this file declares: when many files share one set,
/// a value for another file is no error here (see [`undeclared`]).
pub fn bind_declared(
    file: &QueryFile,
    params: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, QueryError> {
    let own: BTreeMap<String, String> = params
        .iter()
        .filter(|(name, _)| file.params.iter().any(|(p, _)| p == *name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    bind(file, &own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_give_name_params_and_severity() {
        let text = "-- name: wide_listeners\n\
                    -- severity: high\n\
                    -- description: Listeners on every interface\n\
                    -- a free comment\n\
                    -- param: allow = 'sshd'\n\
                    -- param: limit = 10\n\
                    \n\
                    SELECT 1 -- name: not a header\n";
        let file = parse("x.sql", text).unwrap();
        assert_eq!(file.name, "wide_listeners");
        assert_eq!(file.severity.as_deref(), Some("high"));
        assert_eq!(
            file.description.as_deref(),
            Some("Listeners on every interface")
        );
        assert_eq!(
            file.params,
            vec![
                ("allow".into(), "sshd".into()),
                ("limit".into(), "10".into())
            ]
        );
        assert_eq!(parse("dir/other.sql", "SELECT 1").unwrap().name, "other");
    }

    #[test]
    fn bad_headers_and_unknown_params_are_errors() {
        assert!(parse("x.sql", "-- param: nodefault\nSELECT 1").is_err());
        assert!(parse("x.sql", "-- param: bad name = 1\nSELECT 1").is_err());
        assert!(parse("x.sql", "-- name:\nSELECT 1").is_err());
        let file = parse("x.sql", "-- param: n = 1\nSELECT $n").unwrap();
        let overrides = BTreeMap::from([("m".to_string(), "2".to_string())]);
        let err = bind(&file, &overrides).unwrap_err().to_string();
        assert!(
            err.contains("unknown parameter \"m\"") && err.contains("takes: n"),
            "{err}"
        );
        let overrides = BTreeMap::from([("n".to_string(), "5".to_string())]);
        assert_eq!(bind(&file, &overrides).unwrap()["n"], "5");
    }

    #[test]
    fn user_queries_override_builtins_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.sql"),
            "-- name: tcp_state_summary\n-- description: mine\nSELECT 1",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("extra.sql"),
            "-- description: extra\nSELECT 2",
        )
        .unwrap();
        let files = saved(&[dir.path().to_path_buf()]).unwrap();
        let summary = find(&files, "tcp_state_summary").unwrap();
        assert_eq!(summary.description.as_deref(), Some("mine"));
        assert!(find(&files, "extra").is_ok());
        assert!(find(&files, "netstat_inet").is_ok());
        assert!(files.iter().all(|f| !f.origin.contains("audits/")));
        let err = find(&files, "netstat").unwrap_err().to_string();
        assert!(
            err.contains("did you mean") && err.contains("netstat_inet"),
            "{err}"
        );
        assert!(saved(&[dir.path().join("missing")]).is_err());
    }

    #[test]
    fn every_builtin_query_parses() {
        assert!(!BUILTIN.is_empty());
        for (path, text) in BUILTIN {
            let file = parse(path, text).unwrap();
            assert!(file.description.is_some(), "{path} has no description");
        }
    }
}
