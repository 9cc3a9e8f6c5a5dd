//! `--history DEST`: every table folder under DEST registered as `history.<table>`, a
//! DataFusion listing table over its Parquet files with `date` and `host` as partition
//! columns, so filters on them prune whole folders. Files written by an older netsql that
//! lack a column read with NULLs in it: the table's schema is the union of its files'.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use object_store::ObjectStore;
use url::Url;

use super::dest::Dest;
use super::hiding::Hiding;
use crate::error::Error;

/// The schema the tables are registered in.
pub const SCHEMA: &str = "history";

/// `--history DEST [--history-skip-corrupt]`.
#[derive(Debug, Clone)]
pub struct History {
    pub dest: String,
    pub skip_corrupt: bool,
}

impl History {
    /// Registers the dataset's tables on `ctx`.
    pub async fn register(&self, ctx: &SessionContext) -> Result<Vec<String>, Error> {
        register(ctx, &Dest::parse(&self.dest)?, self.skip_corrupt).await
    }
}

/// Registers `history.<table>` for each table folder of `dest` that has Parquet files. A
/// corrupt file fails the registration, naming it; with `skip_corrupt` each is left out
/// with a warning on stderr instead.
pub async fn register(
    ctx: &SessionContext,
    dest: &Dest,
    skip_corrupt: bool,
) -> Result<Vec<String>, Error> {
    let (root, store): (Url, Arc<dyn ObjectStore>) = match dest {
        Dest::Store { root, store, .. } => (root.clone(), store.clone()),
        Dest::Local(_) => (
            Url::parse("file:///").expect("a URL"),
            Arc::new(object_store::local::LocalFileSystem::new()),
        ),
    };
    let hiding = skip_corrupt.then(|| Arc::new(Hiding::new(store.clone())));
    match &hiding {
        Some(hiding) => ctx
            .runtime_env()
            .register_object_store(&root, hiding.clone()),
        None if matches!(dest, Dest::Store { .. }) => {
            ctx.runtime_env().register_object_store(&root, store)
        }
        None => None,
    };
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
        let mut inferred = options.infer_schema(&state, &url).await;
        if let Err(e) = &inferred {
            let bad = dest.unreadable_files(&name, hiding.is_some()).await;
            let hidden = hiding.as_ref().map(|h| h.hidden());
            match (hidden, bad.first()) {
                (Some(hidden), Some(_)) if bad.iter().all(|b| b.key.is_some()) => {
                    for file in bad {
                        eprintln!("netsql: skipping corrupt {}: {}", file.name, file.why);
                        if let (Some(key), Ok(mut hidden)) = (file.key, hidden.write()) {
                            hidden.insert(key);
                        }
                    }
                    // The first listing, corrupt files and all, is cached: list again.
                    if let Some(cache) = ctx.runtime_env().cache_manager.get_list_files_cache() {
                        cache.clear();
                    }
                    inferred = options.infer_schema(&state, &url).await;
                }
                (_, Some(file)) => {
                    return Err(Error::Usage(format!(
                        "history {name}: {}: {}",
                        file.name, file.why
                    )))
                }
                (_, None) => return Err(Error::Usage(format!("history {name}: {e}"))),
            }
        }
        let schema = inferred.map_err(|e| Error::Usage(format!("history {name}: {e}")))?;
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
