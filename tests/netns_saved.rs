//! Every built-in saved query against a namespace whose sockets the test made: the rows
//! each must return are worked out here from what was made, and `ss` in the namespace
//! confirms the socket table first.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use common::{Kid, Netns};

/// What the test made inside the namespace.
struct Made {
    /// `sleep` holding the [::1]:7702 listener.
    six: Kid,
    /// `sleep` holding two CLOSE_WAIT connections accepted on 127.0.0.1:7703, the first
    /// on two descriptors.
    waiter: Kid,
    _held: Vec<OwnedFd>,
}

fn sleeper(fds: &[&dyn AsRawFd]) -> Kid {
    let mut command = Command::new("sleep");
    command.arg("120").stdin(Stdio::null());
    let fds: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    common::inherit(&mut command, &fds);
    let kid = Kid::spawn(&mut command);
    common::wait_for_argv0(kid.id(), "sleep");
    kid
}

/// Waits until the kernel shows what `build` made (this thread's namespace, as
/// /proc/thread-self/net/tcp lists it): the FINs to :7703 delivered (two FIN_WAIT2 client
/// ends, two CLOSE_WAIT server ends) and 500 and 300 bytes queued on :7700's ends.
fn settled() {
    common::wait_until(
        "the kernel showing the sockets settled",
        std::time::Duration::from_secs(10),
        || {
            let tcp = common::proc_sockets("tcp");
            // States: 5 FIN_WAIT2, 8 CLOSE_WAIT.
            let count =
                |keep: &dyn Fn(&common::ProcSocket) -> bool| tcp.iter().filter(|s| keep(s)).count();
            let queued: Vec<u64> = tcp
                .iter()
                .filter(|s| s.local_port == 7700)
                .map(|s| s.rx_queue)
                .collect();
            count(&|s| s.remote_port == 7703 && s.state == 5) == 2
                && count(&|s| s.local_port == 7703 && s.state == 8) == 2
                && queued.contains(&500)
                && queued.contains(&300)
        },
    );
}

/// Runs inside the namespace. This process ends up holding:
/// - LISTEN 127.0.0.1:7700 and 127.0.0.1:7703, UDP 0.0.0.0:7701;
/// - three connections to :7700, both ends (6 ESTABLISHED), with 500 and 300 bytes
///   unread on two accepted ends;
/// - the client ends of two connections to :7703, closed for writing (FIN_WAIT2);
/// - a client connected to [::1]:7702 (ESTABLISHED), whose server end waits unaccepted.
fn build() -> Made {
    let mut held: Vec<OwnedFd> = Vec::new();
    let web = TcpListener::bind("127.0.0.1:7700").unwrap();
    for unread in [500usize, 300, 0] {
        let mut client = TcpStream::connect("127.0.0.1:7700").unwrap();
        let (server, _) = web.accept().unwrap();
        client.write_all(&vec![b'x'; unread]).unwrap();
        held.extend([client.into(), server.into()]);
    }
    let udp = UdpSocket::bind("0.0.0.0:7701").unwrap();

    let six = TcpListener::bind("[::1]:7702").unwrap();
    let six_kid = sleeper(&[&six]);
    let client6 = TcpStream::connect("[::1]:7702").unwrap();
    drop(six);

    let waiting = TcpListener::bind("127.0.0.1:7703").unwrap();
    let mut accepted = Vec::new();
    for _ in 0..2 {
        let client = TcpStream::connect("127.0.0.1:7703").unwrap();
        let (server, _) = waiting.accept().unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        held.push(client.into());
        accepted.push(server);
    }
    // The waiter holds the first twice (a dup): two sockets, three descriptors.
    let dup = accepted[0].try_clone().unwrap();
    let waiter = sleeper(&[&accepted[0], &accepted[1], &dup]);
    drop((accepted, dup));
    held.extend([web.into(), udp.into(), client6.into(), waiting.into()]);
    settled();
    Made {
        six: six_kid,
        waiter,
        _held: held,
    }
}

fn csv(ns: &Netns, args: &[&str]) -> String {
    let mut argv = vec!["--format", "csv"];
    argv.extend_from_slice(args);
    let out = ns.netsql(&argv);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn built_in_saved_queries_return_the_rows_made() {
    let Some(ns) = Netns::create("saved", &["ss"]) else {
        return;
    };
    ns.etc(&[("services", "saved-web 7700/tcp\n")]);
    let made = ns.within(build);
    let me = std::process::id();
    let (six, waiter) = (made.six.id(), made.waiter.id());

    // The table the expectations below are worked out from, as ss sees it.
    let ss = ns.exec_ok(&["ss", "-Htan"]);
    let mut states: Vec<&str> = ss
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    states.sort();
    // A FIN counts in the receive queue: ss shows Recv-Q 1 for CLOSE-WAIT.
    for line in ss.lines().filter(|l| l.starts_with("CLOSE-WAIT")) {
        assert_eq!(line.split_whitespace().nth(1), Some("1"), "{line}");
    }
    let mut want = vec!["ESTAB"; 8];
    want.extend(["CLOSE-WAIT"; 2]);
    want.extend(["FIN-WAIT-2"; 2]);
    want.extend(["LISTEN"; 3]);
    want.sort();
    assert_eq!(states, want, "{ss}");

    // Each built-in saved query must be checked here: a new one fails this list.
    let listing = csv(&ns, &["--list"]);
    let mut builtins: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter(|n| !n.starts_with("netstat_") && !n.is_empty())
        .collect();
    builtins.sort();
    assert_eq!(
        builtins,
        [
            "close_wait_per_process",
            "connections_per_remote",
            // netns_conntrack checks this one and nat_translations.
            "conntrack_usage",
            "deepest_queues",
            // netns_history runs these three over a dataset, in DuckDB too.
            "history_connections_per_hour",
            "history_listener_timeline",
            "history_new_listeners",
            "listeners",
            // These two read every namespace on the host: netns_all checks them.
            "listeners_by_container",
            "nat_translations",
            // netns_tcp_info checks this one, retransmitting_peers and tcp_health.
            "retransmitting_peers",
            "socket_memory",
            "sockets_per_namespace",
            "sockets_per_process",
            "tcp_health",
            "tcp_state_summary"
        ],
        "{listing}"
    );

    let cmdline = |pid: u32| {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        String::from_utf8_lossy(raw.strip_suffix(b"\0").unwrap_or(&raw)).replace('\0', " ")
    };
    let my_program = std::fs::read_to_string("/proc/self/comm").unwrap();
    let my_program = my_program.trim();
    let my_cmdline = cmdline(me);
    let quoted = |text: &str| {
        if text.contains([',', '"', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_string()
        }
    };
    assert_eq!(
        csv(&ns, &["-q", "listeners"]),
        format!(
            "proto,local_address,local_port,service,pid,program,cmdline,user\n\
             tcp,127.0.0.1,7700,saved-web,{me},{my_program},{mine},root\n\
             udp,0.0.0.0,7701,,{me},{my_program},{mine},root\n\
             tcp6,::1,7702,,{six},sleep,sleep 120,root\n\
             tcp,127.0.0.1,7703,,{me},{my_program},{mine},root\n",
            mine = quoted(&my_cmdline),
        )
    );
    assert_eq!(
        csv(&ns, &["-q", "connections_per_remote"]),
        "remote_address,connections,remote_ports\n127.0.0.1,6,4\n::1,2,2\n"
    );
    assert_eq!(
        csv(&ns, &["-q", "connections_per_remote", "-p", "limit=1"]),
        "remote_address,connections,remote_ports\n127.0.0.1,6,4\n"
    );
    assert_eq!(
        csv(&ns, &["-q", "close_wait_per_process"]),
        format!("pid,program,close_wait\n{waiter},sleep,2\n")
    );
    let deepest = csv(&ns, &["-q", "deepest_queues"]);
    let rows: Vec<Vec<&str>> = deepest.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "proto",
            "state",
            "local_address",
            "local_port",
            "remote_address",
            "remote_port",
            "recv_q",
            "send_q",
            "pid",
            "program"
        ]
    );
    let (me_text, waiter_text) = (me.to_string(), waiter.to_string());
    let mut queued: Vec<(&str, &str, &str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[1], r[3], r[6], r[7], r[8]))
        .collect();
    // Deepest first; the two CLOSE_WAIT ends tie, in either order.
    queued[2..].sort();
    assert_eq!(
        queued,
        [
            ("ESTABLISHED", "7700", "500", "0", me_text.as_str()),
            ("ESTABLISHED", "7700", "300", "0", me_text.as_str()),
            ("CLOSE_WAIT", "7703", "1", "0", waiter_text.as_str()),
            ("CLOSE_WAIT", "7703", "1", "0", waiter_text.as_str())
        ],
        "{deepest}"
    );
    assert_eq!(
        csv(&ns, &["-q", "deepest_queues", "-p", "limit=1"])
            .lines()
            .count(),
        2
    );
    assert_eq!(
        csv(&ns, &["-q", "tcp_state_summary"]),
        "state,ipv4,ipv6,total\nESTABLISHED,6,2,8\nLISTEN,2,1,3\nCLOSE_WAIT,2,0,2\nFIN_WAIT2,2,0,2\n"
    );
    // Ours: 3 listeners/UDP, 6 + 2 + 1 connection ends; each sleep: what it inherited.
    assert_eq!(
        csv(&ns, &["-q", "sockets_per_process"]),
        format!(
            "pid,program,sockets,tcp,udp,unix\n{me},{my_program},12,11,1,0\n\
             {waiter},sleep,2,2,0,0\n{six},sleep,1,1,0,0\n"
        )
    );
    drop(made);
}
