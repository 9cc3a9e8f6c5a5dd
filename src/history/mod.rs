//! History: the live tables written as a hive-partitioned Parquet dataset
//! (`DEST/<table>/date=YYYY-MM-DD/host=<host>/<YYYYMMDDTHHMMSSZ>-<id>.parquet`), and that
//! dataset read back as `history.<table>` listing tables.
//!
//! The files hold `taken` (first) and the table's columns; `date` and `host` live in the
//! path only. A column both in the files and in the partition path is refused by
//! DataFusion's listing tables and is ambiguous to Spark, so each is stored once.

pub mod ddl;
pub mod dest;
pub mod read;
pub mod record;
pub mod skip_corrupt;
pub mod write;

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The tables a snapshot writes unless `--tables` says otherwise.
pub const DEFAULT_TABLES: [&str; 4] = ["sockets", "socket_owners", "processes", "interfaces"];

/// Where one table's file of one snapshot goes, relative to DEST.
pub fn file_path(table: &str, host: &str, taken: DateTime<Utc>, id: &str) -> String {
    format!(
        "{table}/date={}/host={host}/{}-{id}.parquet",
        taken.format("%Y-%m-%d"),
        taken.format("%Y%m%dT%H%M%SZ")
    )
}

/// A host name fit for a path segment: what is not `[A-Za-z0-9._-]` becomes `_`.
pub fn path_safe(host: &str) -> String {
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// The longest duration taken: a hundred years.
const MAX_DURATION_DAYS: u64 = 36525;

/// `30s`, `5m`, `6h`, `14d` (or a bare number of seconds), at most a hundred years.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 5m, 6h, 14d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    // Every duration is added to a clock reading somewhere: one no clock can hold would
    // panic there (or, multiplied past u64, wrap to a short one).
    let seconds = n
        .checked_mul(per)
        .filter(|&s| s <= MAX_DURATION_DAYS * 86400)
        .ok_or_else(|| format!("{text:?}: at most {MAX_DURATION_DAYS}d"))?;
    if seconds == 0 {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn files_land_in_hive_partitions() {
        let taken = Utc.with_ymd_and_hms(2026, 11, 30, 4, 5, 6).unwrap();
        assert_eq!(
            file_path("sockets", "web-1", taken, "ab12"),
            "sockets/date=2026-11-30/host=web-1/20261130T040506Z-ab12.parquet"
        );
        assert_eq!(path_safe("web 1/../x"), "web_1_.._x");
        assert_eq!(path_safe(".."), "_..");
        assert_eq!(path_safe(""), "_");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(
            parse_duration("36525d"),
            Ok(Duration::from_secs(36525 * 86400))
        );
        // Past what a clock can add, or what u64 can multiply: refused, never wrapped.
        for text in ["36526d", "18446744073709551615s", "213503982334602d"] {
            assert_eq!(
                parse_duration(text),
                Err(format!("{text:?}: at most 36525d"))
            );
        }
    }
}
