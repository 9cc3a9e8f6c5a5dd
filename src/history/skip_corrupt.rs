//! `--history-skip-corrupt`: an object store that serves another but leaves out the files
//! found corrupt, so DataFusion's listing tables neither list nor read them. DataFusion's
//! Parquet format has no skip-corrupt option of its own; a listing table reads whatever
//! its store lists.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// `inner`, without the objects in `hidden`.
#[derive(Debug)]
pub struct SkipCorrupt {
    inner: Arc<dyn ObjectStore>,
    hidden: Arc<RwLock<HashSet<Path>>>,
}

impl SkipCorrupt {
    pub fn new(inner: Arc<dyn ObjectStore>) -> SkipCorrupt {
        SkipCorrupt {
            inner,
            hidden: Arc::default(),
        }
    }

    /// The set of hidden objects, to add to.
    pub fn hidden(&self) -> Arc<RwLock<HashSet<Path>>> {
        self.hidden.clone()
    }

    fn hides(&self, location: &Path) -> bool {
        self.hidden
            .read()
            .map(|hidden| hidden.contains(location))
            .unwrap_or(false)
    }
}

impl std::fmt::Display for SkipCorrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (skipping corrupt files)", self.inner)
    }
}

#[async_trait]
impl ObjectStore for SkipCorrupt {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if self.hides(location) {
            return Err(object_store::Error::NotFound {
                path: location.to_string(),
                source: "skipped as corrupt".into(),
            });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let hidden = self.hidden.clone();
        self.inner
            .list(prefix)
            .filter(move |meta| {
                let keep = match meta {
                    Ok(meta) => !hidden
                        .read()
                        .map(|h| h.contains(&meta.location))
                        .unwrap_or(false),
                    Err(_) => true,
                };
                std::future::ready(keep)
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut listing = self.inner.list_with_delimiter(prefix).await?;
        listing.objects.retain(|meta| !self.hides(&meta.location));
        Ok(listing)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
