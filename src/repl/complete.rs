//! Tab completion: SQL keywords, table and column names, functions, saved queries and
//! meta-commands, all taken from the catalog, the table specs and the parser.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use rustyline::completion::{Completer, Pair};
use rustyline::Context;
use rustyline::{Helper, Highlighter, Hinter, Validator};

use super::command;

/// Names the completer offers, gathered once when the REPL starts.
#[derive(Debug, Default, Clone)]
pub struct Words {
    /// table -> its columns
    pub tables: BTreeMap<String, Vec<String>>,
    pub functions: Vec<String>,
    pub saved: Vec<String>,
}

impl Words {
    pub fn gather(ctx: &SessionContext, saved: Vec<String>) -> Words {
        let mut tables = BTreeMap::new();
        if let Some(schema) = ctx.catalog("datafusion").and_then(|c| c.schema("public")) {
            for name in schema.table_names() {
                // Only our own live tables and views are here; their schemas are static.
                let columns = futures::executor::block_on(schema.table(&name))
                    .ok()
                    .flatten()
                    .map(|t| {
                        t.schema()
                            .fields()
                            .iter()
                            .map(|f| f.name().clone())
                            .collect()
                    })
                    .unwrap_or_default();
                tables.insert(name, columns);
            }
        }
        // Every function is offered, not only those the session has registered so far.
        crate::builtins::register_all(ctx);
        let state = ctx.state();
        let mut functions: Vec<String> = state
            .scalar_functions()
            .keys()
            .chain(state.aggregate_functions().keys())
            .chain(state.window_functions().keys())
            .cloned()
            .collect();
        functions.sort();
        functions.dedup();
        Words {
            tables,
            functions,
            saved,
        }
    }
}

/// rustyline's helper: our completer, no hints, highlighting or validation.
#[derive(Helper, Hinter, Highlighter, Validator)]
pub struct SqlHelper {
    pub names: Words,
    /// The statement typed so far on earlier lines, so `FROM t` there picks columns here.
    pub pending: Arc<Mutex<String>>,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '\\' || c == '.'
}

impl SqlHelper {
    /// The candidates for `word` at `line`'s start (`first`) in the statement `text`.
    pub fn candidates(&self, text: &str, word: &str, first: bool) -> Vec<String> {
        if first && (word.starts_with('\\') || word.starts_with('.')) {
            return command::WORDS
                .iter()
                .filter(|w| w.starts_with(word))
                .map(|w| w.to_string())
                .collect();
        }
        if text.trim_start().starts_with("\\run") {
            return self
                .names
                .saved
                .iter()
                .filter(|n| n.starts_with(word))
                .cloned()
                .collect();
        }
        let lower = word.to_ascii_lowercase();
        // Columns of the tables the statement names, else of every table.
        let named: Vec<&String> = self
            .names
            .tables
            .keys()
            .filter(|t| {
                text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .any(|w| w.eq_ignore_ascii_case(t))
            })
            .collect();
        let column_tables: Vec<&String> = if named.is_empty() {
            self.names.tables.keys().collect()
        } else {
            named
        };
        let mut out: Vec<String> = Vec::new();
        for table in column_tables {
            out.extend(
                self.names.tables[table]
                    .iter()
                    .filter(|c| c.starts_with(&lower))
                    .cloned(),
            );
        }
        out.extend(
            self.names
                .tables
                .keys()
                .filter(|t| t.starts_with(&lower))
                .cloned(),
        );
        out.extend(
            self.names
                .functions
                .iter()
                .filter(|f| f.starts_with(&lower))
                .cloned(),
        );
        let upper = word.to_ascii_uppercase();
        let keep_lower = word.chars().any(|c| c.is_ascii_lowercase());
        out.extend(
            ALL_KEYWORDS
                .iter()
                .filter(|k| !word.is_empty() && k.starts_with(&upper))
                .map(|k| {
                    if keep_lower {
                        k.to_ascii_lowercase()
                    } else {
                        k.to_string()
                    }
                }),
        );
        out.sort();
        out.dedup();
        out
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        // After the last character that is no part of a word, however many bytes it
        // takes (`'café` panicked on a byte inside é).
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        let pending = self.pending.lock().map(|p| p.clone()).unwrap_or_default();
        let first = pending.trim().is_empty() && before[..start].trim().is_empty();
        let text = format!("{pending} {line}");
        let pairs = self
            .candidates(&text, word, first)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> SqlHelper {
        let mut tables = BTreeMap::new();
        tables.insert(
            "sockets".to_string(),
            vec!["local_port".to_string(), "state".to_string()],
        );
        tables.insert(
            "processes".to_string(),
            vec![
                "pid".to_string(),
                "state".to_string(),
                "cmdline".to_string(),
            ],
        );
        SqlHelper {
            names: Words {
                tables,
                functions: vec!["service_name".into(), "count".into()],
                saved: vec!["tcp_state_summary".into()],
            },
            pending: Arc::default(),
        }
    }

    #[test]
    fn columns_of_named_tables_tables_functions_keywords() {
        let h = helper();
        assert_eq!(
            h.candidates("SELECT local_p FROM sockets", "local_p", false),
            ["local_port"]
        );
        // cmdline is a processes column: not offered while only sockets is named.
        assert!(h
            .candidates("SELECT c FROM sockets", "c", false)
            .iter()
            .all(|c| c != "cmdline"));
        assert!(h
            .candidates("SELECT c", "c", false)
            .contains(&"cmdline".to_string()));
        assert_eq!(
            h.candidates("SELECT * FROM sock", "sock", false),
            ["sockets"]
        );
        assert!(h
            .candidates("SELECT servi", "servi", false)
            .contains(&"service_name".to_string()));
        assert!(h
            .candidates("SEL", "SEL", true)
            .contains(&"SELECT".to_string()));
        assert!(h
            .candidates("sel", "sel", true)
            .contains(&"select".to_string()));
        assert_eq!(h.candidates("\\ti", "\\ti", true), ["\\timing"]);
        assert_eq!(
            h.candidates("\\run tcp", "tcp", false),
            ["tcp_state_summary"]
        );
    }

    /// Tab after a character of several bytes (it panicked on a byte inside é).
    #[test]
    fn the_word_starts_after_a_wide_character() {
        let h = helper();
        let history = rustyline::history::MemHistory::new();
        let ctx = Context::new(&history);
        for (line, start) in [("SELECT 'café", 13), ("SELECT 'éstate", 10), ("é", 2)] {
            let (at, _) = h.complete(line, line.len(), &ctx).unwrap();
            assert_eq!(at, start, "{line}");
        }
    }
}
