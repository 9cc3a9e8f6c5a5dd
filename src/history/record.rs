//! `netsql record`: snapshots on the wall clock's ticks (every :00 and :30 for 30s) until
//! a count, a period or a signal ends it. A snapshot that overruns its tick makes the
//! ticks it covered skip (counted), never pile up; one that fails is reported and the
//! next tick goes on; SIGINT and SIGTERM end it after the snapshot under way.

use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;

use super::dest::Dest;
use super::write::Written;
use crate::error::{Error, Exit};
use crate::exec::Runner;
use crate::interrupt::Termination;

/// How long and how often to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub every: Duration,
    pub count: Option<u64>,
    pub period: Option<Duration>,
    pub retain: Option<Duration>,
}

/// What a recording did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub written: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// The first tick of `every` strictly after `now` (ticks are multiples of `every` since
/// the epoch, so 30s ticks fall on :00 and :30).
pub fn next_tick(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let step = every.as_micros().max(1) as i64;
    let micros = now.timestamp_micros();
    let next = (micros.div_euclid(step) + 1) * step;
    DateTime::from_timestamp_micros(next).unwrap_or(now)
}

/// Sleeps until `when`, or until `stop` is raised: whether it was.
async fn wait_until(when: DateTime<Utc>, stop: &Termination) -> bool {
    loop {
        if stop.is_set() {
            return true;
        }
        // The wall clock, read again after each sleep: one stepped back meanwhile (NTP)
        // must not bring the same tick twice.
        let Ok(left) = (when - Utc::now()).to_std() else {
            return false;
        };
        if left.is_zero() {
            return false;
        }
        tokio::select! {
            () = stop.raised() => return true,
            () = tokio::time::sleep(left) => {}
        }
    }
}

/// A stream table (`socket_events`, `conntrack_events`) being listened to for the whole
/// recording: what it gathered since the last tick is written at each tick, as that
/// tick's file of the table.
struct Events {
    table: &'static str,
    gathered: Arc<Mutex<Vec<RecordBatch>>>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Events {
    async fn start(runner: &Runner<'_>, table: &'static str) -> Result<Events, Error> {
        let statement = runner
            .statements(&format!("SELECT * FROM {table}"))?
            .remove(0);
        let plan = runner.plan(statement, &BTreeMap::new()).await?;
        let mut stream = runner.stream(plan).await?;
        let gathered = Arc::new(Mutex::new(Vec::new()));
        let into = gathered.clone();
        let listener = tokio::spawn(async move {
            while let Some(batch) = stream.next().await {
                match batch {
                    Ok(batch) => into.lock().expect("no panic holding it").push(batch),
                    Err(err) => {
                        crate::warn!("netsql: {table}: {err}");
                        break;
                    }
                }
            }
        });
        Ok(Events {
            table,
            gathered,
            listener: Some(listener),
        })
    }

    /// Ends the stream after what the kernel has queued and waits until it is gathered.
    async fn finish(&mut self) {
        crate::interrupt::end_streams();
        if let Some(listener) = self.listener.take() {
            let _ = listener.await;
        }
    }

    /// Writes what was gathered, stamped `tick`. What a failed write held is kept for
    /// the next: events cannot be read again.
    async fn flush(&self, dest: &Dest, host: &str, tick: DateTime<Utc>) -> Result<Written, Error> {
        let batches = std::mem::take(&mut *self.gathered.lock().expect("no panic holding it"));
        let written = super::write::batches(dest, self.table, host, tick, &batches).await;
        if written.is_err() {
            let mut gathered = self.gathered.lock().expect("no panic holding it");
            let later = std::mem::replace(&mut *gathered, batches);
            gathered.extend(later);
            // While writes keep failing (a full disk), memory holds at most KEPT rows:
            // the oldest go, said in one line.
            let mut over = gathered
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
                .saturating_sub(KEPT);
            let oldest = gathered
                .iter()
                .take_while(|b| {
                    let take = over > 0;
                    over = over.saturating_sub(b.num_rows());
                    take
                })
                .count();
            let dropped: usize = gathered.drain(..oldest).map(|b| b.num_rows()).sum();
            if dropped > 0 {
                crate::warn!(
                    "netsql: {}: {dropped} events dropped: at most {KEPT} are kept while writes fail",
                    self.table
                );
            }
        }
        written
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

/// The most events of a stream table kept for the next tick while writes fail.
const KEPT: usize = 1_000_000;

/// Records until done; exit 2 when every snapshot failed, the events gathered at the end
/// could not be written, or no tick fell within `--for`.
pub async fn record(
    runner: &Runner<'_>,
    dest: &Dest,
    tables: &[String],
    host: &str,
    recording: &Recording,
) -> Result<Exit, Error> {
    let stop = crate::interrupt::termination()?;
    // Stream tables are listened to throughout, not read at ticks like the others.
    let streams = crate::tables::streams();
    let mut events = Vec::new();
    for &table in streams.iter().filter(|s| tables.iter().any(|t| t == *s)) {
        events.push(Events::start(runner, table).await?);
    }
    let tables: Vec<String> = tables
        .iter()
        .filter(|t| !streams.contains(&t.as_str()))
        .cloned()
        .collect();
    let tables = tables.as_slice();
    let started = Instant::now();
    let status = std::io::stderr().is_terminal();
    let mut tally = Tally::default();
    let mut tick = next_tick(Utc::now(), recording.every);
    loop {
        if let Some(period) = recording.period {
            let left = period.saturating_sub(started.elapsed());
            if (tick - Utc::now()).to_std().unwrap_or_default() > left {
                // No tick left in --for: the events still come until it runs out.
                let end = Utc::now() + chrono::Duration::from_std(left).unwrap_or_default();
                if !events.is_empty() {
                    wait_until(end, &stop).await;
                }
                break;
            }
        }
        if wait_until(tick, &stop).await {
            break;
        }
        let began = Instant::now();
        let wrote = async {
            let mut written = super::write::Written::default();
            super::write::snapshot(runner, dest, tables, host, tick, &mut written).await?;
            for events in &events {
                let more = events.flush(dest, host, tick).await?;
                written.rows += more.rows;
                written.bytes += more.bytes;
            }
            Ok::<_, Error>(written)
        };
        match wrote.await {
            Ok(written) => {
                tally.written += 1;
                tally.rows += written.rows;
                tally.bytes += written.bytes;
            }
            Err(err) => {
                tally.failed += 1;
                crate::warn!(
                    "{}netsql: snapshot at {}: {err}",
                    if status { "\n" } else { "" },
                    tick.format("%Y-%m-%dT%H:%M:%SZ")
                );
            }
        }
        if let Some(retain) = recording.retain {
            if let Err(err) = prune(dest, Utc::now(), retain).await {
                crate::warn!("netsql: --retain: {err}");
            }
        }
        if status {
            let _ = write!(
                std::io::stderr(),
                "\r{} snapshots, {} rows, {} bytes, last {} ms, {} failed, {} ticks skipped ",
                tally.written,
                tally.rows,
                tally.bytes,
                began.elapsed().as_millis(),
                tally.failed,
                tally.skipped
            );
        }
        if recording
            .count
            .is_some_and(|n| tally.written + tally.failed >= n)
            || stop.is_set()
        {
            break;
        }
        // Ticks that passed while the snapshot ran are skipped, not made up.
        let next = next_tick(Utc::now(), recording.every);
        let missed = ((next - tick).num_microseconds().unwrap_or(0)
            / recording.every.as_micros().max(1) as i64
            - 1)
        .max(0);
        if missed > 0 {
            tally.skipped += missed as u64;
            if !status {
                crate::warn!("netsql: a snapshot overran its interval: {missed} tick(s) skipped");
            }
        }
        tick = next;
    }
    // Events since the last tick are written too (what the kernel delivered before the
    // end included), stamped when the recording ended.
    let mut lost = false;
    for events in &mut events {
        events.finish().await;
        match events.flush(dest, host, Utc::now()).await {
            Ok(more) => tally.rows += more.rows,
            Err(err) => {
                lost = true;
                crate::warn!("netsql: {} at the end: {err}", events.table);
            }
        }
    }
    if status {
        crate::warn!();
    }
    // --for shorter than the time to the first tick: say so, not a silent success.
    let none = !tables.is_empty() && tally.written + tally.failed == 0 && !stop.is_set();
    if none {
        crate::warn!(
            "netsql: no tick (every {} s, on the clock's multiples) fell within --for: no \
             snapshot of {} was taken",
            recording.every.as_secs_f64(),
            tables.join(", ")
        );
    }
    Ok(
        if (tally.failed > 0 && tally.written == 0) || lost || none {
            Exit::Error
        } else {
            Exit::Success
        },
    )
}

/// Deletes every `date=` folder older than `retain` before `now`, under each table.
pub async fn prune(dest: &Dest, now: DateTime<Utc>, retain: Duration) -> Result<usize, Error> {
    let oldest =
        (now - chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX)).date_naive();
    let mut removed = 0;
    // Only netsql's own tables: a folder of the user's beside them (`my-notes/date=...`,
    // `_archive`) is not ours to delete.
    let tables: Vec<&str> = crate::tables::infos().iter().map(|t| t.name).collect();
    for table in dest.folders("").await? {
        if !tables.contains(&table.as_str()) {
            continue;
        }
        let Ok(partitions) = dest.folders(&table).await else {
            continue;
        };
        for partition in partitions {
            let Some(date) = partition
                .strip_prefix("date=")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if date < oldest {
                dest.remove(&format!("{table}/{partition}")).await?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ticks_fall_on_the_wall_clock() {
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 30, h, m, s).unwrap();
        let every = Duration::from_secs(30);
        assert_eq!(next_tick(at(4, 0, 1), every), at(4, 0, 30));
        assert_eq!(next_tick(at(4, 0, 30), every), at(4, 1, 0));
        assert_eq!(
            next_tick(at(4, 59, 59), Duration::from_secs(3600)),
            at(5, 0, 0)
        );
    }

    #[tokio::test]
    async fn retention_removes_whole_old_days() {
        let dest = tempfile::tempdir().unwrap();
        for day in ["2026-11-01", "2026-11-15", "2026-11-16", "2026-11-30"] {
            std::fs::create_dir_all(dest.path().join(format!("sockets/date={day}/host=h")))
                .unwrap();
        }
        std::fs::create_dir_all(dest.path().join("sockets/not-a-partition")).unwrap();
        // Folders that are no netsql table's keep their old days.
        for other in ["my-notes", "_archive"] {
            std::fs::create_dir_all(dest.path().join(format!("{other}/date=2026-11-01"))).unwrap();
        }
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let local = Dest::Local(dest.path().to_path_buf());
        let removed = prune(&local, now, Duration::from_secs(14 * 86400))
            .await
            .unwrap();
        assert_eq!(removed, 2);
        let mut left: Vec<String> = std::fs::read_dir(dest.path().join("sockets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["date=2026-11-16", "date=2026-11-30", "not-a-partition"]
        );
        for other in ["my-notes", "_archive"] {
            assert!(dest
                .path()
                .join(format!("{other}/date=2026-11-01"))
                .is_dir());
        }
    }
}
