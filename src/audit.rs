//! `netsql audit`: query files whose rows are findings. No rows: the audit passes.

use std::collections::BTreeMap;
use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::{writer::JsonArray, WriterBuilder};

use crate::error::{Error, Exit};
use crate::exec::Runner;
use crate::fleet::each;
use crate::output::{self, Format};
use crate::queries::{self, QueryFile};

/// One audit's outcome.
pub struct Outcome {
    pub file: QueryFile,
    /// The findings' columns; `None` when the audit ran nowhere.
    pub schema: Option<SchemaRef>,
    pub findings: Vec<RecordBatch>,
    /// Why the audit could not run (on a host of a fleet: that host's, named).
    pub errors: Vec<String>,
}

/// What an audit says: nothing found, something found, or not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// It could not run (here, or on some host): its findings, if any, are the others'.
    Error,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

impl Outcome {
    pub fn count(&self) -> usize {
        self.findings.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn status(&self) -> Status {
        if !self.errors.is_empty() {
            Status::Error
        } else if self.count() > 0 {
            Status::Fail
        } else {
            Status::Pass
        }
    }
}

/// A run's exit: an audit that could not run outranks one that found rows.
pub fn exit(outcomes: &[Outcome]) -> Exit {
    let statuses = || outcomes.iter().map(Outcome::status);
    if statuses().any(|s| s == Status::Error) {
        Exit::Error
    } else if statuses().any(|s| s == Status::Fail) {
        Exit::Findings
    } else {
        Exit::Success
    }
}

/// Where audits run: this machine's session, or each host of a fleet by its `--name`
/// (an audit joins tables on pid and inode, which every host has: it runs host by host,
/// and each finding says whose it is).
pub struct Target<'a> {
    pub host: Option<String>,
    pub runner: Runner<'a>,
}

/// The audits to run: those at `paths` (a path that does not exist may name a built-in
/// audit, as completions offer them), or all the built-in ones.
pub fn load(paths: &[std::path::PathBuf]) -> Result<Vec<QueryFile>, Error> {
    let builtin = queries::builtin("audits").map_err(|e| Error::Usage(e.to_string()))?;
    if paths.is_empty() {
        return Ok(builtin);
    }
    let mut files = Vec::new();
    for path in paths {
        let named = if path.exists() {
            None
        } else {
            builtin
                .iter()
                .find(|audit| path.as_os_str() == audit.name.as_str())
        };
        match named {
            Some(audit) => files.push(audit.clone()),
            None if !path.try_exists().unwrap_or(true) => {
                return Err(Error::Usage(no_such_audit(path, &builtin)))
            }
            None => {
                let found = queries::load(path).map_err(|e| Error::Usage(e.to_string()))?;
                // A folder of no audits passed, exit 0 (a wrong path in CI).
                if found.is_empty() {
                    return Err(Error::Usage(format!(
                        "{}: no audits in it (.sql files)",
                        path.display()
                    )));
                }
                files.extend(found);
            }
        }
    }
    Ok(files)
}

/// Why `path` names no audit: neither a file nor a built-in audit's name, with the
/// built-in names it is near (`wildcard_listener`), or all of them.
fn no_such_audit(path: &std::path::Path, builtin: &[QueryFile]) -> String {
    let typed = path.to_string_lossy();
    let names: Vec<&str> = builtin.iter().map(|a| a.name.as_str()).collect();
    let near: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.contains(typed.as_ref()) || strsim::levenshtein(n, &typed) <= 2)
        .collect();
    let hint = if near.is_empty() {
        format!("the built-in audits are {}", names.join(", "))
    } else {
        format!("did you mean {}?", near.join(", "))
    };
    format!("{typed}: no such file, and no built-in audit of that name ({hint})")
}

/// Runs each audit read-only with its parameters bound, on each target at once. A file
/// that does not plan is an error naming it; an audit that fails while it runs (the
/// kernel refused a table) is that audit's error, and the rest still run.
pub async fn run(
    targets: &[Target<'_>],
    files: Vec<QueryFile>,
    params: &BTreeMap<String, String>,
) -> Result<Vec<Outcome>, Error> {
    // A -p that no audit declares is a typo (an allowlist that silently allows nothing).
    if let Some(name) = queries::undeclared(&files.iter().collect::<Vec<_>>(), params) {
        let mut known: Vec<&str> = files
            .iter()
            .flat_map(|f| f.params.iter().map(|(p, _)| p.as_str()))
            .collect();
        known.sort();
        known.dedup();
        let takes = if known.is_empty() {
            "they take no parameters".to_string()
        } else {
            format!("they take: {}", known.join(", "))
        };
        return Err(Error::Usage(format!(
            "no audit takes the parameter {name:?} ({takes})"
        )));
    }
    let mut outcomes = Vec::new();
    for file in files {
        let origin = file.origin.clone();
        let named = |err: Error| Error::Usage(format!("{origin}: {err}"));
        // A -p a given audit does not declare is fine when running many: it is for another.
        let values =
            queries::bind_declared(&file, params).map_err(|e| Error::Usage(e.to_string()))?;
        let Some(first) = targets.first() else {
            return Err(Error::Usage("audits need a session to run on".into()));
        };
        let mut statements = first.runner.statements(&file.sql).map_err(named)?;
        if statements.len() != 1 {
            return Err(named(Error::Usage(format!(
                "an audit is one query, found {}",
                statements.len()
            ))));
        }
        let statement = statements.remove(0);
        let answers = futures::future::join_all(
            targets
                .iter()
                .map(|target| each::one(&target.runner, statement.clone(), &values)),
        )
        .await;
        let mut outcome = Outcome {
            file,
            schema: None,
            findings: Vec::new(),
            errors: Vec::new(),
        };
        for (target, answer) in targets.iter().zip(answers) {
            match (answer.map_err(named)?, &target.host) {
                (Err(why), None) => outcome.errors.push(why),
                (Err(why), Some(host)) => outcome.errors.push(format!("{host}: {why}")),
                (Ok(found), None) => {
                    outcome.schema = Some(found.schema);
                    outcome.findings = found.batches;
                }
                (Ok(found), Some(host)) => {
                    let (schema, batches) = each::hosted(host, found)?;
                    outcome.schema.get_or_insert(schema);
                    outcome.findings.extend(batches);
                }
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The summary for people: each audit PASS, FAIL or ERROR, the findings of failures as a
/// table, the errors as lines.
pub fn write_summary(outcomes: &[Outcome], out: &mut (dyn Write + Send)) -> Result<(), Error> {
    for outcome in outcomes {
        let file = &outcome.file;
        let status = outcome.status().word().to_uppercase();
        let severity = file.severity.as_deref().unwrap_or("-");
        let description = file.description.as_deref().unwrap_or("");
        writeln!(
            out,
            "{status:<5} {severity:<8} {}: {description}",
            file.name
        )?;
        for error in &outcome.errors {
            writeln!(out, "      could not run: {error}")?;
        }
        let count = outcome.count();
        if count > 0 {
            writeln!(
                out,
                "      {count} finding{}:",
                if count == 1 { "" } else { "s" }
            )?;
            for line in findings_as(outcome, Format::Table)?.lines() {
                writeln!(out, "      {line}")?;
            }
            if let Some(remediation) = &file.remediation {
                writeln!(out, "      remediation: {remediation}")?;
            }
        }
    }
    let counted = |status| outcomes.iter().filter(|o| o.status() == status).count();
    write!(
        out,
        "{} audits: {} passed, {} failed",
        outcomes.len(),
        counted(Status::Pass),
        counted(Status::Fail)
    )?;
    match counted(Status::Error) {
        0 => writeln!(out)?,
        errors => writeln!(out, ", {errors} could not run")?,
    }
    Ok(())
}

fn findings_json(outcome: &Outcome) -> Result<serde_json::Value, Error> {
    let mut buf = Vec::new();
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buf);
    for batch in &outcome.findings {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    if buf.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&buf).map_err(|e| Error::Usage(format!("findings as JSON: {e}")))
}

/// One JSON array, an object per audit with its findings.
pub fn write_json(outcomes: &[Outcome], out: &mut (dyn Write + Send)) -> Result<(), Error> {
    let mut all = Vec::new();
    for outcome in outcomes {
        let file = &outcome.file;
        all.push(serde_json::json!({
            "name": file.name,
            "origin": file.origin,
            "severity": file.severity,
            "description": file.description,
            "remediation": file.remediation,
            "status": outcome.status().word(),
            "errors": outcome.errors,
            "findings": findings_json(outcome)?,
        }));
    }
    serde_json::to_writer_pretty(&mut *out, &all).map_err(|e| Error::Io(e.into()))?;
    writeln!(out)?;
    Ok(())
}

/// JUnit XML: one test case per audit, a failure carrying the findings as CSV, an error
/// why the audit could not run.
pub fn junit(outcomes: &[Outcome]) -> Result<String, Error> {
    let counted = |status| outcomes.iter().filter(|o| o.status() == status).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuite name=\"netsql audit\" tests=\"{}\" failures=\"{}\" errors=\"{}\">\n",
        outcomes.len(),
        counted(Status::Fail),
        counted(Status::Error),
    ));
    for outcome in outcomes {
        let file = &outcome.file;
        xml.push_str(&format!(
            "  <testcase classname=\"netsql.audit\" name=\"{}\"",
            escape(&file.name)
        ));
        let (element, message, text) = match outcome.status() {
            Status::Pass => {
                xml.push_str("/>\n");
                continue;
            }
            Status::Error => (
                "error",
                format!("could not run: {}", outcome.errors.join("; ")),
                findings_as(outcome, Format::Csv)?,
            ),
            Status::Fail => (
                "failure",
                format!(
                    "{} finding(s), severity {}: {}",
                    outcome.count(),
                    file.severity.as_deref().unwrap_or("-"),
                    file.description.as_deref().unwrap_or("")
                ),
                findings_as(outcome, Format::Csv)?,
            ),
        };
        xml.push_str(&format!(
            ">\n    <{element} message=\"{}\">{}</{element}>\n  </testcase>\n",
            escape(&message),
            escape(&text)
        ));
    }
    xml.push_str("</testsuite>\n");
    Ok(xml)
}

/// The findings written as `format` (a table for people, CSV for JUnit); empty when
/// there are none.
fn findings_as(outcome: &Outcome, format: Format) -> Result<String, Error> {
    let Some(schema) = outcome.schema.as_ref().filter(|_| outcome.count() > 0) else {
        return Ok(String::new());
    };
    let mut text = Vec::new();
    let mut sink = output::sink(format, schema.clone(), &mut text)?;
    for batch in &outcome.findings {
        sink.write(batch)?;
    }
    sink.finish()?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// XML text and attribute escaping; control characters XML 1.0 cannot carry become '?'.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_escaping() {
        assert_eq!(
            super::escape("a<b>&\"c'\u{1b}"),
            "a&lt;b&gt;&amp;&quot;c&apos;?"
        );
    }
}
