//! The views: each sets its saved query's parameters from the flags, projects the columns
//! the flags show, runs it, and hands the rows to `layout` (or, with another
//! format, to the sink).

use std::collections::BTreeMap;
use std::io::Write;

use super::flags::{self, Flags, View};
use super::layout;
use super::rows::Rows;

use crate::collect::netns::{self, Scope};
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
    out: &'o mut Rendering<'_>,
) -> Result<Option<(Rows, &'o mut (dyn Write + Send))>, Error> {
    let statements = runner.statements(sql)?;
    if statements.len() != 1 {
        return Err(Error::Usage("a netstat view must be one query".into()));
    }
    match out {
        Rendering::Rows(to) => {
            runner.run_statements(statements, params, &mut **to).await?;
            Ok(None)
        }
        Rendering::Text(text) => {
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
pub enum Rendering<'a> {
    Text(&'a mut (dyn Write + Send)),
    Rows(&'a mut dyn Destination),
}

/// Runs the view `flags` ask for, again every second with -c.
pub async fn run(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
) -> Result<Exit, Error> {
    if flags.help {
        let Rendering::Text(text) = out else {
            return Err(Error::Usage(
                "netstat -h prints text: drop --format and -o".into(),
            ));
        };
        text.write_all(flags::USAGE.as_bytes())?;
        return Ok(Exit::Success);
    }
    crate::tables::note_as_netstat();
    // netstat's order is the kernel's: one partition keeps it from the scan to each
    // view's `seq` (DataFusion would spread a large table's batches over the cores).
    runner
        .ctx
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 1;
    // With --netns other than the current one: a block per namespace, under a line
    // naming it, each read by setting the session's scope to that namespace alone.
    let setting = crate::exec::netns_setting(runner.ctx);
    let blocks = match setting.parse::<Scope>() {
        Ok(Scope::Current) | Err(_) => None,
        Ok(scope) => {
            let namespaces = netns::select(runner.root, &scope).map_err(Error::Collect)?;
            // One chosen namespace reads as `ip netns exec NAME netstat` would: untitled.
            let titled = scope == Scope::All || namespaces.len() > 1;
            Some((namespaces, titled))
        }
    };
    loop {
        match &blocks {
            None => views(flags, runner, saved, out).await?,
            Some((namespaces, titled)) => {
                for ns in namespaces {
                    crate::exec::set_netns_setting(runner.ctx, &ns.inode.to_string());
                    // A block is printed whole once read: a namespace that vanished
                    // meanwhile (a container stopped) leaves no title without rows.
                    let result = match out {
                        Rendering::Text(text) => {
                            let mut block = Vec::new();
                            if *titled {
                                writeln!(block, "{}", block_title(runner.root, ns)?)?;
                            }
                            let result =
                                views(flags, runner, saved, &mut Rendering::Text(&mut block)).await;
                            if result.is_ok() {
                                text.write_all(&block)?;
                            }
                            result
                        }
                        Rendering::Rows(_) => views(flags, runner, saved, out).await,
                    };
                    crate::exec::set_netns_setting(runner.ctx, &setting);
                    if let Err(err) = result {
                        if still_there(runner.root, ns.inode) {
                            return Err(err);
                        }
                    }
                }
            }
        }
        // netstat -s prints once, -c or not.
        if flags.statistics {
            return Ok(Exit::Success);
        }
        if !flags.continuous {
            return Ok(Exit::Success);
        }
        if let Rendering::Text(text) = out {
            text.flush()?;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Whether the namespace `inode` still exists (a block that failed for want of it is
/// skipped, as a scan skips it). Not knowing (the listing failed too, as when this
/// process ran out of descriptors) counts as there: the block's error is reported.
fn still_there(root: &crate::collect::Root, inode: u64) -> bool {
    netns::discover(root).map_or(true, |all| all.iter().any(|ns| ns.inode == inode))
}

/// The line above a namespace's block: its inode, name and container, as far as known.
fn block_title(root: &crate::collect::Root, ns: &netns::Namespace) -> Result<String, Error> {
    let mut title = format!("Network namespace {}", ns.inode);
    if let Some(name) = &ns.name {
        title.push_str(&format!(" ({name})"));
    }
    if ns.is_current {
        title.push_str(" (current)");
    }
    let container = ns.cgroup(root).map_err(Error::Collect)?;
    if let Some(c) = container
        .as_deref()
        .and_then(crate::collect::containers::of_cgroup)
    {
        title.push_str(&format!(" container {} {}", c.runtime, c.id));
    }
    Ok(title)
}

/// Every view `flags` ask for, once.
async fn views(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
) -> Result<(), Error> {
    {
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
    }
    Ok(())
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
    out: &mut Rendering<'_>,
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
    // Names, unless -n: the lookup functions, with netstat's choices of what to look up
    // (a raw socket's "port" is its protocol; UDP-Lite ports are named as UDP's).
    if !flags.numeric_hosts {
        columns.push_str(
            ", host_name(v.local_address) AS local_host, host_name(v.remote_address) AS remote_host",
        );
    }
    if !flags.numeric_ports {
        let name = |port: &str| {
            format!(
                "CASE WHEN v.proto IN ('raw', 'raw6') THEN protocol_name(v.{port}) \
                 ELSE service_name(v.{port}, CASE WHEN v.proto IN ('tcp', 'tcp6') THEN 'tcp' ELSE 'udp' END) END"
            )
        };
        columns.push_str(&format!(
            ", {} AS local_service, {} AS remote_service",
            name("local_port"),
            name("remote_port")
        ));
    }
    if flags.extend > 0 && !flags.numeric_users {
        columns.push_str(", user_name(v.uid) AS user_name");
    }
    let (inet, params) = view(
        saved,
        "netstat_inet",
        &[("protocols", protocols.join(",")), servers_param(flags)],
    )?;
    // DataFusion keeps no order of a subquery (and the owner join reorders rows): the
    // view's is said again, by the same parameter and its `seq`.
    let sql = format!(
        "SELECT {columns} FROM {inet} v{join} \
         ORDER BY array_position(string_to_array($protocols, ','), v.proto), v.seq"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    layout::inet(flags, &rows, out)
}

/// Unix sockets: `-x`, with `-a -l -p`.
async fn unix(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
) -> Result<(), Error> {
    let (owner_columns, join) = owner_join(flags, saved)?;
    let (unix, params) = view(saved, "netstat_unix", &[servers_param(flags)])?;
    let sql = format!(
        "SELECT v.unix_refcnt, v.unix_flags, v.type, v.state, v.inode, v.path{owner_columns} \
         FROM {unix} v{join} ORDER BY v.seq"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    layout::unix(flags, &rows, out)
}

/// `-g`: multicast group memberships.
async fn groups(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
) -> Result<(), Error> {
    let mut families = Vec::new();
    if flags.inet {
        families.push("inet");
    }
    if flags.inet6 {
        families.push("inet6");
    }
    let (groups, params) = view(saved, "netstat_groups", &[("families", families.join(","))])?;
    let host = if flags.numeric_hosts {
        ""
    } else {
        ", host_name(v.group_address) AS group_host"
    };
    let sql = format!(
        "SELECT v.interface, v.users, v.group_address{host} FROM {groups} v \
         ORDER BY array_position(string_to_array($families, ','), v.family)"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    layout::groups(flags, &rows, out)
}

/// `-i`: the interface table (the short form; `-ie` is ifconfig's and not reproduced).
async fn interfaces(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
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
    layout::interfaces(&rows, out)
}

/// `-r`: the IPv4 routing table (`-e` for Metric/Ref/Use, `-ee` for both).
async fn routes(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
) -> Result<(), Error> {
    if flags.inet6_only() {
        return Err(Error::Usage(
            "netstat -r -6 is not reproduced: SELECT * FROM routes WHERE family = 'inet6'".into(),
        ));
    }
    let (routes, params) = view(saved, "netstat_routes", &[("family", "inet".into())])?;
    let names = if flags.numeric_hosts || flags.symbolic {
        ""
    } else {
        ", host_name(v.destination) AS destination_host, \
         network_name(v.destination) AS destination_network, host_name(v.gateway) AS gateway_host"
    };
    // -C: the routing cache, which Linux has not kept since 3.6 (/proc/net/rt_cache
    // lists nothing): its heading and no row, as net-tools prints; after the table with
    // -F too.
    let fib = flags.fib || !flags.cache;
    let none = if fib { "" } else { " WHERE false" };
    let sql = format!(
        "SELECT v.destination, v.netmask, v.gateway, v.flags, v.metric, v.ref_count, v.use_count, \
         v.mtu, v.window, v.irtt, v.interface{names} FROM {routes} v{none}"
    );
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    if fib {
        layout::routes(flags, &rows, out)?;
    }
    if flags.cache {
        layout::route_cache(flags, out)?;
    }
    Ok(())
}

/// `-s`: protocol statistics, IPv4 (or IPv6 with -6).
async fn statistics(
    flags: &Flags,
    runner: &Runner<'_>,
    saved: &[QueryFile],
    out: &mut Rendering<'_>,
) -> Result<(), Error> {
    flags.check_statistics_family().map_err(Error::Usage)?;
    let (stats, params) = view(saved, "netstat_statistics", &[])?;
    let sql = format!("SELECT v.file, v.protocol, v.name, v.value FROM {stats} v");
    let Some((rows, out)) = rows(runner, &sql, &params, out).await? else {
        return Ok(());
    };
    layout::statistics(flags, &rows, out)
}
