//! `netsql man`: one page, generated from clap (clap_mangen's sections for netsql and for
//! each subcommand's options, which its own render leaves to pages of their own), with
//! the tables and the exit statuses.

use std::io::Write;

/// Writes netsql.1 (roff) to `out`.
pub(super) fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = super::args::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    let out = &mut Sections(out);
    out.add(|w| man.render_name_section(w))?;
    out.add(|w| man.render_synopsis_section(w))?;
    out.add(|w| man.render_description_section(w))?;
    out.add(|w| man.render_options_section(w))?;

    writeln!(out, ".SH SUBCOMMANDS")?;
    // clap's own `help` subcommand is --help said another way.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        writeln!(out, ".SS \"netsql {}\"", sub.get_name())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", text(&about.to_string()))?;
        }
        // The subcommand's own options under its heading, not a second OPTIONS section;
        // the global ones (--format, --netns, ...) are netsql's, listed once above.
        let own = sub.clone().mut_args(|arg| {
            if arg.is_global_set() {
                arg.hide(true)
            } else {
                arg
            }
        });
        let man = clap_mangen::Man::new(own);
        out.add(|w| {
            let mut options = Vec::new();
            man.render_options_section(&mut options)?;
            for line in String::from_utf8_lossy(&options).lines() {
                if !line.starts_with(".SH ") {
                    writeln!(w, "{line}")?;
                }
            }
            Ok(())
        })?;
    }

    writeln!(out, ".SH TABLES")?;
    for table in crate::tables::infos() {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", table.name, text(table.doc))?;
    }
    writeln!(
        out,
        ".PP\nColumns, their types and what each means: \\fBnetsql -e 'DESCRIBE TABLE'\\fR, or \\fB\\\\d TABLE\\fR in the REPL."
    )?;

    writeln!(out, ".SH FILES")?;
    writeln!(
        out,
        ".TP\n/etc/netsql/config.toml, then $XDG_CONFIG_HOME/netsql/config.toml (else ~/.config/netsql/config.toml)\n{}",
        text("Defaults for the options named under ENVIRONMENT, as TOML: `format = \"csv\"` at the top, a subcommand's in its section (`[serve]`, `max-queries = 4`). Later files, then the variables, then the command line override. NETSQL_CONFIG=FILE reads that file instead (empty: none). `netsql --print-config` shows every setting and where it came from.")
    )?;
    writeln!(out, ".SH ENVIRONMENT")?;
    writeln!(
        out,
        "{}",
        text(
            "Each setting of config.toml, by its variable; an empty one cancels the files' value."
        )
    )?;
    for (section, key) in super::config::keys() {
        let setting = match section {
            Some(section) => format!("[{section}] {key}"),
            None => key.clone(),
        };
        writeln!(
            out,
            ".TP\n\\fB{}\\fR\n{}",
            super::config::env_name(section, &key),
            text(&setting)
        )?;
    }

    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in [
        ("0", "Success (a broken pipe too: the reader had all it wanted)."),
        ("1", "\\fBnetsql audit\\fR: an audit found rows."),
        ("2", "A usage, SQL or runtime error (one line on stderr); with \\fB--connect\\fR, a host that did not answer."),
    ] {
        writeln!(out, ".TP\n{code}\n{meaning}")?;
    }
    out.add(|w| man.render_extra_section(w))?;
    out.add(|w| man.render_version_section(w))
}

/// The page after its title: each of clap_mangen's sections comes with roff's preamble
/// (the `Aq` string's definition), which the title already gave.
struct Sections<'a>(&'a mut dyn Write);

impl Sections<'_> {
    fn add(
        &mut self,
        render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut section = Vec::new();
        render(&mut section)?;
        for line in String::from_utf8_lossy(&section).lines() {
            if !line.starts_with(".ie \\n(.g .ds Aq") && !line.starts_with(".el .ds Aq") {
                writeln!(self.0, "{line}")?;
            }
        }
        Ok(())
    }
}

impl Write for Sections<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Text as a roff paragraph: a leading `.` or `'` would be a request, a backslash an
/// escape.
fn text(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}
