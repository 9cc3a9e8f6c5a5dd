use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use datafusion::arrow::array::{Array, Int64Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::*;

/// A table of `rows` numbers that records every scan it serves.
#[derive(Debug)]
struct Counting {
    rows: u64,
    collects: AtomicUsize,
    projections: Mutex<Vec<Vec<usize>>>,
    limits: Mutex<Vec<Option<usize>>>,
}

impl Counting {
    fn new(rows: u64) -> Arc<Self> {
        Arc::new(Counting {
            rows,
            collects: AtomicUsize::new(0),
            projections: Mutex::new(Vec::new()),
            limits: Mutex::new(Vec::new()),
        })
    }
}

impl LiveTable for Counting {
    fn name(&self) -> &'static str {
        "numbers"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("square", DataType::UInt64, false),
        ]))
    }

    fn collect(&self, scan: &Scan) -> Result<Box<dyn Collected>> {
        self.collects.fetch_add(1, Ordering::SeqCst);
        self.projections
            .lock()
            .unwrap()
            .push(scan.projection.clone());
        self.limits.lock().unwrap().push(scan.limit);
        let columns = scan
            .projection
            .iter()
            .map(|&i| {
                let values: UInt64Array = (0..self.rows)
                    .map(|n| if i == 0 { n } else { n * n })
                    .collect();
                Arc::new(values) as _
            })
            .collect();
        let options = datafusion::arrow::array::RecordBatchOptions::new()
            .with_row_count(Some(self.rows as usize));
        Ok(Box::new(RecordBatch::try_new_with_options(
            scan.schema.clone(),
            columns,
            &options,
        )?))
    }
}

/// A session with `table` (and nothing else) registered as sessions register theirs.
fn with(table: Arc<dyn LiveTable>) -> SessionContext {
    let ctx = SessionContext::new();
    let name = table.name();
    let maker: Maker = Box::new(move || table);
    register_lazy(&ctx, vec![(name, maker)]).unwrap();
    ctx
}

fn context(table: Arc<Counting>) -> SessionContext {
    with(table)
}

#[tokio::test]
async fn a_table_is_made_when_first_named() {
    let made = Arc::new(AtomicUsize::new(0));
    let ctx = SessionContext::new();
    let counter = made.clone();
    let maker: Maker = Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Counting::new(3)
    });
    register_lazy(&ctx, vec![("numbers", maker)]).unwrap();
    ctx.sql("SELECT 1").await.unwrap().collect().await.unwrap();
    assert_eq!(
        made.load(Ordering::SeqCst),
        0,
        "not made for a statement without it"
    );
    assert!(ctx.table_exist("numbers").unwrap());
    let names = ctx
        .catalog("datafusion")
        .unwrap()
        .schema("public")
        .unwrap()
        .table_names();
    assert_eq!(names, vec!["numbers".to_string()]);
    // It exists before it is made: a second table of its name is refused.
    let other = datafusion::datasource::empty::EmptyTable::new(Counting::new(1).schema());
    assert!(ctx.register_table("numbers", Arc::new(other)).is_err());
    let n = ctx
        .sql("SELECT count(*) FROM numbers")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(n[0].num_rows(), 1);
    ctx.sql("SELECT n FROM numbers")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 1, "made once, then kept");
    // Tables the session adds live beside it.
    ctx.sql("CREATE VIEW doubled AS SELECT n * 2 AS d FROM numbers")
        .await
        .unwrap();
    let mut names = ctx
        .catalog("datafusion")
        .unwrap()
        .schema("public")
        .unwrap()
        .table_names();
    names.sort();
    assert_eq!(names, vec!["doubled".to_string(), "numbers".to_string()]);
}

#[tokio::test]
async fn explain_does_not_collect() {
    let table = Counting::new(10);
    let ctx = context(table.clone());
    ctx.sql("EXPLAIN SELECT n FROM numbers WHERE n > 3")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(table.collects.load(Ordering::SeqCst), 0);
    // Planning alone does not collect either.
    let df = ctx.sql("SELECT n FROM numbers").await.unwrap();
    assert_eq!(table.collects.load(Ordering::SeqCst), 0);
    df.collect().await.unwrap();
    assert_eq!(table.collects.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn count_star_builds_no_columns() {
    let table = Counting::new(20_000);
    let ctx = context(table.clone());
    let batches = ctx
        .sql("SELECT count(*) AS c FROM numbers")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let count = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(count, 20_000);
    assert_eq!(
        table.projections.lock().unwrap().as_slice(),
        &[Vec::<usize>::new()]
    );
}

#[tokio::test]
async fn only_projected_columns_are_built_and_batches_are_bounded() {
    let table = Counting::new(20_000);
    let ctx = context(table.clone());
    let mut stream = ctx
        .sql("SELECT square FROM numbers")
        .await
        .unwrap()
        .execute_stream()
        .await
        .unwrap();
    let mut total = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        assert!(batch.num_rows() <= BATCH_ROWS, "{} rows", batch.num_rows());
        total += batch.num_rows();
    }
    assert_eq!(total, 20_000);
    assert_eq!(table.projections.lock().unwrap().as_slice(), &[vec![1]]);
}

#[tokio::test]
async fn limit_reaches_the_scan_and_stops_the_output() {
    let table = Counting::new(100);
    let ctx = context(table.clone());
    let batches = ctx
        .sql("SELECT n FROM numbers LIMIT 7")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 7);
    assert_eq!(batches[0].column(0).len(), 7);
    // The scan itself was told: it need not build more than 7 rows.
    assert_eq!(table.limits.lock().unwrap().as_slice(), &[Some(7)]);
    // A filter the table cannot apply exactly keeps the limit above the scan.
    ctx.sql("SELECT n FROM numbers WHERE n > 3 LIMIT 7")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(table.limits.lock().unwrap().as_slice(), &[Some(7), None]);
}

/// A table read in parts of 100 numbers: `parts` of them (or without end when `None`),
/// counting what it handed on; `panic_at` makes that part's reading panic.
#[derive(Debug)]
struct InParts {
    parts: Option<u64>,
    handed: AtomicUsize,
    panic_at: Option<u64>,
}

impl InParts {
    fn new(parts: Option<u64>, panic_at: Option<u64>) -> Arc<Self> {
        Arc::new(InParts {
            parts,
            handed: AtomicUsize::new(0),
            panic_at,
        })
    }

    fn part(&self, scan: &Scan, i: u64) -> Box<dyn Collected> {
        let values: UInt64Array = (i * 100..(i + 1) * 100).collect();
        let columns = scan
            .projection
            .iter()
            .map(|_| Arc::new(values.clone()) as _);
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(100));
        Box::new(
            RecordBatch::try_new_with_options(scan.schema.clone(), columns.collect(), &options)
                .unwrap(),
        )
    }
}

impl LiveTable for InParts {
    fn name(&self) -> &'static str {
        "parts"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, false)]))
    }

    fn collect(&self, _scan: &Scan) -> Result<Box<dyn Collected>> {
        unreachable!("read in parts")
    }

    fn collect_parts(
        &self,
        scan: &Scan,
        part: &mut dyn FnMut(Box<dyn Collected>) -> bool,
    ) -> Result<()> {
        for i in 0.. {
            if self.parts.is_some_and(|parts| i == parts) {
                break;
            }
            assert!(self.panic_at != Some(i), "reading part {i} failed");
            self.handed.fetch_add(1, Ordering::SeqCst);
            if !part(self.part(scan, i)) {
                break;
            }
        }
        Ok(())
    }
}

fn parts_context(table: Arc<InParts>) -> SessionContext {
    with(table)
}

#[tokio::test]
async fn parts_arrive_whole_and_in_order() {
    let ctx = parts_context(InParts::new(Some(30), None));
    let batches = ctx
        .sql("SELECT n FROM parts")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let numbers: Vec<u64> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
            column.values().to_vec()
        })
        .collect();
    assert_eq!(numbers, (0..3000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_met_limit_stops_the_reading() {
    // Without end: only the stream's going away can stop it.
    let table = InParts::new(None, None);
    let ctx = parts_context(table.clone());
    let batches = ctx
        .sql("SELECT n FROM parts LIMIT 250")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 250);
    // The reader may be a part or two ahead (the channel holds two) when it learns.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let handed = table.handed.load(Ordering::SeqCst);
    assert!((3..=6).contains(&handed), "{handed} parts read");
}

#[tokio::test]
async fn a_reader_that_panics_fails_the_query() {
    let ctx = parts_context(InParts::new(Some(30), Some(20)));
    let result = ctx
        .sql("SELECT count(*) FROM parts")
        .await
        .unwrap()
        .collect()
        .await;
    let err = result.expect_err("a query over a failed read must fail");
    assert!(err.to_string().contains("parts: collector failed"), "{err}");
}
