//! `--history DEST`: every table folder under DEST registered as `history.<table>`, a
//! DataFusion listing table over its Parquet files with `date` and `host` as partition
//! columns, so filters on them prune whole folders. Files written by an older netsql that
//! lack a column read with NULLs in it: the table's schema is the union of its files'.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::ObjectMeta;
use std::collections::HashMap;

use object_store::ObjectStore;
use url::Url;

use super::dest::Dest;
use super::skip_corrupt::SkipCorrupt;
use crate::error::Error;

/// The schema the tables are registered in.
pub const SCHEMA: &str = "history";

/// How many of the newest files a history table's schema is read from.
const NEWEST: usize = 4;

/// `--history DEST [--history-skip-corrupt]`.
#[derive(Debug, Clone)]
pub struct History {
    pub dest: String,
    pub skip_corrupt: bool,
}

impl History {
    /// Registers the dataset's tables on `ctx`.
    pub async fn register(&self, ctx: &SessionContext) -> Result<Vec<String>, Error> {
        register(ctx, Dest::parse(&self.dest)?, self.skip_corrupt).await
    }

    /// For a query that failed reading Parquet (DataFusion does not say which file): the
    /// first corrupt file of each table of the dataset, by name, and why. Which table the
    /// query read is not known here: naming only the first table's sent a query over
    /// `history.sockets` looking in `interfaces`.
    pub async fn culprit(&self, err: &Error) -> Option<String> {
        if !err.to_string().contains("Parquet error") {
            return None;
        }
        let dest = Dest::parse(&self.dest).ok()?;
        let mut found = Vec::new();
        for table in dest.folders("").await.ok()? {
            if let Some(file) = dest
                .unreadable_files(&table, false)
                .await
                .into_iter()
                .next()
            {
                found.push(format!("history {table}: {}: {}", file.name, file.why));
            }
        }
        (!found.is_empty()).then(|| found.join("; "))
    }
}

/// The table's file schema, from the newest snapshots' files (named by the time they
/// were taken): the columns of the netsql that writes the dataset today. Older files
/// lacking a column read NULL there. Reading every footer instead made a query over 10
/// of 1,000 files cost 10x the same query over those 10, and one footer per host still
/// 2.4x.
async fn infer_schema(
    options: &ListingOptions,
    state: &SessionState,
    url: &ListingTableUrl,
) -> datafusion::error::Result<SchemaRef> {
    let store = state.runtime_env().object_store(url)?;
    let mut files: Vec<ObjectMeta> = url
        .list_all_files(state, store.as_ref(), &options.file_extension)
        .await?
        .try_collect()
        .await?;
    // Empty files have no schema (and fail a footer read).
    files.retain(|f| f.size > 0);
    files.sort_by(|a, b| b.location.filename().cmp(&a.location.filename()));
    files.truncate(NEWEST);
    let newest = files;
    if newest.is_empty() {
        return Ok(Arc::new(datafusion::arrow::datatypes::Schema::empty()));
    }
    options.format.infer_schema(state, &store, &newest).await
}

/// Registers the `history` schema: a table for each table folder of `dest` that has
/// Parquet files. A table's schema is read when a statement first names it, so a corrupt
/// file fails only the statements that read its table (naming the file) and a statement
/// that reads none reads no footer. With `skip_corrupt`, every file of a table is checked
/// when the table is first named and each corrupt one is left out, with a warning on
/// stderr. Returns the table folders.
pub async fn register(
    ctx: &SessionContext,
    dest: Dest,
    skip_corrupt: bool,
) -> Result<Vec<String>, Error> {
    let (root, store): (Url, Arc<dyn ObjectStore>) = match &dest {
        Dest::Store { root, store, .. } => (root.clone(), store.clone()),
        Dest::Local(_) => (
            Url::parse("file:///").expect("a URL"),
            Arc::new(object_store::local::LocalFileSystem::new()),
        ),
    };
    let skipping = skip_corrupt.then(|| Arc::new(SkipCorrupt::new(store.clone())));
    match &skipping {
        Some(skipping) => ctx
            .runtime_env()
            .register_object_store(&root, skipping.clone()),
        None if matches!(dest, Dest::Store { .. }) => {
            ctx.runtime_env().register_object_store(&root, store)
        }
        None => None,
    };
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Usage("no default catalog".into()))?;
    let names = match &dest {
        // Only queries of history.* need it: they fail naming the table, the rest run.
        Dest::Local(dir) if !dir.is_dir() => {
            // Once per run: `serve` registers the dataset for every request.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                crate::warn!(
                    "netsql: --history {}: no such directory (no history.* tables)",
                    dir.display()
                )
            });
            Vec::new()
        }
        _ => dest
            .folders("")
            .await?
            .into_iter()
            .filter(|name| !name.starts_with('.') && !name.starts_with('_'))
            .collect(),
    };
    let schema = HistorySchema {
        dest,
        names: names.clone(),
        skipping,
        runtime: ctx.runtime_env(),
        tables: Default::default(),
    };
    catalog.register_schema(SCHEMA, Arc::new(schema))?;
    Ok(names)
}

/// The `history` schema: its tables are listing tables made when first named.
struct HistorySchema {
    dest: Dest,
    /// The dataset's table folders.
    names: Vec<String>,
    /// The store that leaves corrupt files out, under `--history-skip-corrupt`.
    skipping: Option<Arc<SkipCorrupt>>,
    /// The session's: the store the tables read through, and the listing cache.
    runtime: Arc<RuntimeEnv>,
    /// Each table once made (`None`: a folder without Parquet files, no table).
    tables: tokio::sync::Mutex<HashMap<String, Option<Arc<dyn TableProvider>>>>,
}

impl std::fmt::Debug for HistorySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistorySchema")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SchemaProvider for HistorySchema {
    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !self.table_exist(name) {
            return Ok(None);
        }
        let mut tables = self.tables.lock().await;
        if let Some(table) = tables.get(name) {
            return Ok(table.clone());
        }
        let table = self
            .make(name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        tables.insert(name.to_string(), table.clone());
        Ok(table)
    }

    /// Without reading the table (SHOW TABLES reads no footer, and lists a table that
    /// cannot be read; reading it says why).
    async fn table_type(&self, name: &str) -> DfResult<Option<TableType>> {
        Ok(self.table_exist(name).then_some(TableType::Base))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

impl HistorySchema {
    /// Table folder `name` as a listing table, `None` when it holds no Parquet file.
    async fn make(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, Error> {
        let url = self.dest.listing_url(name)?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![
                ("date".to_string(), DataType::Utf8),
                ("host".to_string(), DataType::Utf8),
            ]);
        // A session of our own over the query's runtime: the schema holding a clone of
        // the query's session would hold the catalog that holds the schema.
        let state = SessionStateBuilder::new()
            .with_runtime_env(self.runtime.clone())
            .build();
        if let Some(skipping) = &self.skipping {
            // Every file, not only those the schema is read from: a corrupt older file
            // failed the query it was to be left out of.
            let bad = self.dest.unreadable_files(name, true).await;
            if let Some(file) = bad.iter().find(|file| file.key.is_none()) {
                return Err(Error::Usage(format!(
                    "history {name}: {}: {}",
                    file.name, file.why
                )));
            }
            if !bad.is_empty() {
                if let Ok(mut hidden) = skipping.hidden().write() {
                    for file in bad {
                        crate::warn!("netsql: skipping corrupt {}: {}", file.name, file.why);
                        hidden.extend(file.key);
                    }
                }
                // A listing made before, corrupt files and all, may be cached.
                if let Some(cache) = self.runtime.cache_manager.get_list_files_cache() {
                    cache.clear();
                }
            }
        }
        let schema = match infer_schema(&options, &state, &url).await {
            Ok(schema) => schema,
            Err(e) => {
                let bad = self.dest.unreadable_files(name, false).await;
                return Err(Error::Usage(match bad.first() {
                    Some(file) => format!("history {name}: {}: {}", file.name, file.why),
                    None => format!("history {name}: {e}"),
                }));
            }
        };
        if schema.fields().is_empty() {
            return Ok(None);
        }
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Some(Arc::new(ListingTable::try_new(config)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;

    /// A dataset holding `sockets` with three rows, under `dir`.
    fn dataset(dir: &std::path::Path) {
        let folder = dir.join("sockets/date=2026-12-07/host=h");
        std::fs::create_dir_all(&folder).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "local_port",
            DataType::Int32,
            true,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from(vec![22, 80, 443]))],
        )
        .unwrap();
        let file = std::fs::File::create(folder.join("20261207T000000Z-x.parquet")).unwrap();
        let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    async fn rows(dest: &std::path::Path) -> (Vec<String>, usize) {
        let ctx = SessionContext::new();
        let registered = register(&ctx, Dest::Local(dest.to_path_buf()), false)
            .await
            .unwrap();
        let count = match registered.is_empty() {
            true => 0,
            false => ctx
                .sql("SELECT * FROM history.sockets")
                .await
                .unwrap()
                .count()
                .await
                .unwrap(),
        };
        (registered, count)
    }

    /// A dataset folder whose name holds glob characters is a folder (it was read as a
    /// glob: no table, and the parent listed), and a table folder that is a symbolic
    /// link is a table (it was left out), as DuckDB and pyarrow read them.
    #[tokio::test]
    async fn odd_folder_names_and_linked_tables_are_read() {
        let top = tempfile::tempdir().unwrap();
        for name in ["g[1]", "st*r?"] {
            let dest = top.path().join(name);
            dataset(&dest);
            assert_eq!(
                rows(&dest).await,
                (vec!["sockets".to_string()], 3),
                "{name}"
            );
        }
        let linked = top.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(top.path().join("g[1]/sockets"), linked.join("sockets"))
            .unwrap();
        assert_eq!(rows(&linked).await, (vec!["sockets".to_string()], 3));
    }
}
