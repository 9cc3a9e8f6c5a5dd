//! config.toml: a file's settings, overridden by NETSQL_* variables, overridden by the
//! command line; a bad key or value is one line naming the file and line; sections set
//! a subcommand's options; `--print-config` says where each value came from.

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Kid, RunExt};

/// A config home holding `netsql/config.toml` with `text`.
fn home(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("netsql")).unwrap();
    std::fs::write(dir.path().join("netsql/config.toml"), text).unwrap();
    dir
}

/// netsql with `home` as its config home and no NETSQL_* setting of the caller's.
fn netsql(home: &Path) -> Command {
    let mut command = common::netsql();
    command
        .env_remove("NETSQL_CONFIG")
        .env("XDG_CONFIG_HOME", home);
    command
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

const ONE: [&str; 2] = ["-e", "SELECT 1 AS a"];

#[test]
fn file_then_environment_then_command_line() {
    let home = home("# defaults\nformat = \"csv\"\n");
    let home = home.path();
    // The file's format, where nothing else says one.
    assert_eq!(stdout(&netsql(home).args(ONE).run()), "a\n1\n");
    // A variable beats the file.
    assert_eq!(
        stdout(&netsql(home).env("NETSQL_FORMAT", "json").args(ONE).run()),
        "[{\"a\":1}]\n"
    );
    // A flag beats both.
    assert_eq!(
        stdout(
            &netsql(home)
                .env("NETSQL_FORMAT", "json")
                .args(["--format", "ndjson"])
                .args(ONE)
                .run()
        ),
        "{\"a\":1}\n"
    );
    // An empty variable cancels the file's value: the built-in default, a table.
    let table = stdout(&netsql(home).env("NETSQL_FORMAT", "").args(ONE).run());
    assert!(table.starts_with("+---+"), "{table}");
    // -o's extension names the format on the command line, so the file's gives way.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one.json");
    stdout(&netsql(home).args(ONE).arg("-o").arg(&out).run());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "[{\"a\":1}]\n");
    // Where each came from.
    let shown = stdout(
        &netsql(home)
            .env("NETSQL_NETNS", "all")
            .args(["--print-config", "--memory-limit", "64M"])
            .run(),
    );
    let file = home.join("netsql/config.toml");
    for want in [
        format!("format = \"csv\"  # {}:2", file.display()),
        "netns = \"all\"  # NETSQL_NETNS".to_string(),
        "memory-limit = \"64M\"  # command line".to_string(),
        "# history is not set (NETSQL_HISTORY)".to_string(),
        "# host-timeout is not set: \"10s\" by default (NETSQL_HOST_TIMEOUT)".to_string(),
    ] {
        assert!(shown.lines().any(|l| l == want), "{want:?} in\n{shown}");
    }
}

/// One line on stderr, naming the file and line, exit 2, nothing run.
fn refused(text: &str, args: &[&str], line: usize, says: &str) {
    let home = home(text);
    let out = netsql(home.path()).args(args).run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
    assert!(out.stdout.is_empty(), "{text:?}");
    assert_eq!(err.lines().count(), 1, "{text:?}: {err}");
    let at = format!(
        "netsql: {}:{line}: ",
        home.path().join("netsql/config.toml").display()
    );
    assert!(err.starts_with(&at), "{text:?}: {err}");
    assert!(err.contains(says), "{text:?}: {err}");
}

#[test]
fn a_bad_key_or_value_is_one_line_naming_file_and_line() {
    refused(
        "\n\nformat = \"nope\"\n",
        &ONE,
        3,
        "invalid value 'nope' for '--format",
    );
    refused("fromat = \"csv\"\n", &ONE, 1, "unknown setting 'fromat'");
    refused(
        "[serve]\nmax-queries = \"x\"\n",
        &["serve"],
        2,
        "--max-queries",
    );
    refused(
        "[sevre]\nname = \"a\"\n",
        &ONE,
        1,
        "unknown section [sevre]",
    );
    refused("format = csv\n", &ONE, 1, "quoted");
    refused("all-hosts = 3\n", &ONE, 1, "true or false");
    refused("[serve]\nname = true\n", &["serve"], 2, "expected a value");
    // A section's values are checked when its mode runs.
    refused(
        "[record]\nevery = \"soon\"\n",
        &["record", "--to", "/nonexistent"],
        2,
        "--every",
    );
    refused(
        "[serve]\nmax_queries = 4\nmax-queries = 5\n",
        &["serve"],
        3,
        "max-queries is set already, at",
    );
    // A setting of another section is not a top-level one.
    refused(
        "max-queries = 4\n",
        &ONE,
        1,
        "unknown setting 'max-queries'",
    );
}

/// `netsql serve --listen 127.0.0.1:0 ARGS`, running, and its first line (where it
/// listens, under which name).
fn serve(mut command: Command, args: &[&str]) -> (Kid, String) {
    let mut kid = Kid::spawn(
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut stderr = BufReader::new(kid.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    // The server logs each request: keep reading, or its writes fail.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (kid, first)
}

/// The name a server says it serves under.
fn name(first: &str) -> &str {
    first.split('"').nth(1).unwrap_or_else(|| panic!("{first}"))
}

/// Settings fill what a command line leaves out, and only where they fit: a required
/// option, a setting a flag conflicts with, modes the fleet or a format does not fit.
#[test]
fn settings_fill_what_the_command_line_leaves() {
    let out_dir = tempfile::tempdir().unwrap();
    let to = out_dir.path().join("snapshots");
    let home = home(&format!(
        "format = \"csv\"\nconnect = [\"grpc://127.0.0.1:1\"]\n\
         [snapshot]\nto = {:?}\n[record]\ncount = 2\n",
        to.display().to_string()
    ));
    let home = home.path();
    // snapshot's required --to, from the file.
    stdout(
        &netsql(home)
            .args(["snapshot", "--tables", "interfaces"])
            .run(),
    );
    let written: Vec<_> = walk(&to.join("interfaces"));
    assert_eq!(written.len(), 1, "{written:?}");
    // record --for conflicts with the file's --count: the flag wins, no conflict.
    let recorded = out_dir.path().join("recorded");
    stdout(
        &netsql(home)
            .args(["record", "--to"])
            .arg(&recorded)
            .args(["--for", "1s", "--every", "1s", "--tables", "interfaces"])
            .run(),
    );
    // The file's fleet is for SQL run here: --list and a saved query stay on this host.
    assert!(stdout(&netsql(home).arg("--list").run()).contains("tcp_state_summary"));
    let summary = stdout(&netsql(home).args(["-q", "tcp_state_summary"]).run());
    assert!(summary.starts_with("state,"), "{summary}");
    // An audit prints its own way: the file's csv is not its format.
    let audit = netsql(home).args(["audit", "raw_sockets_non_root"]).run();
    assert_ne!(audit.status.code(), Some(2), "{audit:?}");
    // NETSQL_CONFIG names the one file read; empty, none.
    let other = out_dir.path().join("other.toml");
    std::fs::write(&other, "format = \"ndjson\"\n").unwrap();
    assert_eq!(
        stdout(&netsql(home).env("NETSQL_CONFIG", &other).args(ONE).run()),
        "{\"a\":1}\n"
    );
    let table = stdout(&netsql(home).env("NETSQL_CONFIG", "").args(ONE).run());
    assert!(table.starts_with("+---+"), "{table}");
    // A setting of another mode is shown as such.
    let shown = stdout(&netsql(home).arg("--print-config").run());
    let line = shown
        .lines()
        .find(|l| l.starts_with("count = "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(line.ends_with(", not used by this command"), "{line}");
}

/// A variable's bad value is one line naming the variable, as a file's names its line.
#[test]
fn a_bad_variable_is_one_line() {
    let home = home("");
    for (name, value, says) in [
        (
            "NETSQL_ALL_HOSTS",
            "maybe",
            "NETSQL_ALL_HOSTS: expected true or false",
        ),
        (
            "NETSQL_FORMAT",
            "nope",
            "NETSQL_FORMAT: format: invalid value 'nope'",
        ),
    ] {
        let out = netsql(home.path()).env(name, value).args(ONE).run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("netsql: {says}")), "{err}");
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// netsql as nobody (uid and gid 65534, no groups) with `home` as its config home.
fn as_nobody(home: &Path, args: &[&str]) -> Output {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_netsql"))
        .args(args);
    common::without_settings(&mut command);
    command
        .env_remove("NETSQL_CONFIG")
        .env("XDG_CONFIG_HOME", home);
    command.run()
}

/// A config home another user may not look into is no config for that user (root's
/// HOME under `sudo -u`); a file it can see but not read is an error.
#[test]
fn a_file_another_user_cannot_see_is_none_of_its_business() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip_or_fail("not root: cannot run as another user");
        return;
    }
    let hidden = home("format = \"csv\"\n");
    std::fs::set_permissions(hidden.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = as_nobody(hidden.path(), &ONE);
    assert!(
        stdout(&out).starts_with("+---+"),
        "the table format, as with no file"
    );
    let unreadable = home("format = \"csv\"\n");
    std::fs::set_permissions(unreadable.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = unreadable.path().join("netsql/config.toml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_nobody(unreadable.path(), &ONE);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "netsql: {}: Permission denied (os error 13)",
            file.display()
        )
    );
}

#[test]
fn a_section_sets_its_subcommands_options() {
    let home = home("[serve]\nname = \"from-file\"\n");
    let home = home.path();
    let (_kid, first) = serve(netsql(home), &[]);
    assert_eq!(name(&first), "from-file");
    let mut env = netsql(home);
    env.env("NETSQL_SERVE_NAME", "from-env");
    let (_kid, first) = serve(env, &[]);
    assert_eq!(name(&first), "from-env");
    let mut env = netsql(home);
    env.env("NETSQL_SERVE_NAME", "from-env");
    let (_kid, first) = serve(env, &["--name", "from-flag"]);
    assert_eq!(name(&first), "from-flag");
}

#[test]
fn a_fleet_from_the_file() {
    let empty = home("");
    let (_server, first) = serve(netsql(empty.path()), &["--name", "filed"]);
    let addr = first.rsplit("://").next().unwrap().trim();
    let home = home(&format!(
        "connect = [\"grpc://{addr}\"]\nhost-timeout = \"5s\"\nformat = \"csv\"\n"
    ));
    let home = home.path();
    let sql = ["-e", "SELECT DISTINCT host FROM interfaces"];
    assert_eq!(stdout(&netsql(home).args(sql).run()), "host\nfiled\n");
    // An empty NETSQL_CONNECT: this host, whose tables have no `host` column; the
    // file's host-timeout, meaningless without hosts, is left out rather than refused.
    let out = netsql(home).env("NETSQL_CONNECT", "").args(sql).run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("host"), "{err}");
    assert!(!err.contains("--connect"), "{err}");
    assert_eq!(
        stdout(
            &netsql(home)
                .env("NETSQL_CONNECT", "")
                .args(["-e", "SELECT count(*) > 0 AS up FROM interfaces"])
                .run()
        ),
        "up\ntrue\n"
    );
}

/// The fleet's settings go wherever the command line connects: `-q`, `audit` and
/// `snapshot` take `--connect` too, and a configured token-file was dropped for them
/// (the server refused: "a valid bearer token is required"). A configured fleet yields
/// to a `--history` given here, rather than making a conflict nobody typed.
#[test]
fn fleet_settings_follow_the_command_lines_connect() {
    use std::os::unix::fs::PermissionsExt;
    let empty = home("");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "sesame\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_server, first) = serve(
        netsql(empty.path()),
        &["--name", "tokened", "--token-file", token.to_str().unwrap()],
    );
    let url = format!("grpc://{}", first.rsplit("://").next().unwrap().trim());
    let home = home(&format!("token-file = \"{}\"\n", token.display()));
    let home = home.path();
    let connected = |args: &[&str]| netsql(home).args(["--connect", &url]).args(args).run();
    let out = connected(&[
        "--format",
        "csv",
        "-e",
        "SELECT DISTINCT host FROM interfaces",
    ]);
    assert_eq!(stdout(&out), "host\ntokened\n");
    let out = connected(&["--format", "csv", "-q", "tcp_state_summary"]);
    assert!(!stdout(&out).is_empty());
    // An audit passes (0) or finds rows (1); 2 is "could not run".
    let out = connected(&["audit", "udp_drops"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let taken = dir.path().join("taken");
    let out = connected(&[
        "snapshot",
        "--to",
        taken.to_str().unwrap(),
        "--tables",
        "interfaces",
    ]);
    assert!(stdout(&out).contains("host=tokened"), "{}", stdout(&out));

    // A configured fleet, and --history on the command line: this host's history.
    let fleet = self::home(&format!(
        "connect = [\"{url}\"]\ntoken-file = \"{}\"\n",
        token.display()
    ));
    let out = netsql(fleet.path())
        .args(["--history", taken.to_str().unwrap(), "--format", "csv"])
        .args(["-e", "SELECT count(*) > 0 AS some FROM history.interfaces"])
        .run();
    assert_eq!(stdout(&out), "some\ntrue\n");
}

/// NETSQL_CONFIG names a file that must be there (it was silently none); a relative
/// XDG_CONFIG_HOME is ignored, as the XDG spec says (it was read from the working
/// directory); a list for an option given once is one line naming the file and line
/// (clap's "cannot be used multiple times" blamed the command line); a file larger than
/// any config is refused before it is parsed (40 MB of blank lines took 1.9 GB).
#[test]
fn config_locations_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = common::netsql()
        .env("NETSQL_CONFIG", &missing)
        .args(ONE)
        .run();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "netsql: {}: No such file or directory (os error 2) (named by NETSQL_CONFIG)\n",
            missing.display()
        )
    );

    std::fs::create_dir_all(dir.path().join("rel/netsql")).unwrap();
    std::fs::write(
        dir.path().join("rel/netsql/config.toml"),
        "format = \"json\"\n",
    )
    .unwrap();
    let out = common::netsql()
        .env_remove("NETSQL_CONFIG")
        .env("XDG_CONFIG_HOME", "rel")
        .env("HOME", dir.path().join("none"))
        .current_dir(dir.path())
        .args(ONE)
        .run();
    assert!(!stdout(&out).starts_with('['), "{}", stdout(&out));

    refused(
        "netns = [\"a\", \"b\"]\n",
        &ONE,
        1,
        "expected one value, not a list",
    );
    refused(
        "[record]\nevery = [\"1s\", \"2s\"]\n",
        &ONE,
        2,
        "expected one value, not a list",
    );

    let big = home(&"\n".repeat(2 << 20));
    let out = netsql(big.path()).args(ONE).run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("larger than 1024 KiB"), "{err}");
}
