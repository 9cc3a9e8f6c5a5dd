//! The REPL's meta-commands: data, with their help text beside them (`\?` lists them).

use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    /// `\d`: every table; `\d NAME`: one table's columns.
    Describe(Option<String>),
    Format(String),
    /// `\x` toggles, `\x on|off` sets.
    Expanded(Option<bool>),
    Timing(Option<bool>),
    MaxRows(usize),
    Include(String),
    Output(Option<String>),
    Saved,
    /// `\run NAME [param=value ...]`: a saved query, read-only, as `-q NAME -p ...`.
    Run {
        name: String,
        params: BTreeMap<String, String>,
    },
    Watch(u64),
    /// `\hosts`: with `--connect`, the fleet's hosts and whether each answered.
    Hosts,
}

/// (usage, help) for every command, in the order `\?` shows them.
pub const HELP: &[(&str, &str)] = &[
    ("\\q", "quit (also .quit, Ctrl-D)"),
    ("\\?", "this help"),
    (
        "\\d [TABLE]",
        "list tables, or a table's columns with their meaning (also .tables, .schema)",
    ),
    (
        "\\format FMT",
        "output format: table, csv, tsv, json, ndjson",
    ),
    (
        "\\x [on|off]",
        "expanded display (one column per line): toggled, or set",
    ),
    ("\\timing [on|off]", "show how long each query took"),
    (
        "\\maxrows N",
        "show at most N rows of a result (default 40)",
    ),
    ("\\i FILE", "run the SQL in FILE"),
    (
        "\\o [FILE]",
        "send results to FILE; alone, back to the terminal",
    ),
    ("\\saved", "list saved queries"),
    (
        "\\hosts",
        "with --connect: the fleet's hosts, and whether each answered",
    ),
    (
        "\\run NAME [P=V ...]",
        "run a saved query (read-only), setting its parameters",
    ),
    (
        "\\watch N",
        "run the last statement every N seconds until Ctrl-C",
    ),
];

/// Every command word, for completion.
pub const WORDS: &[&str] = &[
    "\\q",
    "\\?",
    "\\d",
    "\\format",
    "\\x",
    "\\timing",
    "\\maxrows",
    "\\i",
    "\\o",
    "\\saved",
    "\\hosts",
    "\\run",
    "\\watch",
    ".tables",
    ".schema",
    ".quit",
    ".help",
];

/// Whether a line is a meta-command rather than SQL.
pub fn is_command(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with('\\')
        || (line.starts_with('.')
            && WORDS
                .iter()
                .any(|w| line.split_whitespace().next() == Some(w)))
}

impl FromStr for Command {
    type Err = String;

    fn from_str(line: &str) -> Result<Command, String> {
        let line = line.trim().trim_end_matches(';');
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((word, rest)) => (word, rest.trim()),
            None => (line, ""),
        };
        let arg = (!rest.is_empty()).then(|| rest.to_string());
        let need = |what: &str| arg.clone().ok_or_else(|| format!("{word} needs {what}"));
        Ok(match word {
            "\\q" | ".quit" | ".exit" => Command::Quit,
            "\\?" | "\\h" | ".help" => Command::Help,
            "\\d" | ".schema" => Command::Describe(arg),
            ".tables" => Command::Describe(None),
            "\\format" => Command::Format(need("a format")?),
            "\\x" => Command::Expanded(match rest {
                "" => None,
                "on" => Some(true),
                "off" => Some(false),
                other => return Err(format!("\\x takes on or off, not {other:?}")),
            }),
            "\\timing" => Command::Timing(match rest {
                "" => None,
                "on" => Some(true),
                "off" => Some(false),
                other => return Err(format!("\\timing takes on or off, not {other:?}")),
            }),
            "\\maxrows" => Command::MaxRows(
                need("a number")?
                    .parse()
                    .map_err(|_| format!("\\maxrows takes a number, not {rest:?}"))?,
            ),
            "\\i" => Command::Include(need("a file")?),
            "\\o" => Command::Output(arg),
            "\\saved" => Command::Saved,
            "\\hosts" => Command::Hosts,
            "\\run" => {
                let arg = need("a saved query's name")?;
                let mut words = arg.split_whitespace();
                let name = words.next().unwrap_or_default().to_string();
                let params = crate::queries::parse_assignments(words)
                    .map_err(|pair| format!("\\run {name}: expected NAME=VALUE, not {pair:?}"))?;
                Command::Run { name, params }
            }
            "\\watch" => {
                let seconds: u64 = need("seconds")?
                    .parse()
                    .map_err(|_| format!("\\watch takes whole seconds, not {rest:?}"))?;
                if seconds == 0 {
                    return Err("\\watch needs at least 1 second".into());
                }
                Command::Watch(seconds)
            }
            other => return Err(format!("unknown command {other}: try \\?")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_refuses_bad_ones() {
        assert_eq!("\\q".parse(), Ok(Command::Quit));
        assert_eq!(".quit".parse(), Ok(Command::Quit));
        assert_eq!(
            "\\d sockets".parse(),
            Ok(Command::Describe(Some("sockets".into())))
        );
        assert_eq!(".schema".parse(), Ok(Command::Describe(None)));
        assert_eq!("\\timing on".parse(), Ok(Command::Timing(Some(true))));
        // `\x on` sets (it toggled: a second one turned it off).
        assert_eq!("\\x on".parse(), Ok(Command::Expanded(Some(true))));
        assert_eq!("\\x".parse(), Ok(Command::Expanded(None)));
        assert!("\\x maybe".parse::<Command>().is_err());
        assert_eq!("\\maxrows 5".parse(), Ok(Command::MaxRows(5)));
        assert_eq!("\\watch 2".parse(), Ok(Command::Watch(2)));
        assert_eq!("\\hosts".parse(), Ok(Command::Hosts));
        assert_eq!("\\o".parse(), Ok(Command::Output(None)));
        assert_eq!(
            "\\run deepest_queues limit=3".parse(),
            Ok(Command::Run {
                name: "deepest_queues".into(),
                params: [("limit".to_string(), "3".to_string())].into(),
            })
        );
        assert!("\\run deepest_queues 3".parse::<Command>().is_err());
        assert!("\\watch 0".parse::<Command>().is_err());
        assert!("\\maxrows x".parse::<Command>().is_err());
        assert!("\\nope".parse::<Command>().is_err());
        assert!(
            is_command("  \\d")
                && is_command(".tables")
                && !is_command("SELECT 1")
                && !is_command(".5")
        );
        for word in WORDS {
            let line = match *word {
                "\\format" | "\\i" | "\\run" => format!("{word} x"),
                "\\maxrows" | "\\watch" => format!("{word} 1"),
                _ => word.to_string(),
            };
            assert!(line.parse::<Command>().is_ok(), "{line}");
        }
    }
}
