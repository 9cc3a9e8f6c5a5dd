//! `--history DEST`: every table folder under DEST registered as `history.<table>`, a
//! DataFusion listing table over its Parquet files with `date` and `host` as partition
//! columns, so filters on them prune whole folders. Files written by an older netsql that
//! lack a column read with NULLs in it: the table's schema is the union of its files'.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use super::dest::Dest;
use crate::error::Error;

/// The schema the tables are registered in.
pub const SCHEMA: &str = "history";

/// Registers `history.<table>` for each table folder of `dest` that has Parquet files.
pub async fn register(ctx: &SessionContext, dest: &Dest) -> Result<Vec<String>, Error> {
    if let Dest::Store { root, store, .. } = dest {
        ctx.runtime_env().register_object_store(root, store.clone());
    }
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Usage("no default catalog".into()))?;
    catalog.register_schema(SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    let names: Vec<String> = dest
        .folders("")
        .await?
        .into_iter()
        .filter(|name| !name.starts_with('.') && !name.starts_with('_'))
        .collect();
    let mut registered = Vec::new();
    for name in names {
        let url = ListingTableUrl::parse(dest.table_url(&name))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![
                ("date".to_string(), DataType::Utf8),
                ("host".to_string(), DataType::Utf8),
            ]);
        let state = ctx.state();
        let schema = match options.infer_schema(&state, &url).await {
            Ok(schema) => schema,
            Err(e) => {
                let culprit = match dest {
                    Dest::Local(dir) => unreadable_file(&dir.join(&name))
                        .map(|(path, why)| format!("{}: {why}", path.display())),
                    Dest::Store { .. } => None,
                };
                return Err(Error::Usage(format!(
                    "history {name}: {}",
                    culprit.unwrap_or_else(|| e.to_string())
                )));
            }
        };
        // A folder with no Parquet files yet is no table.
        if schema.fields().is_empty() {
            continue;
        }
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config)?;
        ctx.register_table(format!("{SCHEMA}.{name}"), Arc::new(table))?;
        registered.push(name);
    }
    Ok(registered)
}

/// The first Parquet file under `dir` whose footer cannot be read, and why: DataFusion's
/// error does not say which file it was.
fn unreadable_file(dir: &Path) -> Option<(std::path::PathBuf, String)> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    files.into_iter().find_map(|path| {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) => return Some((path, e.to_string())),
        };
        ParquetRecordBatchReaderBuilder::try_new(file)
            .err()
            .map(|e| (path, e.to_string()))
    })
}
