//! Helpers shared by the integration tests: the binary, and network namespaces.

#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output};

pub fn netsql() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netsql"))
}

/// Under `NETSQL_REQUIRE_NETNS=1` (CI) a test that cannot make a namespace fails
/// instead of skipping.
pub fn require_netns() -> bool {
    std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A network namespace of our own, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `netsql-<tag>-<pid>` with loopback up, or says why not: "skipped: <why>",
    /// or a panic when namespaces are required.
    pub fn create(tag: &str, tools: &[&str]) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        let why = if unsafe { libc::geteuid() } != 0 {
            Some("not root".to_string())
        } else {
            ["ip"]
                .iter()
                .chain(tools)
                .find(|t| !have(t))
                .map(|t| format!("{t} is not installed"))
        };
        if let Some(why) = why {
            if require_netns() {
                panic!("NETSQL_REQUIRE_NETNS=1 but cannot run: {why}");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        let name = format!("netsql-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// Files `ip netns exec` mounts over /etc inside this namespace (resolv.conf, hosts,
    /// services, ...): every run inside sees them, netstat and netsql alike.
    pub fn etc(&self, files: &[(&str, &str)]) {
        let dir = Path::new("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<name>");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write /etc/netns file");
        }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .expect("run ip netns exec")
    }

    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs netsql inside the namespace.
    pub fn netsql(&self, args: &[&str]) -> Output {
        let mut argv = vec![env!("CARGO_BIN_EXE_netsql")];
        argv.extend_from_slice(args);
        self.exec(&argv)
    }

    /// Runs `f` on a thread that has joined the namespace: sockets it creates live there.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = Path::new("/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open namespace");
            use std::os::fd::AsRawFd;
            // SAFETY: a valid namespace fd; setns only changes this thread's namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses NDJSON output into objects.
pub fn ndjson(stdout: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(map)) => map,
            other => panic!("not a JSON object: {l}: {other:?}"),
        })
        .collect()
}

/// The inode of an open descriptor: for a socket, the inode ss and /proc/net show.
pub fn ino(fd: &impl AsRawFd) -> u64 {
    // SAFETY: fstat on an open descriptor into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, 0);
    st.st_ino
}
