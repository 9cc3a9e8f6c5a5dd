//! `netsql audit`: query files whose rows are findings. No rows: the audit passes.

use std::collections::BTreeMap;
use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::{writer::JsonArray, WriterBuilder};

use crate::error::Error;
use crate::exec::{Capture, Runner};
use crate::output::{self, Format};
use crate::queries::{self, QueryFile};

/// One audit's outcome.
pub struct Outcome {
    pub file: QueryFile,
    pub schema: SchemaRef,
    pub findings: Vec<RecordBatch>,
}

impl Outcome {
    pub fn count(&self) -> usize {
        self.findings.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn passed(&self) -> bool {
        self.count() == 0
    }
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
            None => files.extend(queries::load(path).map_err(|e| Error::Usage(e.to_string()))?),
        }
    }
    Ok(files)
}

/// Runs each audit read-only with its parameters bound. An error names the file.
pub async fn run(
    runner: &Runner<'_>,
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
        let named = |err: Error| Error::Usage(format!("{}: {err}", file.origin));
        // A -p a given audit does not declare is fine when running many: it is for another.
        let values =
            queries::bind_declared(&file, params).map_err(|e| Error::Usage(e.to_string()))?;
        let statements = runner.statements(&file.sql).map_err(named)?;
        if statements.len() != 1 {
            return Err(named(Error::Usage(format!(
                "an audit is one query, found {}",
                statements.len()
            ))));
        }
        let mut capture = Capture::default();
        runner
            .run_statements(statements, &values, &mut capture)
            .await
            .map_err(named)?;
        let result = capture.into_one()?;
        outcomes.push(Outcome {
            file,
            schema: result.schema,
            findings: result.batches,
        });
    }
    Ok(outcomes)
}

/// The summary for people: each audit PASS or FAIL, the findings of failures as a table.
pub fn write_summary(outcomes: &[Outcome], out: &mut (dyn Write + Send)) -> Result<(), Error> {
    for outcome in outcomes {
        let file = &outcome.file;
        let status = if outcome.passed() { "PASS" } else { "FAIL" };
        let severity = file.severity.as_deref().unwrap_or("-");
        let description = file.description.as_deref().unwrap_or("");
        writeln!(out, "{status}  {severity:<8} {}: {description}", file.name)?;
        if !outcome.passed() {
            let count = outcome.count();
            writeln!(
                out,
                "      {count} finding{}:",
                if count == 1 { "" } else { "s" }
            )?;
            let mut table = Vec::new();
            let mut sink = output::sink(Format::Table, outcome.schema.clone(), &mut table)?;
            for batch in &outcome.findings {
                sink.write(batch)?;
            }
            sink.finish()?;
            for line in String::from_utf8_lossy(&table).lines() {
                writeln!(out, "      {line}")?;
            }
            if let Some(remediation) = &file.remediation {
                writeln!(out, "      remediation: {remediation}")?;
            }
        }
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    writeln!(
        out,
        "{} audits: {} passed, {failed} failed",
        outcomes.len(),
        outcomes.len() - failed
    )?;
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
            "status": if outcome.passed() { "pass" } else { "fail" },
            "findings": findings_json(outcome)?,
        }));
    }
    serde_json::to_writer_pretty(&mut *out, &all).map_err(|e| Error::Io(e.into()))?;
    writeln!(out)?;
    Ok(())
}

/// JUnit XML: one test case per audit, a failure carrying the findings as CSV.
pub fn junit(outcomes: &[Outcome]) -> Result<String, Error> {
    let failures = outcomes.iter().filter(|o| !o.passed()).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuite name=\"netsql audit\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n",
        outcomes.len()
    ));
    for outcome in outcomes {
        let file = &outcome.file;
        xml.push_str(&format!(
            "  <testcase classname=\"netsql.audit\" name=\"{}\"",
            escape(&file.name)
        ));
        if outcome.passed() {
            xml.push_str("/>\n");
            continue;
        }
        let mut csv = Vec::new();
        let mut sink = output::sink(Format::Csv, outcome.schema.clone(), &mut csv)?;
        for batch in &outcome.findings {
            sink.write(batch)?;
        }
        sink.finish()?;
        let message = format!(
            "{} finding(s), severity {}: {}",
            outcome.count(),
            file.severity.as_deref().unwrap_or("-"),
            file.description.as_deref().unwrap_or("")
        );
        xml.push_str(&format!(
            ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
            escape(&message),
            escape(&String::from_utf8_lossy(&csv))
        ));
    }
    xml.push_str("</testsuite>\n");
    Ok(xml)
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
