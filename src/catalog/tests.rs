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

fn context(table: Arc<Counting>) -> SessionContext {
    let ctx = SessionContext::new();
    register(&ctx, vec![table]).unwrap();
    ctx
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
