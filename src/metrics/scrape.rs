//! One scrape: every live table the metric queries read is collected once (one walk of
//! /proc, one dump per table) into memory, then every query runs against those copies,
//! each by the scrape's deadline. A query that fails or runs late loses its own samples
//! and nothing else.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use tokio::time::Instant;

use super::exposition::{float, Sample};
use super::family::{Family, Kind};
use crate::exec::{Captured, OneMoment, Runner};
use crate::tables::TablesConfig;

/// What one scrape found.
#[derive(Debug, Default)]
pub struct Scraped {
    /// Per family, in the families' order: its samples, or why it has none.
    pub answers: Vec<Answer>,
    /// Each table collected, and how long it took.
    pub collected: Vec<(String, Duration)>,
}

#[derive(Debug)]
pub struct Answer {
    pub samples: Vec<Sample>,
    pub took: Duration,
    pub error: Option<String>,
}

/// When a scrape's queries must end: its first scraper's time, moved later by each
/// scraper that joins it with more (a scraper with a short timeout must not cut the
/// queries another scraper waits for).
#[derive(Clone, Debug)]
pub struct Deadline(Arc<std::sync::Mutex<Instant>>);

impl Deadline {
    pub fn new(at: Instant) -> Deadline {
        Deadline(Arc::new(std::sync::Mutex::new(at)))
    }

    fn at(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves it to `at`, if that is later.
    pub fn extend(&self, at: Instant) {
        let mut current = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *current = (*current).max(at);
    }

    /// `work`'s output, or `None` once the deadline (as it stands then) has passed.
    pub async fn run<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            let at = self.at();
            tokio::select! {
                // Work that is done wins over a deadline already past, as with timeout_at:
                // the queries after a late one are awaited after the deadline.
                biased;
                done = &mut work => return Some(done),
                () = tokio::time::sleep_until(at) => {
                    if self.at() <= at {
                        return None;
                    }
                }
            }
        }
    }
}

/// Runs every family's query by `deadline`.
/// `busy[i]` says whether family i's query still runs from an earlier scrape.
pub async fn scrape(
    tables: &TablesConfig,
    families: &[Family],
    busy: &[Arc<AtomicBool>],
    deadline: &Deadline,
) -> Scraped {
    let ctx = match crate::exec::context(tables) {
        Ok(ctx) => ctx,
        Err(err) => return all_failed(families, &err.to_string()),
    };
    let runner = Runner::queries(&ctx, &tables.root);
    let mut scraped = Scraped::default();
    // Why a table could not be collected: its queries fail with that.
    let mut missing: BTreeMap<String, String> = BTreeMap::new();
    {
        // Each table once, with the columns any query reads of it.
        let mut wanted: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
        for family in families {
            for (table, columns) in &family.columns {
                wanted.entry(table).or_default().extend(columns);
            }
        }
        let dump = crate::tables::moment_dump(wanted.iter().map(|(table, columns)| {
            let columns = columns.iter().map(|c| c.as_str()).collect();
            (table.as_str(), Some(columns))
        }));
        let _moment = OneMoment::begin(&ctx, dump);
        for (table, columns) in wanted {
            let started = Instant::now();
            match collect(&runner, table, &columns, deadline).await {
                Ok(copy) => {
                    let _ = ctx.deregister_table(table.as_str());
                    if let Err(err) = ctx.register_table(table.as_str(), Arc::new(copy)) {
                        missing.insert(table.clone(), err.to_string());
                    }
                }
                Err(err) => {
                    missing.insert(table.clone(), err);
                }
            }
            scraped.collected.push((table.clone(), started.elapsed()));
        }
    }
    // Each query on a thread of its own: one that computes for seconds between two
    // yields holds up neither the others, nor the timer that ends it, nor the server.
    let started = Instant::now();
    let running: Vec<_> = families
        .iter()
        .zip(busy)
        .map(|(family, busy)| {
            let mut blocked = family.columns.keys().find_map(|t| missing.get(t)).cloned();
            let was_busy = busy.swap(true, Ordering::AcqRel);
            if was_busy {
                blocked = Some("still running from an earlier scrape".to_string());
            }
            let (ctx, root, family) = (ctx.clone(), tables.root.clone(), family.clone());
            let busy = Busy(busy.clone(), !was_busy);
            on_own_thread(async move {
                let _busy = busy;
                if let Some(why) = blocked {
                    return (Err(why), Duration::ZERO);
                }
                let runner = Runner::queries(&ctx, &root);
                let result = answer(&runner, &family).await;
                (result, started.elapsed())
            })
        })
        .collect();
    for (done, cancel) in running {
        let (result, took) = match deadline.run(done).await {
            Some(Ok(done)) => done,
            Some(Err(_)) => (
                Err("the query's thread ended without an answer".to_string()),
                started.elapsed(),
            ),
            None => {
                drop(cancel); // it stops at its next yield
                (Err(late()), started.elapsed())
            }
        };
        scraped.answers.push(match result {
            Ok(samples) => Answer {
                samples,
                took,
                error: None,
            },
            Err(error) => Answer {
                samples: Vec::new(),
                took,
                error: Some(error),
            },
        });
    }
    scraped
}

/// Runs `work` on a new thread with a runtime of its own; its answer comes on the first
/// channel, and dropping the second ends it at its next yield.
fn on_own_thread<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> (
    tokio::sync::oneshot::Receiver<T>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (answer, done) = tokio::sync::oneshot::channel();
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("netsql-metric".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            else {
                return; // the answer channel closes: an error to the scrape
            };
            runtime.block_on(async move {
                tokio::select! {
                    value = work => { let _ = answer.send(value); }
                    _ = cancelled => {}
                }
            });
        });
    // No thread to be had: the answer channel is already closed, an error to the scrape.
    drop(spawned);
    (done, cancel)
}

fn all_failed(families: &[Family], why: &str) -> Scraped {
    Scraped {
        answers: families
            .iter()
            .map(|_| Answer {
                samples: Vec::new(),
                took: Duration::ZERO,
                error: Some(why.to_string()),
            })
            .collect(),
        collected: Vec::new(),
    }
}

fn late() -> String {
    "not finished within the scrape's time".to_string()
}

impl Scraped {
    /// Whether no query answered and some ran out of time: the scrape's time was too
    /// short to say anything (a scraper's tiny timeout header), not a scrape whose
    /// queries fail. Such a scrape replaces no good one.
    pub fn nothing_in_time(&self) -> bool {
        let late = late();
        self.answers.iter().all(|a| a.error.is_some())
            && self
                .answers
                .iter()
                .any(|a| a.error.as_deref() == Some(late.as_str()))
    }
}

/// Marks a family's query as no longer running when its thread ends (when it owns the
/// mark: a query that did not start leaves its predecessor's).
struct Busy(Arc<AtomicBool>, bool);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(false, Ordering::Release);
        }
    }
}

/// One live table's `columns` (its first when none: a count reads no column), in memory.
async fn collect(
    runner: &Runner<'_>,
    table: &str,
    columns: &BTreeSet<&String>,
    deadline: &Deadline,
) -> Result<MemTable, String> {
    let list = if columns.is_empty() {
        let provider = runner
            .ctx
            .table_provider(table)
            .await
            .map_err(|e| e.to_string())?;
        format!("\"{}\"", provider.schema().field(0).name())
    } else {
        columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let captured = deadline
        .run(runner.collect(&format!("SELECT {list} FROM {table}"), &BTreeMap::new()))
        .await
        .ok_or_else(|| format!("{table}: {}", late()))?
        .map_err(|e| e.to_string())?;
    MemTable::try_new(captured.schema, vec![captured.batches]).map_err(|e| e.to_string())
}

/// One family's samples.
async fn answer(runner: &Runner<'_>, family: &Family) -> Result<Vec<Sample>, String> {
    let result = runner
        .collect(&family.sql, &family.params)
        .await
        .map_err(|e| e.to_string())?;
    samples(family, &result)
}

/// A query's rows as samples, NULL values skipped. A label set repeated, or a counter
/// below zero or NaN (which OpenMetrics forbids), fails the family: none of its samples
/// are served.
fn samples(family: &Family, result: &Captured) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut seen: HashSet<Vec<(String, String)>> = HashSet::new();
    let mut repeated = 0usize;
    let options = FormatOptions::default().with_null("");
    for batch in &result.batches {
        let labels = family
            .labels
            .iter()
            .map(|name| column(batch, name))
            .collect::<Result<Vec<_>, _>>()?;
        let formatters = labels
            .iter()
            .map(|array| ArrayFormatter::try_new(array.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let values = family
            .values
            .iter()
            .map(|name| column(batch, name).and_then(|a| numbers(&a)))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let base: Vec<(String, String)> = family
                .labels
                .iter()
                .zip(&formatters)
                .map(|(name, f)| (name.clone(), f.value(row).to_string()))
                .collect();
            if family.kind == Kind::Info {
                if seen.insert(base.clone()) {
                    samples.push(Sample {
                        labels: base,
                        value: "1".into(),
                    });
                } else {
                    repeated += 1;
                }
                continue;
            }
            for (name, value) in family.values.iter().zip(&values) {
                let Some(value) = value[row].clone() else {
                    continue;
                };
                if family.kind == Kind::Counter && (value.starts_with('-') || value == "NaN") {
                    return Err(format!(
                        "a counter is never negative or NaN; column {name:?} has {value}"
                    ));
                }
                let mut labels = base.clone();
                if family.values.len() > 1 {
                    labels.push(("value".into(), name.clone()));
                }
                if seen.insert(labels.clone()) {
                    samples.push(Sample { labels, value });
                } else {
                    repeated += 1;
                }
            }
        }
    }
    if repeated > 0 {
        return Err(format!(
            "{repeated} rows repeat another row's labels: add the column that tells them apart to the labels"
        ));
    }
    Ok(samples)
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, String> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| format!("the query no longer answers a column {name:?}"))
}

/// A value column as written values (None for NULL): integers exactly.
fn numbers(array: &ArrayRef) -> Result<Vec<Option<String>>, String> {
    use datafusion::arrow::array::{Float64Array, Int64Array, UInt64Array};
    let fail = |e: datafusion::arrow::error::ArrowError| e.to_string();
    let data_type = array.data_type();
    Ok(if data_type.is_signed_integer() {
        let ints = cast(array, &DataType::Int64).map_err(fail)?;
        let ints = ints.as_any().downcast_ref::<Int64Array>().expect("cast");
        ints.iter().map(|v| v.map(|v| v.to_string())).collect()
    } else if data_type.is_unsigned_integer() || *data_type == DataType::Boolean {
        let ints = cast(array, &DataType::UInt64).map_err(fail)?;
        let ints = ints.as_any().downcast_ref::<UInt64Array>().expect("cast");
        ints.iter().map(|v| v.map(|v| v.to_string())).collect()
    } else {
        let floats = cast(array, &DataType::Float64).map_err(fail)?;
        let floats = floats
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast");
        floats.iter().map(|v| v.map(float)).collect()
    })
}
