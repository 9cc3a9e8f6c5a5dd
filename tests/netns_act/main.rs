//! SQL that acts, in namespaces of our own: `DELETE FROM sockets` against `ss` and the
//! processes whose connections it closes, and `socket_events` against sockets we close.

#[path = "../common/mod.rs"]
mod common;
mod events;
mod kill;
mod reach;

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use common::{Kid, Lines, Netns};

/// A `kill_peer.py` process in a namespace: it holds connections and says what became
/// of them.
pub struct Peer {
    pub kid: Kid,
    stdin: ChildStdin,
    lines: Lines,
}

impl Peer {
    pub fn start(ns: &Netns, name: &str, args: &[&str]) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kill_peer.py");
        let mut argv = vec!["python3", script, name];
        argv.extend_from_slice(args);
        let mut kid = Kid::spawn(
            ns.command(&argv)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let stdin = kid.stdin.take().expect("piped stdin");
        let lines = Lines::of(kid.stdout.take().expect("piped stdout"));
        lines.expect("ready");
        Peer { kid, stdin, lines }
    }

    /// "open=N reset=N aborted=N eof=N" for its sockets now.
    pub fn check(&mut self) -> String {
        writeln!(self.stdin, "check").expect("write to peer");
        self.lines.next_within(Duration::from_secs(30))
    }

    /// The pid of the python process itself (under `ip netns exec`, which execs).
    pub fn pid(&self) -> u32 {
        self.kid.id()
    }
}

/// `ss ARGS` inside `ns`, its lines without the header.
pub fn ss(ns: &Netns, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["ss", "-H"];
    argv.extend_from_slice(args);
    ns.exec_ok(&argv)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// netsql run from here with `--netns NS` and `args`.
pub fn netsql_in(ns: &Netns, args: &[&str]) -> Command {
    let mut command = common::netsql();
    command.args(["--netns", &ns.name]).args(args);
    command
}
