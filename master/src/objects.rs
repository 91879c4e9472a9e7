//! The namespace's objects: lookups (through the sync of a syncing mount), conditional
//! commits and deletes (published in key order with their bytes), tags, and listings.

use std::sync::Arc;

use strata_common::etag::{Compare, WriteConditions, WriteRefused};
use strata_common::kv::{KvStore, transact};
use strata_common::proto::*;
use strata_common::{Error, Result};

use crate::publish::{Committed, Publisher, intend};
use crate::schema::{Schema, no_such_key};
use crate::sync::{Lister, UfsSync};

/// A write's `If-Match` / `If-None-Match` against the object it replaces, compared weakly.
pub(crate) fn check_write_conditions(
    current: Option<&ObjectMeta>,
    if_match: &str,
    (if_none_match_any, if_none_match): (bool, &str),
) -> Result<()> {
    WriteConditions::from_wire(if_match, if_none_match_any)
        .with_if_none_match(if_none_match)
        .check(current.map(|m| m.etag.as_str()), Compare::Weak)
        .map_err(WriteRefused::into_error)
}

pub(crate) struct Objects {
    store: Arc<dyn KvStore>,
    sync: Arc<UfsSync>,
    publisher: Arc<Publisher>,
}

impl Objects {
    pub(crate) fn new(store: Arc<dyn KvStore>, sync: Arc<UfsSync>, publisher: Arc<Publisher>) -> Objects {
        Objects { store, sync, publisher }
    }

    pub(crate) async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let (bucket, found) = transact(self.store.as_ref(), |t| {
            let (b, k) = (b.clone(), k.clone());
            Box::pin(async move { Ok((t.bucket(&b).await?, t.object(&b, &k).await?)) })
        })
        .await?;
        if bucket.mount.as_ref().is_some_and(|m| m.sync_interval_ms.is_some()) {
            return self.sync.synced_lookup(&bucket, key, found).await?.ok_or_else(no_such_key);
        }
        found.ok_or_else(no_such_key)
    }

    pub(crate) async fn commit(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        let meta = req.meta.clone().ok_or_else(|| Error::invalid("commit without object metadata"))?;
        let commit = transact(self.store.as_ref(), |t| {
            let (req, meta) = (req.clone(), meta.clone());
            Box::pin(async move {
                let bucket = t.writable_bucket(&req.bucket).await?;
                let current = t.object(&req.bucket, &meta.key).await?;
                check_write_conditions(current.as_ref(), &req.if_match, (req.if_none_match_any, &req.if_none_match))?;
                let replaced_version = t.replace_object(&req.bucket, current.as_ref(), &meta).await?;
                let value = CommitObjectResponse { replaced_version };
                let mount = (!req.staging_key.is_empty()).then_some(bucket.mount).flatten();
                if mount.is_some() {
                    intend(t, &req.bucket, &meta.key, &req.staging_key, meta.version);
                }
                Ok(Committed { value, mount, replaced: current, version: meta.version })
            })
        });
        self.publisher.publish(&req.bucket, &meta.key, &req.staging_key, commit).await
    }

    /// Deletes the object, or with `only` only that version of it (else nothing happens).
    pub(crate) async fn delete(&self, bucket: &str, key: &str, only: Option<u64>) -> Result<DeleteObjectResponse> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let commit = transact(self.store.as_ref(), |t| {
            let (b, k) = (b.clone(), k.clone());
            Box::pin(async move {
                let bucket = t.writable_bucket(&b).await?;
                let current = t.object(&b, &k).await?.filter(|o| only.is_none_or(|v| v == o.version));
                let Some(old) = current else {
                    let value = DeleteObjectResponse { existed: false, version: 0 };
                    return Ok(Committed { value, mount: None, replaced: None, version: 0 });
                };
                t.remove_object(&b, &old).await?;
                if bucket.mount.is_some() {
                    intend(t, &b, &k, "", old.version);
                }
                let value = DeleteObjectResponse { existed: true, version: old.version };
                Ok(Committed { value, mount: bucket.mount, replaced: Some(old), version: 0 })
            })
        });
        self.publisher.publish(bucket, key, "", commit).await
    }

    pub(crate) async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                let mut bucket = t.bucket(&req.bucket).await?;
                if req.key.is_empty() {
                    bucket.tags = req.tags;
                    t.put_bucket(&bucket);
                    return Ok(());
                }
                let mut meta = t.object(&req.bucket, &req.key).await?.ok_or_else(no_such_key)?;
                meta.tags = req.tags;
                t.rewrite_object(&req.bucket, &meta);
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn set_bucket_cors(&self, req: SetCorsRequest) -> Result<()> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                let mut bucket = t.bucket(&req.bucket).await?;
                bucket.cors = req.rules;
                t.put_bucket(&bucket);
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn list(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        let who = if req.start_after.is_empty() { Lister::FirstPage } else { Lister::LaterPage };
        self.sync.sync_listing(&req.bucket, &req.prefix, who).await?;
        self.list_metadata(req).await
    }

    /// Every object under `prefix`, a page at a time, for the master's own passes (pins, TTL):
    /// the under store is synced once, before the first page. `visit` gets each page.
    pub(crate) async fn for_each_page<F, Fut>(&self, bucket: &str, prefix: &str, mut visit: F) -> Result<()>
    where
        F: FnMut(Vec<ObjectMeta>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.sync.sync_listing(bucket, prefix, Lister::Master).await?;
        let mut after = String::new();
        loop {
            let req = ListObjectsRequest {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                start_after: after.clone(),
                max_keys: 1000,
                ..Default::default()
            };
            let page = self.list_metadata(req).await?;
            let next = page.objects.last().filter(|_| page.truncated).map(|o| o.key.clone());
            visit(page.objects).await?;
            match next {
                Some(k) => after = k,
                None => return Ok(()),
            }
        }
    }

    /// One page of the metadata's listing, without asking the under store.
    async fn list_metadata(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                t.bucket(&req.bucket).await?;
                t.list_objects(&req).await
            })
        })
        .await
    }
}
