//! Where a dataset lives: a local directory, or an object store URL (`s3://bucket/prefix`,
//! `gs://`, `az://`) reached through the `object_store` crate DataFusion reads with.
//! Credentials and endpoints come from the standard variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_ENDPOINT_URL` for an S3-compatible store, `GOOGLE_SERVICE_ACCOUNT`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, ...). A file goes up in one PUT: whole or not at all.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use url::Url;

use crate::error::Error;

pub enum Dest {
    Local(PathBuf),
    Store {
        /// `scheme://bucket`: what the store is registered under.
        root: Url,
        store: Arc<dyn ObjectStore>,
        /// The dataset's folder inside the bucket ("" for the bucket's root).
        prefix: String,
        /// As the user wrote it, without a trailing slash.
        text: String,
    },
}

/// A dataset file that cannot be read as Parquet.
pub struct Unreadable {
    /// As messages name it: a path, or the store URL of the object.
    pub name: String,
    /// Its key in the object store DataFusion reads it through.
    pub key: Option<StorePath>,
    pub why: String,
}

/// How a failed request is retried: at most 3 times, and no retry starts more than 15 s
/// after the first attempt. With the crate's connect and request timeouts (5 s, 30 s)
/// a dead or silent store fails a file within about 45 s. The crate's default retries
/// (10 within 3 minutes) would let one dead store hold a recording's tick, or a query,
/// for minutes before saying so.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
    }
}

fn store_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{what}: {e}"))
}

impl Dest {
    /// A directory, or a URL of a store this build knows.
    pub fn parse(text: &str) -> Result<Dest, Error> {
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Dest::Local(PathBuf::from(text)));
        };
        let url = Url::parse(text).map_err(|e| store_error(text, e))?;
        let bucket = url
            .host_str()
            .ok_or_else(|| Error::Usage(format!("{text}: no bucket in the URL")))?
            .to_string();
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry_config());
                // An S3-compatible store on plain HTTP (a local MinIO or moto) is fine.
                if std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .is_ok_and(|e| e.starts_with("http://"))
                {
                    builder = builder.with_allow_http(true);
                }
                Arc::new(builder.build().map_err(|e| store_error(text, e))?)
            }
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry_config())
                    .build()
                    .map_err(|e| store_error(text, e))?,
            ),
            "az" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(text)
                    .with_retry(retry_config())
                    .build()
                    .map_err(|e| store_error(text, e))?,
            ),
            other => {
                return Err(Error::Usage(format!(
                    "{text}: no object store for {other}:// (s3://, gs://, az:// or a directory)"
                )))
            }
        };
        let root = Url::parse(&format!("{scheme}://{bucket}")).map_err(|e| store_error(text, e))?;
        Ok(Dest::Store {
            root,
            store,
            prefix: url.path().trim_matches('/').to_string(),
            text: text.trim_end_matches('/').to_string(),
        })
    }

    /// How messages name a file `rel` of the dataset.
    pub fn name(&self, rel: &str) -> String {
        match self {
            Dest::Local(dir) => dir.join(rel).display().to_string(),
            Dest::Store { text, .. } => format!("{text}/{rel}"),
        }
    }

    fn key(prefix: &str, rel: &str) -> StorePath {
        if prefix.is_empty() {
            StorePath::from(rel)
        } else {
            StorePath::from(format!("{prefix}/{rel}"))
        }
    }

    /// Puts `bytes` at `rel` in one request.
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), Error> {
        match self {
            Dest::Local(_) => unreachable!("local files are written in place"),
            Dest::Store { store, prefix, .. } => store
                .put(&Self::key(prefix, rel), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| store_error(&self.name(rel), e)),
        }
    }

    /// The folders right under `rel` (table names, or `date=` partitions).
    pub async fn folders(&self, rel: &str) -> Result<Vec<String>, Error> {
        match self {
            Dest::Local(dir) => {
                let path = dir.join(rel);
                let entries = std::fs::read_dir(&path).map_err(|source| Error::Input {
                    path: path.clone(),
                    source,
                })?;
                // A symbolic link to a folder is that folder, as DuckDB and pyarrow
                // read it (a table folder linked from elsewhere was left out).
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .collect();
                names.sort();
                Ok(names)
            }
            Dest::Store { store, prefix, .. } => {
                let key = Self::key(prefix, rel.trim_end_matches('/'));
                let key = (!key.as_ref().is_empty()).then_some(key);
                let listing = store
                    .list_with_delimiter(key.as_ref())
                    .await
                    .map_err(|e| store_error(&self.name(rel), e))?;
                let mut names: Vec<String> = listing
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(String::from))
                    .collect();
                names.sort();
                Ok(names)
            }
        }
    }

    /// Deletes the folder `rel` and everything under it.
    pub async fn remove(&self, rel: &str) -> Result<(), Error> {
        match self {
            Dest::Local(dir) => {
                let path = dir.join(rel);
                std::fs::remove_dir_all(&path).map_err(|source| Error::Output { path, source })
            }
            Dest::Store { store, prefix, .. } => {
                let key = Self::key(prefix, rel);
                let objects: Vec<_> = store
                    .list(Some(&key))
                    .try_collect()
                    .await
                    .map_err(|e| store_error(&self.name(rel), e))?;
                for object in objects {
                    store
                        .delete(&object.location)
                        .await
                        .map_err(|e| store_error(&self.name(rel), e))?;
                }
                Ok(())
            }
        }
    }

    /// The listing-table URL of table folder `table`.
    /// The Parquet files under `rel` whose footers cannot be read (only the first unless
    /// `all`): each by name, by its key in the store DataFusion reads it through, and
    /// why. Only asked after a read failed (DataFusion's error does not name the file),
    /// so it may fetch every file of a store.
    pub async fn unreadable_files(&self, rel: &str, all: bool) -> Vec<Unreadable> {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let mut bad = Vec::new();
        match self {
            Dest::Local(dir) => {
                use std::os::unix::fs::MetadataExt;
                let mut stack = vec![dir.join(rel)];
                let mut files = Vec::new();
                // Each folder once, however many links lead to it: two links back up
                // to a parent made the walk double at every level (a hang).
                let mut seen = std::collections::HashSet::new();
                while let Some(dir) = stack.pop() {
                    let Ok(meta) = std::fs::metadata(&dir) else {
                        continue;
                    };
                    if !seen.insert((meta.dev(), meta.ino())) {
                        continue;
                    }
                    let Ok(entries) = std::fs::read_dir(&dir) else {
                        continue;
                    };
                    for path in entries.flatten().map(|e| e.path()) {
                        if path.is_dir() {
                            stack.push(path);
                        } else if path.extension().is_some_and(|e| e == "parquet") {
                            files.push(path);
                        }
                    }
                }
                files.sort();
                for path in files {
                    let why = match std::fs::File::open(&path) {
                        Ok(file) => match ParquetRecordBatchReaderBuilder::try_new(file) {
                            Ok(_) => continue,
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    };
                    let key = std::path::absolute(&path)
                        .ok()
                        .and_then(|p| StorePath::from_absolute_path(p).ok());
                    bad.push(Unreadable {
                        name: path.display().to_string(),
                        key,
                        why,
                    });
                    if !all {
                        break;
                    }
                }
            }
            Dest::Store {
                store,
                prefix,
                text,
                ..
            } => {
                let base = Self::key(prefix, rel);
                let Ok(mut keys) = store
                    .list(Some(&base))
                    .map_ok(|meta| meta.location)
                    .try_collect::<Vec<StorePath>>()
                    .await
                else {
                    return bad;
                };
                keys.retain(|k| k.as_ref().ends_with(".parquet"));
                keys.sort();
                for key in keys {
                    let why = match store.get(&key).await {
                        Ok(got) => match got.bytes().await {
                            Ok(bytes) => match ParquetRecordBatchReaderBuilder::try_new(bytes) {
                                Ok(_) => continue,
                                Err(e) => e.to_string(),
                            },
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    };
                    let inside = key
                        .as_ref()
                        .strip_prefix(prefix.as_str())
                        .unwrap_or(key.as_ref());
                    bad.push(Unreadable {
                        name: format!("{text}/{}", inside.trim_start_matches('/')),
                        key: Some(key),
                        why,
                    });
                    if !all {
                        break;
                    }
                }
            }
        }
        bad
    }

    /// Where DataFusion lists table folder `table`. A local path is a folder, never a
    /// glob: `g[1]` or `st*r` in it listed the parent's files instead (no table).
    pub fn listing_url(
        &self,
        table: &str,
    ) -> datafusion::error::Result<datafusion::datasource::listing::ListingTableUrl> {
        use datafusion::datasource::listing::ListingTableUrl;
        match self {
            Dest::Local(dir) => {
                let path = std::path::absolute(dir.join(table))?;
                let url = Url::from_directory_path(&path).map_err(|()| {
                    datafusion::error::DataFusionError::Plan(format!(
                        "{} is not a path a URL can name",
                        path.display()
                    ))
                })?;
                ListingTableUrl::try_new(url, None)
            }
            Dest::Store { text, .. } => ListingTableUrl::parse(format!("{text}/{table}/")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two links back up to a parent folder: the walk for corrupt files visits each
    /// folder once (it doubled at every level, a hang) and finds the corrupt file.
    #[tokio::test]
    async fn the_walk_for_corrupt_files_ends_on_link_loops() {
        let dir = tempfile::tempdir().unwrap();
        let looped = dir.path().join("sockets/date=2026-12-02/host=loop");
        std::fs::create_dir_all(&looped).unwrap();
        std::os::unix::fs::symlink("../host=loop", looped.join("a")).unwrap();
        std::os::unix::fs::symlink("../host=loop", looped.join("b")).unwrap();
        std::fs::write(looped.join("bad.parquet"), b"not parquet").unwrap();
        let dest = Dest::Local(dir.path().to_path_buf());
        let bad = tokio::time::timeout(
            Duration::from_secs(20),
            dest.unreadable_files("sockets", true),
        )
        .await
        .expect("the walk ended");
        assert_eq!(
            bad.len(),
            1,
            "{:?}",
            bad.iter().map(|b| &b.name).collect::<Vec<_>>()
        );
        assert!(
            bad[0].name.ends_with("host=loop/bad.parquet"),
            "{}",
            bad[0].name
        );
    }
}
