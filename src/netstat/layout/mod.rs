//! netstat 2.10's text: the titles, headers, column widths and conventions of each view,
//! line by line, from the rows its saved query returned. Names (hosts, services,
//! protocols, users, networks) are columns the query computed with the lookup functions.

mod text;

use std::io::Write;

use super::rows::Rows;
use super::{stats, Flags};
use crate::collect::snmp;
use crate::error::Error;

pub use text::*;

/// The title's note on which sockets are listed.
pub fn servers(flags: &Flags) -> &'static str {
    if flags.all {
        "(servers and established)"
    } else if flags.listening {
        "(only servers)"
    } else {
        "(w/o servers)"
    }
}

/// Internet sockets: `-t -u -U -w`, `-4 -6`, `-a -l`, `-e -p -o`.
pub fn inet(flags: &Flags, rows: &Rows, out: &mut (dyn Write + Send)) -> Result<(), Error> {
    let proto = rows.text("proto")?;
    let recv_q = rows.int("recv_q")?;
    let send_q = rows.int("send_q")?;
    let local_address = rows.text("local_address")?;
    let local_port = rows.int("local_port")?;
    let remote_address = rows.text("remote_address")?;
    let remote_port = rows.int("remote_port")?;
    let state = rows.text("state")?;
    // Columns the flags did not ask for are not in the query: read as NULL.
    let extended = flags.extend > 0;
    let uid = rows.int_if(extended, "uid")?;
    let inode = rows.int_if(extended, "inode")?;
    let pid = rows.int_if(flags.programs, "pid")?;
    let command = rows.text_if(flags.programs, "command")?;
    let timer = rows.text_if(flags.timers, "timer")?;
    let expires = rows.int_if(flags.timers, "timer_expires_ms")?;
    let retransmits = rows.int_if(flags.timers, "retransmits")?;
    let probes = rows.int_if(flags.timers, "probes")?;
    // Names the view gave (host_name, service_name, protocol_name, user_name) unless -n.
    let local_host = rows.text_if(!flags.numeric_hosts, "local_host")?;
    let remote_host = rows.text_if(!flags.numeric_hosts, "remote_host")?;
    let local_service = rows.text_if(!flags.numeric_ports, "local_service")?;
    let remote_service = rows.text_if(!flags.numeric_ports, "remote_service")?;
    let user = rows.text_if(extended && !flags.numeric_users, "user_name")?;

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

    for i in 0..rows.len() {
        let proto = proto[i].as_deref().unwrap_or("");
        let family_proto = proto.trim_end_matches('6');
        let shown_proto = match proto {
            "udplite" => "udpl",
            "udplite6" => "udpl6",
            other => other,
        };
        let end = |address: &Option<String>,
                   host: &Option<String>,
                   port: Option<i64>,
                   service: &Option<String>| {
            endpoint(
                &host_text(
                    address.as_deref().unwrap_or(""),
                    flags.numeric_hosts,
                    host.as_deref(),
                ),
                &port_text(port.unwrap_or(0), service.as_deref()),
                flags.wide,
            )
        };
        let local = end(
            &local_address[i],
            &local_host[i],
            local_port[i],
            &local_service[i],
        );
        let remote = end(
            &remote_address[i],
            &remote_host[i],
            remote_port[i],
            &remote_service[i],
        );
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
                state_number(state)
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
            let user = user_text(uid[i], user[i].as_deref());
            write!(out, " {user:<10} {:<10}", inode[i].unwrap_or(0))?;
        }
        if flags.programs {
            write!(out, " {:<20}", program(pid[i], command[i].as_deref()))?;
        }
        if flags.timers {
            write!(
                out,
                " {}",
                timer_text(
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
pub fn unix(flags: &Flags, rows: &Rows, out: &mut (dyn Write + Send)) -> Result<(), Error> {
    let refcnt = rows.int("unix_refcnt")?;
    let unix_flags = rows.int("unix_flags")?;
    let kind = rows.text("type")?;
    let state = rows.text("state")?;
    let inode = rows.int("inode")?;
    let path = rows.text("path")?;
    let pid = rows.int_if(flags.programs, "pid")?;
    let command = rows.text_if(flags.programs, "command")?;
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
            text::unix_flags(unix_flags[i]),
            kind,
            unix_state(state_name),
            inode[i].unwrap_or(0)
        )?;
        if flags.programs {
            write!(out, " {:<20}", program(pid[i], command[i].as_deref()))?;
        }
        // netstat reads the path with scanf's %s: it ends at the first blank.
        let path = path[i].as_deref().unwrap_or("");
        let path = path.split([' ', '\t']).next().unwrap_or("");
        writeln!(out, " {}", crate::output::table::escape_text(path))?;
    }
    Ok(())
}

/// `-g`: multicast group memberships.
pub fn groups(flags: &Flags, rows: &Rows, out: &mut (dyn Write + Send)) -> Result<(), Error> {
    let interface = rows.text("interface")?;
    let users = rows.int("users")?;
    let group = rows.text("group_address")?;
    let host = rows.text_if(!flags.numeric_hosts, "group_host")?;
    write!(
        out,
        "IPv6/IPv4 Group Memberships\nInterface       RefCnt Group\n--------------- ------ ---------------------\n"
    )?;
    for i in 0..rows.len() {
        let group = host_text(
            group[i].as_deref().unwrap_or(""),
            flags.numeric_hosts,
            host[i].as_deref(),
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
pub fn interfaces(rows: &Rows, out: &mut (dyn Write + Send)) -> Result<(), Error> {
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
            interface_flags(if_flags[i].unwrap_or(0))
        )?;
    }
    Ok(())
}

/// `-rC`: the routing cache's heading for the `-e` level asked.
pub fn route_cache(flags: &Flags, out: &mut (dyn Write + Send)) -> Result<(), Error> {
    writeln!(out, "Kernel IP routing cache")?;
    writeln!(
        out,
        "{}",
        match flags.extend {
            0 => "Source          Destination     Gateway         Flags   MSS Window  irtt Iface",
            1 => "Source          Destination     Gateway         Flags Metric Ref    Use Iface",
            _ => "Source          Destination     Gateway         Flags Metric Ref    Use Iface    MSS   Window irtt  TOS HHRef HHUptod     SpecDst",
        }
    )?;
    Ok(())
}

/// `-r`: the IPv4 routing table (`-e` for Metric/Ref/Use, `-ee` for both).
pub fn routes(flags: &Flags, rows: &Rows, out: &mut (dyn Write + Send)) -> Result<(), Error> {
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
    let destination_host = rows.text_if(!numeric, "destination_host")?;
    let destination_network = rows.text_if(!numeric, "destination_network")?;
    let gateway_host = rows.text_if(!numeric, "gateway_host")?;
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
        let net = route_destination(
            destination[i].as_deref().unwrap_or(""),
            mask,
            bits & 0x4 != 0,
            numeric,
            (
                destination_host[i].as_deref(),
                destination_network[i].as_deref(),
            ),
        );
        let gate = route_gateway(
            gateway[i].as_deref().unwrap_or(""),
            gateway_host[i].as_deref(),
        );
        let mask = cut(mask, 15);
        let fl = text::route_flags(bits);
        let reject = bits & 0x200 != 0;
        // net-tools reads each number into a C int (`%d`): a metric of 4294967295 is -1.
        let v = |c: &Vec<Option<i64>>| c[i].unwrap_or(0) as i32;
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
pub fn statistics(flags: &Flags, rows: &Rows, out: &mut (dyn Write + Send)) -> Result<(), Error> {
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
    if flags.inet6_only() {
        stats::print_v6(&counters, sections, out)?;
    } else {
        stats::print_v4(&counters, sections, out)?;
    }
    Ok(())
}
