//! Writes metric families in Prometheus's text format 0.0.4 or OpenMetrics 1.0.
//!
//! Written here rather than with `prometheus-client`: that crate writes OpenMetrics only
//! and keeps a registry of metrics typed at compile time, where these families, their
//! labels and their values are known only once a scrape's queries have answered; both
//! formats are a few lines of escaping.

use std::fmt::Write;

/// A metric's type, as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    /// Labels only; the value is always 1 (OpenMetrics `info`, a `_info` gauge in 0.0.4).
    Info,
}

impl Kind {
    /// The name samples of the family `name` carry.
    pub fn sample_name(self, name: &str) -> String {
        match self {
            Kind::Gauge => name.to_string(),
            Kind::Counter => format!("{name}_total"),
            Kind::Info => format!("{name}_info"),
        }
    }
}

/// What a scrape answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the scraper's `Accept` names it (Prometheus does, first), the
    /// text format otherwise.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(accept)
                if accept.split(',').any(|part| {
                    let mut params = part.split(';').map(str::trim);
                    params.next() == Some("application/openmetrics-text")
                        && !params.any(|p| {
                            p.replace(' ', "")
                                .strip_prefix("q=")
                                .and_then(|q| q.parse::<f64>().ok())
                                == Some(0.0)
                        })
                }) =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One sample: its labels (names already checked) and its value, written as Prometheus
/// reads a float.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: String,
}

/// A family as written: name without its type's suffix, type, help, samples.
pub struct Written<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub help: &'a str,
    pub samples: &'a [Sample],
}

/// Appends one family to `out`.
pub fn family(out: &mut String, format: Format, family: &Written<'_>) {
    let sample_name = family.kind.sample_name(family.name);
    let (declared, kind) = match (format, family.kind) {
        (Format::Text, Kind::Gauge) => (sample_name.as_str(), "gauge"),
        (Format::Text, Kind::Counter) => (sample_name.as_str(), "counter"),
        // 0.0.4 has no info type: a gauge of 1 named `_info`, as exporters write it.
        (Format::Text, Kind::Info) => (sample_name.as_str(), "gauge"),
        (Format::OpenMetrics, Kind::Gauge) => (family.name, "gauge"),
        (Format::OpenMetrics, Kind::Counter) => (family.name, "counter"),
        (Format::OpenMetrics, Kind::Info) => (family.name, "info"),
    };
    let _ = writeln!(out, "# HELP {declared} {}", help(format, family.help));
    let _ = writeln!(out, "# TYPE {declared} {kind}");
    for sample in family.samples {
        out.push_str(&sample_name);
        if !sample.labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in sample.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{name}=\"{}\"", label_value(value));
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&sample.value);
        out.push('\n');
    }
}

/// Ends an exposition (OpenMetrics' `# EOF`).
pub fn end(out: &mut String, format: Format) {
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}

/// HELP text: 0.0.4 escapes backslash and newline, OpenMetrics also the double quote.
fn help(format: Format, text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if format == Format::OpenMetrics => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A label value: backslash, double quote and newline escaped (both formats).
fn label_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A float as both formats read it: integers exactly, NaN and the infinities by name.
pub fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.abs() >= 1e15 || (value != 0.0 && value.abs() < 1e-6) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(format: Format, kind: Kind) -> String {
        let samples = [Sample {
            labels: vec![
                ("state".into(), "LISTEN".into()),
                ("program".into(), "a \"b\"\\c\nd".into()),
            ],
            value: "3".into(),
        }];
        let mut out = String::new();
        family(
            &mut out,
            format,
            &Written {
                name: "netsql_x",
                kind,
                help: "Help with \"quotes\" and \\ and\nlines",
                samples: &samples,
            },
        );
        end(&mut out, format);
        out
    }

    #[test]
    fn text_format_names_the_samples_family() {
        assert_eq!(
            one(Format::Text, Kind::Counter),
            "# HELP netsql_x_total Help with \"quotes\" and \\\\ and\\nlines\n\
             # TYPE netsql_x_total counter\n\
             netsql_x_total{state=\"LISTEN\",program=\"a \\\"b\\\"\\\\c\\nd\"} 3\n"
        );
        assert!(one(Format::Text, Kind::Info).contains("# TYPE netsql_x_info gauge\n"));
    }

    #[test]
    fn openmetrics_declares_the_family_and_ends_with_eof() {
        let out = one(Format::OpenMetrics, Kind::Counter);
        assert!(out.starts_with(
            "# HELP netsql_x Help with \\\"quotes\\\" and \\\\ and\\nlines\n# TYPE netsql_x counter\nnetsql_x_total{"
        ));
        assert!(out.ends_with("} 3\n# EOF\n"));
        assert!(
            one(Format::OpenMetrics, Kind::Info).contains("# TYPE netsql_x info\nnetsql_x_info{")
        );
    }

    #[test]
    fn accept_picks_openmetrics_only_when_asked() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; q=0, text/plain")),
            Format::Text
        );
    }

    #[test]
    fn floats_read_back() {
        assert_eq!(float(3.0), "3");
        assert_eq!(float(-2.0), "-2");
        assert_eq!(float(0.25), "0.25");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(1e300).parse::<f64>().unwrap(), 1e300);
        assert_eq!(float(1.5e-9).parse::<f64>().unwrap(), 1.5e-9);
    }
}
