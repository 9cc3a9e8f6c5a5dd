//! `netsql netstat FLAGS --format ...`: the views' typed rows, written as CSV, JSON and
//! Parquet, read back (Parquet by pyarrow), the same in every format and the same rows
//! net-tools netstat prints as text in the same namespace. `-q netstat_inet` with the
//! parameters netstat -tan sets returns those rows too.

#[path = "common/mod.rs"]
mod common;
#[path = "netns_sockets/made.rs"]
mod made;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{Netns, RunExt};
use serde_json::Value;

type Row = BTreeMap<String, String>;

/// Reads a CSV, JSON or Parquet file into rows of text values (NULL as "").
const READ: &str = "import sys, csv, json\n\
fmt, path = sys.argv[1], sys.argv[2]\n\
if fmt == 'csv':\n    rows = list(csv.DictReader(open(path)))\n\
elif fmt == 'json':\n    rows = json.load(open(path))\n\
else:\n    import pyarrow.parquet as pq\n    rows = pq.read_table(path).to_pylist()\n\
print(json.dumps([{k: '' if v is None else str(v) for k, v in r.items()} for r in rows]))\n";

fn read(format: &str, path: &Path) -> Vec<Row> {
    let out = Command::new("python3")
        .args(["-c", READ, format, path.to_str().unwrap()])
        .run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<BTreeMap<String, Value>> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .collect()
}

/// `netsql netstat FLAGS --format FORMAT --output FILE`, read back.
fn typed(ns: &Netns, dir: &Path, flags: &str, format: &str) -> Vec<Row> {
    let path = dir.join(format!("rows.{format}"));
    let mut argv = vec!["netstat"];
    argv.extend(flags.split_whitespace());
    argv.extend(["--format", format, "--output", path.to_str().unwrap()]);
    let out = ns.netsql(&argv);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "netstat {flags} --format {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    read(format, &path)
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

/// The same rows in all three formats, as `key` picks their fields; retried once, as
/// a socket may change state between runs.
fn formats_agree(
    ns: &Netns,
    dir: &Path,
    flags: &str,
    key: fn(&Row) -> Vec<String>,
) -> Vec<Vec<String>> {
    let all = || {
        ["csv", "json", "parquet"]
            .map(|format| sorted(typed(ns, dir, flags, format).iter().map(key).collect()))
    };
    let mut got = all();
    if got[0] != got[1] || got[1] != got[2] {
        got = all();
    }
    assert_eq!(got[0], got[1], "netstat {flags}: csv vs json");
    assert_eq!(got[1], got[2], "netstat {flags}: json vs parquet");
    got[0].clone()
}

/// `addr:port` as netstat -n prints an endpoint (`*` for port 0).
fn endpoint(row: &Row, address: &str, port: &str) -> String {
    let port = match row[port].as_str() {
        "0" => "*",
        p => p,
    };
    format!("{}:{port}", row[address])
}

/// Data lines of a net-tools netstat run, after its `skip` heading lines.
fn netstat_lines(ns: &Netns, flags: &str, skip: usize) -> Vec<Vec<String>> {
    let mut argv = vec!["netstat"];
    argv.extend(flags.split_whitespace());
    ns.exec_ok(&argv)
        .lines()
        .skip(skip)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn typed_rows_match_the_text_views() {
    let Some(ns) = Netns::create("netstat-rows", &["iptables", "netstat", "python3"]) else {
        return;
    };
    // A route in the main table for -rn to show.
    ns.exec_ok(&["ip", "addr", "add", "10.9.0.1/24", "dev", "lo"]);
    ns.exec_ok(&["ip", "route", "add", "10.10.0.0/16", "dev", "lo"]);
    ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.9.0.254",
        "dev",
        "lo",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let made = {
        let name = ns.name.clone();
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).unwrap();
        ns.within(move || made::build(name, sockets))
    };
    let dir = dir.path();

    // -tanW: every field netstat prints, from the typed rows (read twice if a socket
    // changed state between the runs).
    let tan = || {
        let ours = formats_agree(&ns, dir, "-tanW", |r| {
            vec![
                r["proto"].clone(),
                r["recv_q"].clone(),
                r["send_q"].clone(),
                endpoint(r, "local_address", "local_port"),
                endpoint(r, "remote_address", "remote_port"),
                r["state"].clone(),
            ]
        });
        (ours, sorted(netstat_lines(&ns, "-tanW", 2)))
    };
    let (mut ours, mut theirs) = tan();
    if ours != theirs {
        (ours, theirs) = tan();
    }
    assert_eq!(ours, theirs, "netstat -tanW");
    assert!(ours.len() > 10, "{ours:?}");

    // -xa: the inode of every unix socket (netstat's state column may be blank).
    let ours = formats_agree(&ns, dir, "-xa", |r| vec![r["inode"].clone()]);
    let theirs = sorted(
        netstat_lines(&ns, "-xa", 2)
            .into_iter()
            .map(|f| {
                let kind = f
                    .iter()
                    .position(|t| ["STREAM", "DGRAM", "SEQPACKET"].contains(&t.as_str()))
                    .unwrap();
                let inode = f[kind + 1..].iter().find(|t| t.parse::<u64>().is_ok());
                vec![inode.unwrap().clone()]
            })
            .collect(),
    );
    assert_eq!(ours, theirs, "netstat -xa inodes");

    // -rn: destination, gateway, mask, interface.
    let ours = formats_agree(&ns, dir, "-rn", |r| {
        vec![
            r["destination"].clone(),
            r["gateway"].clone(),
            r["netmask"].clone(),
            r["interface"].clone(),
        ]
    });
    let theirs = sorted(
        netstat_lines(&ns, "-rn", 2)
            .into_iter()
            .map(|f| vec![f[0].clone(), f[1].clone(), f[2].clone(), f[7].clone()])
            .collect(),
    );
    assert_eq!(ours, theirs, "netstat -rn");
    assert!(!ours.is_empty());

    // -i: the interfaces that are up, with their MTU.
    let ours = formats_agree(&ns, dir, "-i", |r| {
        vec![r["name"].clone(), r["mtu"].clone()]
    });
    let theirs = sorted(
        netstat_lines(&ns, "-i", 2)
            .into_iter()
            .map(|f| vec![f[0].clone(), f[1].clone()])
            .collect(),
    );
    assert_eq!(ours, theirs, "netstat -i");

    // -s: every counter of /proc/net/snmp, by protocol and name.
    let ours: Vec<Vec<String>> = formats_agree(&ns, dir, "-s", |r| {
        vec![r["file"].clone(), r["protocol"].clone(), r["name"].clone()]
    })
    .into_iter()
    .filter(|k| k[0] == "snmp")
    .map(|k| vec![k[1].clone(), k[2].clone()])
    .collect();
    let snmp = ns.exec_ok(&["cat", "/proc/net/snmp"]);
    let lines: Vec<&str> = snmp.lines().collect();
    let mut theirs = Vec::new();
    for pair in lines.chunks(2) {
        let (protocol, names) = pair[0].split_once(": ").unwrap();
        for name in names.split_whitespace() {
            theirs.push(vec![protocol.to_string(), name.to_string()]);
        }
    }
    assert_eq!(ours, sorted(theirs), "netstat -s counters");

    // -q netstat_inet with what -tan sets gives the rows netstat -tan --format csv does.
    let tan: Vec<Row> = typed(&ns, dir, "-tan", "csv");
    let columns: Vec<String> = tan[0].keys().cloned().collect();
    let out = ns.netsql(&[
        "--format",
        "csv",
        "-o",
        dir.join("q.csv").to_str().unwrap(),
        "-q",
        "netstat_inet",
        "-p",
        "protocols=tcp,tcp6",
        "-p",
        "servers=all",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: Vec<Row> = read("csv", &dir.join("q.csv"))
        .into_iter()
        .map(|r| r.into_iter().filter(|(k, _)| columns.contains(k)).collect())
        .collect();
    let proto_order = |rows: &[Row]| -> Vec<String> {
        let mut order: Vec<String> = rows.iter().map(|r| r["proto"].clone()).collect();
        order.dedup();
        order
    };
    // netstat's order: all tcp, then tcp6.
    assert_eq!(proto_order(&tan), ["tcp", "tcp6"]);
    assert_eq!(proto_order(&saved), ["tcp", "tcp6"]);
    let key = |rows: &[Row]| sorted(rows.iter().map(|r| r.values().cloned().collect()).collect());
    if key(&tan) != key(&saved) {
        // A socket may change state between the two runs: once more.
        let again = typed(&ns, dir, "-tan", "csv");
        assert_eq!(key(&again), key(&saved), "-q netstat_inet vs netstat -tan");
    }

    // -o FILE.parquet before the netstat word: real Parquet, pyarrow reads it.
    let parquet = dir.join("tan.parquet");
    let out = ns.netsql(&["-o", parquet.to_str().unwrap(), "netstat", "-tan"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same rows as --format csv gave (which net-tools netstat vouched for above).
    let written = read("parquet", &parquet);
    if key(&written) != key(&tan) {
        let again = typed(&ns, dir, "-tan", "csv");
        assert_eq!(key(&written), key(&again), "-o FILE.parquet netstat -tan");
    }

    // A format that holds one result and a netstat that prints two: one line, no file.
    let both = dir.join("both.parquet");
    let out = ns.netsql(&["-o", both.to_str().unwrap(), "netstat", "-a"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds one result") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!both.exists());
    drop(made);
}
