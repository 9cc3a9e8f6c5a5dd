//! Helpers shared by the integration tests: the binary, and network namespaces.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub mod seccomp;

/// How long any one child of a test may run before it is killed and the test fails:
/// far above what any of them needs, far below CI's limit.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Running a command as a test does: no terminal input, a deadline, output captured.
pub trait RunExt {
    /// Runs to completion within [`DEADLINE`]; past it the child is killed and the test
    /// fails naming the command.
    fn run(&mut self) -> Output;
    fn run_within(&mut self, limit: Duration) -> Output;
}

impl RunExt for Command {
    fn run(&mut self) -> Output {
        self.run_within(DEADLINE)
    }

    fn run_within(&mut self, limit: Duration) -> Output {
        let what = format!("{self:?}");
        let mut child = Kid(self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}")));
        // Read both pipes while waiting: a child blocked on a full pipe never exits.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} still running after {limit:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }
}

/// A child that is killed and reaped when dropped, so a failing test leaves nothing
/// running behind it.
pub struct Kid(pub Child);

impl Kid {
    pub fn spawn(command: &mut Command) -> Kid {
        Kid(command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}")))
    }

    /// Waits for the child to exit by itself within `limit` (killing it past that) and
    /// collects what is left of its piped output.
    pub fn finish_within(mut self, limit: Duration) -> Output {
        let started = Instant::now();
        while self.0.try_wait().expect("wait").is_none() {
            assert!(
                started.elapsed() < limit,
                "child {} still running after {limit:?}",
                self.0.id()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = Output {
            status: self.0.wait().expect("wait"),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        if let Some(mut pipe) = self.0.stdout.take() {
            let _ = pipe.read_to_end(&mut out.stdout);
        }
        if let Some(mut pipe) = self.0.stderr.take() {
            let _ = pipe.read_to_end(&mut out.stderr);
        }
        out
    }
}

impl std::ops::Deref for Kid {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Kid {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child prints, read on a thread so that waiting for one has a deadline.
pub struct Lines(Receiver<String>);

impl Lines {
    pub fn of(stdout: impl Read + Send + 'static) -> Lines {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(receive)
    }

    /// The next line, or a failed test when none comes within `limit` (or the child
    /// closed its output first).
    pub fn next_within(&self, limit: Duration) -> String {
        self.0
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("no line from the child within {limit:?}: {e}"))
    }

    /// The next line if one comes within `limit`; `None` when none does.
    pub fn try_next(&self, limit: Duration) -> Option<String> {
        self.0.recv_timeout(limit).ok()
    }

    /// The lines that have come and not been taken yet.
    pub fn pending(&self) -> Vec<String> {
        self.0.try_iter().collect()
    }

    /// Waits for the child's readiness line.
    pub fn expect(&self, wanted: &str) {
        let line = self.next_within(Duration::from_secs(30));
        assert_eq!(line.trim(), wanted, "the child's first line");
    }
}

pub fn netsql() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netsql"));
    without_settings(&mut command);
    command
}

/// No config file and no NETSQL_* setting of the machine's or the caller's: a test
/// runs the defaults it was written for (tests/config.rs sets its own).
pub fn without_settings(command: &mut Command) {
    command.env("NETSQL_CONFIG", "");
    for (name, _) in std::env::vars() {
        let switch = [
            "NETSQL_REQUIRE_NETNS",
            "NETSQL_DEBUG",
            "NETSQL_UPDATE_README",
        ];
        if name.starts_with("NETSQL_") && !switch.contains(&name.as_str()) {
            command.env_remove(name);
        }
    }
}

/// Under `NETSQL_REQUIRE_NETNS=1` (CI) a test that cannot make a namespace fails
/// instead of skipping.
pub fn require_netns() -> bool {
    std::env::var("NETSQL_REQUIRE_NETNS").is_ok_and(|v| v == "1")
}

/// Says "skipped: <why>" for a part the machine cannot run, or, under
/// `NETSQL_REQUIRE_NETNS=1`, fails the test: only for what ss and the kernel here can do.
pub fn skip_or_fail(why: &str) {
    if require_netns() {
        panic!("NETSQL_REQUIRE_NETNS=1 but cannot run: {why}");
    }
    eprintln!("skipped: {why}");
}

/// A cgroup2 hierarchy to make test cgroups in: the host's mount, or, where the kernel
/// has cgroup2 and nothing mounts it, one of our own (as `ss --cgroup` mounts one),
/// unmounted on drop.
pub struct Cgroup2 {
    pub mount: std::path::PathBuf,
    ours: bool,
}

impl Cgroup2 {
    /// `Ok(None)`: this kernel has no cgroup2 at all (neither ss nor netsql can show one);
    /// `Err`: it has, and we could not mount it.
    pub fn find() -> Result<Option<Cgroup2>, String> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|e| e.to_string())?;
        let found = mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&"cgroup2"))
            .map(|f| std::path::PathBuf::from(f[1]));
        if let Some(mount) = found {
            return Ok(Some(Cgroup2 { mount, ours: false }));
        }
        let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if !filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("cgroup2"))
        {
            return Ok(None);
        }
        let mount = std::path::PathBuf::from(format!("/run/netsql-cgroup2-{}", std::process::id()));
        std::fs::create_dir_all(&mount).map_err(|e| format!("mkdir {}: {e}", mount.display()))?;
        let out = Command::new("mount")
            .args(["-t", "cgroup2", "none"])
            .arg(&mount)
            .run();
        if !out.status.success() {
            let _ = std::fs::remove_dir(&mount);
            return Err(format!(
                "mount -t cgroup2: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Some(Cgroup2 { mount, ours: true }))
    }
}

impl Drop for Cgroup2 {
    fn drop(&mut self) {
        if self.ours {
            let _ = Command::new("umount").arg(&self.mount).run();
            let _ = std::fs::remove_dir(&self.mount);
        }
    }
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .run()
        .status
        .success()
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
        let _ = Command::new("ip").args(["netns", "del", &name]).run();
        run_ok("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// The namespace's inode: what `netns` columns hold for it.
    pub fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(Path::new("/run/netns").join(&self.name))
            .expect("stat /run/netns/<name>")
            .ino()
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
        self.command(argv).run()
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).args(argv);
        without_settings(&mut command);
        command
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

    /// Runs a command inside the namespace as nobody (uid and gid 65534, no groups).
    pub fn exec_as_nobody(&self, argv: &[&str]) -> Output {
        let mut all = vec![
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
        ];
        all.extend_from_slice(argv);
        self.exec(&all)
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
        let _ = Command::new("ip").args(["netns", "del", &self.name]).run();
    }
}

/// A self-signed certificate and its key, `DIR/NAME.pem` and `DIR/NAME.key`, made by
/// openssl for `subject` (`/CN=localhost`), with `extra` arguments (`-addext ...`).
pub fn self_signed(
    dir: &Path,
    name: &str,
    subject: &str,
    extra: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", subject])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A certificate for `subject` signed by the CA `ca` (its certificate and key, as
/// [`self_signed`] makes them), with the X.509 extensions in `extensions` (one a line:
/// `subjectAltName=IP:127.0.0.1`, `extendedKeyUsage=clientAuth`): `DIR/NAME.pem` and
/// `DIR/NAME.key`. rustls takes a leaf signed by a CA, not a self-signed CA certificate,
/// as a server's or a client's own.
pub fn signed_by(
    dir: &Path,
    name: &str,
    subject: &str,
    extensions: &str,
    ca: (&Path, &Path),
) -> (std::path::PathBuf, std::path::PathBuf) {
    let file = |ext: &str| dir.join(format!("{name}.{ext}"));
    let (key, csr, cert, extfile) = (file("key"), file("csr"), file("pem"), file("ext"));
    std::fs::write(&extfile, extensions).unwrap();
    let openssl = |command: &mut Command| {
        let out = command.run();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(
        Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    openssl(
        Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(ca.0)
            .arg("-CAkey")
            .arg(ca.1)
            .args(["-CAcreateserial", "-days", "1", "-extfile"])
            .arg(&extfile)
            .arg("-out")
            .arg(&cert),
    );
    (cert, key)
}

/// One socket of `/proc/thread-self/net/TABLE` (tcp, udp, ...: this thread's network
/// namespace), read apart from netsql.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSocket {
    pub local_port: u16,
    pub remote_port: u16,
    /// The kernel's state number (include/net/tcp_states.h: 1 ESTABLISHED, ..., 11
    /// CLOSING).
    pub state: u8,
    /// Bytes unread (TCP), or memory charged (UDP).
    pub rx_queue: u64,
}

/// Every socket of `/proc/thread-self/net/{table}` (a thread inside the namespace reads
/// it): `sl local rem st tx_queue:rx_queue ...`, ports and numbers in hex.
pub fn proc_sockets(table: &str) -> Vec<ProcSocket> {
    let text = std::fs::read_to_string(format!("/proc/thread-self/net/{table}")).unwrap();
    let hex = |field: &str| u64::from_str_radix(field, 16).unwrap();
    let after_colon = |field: &str| hex(field.rsplit_once(':').unwrap().1);
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            ProcSocket {
                local_port: after_colon(f[1]) as u16,
                remote_port: after_colon(f[2]) as u16,
                state: hex(f[3]) as u8,
                rx_queue: after_colon(f[4]),
            }
        })
        .collect()
}

pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).run();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One row of NDJSON output.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// A column's value as text (numbers too); `None` for NULL or absent.
pub fn text(row: &Row, column: &str) -> Option<String> {
    use serde_json::Value;
    match row.get(column) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Null) | None => None,
        Some(other) => panic!("{column}: unexpected {other}"),
    }
}

pub fn number(row: &Row, column: &str) -> Option<u64> {
    row.get(column).and_then(serde_json::Value::as_u64)
}

/// Runs `command` (netsql with `--format ndjson`), which must succeed; its rows.
pub fn ndjson_rows(command: &mut Command) -> Vec<Row> {
    let out = command.run();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ndjson(&out.stdout)
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

/// Lets the child inherit `fds`: close-on-exec is cleared in the child only, so children
/// that other tests start meanwhile do not inherit them too.
pub fn inherit<'a>(command: &'a mut Command, fds: &[RawFd]) -> &'a mut Command {
    let fds = fds.to_vec();
    // SAFETY: fcntl is async-signal-safe; the closure allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    command
}

/// A TCP socket's `struct tcp_info`, from the kernel (getsockopt TCP_INFO): a witness
/// independent of sock_diag.
pub fn tcp_info(socket: &impl AsRawFd) -> libc::tcp_info {
    // SAFETY: tcp_info is plain integers; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes to `info`, which has them.
    let status = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(status, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info
}

/// Waits until `done()` holds, asking every 10 ms; fails naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until process `pid` runs with `argv0` as its first argument (it has exec'd).
pub fn wait_for_argv0(pid: u32, argv0: &str) {
    let path = format!("/proc/{pid}/cmdline");
    let started = Instant::now();
    loop {
        let cmdline = std::fs::read(&path).unwrap_or_default();
        if cmdline.split(|&b| b == 0).next() == Some(argv0.as_bytes()) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{pid} never ran as {argv0:?}: {:?}",
            String::from_utf8_lossy(&cmdline)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until process `pid` has used `cpu` of processor time (user + system): past
/// start-up and into its work, a readiness signal for a query that prints nothing.
pub fn wait_for_cpu(pid: u32, cpu: Duration) {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let wanted = cpu.as_millis() as u64 * ticks_per_second / 1000;
    let started = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.iter().sum::<u64>() >= wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{pid} used less than {cpu:?} of processor time in 60 s: {stat}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `netsql serve`: its address, and its log lines as they come.
pub struct Server {
    pub kid: Kid,
    pub addr: String,
    pub log: Receiver<String>,
}

impl Server {
    /// Starts `netsql ARGS serve --listen 127.0.0.1:0 SERVE_ARGS` and waits for it to say
    /// where it listens.
    pub fn start(args: &[&str], serve_args: &[&str]) -> Server {
        Server::start_at("127.0.0.1:0", args, serve_args)
    }

    /// [`Server::start`] listening on `listen`.
    pub fn start_at(listen: &str, args: &[&str], serve_args: &[&str]) -> Server {
        let mut kid = Kid::spawn(
            netsql()
                .args(args)
                .arg("serve")
                .args(["--listen", listen])
                .args(serve_args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let (send, log) = mpsc::channel();
        let stderr = kid.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let first = log
            .recv_timeout(Duration::from_secs(30))
            .expect("the server says where it listens");
        let addr = first
            .rsplit("://")
            .next()
            .unwrap_or_else(|| panic!("{first}"))
            .to_string();
        Server { kid, addr, log }
    }

    pub fn uri(&self, tls: bool) -> String {
        format!("grpc{}://{}", if tls { "+tls" } else { "" }, self.addr)
    }

    /// Log lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

/// A process under strace, found by its command line and killed (SIGKILL) when this is
/// dropped: killing strace leaves its tracee running, and a SIGTERM that strace
/// intercepts as it is killed itself never reaches the tracee. The pattern also matches
/// strace's own command line, which names the tracee's.
pub struct Traced(pub String);

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(&self.0)
            .status();
    }
}

/// The Flight SQL client the tests run (ADBC's driver, as dashboards and scripts use).
pub fn flight_client() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flight_client.py")
}

/// Runs the ADBC client; its JSON answer (or {"error": ...}).
pub fn adbc(
    uri: &str,
    token: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(flight_client())
        .arg(uri)
        .arg(token.unwrap_or("-"))
        .args(args)
        .envs(env.iter().copied())
        .run();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "client {args:?}: {e}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Whether ADBC's Flight SQL driver is installed; under NETSQL_REQUIRE_NETNS=1 it must be.
pub fn have_adbc() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import adbc_driver_flightsql.dbapi"])
        .run()
        .status
        .success();
    if !ok {
        assert!(
            !require_netns(),
            "NETSQL_REQUIRE_NETNS=1 but adbc_driver_flightsql is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: adbc_driver_flightsql is not installed");
    }
    ok
}
