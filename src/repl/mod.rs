//! The interactive REPL: rustyline editing and history, completion, meta-commands.
//! SQL runs through the same [`Runner`] as every other mode.

pub mod command;
pub mod complete;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, TokenizerError};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config as EditorConfig, Editor};

use crate::error::Error;
use datafusion::arrow::datatypes::SchemaRef;

use crate::exec::{Destination, Runner};
use crate::output::{table, Format, Sink};
use crate::queries;
use crate::tables;
use command::{Command, HELP};
use complete::{SqlHelper, Words};

const PROMPT: &str = "netsql> ";
const CONTINUE: &str = "   ...> ";

/// What the meta-commands change.
struct Settings {
    format: Format,
    expanded: bool,
    timing: bool,
    max_rows: usize,
    output: Option<std::fs::File>,
    last: Option<String>,
}

/// How many statements the history file keeps.
const HISTORY_SIZE: usize = 10_000;

/// `$XDG_DATA_HOME/netsql/history`, by default under `~/.local/share`.
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("netsql").join("history"))
}

/// Whether `text` ends a statement: its last token outside comments is `;`. Text the
/// tokenizer finds unfinished (a string, quoted name or `/* */` comment left open) is
/// not; text it fails on otherwise is, so the error is said rather than waited past.
pub fn statement_complete(text: &str) -> bool {
    match significant_tokens(text) {
        Ok(tokens) => tokens.last() == Some(&Token::SemiColon),
        Err(err) => {
            let unfinished = ["Unterminated", "Unexpected EOF", "before EOF"];
            !unfinished.iter().any(|u| err.message.contains(u))
        }
    }
}

/// Whether `line` holds no token but spaces and whole comments.
fn nothing_but_comments(line: &str) -> bool {
    significant_tokens(line).is_ok_and(|tokens| tokens.is_empty())
}

/// `text`'s tokens but spaces and comments, as the statement parser reads them.
fn significant_tokens(text: &str) -> Result<Vec<Token>, TokenizerError> {
    let tokens = Tokenizer::new(&GenericDialect {}, text).tokenize()?;
    Ok(tokens
        .into_iter()
        .filter(|token| !matches!(token, Token::Whitespace(_)))
        .collect())
}

/// The REPL on `runner`'s session, statements run on `runtime`; `\\saved` and `\\run`
/// see the same saved queries as `-q` (built-in, XDG, then `query_dirs`).
pub fn run(
    runtime: &tokio::runtime::Runtime,
    runner: &Runner<'_>,
    query_dirs: &[std::path::PathBuf],
) -> Result<(), Error> {
    let runner = *runner;
    // SIGINT sets a flag instead of ending netsql; a running query polls it.
    let interrupted = crate::interrupt::flag()?;

    let pending = Arc::new(Mutex::new(String::new()));
    let editor_config = EditorConfig::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(HISTORY_SIZE)
        .map_err(|e| Error::Usage(format!("terminal: {e}")))?
        // Prompts and what is typed on the terminal even when stdout is a file or pipe
        // (they went into it, and the terminal showed nothing).
        .behavior(rustyline::Behavior::PreferTerm)
        .build();
    let mut editor: Editor<SqlHelper, FileHistory> =
        Editor::with_config(editor_config).map_err(|e| Error::Usage(format!("terminal: {e}")))?;
    let saved = queries::saved(&queries::user_dirs(query_dirs))?;
    editor.set_helper(Some(SqlHelper {
        names: Words::gather(runner.ctx, saved.iter().map(|q| q.name.clone()).collect()),
        pending: pending.clone(),
    }));
    let mut history = history_path();
    if let Some(path) = &history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
            // Saving would rewrite the file with only what was read before the bad line.
            Err(err) => {
                crate::warn!(
                    "netsql: history {}: {err} (not saved this session)",
                    path.display()
                );
                history = None;
            }
        }
    }
    let mut settings = Settings {
        format: Format::Table,
        expanded: false,
        timing: false,
        max_rows: 40,
        output: None,
        last: None,
    };
    let banner = format!(
        "netsql {}: SQL over this host's sockets. \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    // Where the prompts go: stdout may be a file, for the results only.
    match std::io::stdout().is_terminal() {
        true => say(format_args!("{banner}"))?,
        false => crate::warn!("{banner}"),
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { PROMPT } else { CONTINUE };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            // Ctrl-C at the prompt clears what was typed.
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                *pending.lock().unwrap_or_else(|e| e.into_inner()) = String::new();
                continue;
            }
            Err(ReadlineError::Eof) if buffer.is_empty() => break,
            Err(ReadlineError::Eof) => {
                buffer.clear();
                continue;
            }
            // The prompt could not be written: stdout is closed.
            Err(ReadlineError::Io(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(ReadlineError::Errno(errno))
                if std::io::Error::from(errno).kind() == std::io::ErrorKind::BrokenPipe =>
            {
                break
            }
            // A byte that is not UTF-8 (a Latin-1 terminal's é): that line is lost, not
            // the session.
            Err(ReadlineError::Io(err)) if err.kind() == std::io::ErrorKind::InvalidData => {
                crate::error::report(&"terminal: the line was not UTF-8 text (ignored)");
                continue;
            }
            Err(err) => return Err(Error::Usage(format!("terminal: {err}"))),
        };
        if buffer.is_empty() && command::is_command(&line) {
            let _ = editor.add_history_entry(line.trim());
            save_history(&mut editor, &history);
            match line.parse::<Command>() {
                Ok(Command::Quit) => break,
                Ok(command) => {
                    if let Err(err) = meta(
                        command,
                        runtime,
                        &runner,
                        &mut settings,
                        &saved,
                        &interrupted,
                    ) {
                        if output_closed(&err) {
                            break;
                        }
                        crate::error::report(&err);
                    }
                }
                Err(err) => crate::error::report(&err),
            }
            continue;
        }
        // A blank or comment-only line at the prompt is nothing (it made the next one a
        // continuation, where `\q` was SQL).
        if buffer.is_empty() && nothing_but_comments(&line) {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !statement_complete(&buffer) {
            *pending.lock().unwrap_or_else(|e| e.into_inner()) = buffer.clone();
            continue;
        }
        let sql = std::mem::take(&mut buffer);
        *pending.lock().unwrap_or_else(|e| e.into_inner()) = String::new();
        // A statement typed over several lines is one history entry, its lines kept: a
        // `--` comment joined to the next line swallowed it.
        let _ = editor.add_history_entry(sql.trim());
        save_history(&mut editor, &history);
        settings.last = Some(sql.clone());
        if let Err(err) = run_sql(runtime, &runner, &mut settings, &sql, None, &interrupted) {
            if output_closed(&err) {
                break;
            }
            crate::error::report(&err);
        }
    }
    Ok(())
}

fn save_history(editor: &mut Editor<SqlHelper, FileHistory>, path: &Option<PathBuf>) {
    if let Some(path) = path {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
}

/// Runs `sql` until it ends or Ctrl-C cancels it, showing a spinner on a terminal's stderr
/// after a second. A saved query's (with its parameters, `saved`) runs host by host over a
/// fleet, as `-q` does.
fn run_sql(
    runtime: &tokio::runtime::Runtime,
    runner: &Runner<'_>,
    settings: &mut Settings,
    sql: &str,
    saved: Option<&BTreeMap<String, String>>,
    interrupted: &Arc<AtomicBool>,
) -> Result<(), Error> {
    interrupted.store(false, Ordering::Relaxed);
    let started = Instant::now();
    // Set once a result streams to the output: the spinner must not draw over its rows.
    let streaming = Arc::new(Mutex::new(false));
    let work = async {
        let mut shown = ReplOutput {
            settings,
            text: Vec::new(),
            live: None,
            streaming: streaming.clone(),
        };
        let ran = match saved {
            None => runner.run(sql, &BTreeMap::new(), &mut shown).await,
            Some(params) => match runner.statements(sql) {
                Ok(statements) => crate::fleet::each::run(runner, statements, params, &mut shown)
                    .await
                    .map(drop),
                Err(err) => Err(err),
            },
        };
        // What the statements before a failing one printed is shown, as with -f.
        (shown.text, ran)
    };
    let flag = interrupted.clone();
    let result = runtime.block_on(async {
        let spinner = tokio::spawn(spin(started, streaming.clone()));
        let result = tokio::select! {
            result = work => Some(result),
            () = crate::interrupt::raised(flag) => None,
        };
        spinner.abort();
        let _ = spinner.await;
        result
    });
    let Some((text, ran)) = result else {
        return Err(Error::Usage("query cancelled".into()));
    };
    match settings.output.as_mut() {
        Some(file) => file.write_all(&text)?,
        None => std::io::stdout().write_all(&text)?,
    }
    ran?;
    if settings.timing {
        say(format_args!(
            "Time: {:.3} ms",
            started.elapsed().as_secs_f64() * 1000.0
        ))?;
    }
    Ok(())
}

/// A line on stdout: an error when stdout is closed, where `println!` would panic.
fn say(line: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Whether `err` is stdout (or `\o`'s file) closed under us: the REPL then ends quietly,
/// as a closed pipe ends a one-shot query.
fn output_closed(err: &Error) -> bool {
    let io = match err {
        Error::Io(io) => io,
        Error::Arrow(datafusion::arrow::error::ArrowError::IoError(_, io)) => io,
        _ => return false,
    };
    io.kind() == std::io::ErrorKind::BrokenPipe
}

/// Results as the REPL shows them, gathered to go to the terminal or `\o`'s file once the
/// statement is done (or dropped when Ctrl-C cancels it); a result that streams (rows of
/// `socket_events`) goes there as it comes instead.
struct ReplOutput<'a> {
    settings: &'a Settings,
    text: Vec<u8>,
    /// Where a streaming result is written as it arrives.
    live: Option<Box<dyn Write + Send>>,
    /// Set (under its lock, which the spinner takes to draw) once a result streams.
    streaming: Arc<Mutex<bool>>,
}

impl Destination for ReplOutput<'_> {
    fn open(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        let settings = self.settings;
        Ok(match settings.format {
            Format::Table => Box::new(
                table::TableSink::new(schema, Box::new(&mut self.text))
                    .layout(settings.max_rows, settings.expanded),
            ),
            format => crate::output::sink(format, schema, &mut self.text)?,
        })
    }

    fn open_live(&mut self, schema: SchemaRef) -> Result<Box<dyn Sink + '_>, Error> {
        // What earlier statements of the same line printed goes first.
        let live: Box<dyn Write + Send> = match &self.settings.output {
            Some(file) => Box::new(file.try_clone()?),
            None => Box::new(std::io::stdout()),
        };
        {
            // The spinner draws under this lock: once it is set, it draws no more.
            let mut streaming = self.streaming.lock().unwrap_or_else(|e| e.into_inner());
            *streaming = true;
            if std::io::stderr().is_terminal() {
                // The spinner's line, cleared before the first row takes it.
                let _ = std::io::stderr().write_all(b"\r\x1b[K");
            }
        }
        let out = self.live.insert(live);
        out.write_all(&std::mem::take(&mut self.text))?;
        Ok(crate::output::live_sink(
            self.settings.format,
            schema,
            out.as_mut(),
        )?)
    }
}

/// A spinner on stderr for queries that run past a second, only on a terminal, until
/// the result starts streaming to the output.
async fn spin(started: Instant, streaming: Arc<Mutex<bool>>) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut frames = ['|', '/', '-', '\\'].iter().cycle();
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
    let clear = Clear;
    loop {
        {
            let streaming = streaming.lock().unwrap_or_else(|e| e.into_inner());
            if *streaming {
                // open_live cleared the line; rows may be on it now.
                std::mem::forget(clear);
                return;
            }
            let _ = write!(
                std::io::stderr(),
                "\r{} {:.0}s",
                frames.next().unwrap_or(&'|'),
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn meta(
    command: Command,
    runtime: &tokio::runtime::Runtime,
    runner: &Runner<'_>,
    settings: &mut Settings,
    saved: &[queries::QueryFile],
    interrupted: &Arc<AtomicBool>,
) -> Result<(), Error> {
    match command {
        Command::Quit => {}
        Command::Help => {
            for (usage, help) in HELP {
                say(format_args!("{usage:<18} {help}"))?;
            }
        }
        Command::Describe(None) => {
            for info in tables::infos() {
                say(format_args!("{:<16} {}", info.name, info.doc))?;
            }
        }
        Command::Describe(Some(name)) => {
            // A table's description is shown whole, whatever \maxrows says.
            let max_rows = std::mem::replace(&mut settings.max_rows, usize::MAX);
            let described = run_sql(
                runtime,
                runner,
                settings,
                &format!("DESCRIBE {name};"),
                None,
                interrupted,
            );
            settings.max_rows = max_rows;
            described?
        }
        Command::Format(name) => {
            settings.format = match name.as_str() {
                "table" => Format::Table,
                "csv" => Format::Csv,
                "tsv" => Format::Tsv,
                "json" => Format::Json,
                "ndjson" => Format::Ndjson,
                other => {
                    return Err(Error::Usage(format!(
                        "\\format takes table, csv, tsv, json or ndjson, not {other}"
                    )))
                }
            };
        }
        Command::Expanded(on) => {
            settings.expanded = on.unwrap_or(!settings.expanded);
            say(format_args!(
                "Expanded display is {}.",
                if settings.expanded { "on" } else { "off" }
            ))?;
        }
        Command::Timing(on) => {
            settings.timing = on.unwrap_or(!settings.timing);
            say(format_args!(
                "Timing is {}.",
                if settings.timing { "on" } else { "off" }
            ))?;
        }
        Command::MaxRows(n) => settings.max_rows = n,
        Command::Include(file) => {
            let sql = std::fs::read_to_string(&file).map_err(|source| Error::Input {
                path: file.into(),
                source,
            })?;
            run_sql(runtime, runner, settings, &sql, None, interrupted)?;
        }
        Command::Output(None) => settings.output = None,
        Command::Output(Some(file)) => {
            settings.output =
                Some(
                    std::fs::File::create(&file).map_err(|source| Error::Output {
                        path: file.into(),
                        source,
                    })?,
                )
        }
        Command::Hosts => match crate::fleet::hosts(runner.ctx) {
            None => say(format_args!(
                "not connected to a fleet (netsql --connect URL,...)"
            ))?,
            Some(hosts) => {
                for (host, answer) in hosts {
                    match answer {
                        Ok(name) => say(format_args!("{host:<40} answered as {name}"))?,
                        Err(why) => say(format_args!("{host:<40} did not answer: {why}"))?,
                    }
                }
            }
        },
        Command::Saved => {
            for query in saved {
                say(format_args!(
                    "{:<24} {}",
                    query.name,
                    query.description.as_deref().unwrap_or("")
                ))?;
            }
        }
        Command::Run { name, params } => {
            // As with -q: read-only, parameters at their defaults unless set.
            let query = queries::find(saved, &name)?;
            let params = queries::bind(query, &params)?;
            let read_only = runner.read_only();
            run_sql(
                runtime,
                &read_only,
                settings,
                &query.sql,
                Some(&params),
                interrupted,
            )?;
        }
        Command::Watch(seconds) => {
            let Some(sql) = settings.last.clone() else {
                return Err(Error::Usage(
                    "\\watch repeats the last statement: run one first".into(),
                ));
            };
            // A press that ended an earlier stream is not this watch's.
            crate::interrupt::stream_interrupted();
            loop {
                run_sql(runtime, runner, settings, &sql, None, interrupted)?;
                if crate::interrupt::stream_interrupted() {
                    return Ok(());
                }
                // An interval past what a clock can hold waits for Ctrl-C.
                let until = Instant::now().checked_add(Duration::from_secs(seconds));
                while until.is_none_or(|until| Instant::now() < until) {
                    if interrupted.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::statement_complete;

    #[test]
    fn statements_end_at_a_semicolon_outside_quotes_and_comments() {
        assert!(statement_complete("SELECT 1;"));
        assert!(statement_complete("SELECT 1;  \n"));
        assert!(statement_complete("SELECT 1; -- done\n"));
        assert!(!statement_complete("SELECT 1"));
        assert!(!statement_complete("SELECT ';"));
        assert!(statement_complete("SELECT ';';"));
        assert!(!statement_complete("SELECT 1 -- ;\n"));
        assert!(statement_complete("SELECT 1;\nSELECT 2;"));
        // Block comments and escaped strings (helper-51).
        assert!(statement_complete("SELECT 1 AS a; /* trailing */"));
        assert!(!statement_complete("SELECT 1 /* a comment;\n"));
        assert!(statement_complete("SELECT 1 /* a comment;\nstill */ , 2;"));
        assert!(statement_complete("SELECT E'a\\'b;' AS e;"));
        assert!(!statement_complete("SELECT \"a;"));
        assert!(!statement_complete("  \n"));
    }
}
