//! The views themselves: each runs its saved query and prints the rows.

use std::collections::BTreeMap;
use std::io::Write;

use super::flags::{self, Flags, View};
use super::render::{NameTables, Rows};
use super::{render, stats};

use crate::collect::snmp;
use crate::error::{Error, Exit};
use crate::exec::{Capture, Destination, Runner};
use crate::queries::{self, QueryFile};

/// One saved view as a subquery (its SQL without the final `;`) and the values of its
/// parameters: the defaults its header declares, with `set` in their place. Which rows a
/// view returns, and in what order, is the view's own SQL: `netsql -q netstat_inet -p
/// protocols=tcp,tcp6` gives the rows `netsql netstat -tan` prints.
fn view(
    saved: &[QueryFile],
    name: &str,
    set: &[(&str, String)],
) -> Result<(String, Params), Error> {
    let file = queries::find(saved, name)?;
    let overrides = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let params = queries::bind(file, &overrides)?;
    let sql = file.sql.trim().trim_end_matches(';');
    Ok((format!("(\n{sql}\n)"), params))
}

type Params = BTreeMap<String, String>;

/// `servers` of the socket views: every socket (-a), only servers (-l), or the others.
fn servers_param(flags: &Flags) -> (&'static str, String) {
    let value = match (flags.all, flags.listening) {
        (true, _) => "all",
        (false, true) => "only",
        (false, false) => "none",
    };
    ("servers", value.to_string())
}

/// The view's rows and the writer to render them to; `None` when they went to `out` as
/// typed rows instead.
async fn rows<'o>(
    runner: &Runner<'_>,
    sql: &str,
    params: &Params,
    out: &'o mut Out<'_>,
) -> Result<Option<(Rows, &'o mut (dyn Write + Send))>, Error> {
    let statements = runner.statements(sql)?;
    if statements.len() != 1 {
        return Err(Error::Usage("a netstat view must be one query".into()));
    }
    match out {
        Out::Rows(to) => {
            runner.run_statements(statements, params, &mut **to).await?;
            Ok(None)
        }
        Out::Text(text) => {
            let mut capture = Capture::default();
            runner
                .run_statements(statements, params, &mut capture)
                .await?;
            let result = capture.into_one()?;
            Ok(Some((
                Rows::new(result.schema, &result.batches)?,
                &mut **text,
            )))
        }
    }
}

/// Where a view goes: netstat's text, or its typed rows to a sink (`--format`, `-o`).
pub enum Out<'a> {
    Text(&'a mut (dyn Write + Send)),
    Rows(&'a mut dyn Destination),
}

/// Runs the view `flags` ask for, again every second with -c.
pub async fn run(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<Exit, Error> {
    if flags.help {
        let Out::Text(text) = out else {
            return Err(Error::Usage(
                "netstat -h prints text: drop --format and -o".into(),
            ));
        };
        text.write_all(flags::USAGE.as_bytes())?;
        return Ok(Exit::Success);
    }
    loop {
        for view in flags.views() {
            match view {
                View::Statistics => statistics(flags, runner, saved, out).await?,
                View::Routes => routes(flags, runner, saved, out).await?,
                View::Interfaces => interfaces(flags, runner, saved, out).await?,
                View::Inet => inet(flags, runner, saved, out).await?,
                View::Groups => groups(flags, runner, saved, out).await?,
                View::Unix => unix(flags, runner, saved, out).await?,
            }
        }
        // netstat -s prints once, -c or not.
        if flags.statistics {
            return Ok(Exit::Success);
        }
        if !flags.continuous {
            return Ok(Exit::Success);
        }
        if let Out::Text(text) = out {
            text.flush()?;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn servers(flags: &Flags) -> &'static str {
    if flags.all {
        "(servers and established)"
    } else if flags.listening {
        "(only servers)"
    } else {
        "(w/o servers)"
    }
}

/// The owner join: `netstat_programs` names each pid as netstat -p does.
fn owner_join(flags: &Flags, saved: &[QueryFile]) -> Result<(String, String), Error> {
    if flags.programs {
        Ok((
            ", v.pid, o.program AS command".into(),
            format!(
                " LEFT JOIN {} o ON o.pid = v.pid",
                view(saved, "netstat_programs", &[])?.0
            ),
        ))
    } else {
        Ok((String::new(), String::new()))
    }
}

/// Internet sockets: `-t -u -U -w`, `-4 -6`, `-a -l`, `-e -p -o`.
async fn inet(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<(), Error> {
    let mut protocols = Vec::new();
    for (wanted, v4, v6) in [
        (flags.tcp, "tcp", "tcp6"),
        (flags.udp, "udp", "udp6"),
        (flags.udplite, "udplite", "udplite6"),
        (flags.raw, "raw", "raw6"),
    ] {
        if flags.lists(wanted) {
            if !flags.named || flags.inet {
                protocols.push(v4);
            }
            if !flags.named || flags.inet6 {
                protocols.push(v6);
            }
        }
    }
    let mut columns = String::from(
        "v.proto, v.recv_q, v.send_q, v.local_address, v.local_port, v.remote_address, v.remote_port, v.state",
    );
    if flags.extend > 0 {
        columns.push_str(", v.uid, v.inode");
    }
    let (owner_columns, join) = owner_join(flags, saved)?;
    columns.push_str(&owner_columns);
    if flags.timers {
        columns.push_str(", v.timer, v.timer_expires_ms, v.retransmits, v.probes");
    }
    let (inet, params) = view(
        saved,
        "netstat_inet",
        &[("protocols", protocols.join(",")), servers_param(flags)],
    )?;
    // DataFusion keeps no order of a subquery: the view's is said again, by the same
    // parameter.
    let sql = format!(
        "SELECT {columns} FROM {inet} v{join} \
         ORDER BY array_position(string_to_array($protocols, ','), v.proto)"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    let proto = rows.text("proto")?;
    let recv_q = rows.int("recv_q")?;
    let send_q = rows.int("send_q")?;
    let local_address = rows.text("local_address")?;
    let local_port = rows.int("local_port")?;
    let remote_address = rows.text("remote_address")?;
    let remote_port = rows.int("remote_port")?;
    let state = rows.text("state")?;
    // Columns the flags did not ask for are not in the query: read as NULL.
    let n = rows.len();
    let (uid, inode) = match flags.extend > 0 {
        true => (rows.int("uid")?, rows.int("inode")?),
        false => (vec![None; n], vec![None; n]),
    };
    let (pid, command) = match flags.programs {
        true => (rows.int("pid")?, rows.text("command")?),
        false => (vec![None; n], vec![None; n]),
    };
    let (timer, expires, retransmits, probes) = match flags.timers {
        true => (
            rows.text("timer")?,
            rows.int("timer_expires_ms")?,
            rows.int("retransmits")?,
            rows.int("probes")?,
        ),
        false => (vec![None; n], vec![None; n], vec![None; n], vec![None; n]),
    };

    write!(out, "Active Internet connections {}\nProto Recv-Q Send-Q Local Address           Foreign Address         State      ", servers(flags))?;
    if flags.extend > 0 {
        write!(out, " User       Inode     ")?;
    }
    if flags.programs {
        write!(out, " {:<20}", "PID/Program name")?;
    }
    if flags.timers {
        write!(out, " Timer")?;
    }
    writeln!(out)?;

    // NameTables only for what -n leaves to be named.
    let addresses = (local_address.iter().chain(&remote_address)).filter(|_| !flags.numeric_hosts);
    let names = NameTables::load(
        runner.root,
        addresses,
        !flags.numeric_ports,
        flags.extend > 0 && !flags.numeric_users,
    )?;

    for i in 0..rows.len() {
        let proto = proto[i].as_deref().unwrap_or("");
        let family_proto = proto.trim_end_matches('6');
        let service_proto = match family_proto {
            "tcp" => "tcp",
            "raw" => "raw",
            _ => "udp",
        };
        let shown_proto = match proto {
            "udplite" => "udpl",
            "udplite6" => "udpl6",
            other => other,
        };
        let end = |address: &Option<String>, port: Option<i64>| {
            render::endpoint(
                &render::host_text(
                    address.as_deref().unwrap_or(""),
                    flags.numeric_hosts,
                    &names,
                ),
                &render::port_text(
                    port.unwrap_or(0),
                    service_proto,
                    flags.numeric_ports,
                    &names,
                ),
                flags.wide,
            )
        };
        let local = end(&local_address[i], local_port[i]);
        let remote = end(&remote_address[i], remote_port[i]);
        let (rq, sq) = (recv_q[i].unwrap_or(0), send_q[i].unwrap_or(0));
        let state = state[i].as_deref().unwrap_or("");
        match family_proto {
            "tcp" => write!(
                out,
                "{shown_proto:<4}  {rq:>6} {sq:>6} {local:<23} {remote:<23} {state:<11}"
            )?,
            "raw" => write!(
                out,
                "{shown_proto:<4}  {rq:>6} {sq:>6} {local:<23} {remote:<23} {:<11}",
                render::state_number(state)
            )?,
            _ => {
                let state = match state {
                    "ESTABLISHED" => "ESTABLISHED",
                    "CLOSE" => "",
                    _ => "UNKNOWN",
                };
                write!(
                    out,
                    "{shown_proto:<5} {rq:>6} {sq:>6} {local:<23} {remote:<23} {state:<11}"
                )?
            }
        }
        if flags.extend > 0 {
            let user = render::user_text(uid[i], flags.numeric_users, &names);
            write!(out, " {user:<10} {:<10}", inode[i].unwrap_or(0))?;
        }
        if flags.programs {
            write!(
                out,
                " {:<20}",
                render::program(pid[i], command[i].as_deref())
            )?;
        }
        if flags.timers {
            write!(
                out,
                " {}",
                render::timer_text(
                    proto,
                    timer[i].as_deref(),
                    expires[i],
                    retransmits[i],
                    probes[i]
                )
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Unix sockets: `-x`, with `-a -l -p`.
async fn unix(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<(), Error> {
    let (owner_columns, join) = owner_join(flags, saved)?;
    let (unix, params) = view(saved, "netstat_unix", &[servers_param(flags)])?;
    let sql = format!(
        "SELECT v.unix_refcnt, v.unix_flags, v.type, v.state, v.inode, v.path{owner_columns} \
         FROM {unix} v{join}"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    let refcnt = rows.int("unix_refcnt")?;
    let unix_flags = rows.int("unix_flags")?;
    let kind = rows.text("type")?;
    let state = rows.text("state")?;
    let inode = rows.int("inode")?;
    let path = rows.text("path")?;
    let (pid, command) = match flags.programs {
        true => (rows.int("pid")?, rows.text("command")?),
        false => (vec![None; rows.len()], vec![None; rows.len()]),
    };
    write!(
        out,
        "Active UNIX domain sockets {}\nProto RefCnt Flags       Type       State         I-Node  ",
        servers(flags)
    )?;
    if flags.programs {
        write!(out, " {:<20}", "PID/Program name")?;
    }
    writeln!(out, " Path")?;
    for i in 0..rows.len() {
        let state_name = state[i].as_deref().unwrap_or("");
        let kind = kind[i].as_deref().unwrap_or("").to_uppercase();
        write!(
            out,
            "unix  {:<6} {:<11} {:<10} {:<13} {:<8}",
            refcnt[i].unwrap_or(0),
            render::unix_flags(unix_flags[i], state_name),
            kind,
            render::unix_state(state_name),
            inode[i].unwrap_or(0)
        )?;
        if flags.programs {
            write!(
                out,
                " {:<20}",
                render::program(pid[i], command[i].as_deref())
            )?;
        }
        // netstat reads the path with scanf's %s: it ends at the first blank.
        let path = path[i].as_deref().unwrap_or("");
        let path = path.split([' ', '\t']).next().unwrap_or("");
        writeln!(out, " {}", crate::output::table::escape_text(path))?;
    }
    Ok(())
}

/// `-g`: multicast group memberships.
async fn groups(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<(), Error> {
    let mut families = Vec::new();
    if flags.inet {
        families.push("inet");
    }
    if flags.inet6 {
        families.push("inet6");
    }
    let (groups, params) = view(saved, "netstat_groups", &[("families", families.join(","))])?;
    let sql = format!(
        "SELECT v.interface, v.users, v.group_address FROM {groups} v \
         ORDER BY array_position(string_to_array($families, ','), v.family)"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    let interface = rows.text("interface")?;
    let users = rows.int("users")?;
    let group = rows.text("group_address")?;
    let to_name = group.iter().filter(|_| !flags.numeric_hosts);
    let names = NameTables::load(runner.root, to_name, false, false)?;
    write!(
        out,
        "IPv6/IPv4 Group Memberships\nInterface       RefCnt Group\n--------------- ------ ---------------------\n"
    )?;
    for i in 0..rows.len() {
        let group = render::host_text(
            group[i].as_deref().unwrap_or(""),
            flags.numeric_hosts,
            &names,
        );
        writeln!(
            out,
            "{:<15} {:<6} {group}",
            interface[i].as_deref().unwrap_or(""),
            users[i].unwrap_or(0)
        )?;
    }
    Ok(())
}

/// `-i`: the interface table (the short form; `-ie` is ifconfig's and not reproduced).
async fn interfaces(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<(), Error> {
    if flags.extend > 0 {
        return Err(Error::Usage(
            "netstat -ie (ifconfig's long form) is not reproduced: SELECT * FROM interfaces".into(),
        ));
    }
    let (interfaces, params) = view(
        saved,
        "netstat_interfaces",
        &[("all", flags.all.to_string())],
    )?;
    let sql = format!(
        "SELECT v.name, v.mtu, v.flags, v.rx_packets, v.rx_errors, v.rx_dropped, v.rx_fifo, \
         v.tx_packets, v.tx_errors, v.tx_dropped, v.tx_fifo FROM {interfaces} v ORDER BY v.name"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    writeln!(out, "Kernel Interface table")?;
    writeln!(
        out,
        "Iface             MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg"
    )?;
    let name = rows.text("name")?;
    let mtu = rows.int("mtu")?;
    let if_flags = rows.int("flags")?;
    let counters: Vec<Vec<Option<i64>>> = [
        "rx_packets",
        "rx_errors",
        "rx_dropped",
        "rx_fifo",
        "tx_packets",
        "tx_errors",
        "tx_dropped",
        "tx_fifo",
    ]
    .iter()
    .map(|c| rows.int(c))
    .collect::<Result<_, _>>()?;
    for i in 0..rows.len() {
        let c = |k: usize| counters[k][i].unwrap_or(0);
        let name = crate::output::table::escape_text(name[i].as_deref().unwrap_or(""));
        writeln!(
            out,
            "{:<15.15} {:>5} {:>8} {:>6} {:>6} {:<6} {:>8} {:>6} {:>6} {:>6} {}",
            name,
            mtu[i].unwrap_or(0),
            c(0),
            c(1),
            c(2),
            c(3),
            c(4),
            c(5),
            c(6),
            c(7),
            render::interface_flags(if_flags[i].unwrap_or(0))
        )?;
    }
    Ok(())
}

/// `-r`: the IPv4 routing table (`-e` for Metric/Ref/Use, `-ee` for both).
async fn routes(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<(), Error> {
    if flags.last_family == Some("inet6") {
        return Err(Error::Usage(
            "netstat -r -6 is not reproduced: SELECT * FROM routes WHERE family = 'inet6'".into(),
        ));
    }
    let (routes, params) = view(saved, "netstat_routes", &[("family", "inet".into())])?;
    let sql = format!(
        "SELECT v.destination, v.netmask, v.gateway, v.flags, v.metric, v.ref_count, v.use_count, \
         v.mtu, v.window, v.irtt, v.interface FROM {routes} v"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    let numeric = flags.numeric_hosts || flags.symbolic;
    let destination = rows.text("destination")?;
    let netmask = rows.text("netmask")?;
    let gateway = rows.text("gateway")?;
    let route_flags = rows.int("flags")?;
    let int = |c: &str| rows.int(c);
    let (metric, refs, uses, mtu, window, irtt) = (
        int("metric")?,
        int("ref_count")?,
        int("use_count")?,
        int("mtu")?,
        int("window")?,
        int("irtt")?,
    );
    let interface = rows.text("interface")?;
    let mut names = NameTables::default();
    if !numeric {
        names = NameTables::load(
            runner.root,
            destination.iter().chain(&gateway),
            false,
            false,
        )?;
        names.load_networks(runner.root)?;
    }
    let ext = match flags.extend {
        0 => 2,
        1 => 1,
        _ => 3,
    };
    writeln!(out, "Kernel IP routing table")?;
    writeln!(
        out,
        "{}",
        match ext {
            1 => "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface",
            2 => "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface",
            _ => "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface    MSS   Window irtt",
        }
    )?;
    for i in 0..rows.len() {
        let bits = route_flags[i].unwrap_or(0);
        let mask = netmask[i].as_deref().unwrap_or("0.0.0.0");
        let net = render::route_destination(
            destination[i].as_deref().unwrap_or(""),
            mask,
            bits & 0x4 != 0,
            numeric,
            &names,
        );
        let gate = render::route_gateway(gateway[i].as_deref().unwrap_or(""), numeric, &names);
        let mask = render::cut(mask, 15);
        let fl = render::route_flags(bits);
        let reject = bits & 0x200 != 0;
        let v = |c: &Vec<Option<i64>>| c[i].unwrap_or(0);
        let iface = interface[i].as_deref().unwrap_or("");
        match (ext, reject) {
            (1, true) => writeln!(out, "{net:<15} -               {mask:<15} {fl:<5} {:<6} -  {:>7} -", v(&metric), v(&uses))?,
            (1, false) => writeln!(out, "{net:<15} {gate:<15} {mask:<15} {fl:<5} {:<6} {:<2} {:>7} {iface}", v(&metric), v(&refs), v(&uses))?,
            (2, true) => writeln!(out, "{net:<15} -               {mask:<15} {fl:<5}     - -          - -")?,
            (2, false) => writeln!(out, "{net:<15} {gate:<15} {mask:<15} {fl:<5} {:>5} {:<5} {:>6} {iface}", v(&mtu), v(&window), v(&irtt))?,
            (_, true) => writeln!(out, "{net:<15} -               {mask:<15} {fl:<5} {:<6} -  {:>7} -        -     -      -", v(&metric), v(&uses))?,
            (_, false) => writeln!(
                out,
                "{net:<15} {gate:<15} {mask:<15} {fl:<5} {:<6} {:<3} {:>6} {:<6.6}   {:<5} {:<6} {}",
                v(&metric), v(&refs), v(&uses), iface, v(&mtu), v(&window), v(&irtt)
            )?,
        }
    }
    Ok(())
}

/// `-s`: protocol statistics, IPv4 (or IPv6 with -6).
async fn statistics(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Out<'_>,
) -> Result<(), Error> {
    let (stats, params) = view(saved, "netstat_statistics", &[])?;
    let sql = format!("SELECT v.file, v.protocol, v.name, v.value FROM {stats} v");
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    let (file, protocol, name, value) = (
        rows.text("file")?,
        rows.text("protocol")?,
        rows.text("name")?,
        rows.int("value")?,
    );
    let counters: Vec<snmp::Counter> = (0..rows.len())
        .map(|i| snmp::Counter {
            // The view's file names are the collector's own.
            file: snmp::FILES
                .into_iter()
                .find(|f| file[i].as_deref() == Some(*f))
                .unwrap_or_default(),
            protocol: protocol[i].clone().unwrap_or_default(),
            name: name[i].clone().unwrap_or_default(),
            value: value[i].unwrap_or(0),
        })
        .collect();
    let sections = stats::Sections {
        raw: flags.raw,
        tcp: flags.tcp,
        udp: flags.udp,
        sctp: flags.sctp,
    };
    if flags.last_family == Some("inet6") {
        stats::print_v6(&counters, sections, out)?;
    } else {
        stats::print_v4(&counters, sections, out)?;
    }
    Ok(())
}
