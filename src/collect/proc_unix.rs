//! `/proc/net/unix`: the fallback unix socket source (net/unix/af_unix.c `unix_seq_show`).
//!
//! Written here rather than with procfs's `UnixNetEntry` because that drops the Flags
//! column (`__SO_ACCEPTCON` marks a listener; netstat -x shows it as `[ ACC ]`).

use std::collections::HashMap;
use std::io::BufRead;

use super::socket_row::{path_text, Family, Protocol, SockType, SocketRow, State};
use super::{open_optional, CollectError, ParseFail, Root};

/// `__SO_ACCEPTCON` in include/linux/net.h: the socket is listening.
pub const SO_ACCEPTCON: u32 = 1 << 16;

/// One line of /proc/net/unix with the fields netstat -x shows beyond [`SocketRow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixEntry {
    pub ref_count: u32,
    pub flags: u32,
    pub row: SocketRow,
}

pub fn read(root: &Root) -> Result<Vec<UnixEntry>, CollectError> {
    let path = root.proc_path("net/unix");
    let Some(reader) = open_optional(&path)? else {
        return Ok(Vec::new());
    };
    parse(reader, &path.display().to_string()).map_err(|err| err.at(&path))
}

/// Each socket's RefCount by inode, for the rows sock_diag gave. An inode on two records
/// that disagree is left out (its `unix_refcnt` NULL): the kernel prints a path's bytes
/// as they are, newlines too, so a path can hold a whole made-up record naming another
/// socket's inode, and which of the two is the kernel's cannot be told.
pub fn extras(root: &Root) -> Result<HashMap<u64, u32>, CollectError> {
    Ok(believed(read(root)?))
}

fn believed(entries: Vec<UnixEntry>) -> HashMap<u64, u32> {
    let mut found: HashMap<u64, Option<UnixEntry>> = HashMap::new();
    for entry in entries {
        found
            .entry(entry.row.inode)
            .and_modify(|seen| {
                if seen.as_ref() != Some(&entry) {
                    *seen = None;
                }
            })
            .or_insert(Some(entry));
    }
    found
        .into_iter()
        .filter_map(|(inode, entry)| Some((inode, entry?.ref_count)))
        .collect()
}

/// Parses a whole file (header line first); `file` names it in errors. The kernel ends
/// a record with a newline but writes a path's newlines as they are (`unix_seq_show`,
/// net/unix/af_unix.c), so a path may hold lines, even whole records. A line that is not
/// a record is more of the nearest record above it with a path; the records between
/// were text of that path too (a record without a path is followed by a record).
pub fn parse(reader: impl BufRead, file: &str) -> Result<Vec<UnixEntry>, ParseFail> {
    // Each entry with its raw line, to fold it back into a path.
    let mut entries: Vec<(UnixEntry, Vec<u8>)> = Vec::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(ParseFail::Io)?;
        if index == 0 {
            continue; // the column header
        }
        let failure = match parse_line(&line) {
            Ok(Some(entry)) => {
                entries.push((entry, line));
                continue;
            }
            Ok(None) => None,
            Err(failure) => Some(failure),
        };
        let Some(owner) = entries.iter().rposition(|(e, _)| e.row.path.is_some()) else {
            match failure {
                None => continue, // a blank line
                Some((field, reason)) => {
                    return Err(ParseFail::Line(CollectError::Parse {
                        file: file.to_string(),
                        line: index + 1,
                        field,
                        reason,
                    }))
                }
            }
        };
        let folded: Vec<Vec<u8>> = entries.drain(owner + 1..).map(|(_, raw)| raw).collect();
        let path = entries[owner]
            .0
            .row
            .path
            .as_mut()
            .expect("found by its path");
        for raw in folded.iter().chain([&line]) {
            path.push('\n');
            path.push_str(&path_text(raw));
        }
    }
    Ok(entries.into_iter().map(|(entry, _)| entry).collect())
}

/// `Num: RefCount Protocol Flags Type St Inode [Path]`. The path is everything after one
/// space following the inode: it may itself contain spaces. Bytes, not text: a path may
/// be any bytes but NUL. Blank lines give `None`.
pub fn parse_line(line: &[u8]) -> Result<Option<UnixEntry>, (&'static str, String)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut rest = line;
    let mut field = |name: &'static str| -> Result<&[u8], (&'static str, String)> {
        let start = rest
            .iter()
            .position(|b| *b != b' ')
            .ok_or((name, "missing".to_string()))?;
        let tail = &rest[start..];
        let end = tail.iter().position(|b| *b == b' ').unwrap_or(tail.len());
        let (value, after) = tail.split_at(end);
        rest = after;
        Ok(value)
    };
    let num = field("Num")?;
    if !num.ends_with(b":") {
        return Err((
            "Num",
            format!("{:?} does not end with ':'", String::from_utf8_lossy(num)),
        ));
    }
    let ref_count = hex(field("RefCount")?).map_err(|e| ("RefCount", e))?;
    let _protocol = field("Protocol")?;
    let flags = hex(field("Flags")?).map_err(|e| ("Flags", e))?;
    let sock_type = hex(field("Type")?).map_err(|e| ("Type", e))?;
    let st = hex(field("St")?).map_err(|e| ("St", e))?;
    let inode = std::str::from_utf8(field("Inode")?)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(("Inode", "not a decimal number".to_string()))?;
    let path = match rest.strip_prefix(b" ") {
        Some(path) if !path.is_empty() => Some(path_text(path)),
        _ => None,
    };
    let sock_type =
        u16::try_from(sock_type).map_err(|_| ("Type", format!("{sock_type} is too large")))?;
    Ok(Some(UnixEntry {
        ref_count,
        flags,
        row: SocketRow {
            protocol: Protocol::Unix,
            family: Family::Unix,
            sock_type: SockType::from_raw(sock_type),
            state: state_of(flags, st),
            inode,
            path,
            ..SocketRow::default()
        },
    }))
}

/// /proc/net/unix shows `socket->state` (SS_*), not `sk_state` as unix_diag does; map it to
/// the same vocabulary. A listener is SS_UNCONNECTED with `__SO_ACCEPTCON` set.
fn state_of(flags: u32, st: u32) -> State {
    if flags & SO_ACCEPTCON != 0 {
        return State::Listen;
    }
    match st {
        1 => State::Close,       // SS_UNCONNECTED
        2 => State::SynSent,     // SS_CONNECTING
        3 => State::Established, // SS_CONNECTED
        4 => State::Closing,     // SS_DISCONNECTING
        other => State::Unknown(other.min(255) as u8),
    }
}

fn hex(field: &[u8]) -> Result<u32, String> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or_else(|| format!("{:?} is not hex", String::from_utf8_lossy(field)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The layout unix_seq_show prints: a listener with a path containing a space, a
    // connected stream socket with no name, an abstract dgram socket, a seqpacket socket.
    const UNIX: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 30001 /tmp/a b.sock
0000000000000000: 00000003 00000000 00000000 0001 03 30002
0000000000000000: 00000002 00000000 00000000 0002 01 30003 @netsql@test
0000000000000000: 00000002 00000000 00000000 0005 03 30004
";

    #[test]
    fn parses_every_kind() {
        let entries = parse(UNIX.as_bytes(), "net/unix").unwrap();
        assert_eq!(entries.len(), 4);
        let listener = &entries[0];
        assert_eq!(listener.row.state, State::Listen);
        assert_eq!(listener.flags, SO_ACCEPTCON);
        assert_eq!(listener.ref_count, 2);
        assert_eq!(listener.row.path.as_deref(), Some("/tmp/a b.sock"));
        assert_eq!(listener.row.sock_type, SockType::Stream);
        assert_eq!(entries[1].row.state, State::Established);
        assert_eq!(entries[1].row.path, None);
        assert_eq!(entries[1].row.inode, 30002);
        assert_eq!(entries[2].row.sock_type, SockType::Dgram);
        assert_eq!(entries[2].row.state, State::Close);
        assert_eq!(entries[2].row.path.as_deref(), Some("@netsql@test"));
        assert_eq!(entries[3].row.sock_type, SockType::SeqPacket);
    }

    #[test]
    fn malformed_lines_name_the_field() {
        let cases: [(&[u8], &str); 5] = [
            (b"0000: 00000002", "Protocol"),
            (b"0000 00000002 0 0 1 1 5", "Num"),
            (b"0000: 0000000Z 0 0 1 1 5", "RefCount"),
            (b"0000: 2 0 0 1 1 inode", "Inode"),
            (b"0000: 2 0 0 FFFFF 1 5", "Type"),
        ];
        for (line, field) in cases {
            let err = parse_line(line).unwrap_err();
            assert_eq!(err.0, field, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(parse_line(b"   \n").unwrap(), None);
    }

    // A socket bound to "/tmp/nl\nfile", then one to "/tmp/end\n" (its newline makes an
    // empty line), then a nameless one: each path's newlines are the path's.
    const NEWLINES: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 40001 /tmp/nl
file
0000000000000000: 00000002 00000000 00000000 0002 01 40002 /tmp/end

0000000000000000: 00000003 00000000 00000000 0001 03 40003
";

    /// Each record's inode and path.
    fn paths(file: &str) -> Vec<(u64, Option<String>)> {
        parse(file.as_bytes(), "net/unix")
            .unwrap()
            .into_iter()
            .map(|e| (e.row.inode, e.row.path))
            .collect()
    }

    #[test]
    fn a_newline_in_a_path_is_part_of_it() {
        let some = |path: &str| Some(path.to_string());
        assert_eq!(
            paths(NEWLINES),
            [
                (40001, some("/tmp/nl\nfile")),
                (40002, some("/tmp/end\n")),
                (40003, None)
            ]
        );
        // With no record above it that has a path, a line that is not a record is an
        // error: no path can hold it.
        let broken = "header\n0000: 00000002 0 0 1 1 5\nfile\n";
        assert!(parse(broken.as_bytes(), "net/unix").is_err());
        // A made-up record without a path, then more text: all of it is the path above.
        let forged = "header\n\
                      0000: 00000002 0 0 1 1 5 @x\n\
                      0000: 00000002 0 0 1 1 6\n\
                      zzz junk\n\
                      0000: 00000002 0 0 1 1 7\n";
        assert_eq!(
            paths(forged),
            [
                (5, some("@x\n0000: 00000002 0 0 1 1 6\nzzz junk")),
                (7, None)
            ]
        );
    }

    #[test]
    fn two_records_for_one_inode_that_disagree_are_not_believed() {
        // Socket 40002's path holds a made-up record for socket 40001 (refcount 99,
        // listening): the two records of 40001 disagree.
        let file = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000003 00000000 00000000 0001 03 40001
0000000000000000: 00000002 00000000 00000000 0002 01 40002 @x
0000000000000000: 00000063 00000000 00010000 0005 01 40001 /fake
0000000000000000: 00000002 00000000 00000000 0002 01 40003 @y
0000000000000000: 00000002 00000000 00000000 0002 01 40003 @y
";
        let extras = believed(parse(file.as_bytes(), "net/unix").unwrap());
        assert_eq!(extras.get(&40001), None);
        assert_eq!(extras.get(&40002), Some(&2));
        // The same record twice (a seq_file read restarted) is still believed.
        assert_eq!(extras.get(&40003), Some(&2));
    }
}
