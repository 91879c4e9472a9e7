//! Mounts: an existing under store exposed as a bucket (`strata admin mount`). Unmounting
//! forgets the bucket's metadata; its data stays in the under store. Pins: the versions whose
//! pages workers keep cached.

use std::sync::Arc;

use object_store::ObjectStore;
use strata_common::kv::{KvStore, transact};
use strata_common::names::check_bucket_name;
use strata_common::proto::{Bucket, Mount};
use strata_common::ufs::{UfsRegistry, redacted};
use strata_common::{Error, Result, ids};

use crate::buckets::Buckets;
use crate::objects::Objects;
use crate::schema::Schema;
use crate::sync::UfsSync;

/// How long a new mount's under store has to answer its first listing.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) struct Mounts {
    store: Arc<dyn KvStore>,
    ufs: Arc<UfsRegistry>,
    buckets: Arc<Buckets>,
    sync: Arc<UfsSync>,
    objects: Arc<Objects>,
}

impl Mounts {
    pub(crate) fn new(
        store: Arc<dyn KvStore>,
        ufs: Arc<UfsRegistry>,
        buckets: Arc<Buckets>,
        sync: Arc<UfsSync>,
        objects: Arc<Objects>,
    ) -> Mounts {
        Mounts { store, ufs, buckets, sync, objects }
    }

    pub(crate) async fn mount(&self, name: &str, mount: Mount) -> Result<Bucket> {
        check_bucket_name(name)?;
        let mut mount = mount;
        mount.uri = mount.uri.trim_end_matches('/').to_string();
        // Reach it before promising anything: a wrong endpoint or credential fails here.
        let store = self.ufs.open(&mount)?;
        // (Plain HTTP stores list only with WebDAV: they are not probed.)
        if !mount.uri.starts_with("http") {
            let mut probe = store.list(None);
            match tokio::time::timeout(PROBE_TIMEOUT, futures::StreamExt::next(&mut probe)).await {
                Ok(Some(Err(e))) => {
                    return Err(Error::invalid(format!("cannot list the under store {}: {e}", redacted(&mount).uri)));
                }
                Err(_) => {
                    return Err(Error::invalid(format!(
                        "cannot list the under store {}: no answer within {PROBE_TIMEOUT:?} (address, port, network?)",
                        redacted(&mount).uri
                    )));
                }
                Ok(_) => {}
            }
        }
        let bucket = Bucket {
            name: name.to_string(),
            created_ms: ids::now_ms(),
            mount: Some(mount.clone()),
            ..Default::default()
        };
        self.buckets.insert_new(&bucket, &format!("bucket {name} exists already: unmount it first")).await?;
        tracing::info!(bucket = name, uri = %redacted(&mount).uri, read_only = mount.read_only, sync_interval_ms = ?mount.sync_interval_ms, "mounted");
        Ok(Bucket { mount: Some(redacted(&mount)), ..bucket })
    }

    pub(crate) async fn unmount(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        transact(self.store.as_ref(), |t| {
            let n = n.clone();
            Box::pin(async move {
                t.bucket(&n).await?;
                // Objects only in a worker's journal would be lost: refuse until they are persisted.
                if let Some(e) = t.journaled_in(&n).await? {
                    return Err(Error::new(
                        strata_common::ErrorKind::BucketNotEmpty,
                        format!(
                            "{n}/{} is only in a worker's cache (MUST_CACHE or not yet persisted ASYNC_THROUGH): \
                             delete it or wait for the persist, then unmount",
                            e.key
                        ),
                    ));
                }
                t.remove_bucket(&n).await?;
                t.clear_bucket_contents(&n);
                Ok(())
            })
        })
        .await?;
        self.sync.forget(name);
        tracing::info!(bucket = name, "unmounted (the under store keeps its data)");
        Ok(())
    }

    pub(crate) fn syncs_running(&self) -> Vec<(String, String, strata_common::proto::SyncProgress)> {
        self.sync.running()
    }

    /// The turns syncs take to list an under store (tests hold them).
    #[cfg(test)]
    pub(crate) fn sync_turns(&self) -> &tokio::sync::Semaphore {
        &self.sync.turns
    }

    /// Whether `bucket`'s range `prefix` is known recorded without reading the store (tests).
    #[cfg(test)]
    pub(crate) fn remembers_recorded(&self, bucket: &str, prefix: &str) -> bool {
        let set = self.sync.recorded.lock().unwrap_or_else(|p| p.into_inner());
        set.iter().any(|(b, p, _)| b == bucket && p == prefix)
    }

    pub(crate) async fn sync_now(&self, bucket: &str, prefix: &str) -> Result<Arc<crate::sync::SyncRun>> {
        self.sync.sync_now(bucket, prefix).await
    }

    /// Every bucket with its mount, secrets masked.
    pub(crate) async fn list(&self) -> Result<Vec<Bucket>> {
        let mut all = self.buckets.list().await?;
        for b in &mut all {
            b.mount = b.mount.as_ref().map(redacted);
        }
        Ok(all)
    }

    /// Pins (or unpins) the current version of every object of `bucket` under `prefix`; a pin
    /// follows its object through overwrites. Returns how many objects.
    pub(crate) async fn pin(&self, bucket: &str, prefix: &str, pinned: bool) -> Result<u64> {
        let count = std::sync::atomic::AtomicU64::new(0);
        self.objects
            .for_each_page(bucket, prefix, |objects| {
                let names: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
                let count = &count;
                async move {
                    // Each object's version as it is now, in the transaction that pins it.
                    let n = transact(self.store.as_ref(), |t| {
                        let (names, b) = (names.clone(), bucket.to_string());
                        Box::pin(async move {
                            let mut n = 0;
                            for key in names {
                                let Some(o) = t.object(&b, &key).await? else { continue };
                                t.set_pin(o.version, pinned);
                                n += 1;
                            }
                            Ok(n)
                        })
                    })
                    .await?;
                    count.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }
            })
            .await?;
        let count = count.into_inner();
        tracing::info!(bucket, prefix, objects = count, pinned, "pins changed");
        Ok(count)
    }

    /// Every pinned version (workers get the list with each heartbeat).
    pub(crate) async fn pinned_versions(&self) -> Result<Vec<u64>> {
        transact(self.store.as_ref(), |t| Box::pin(async move { t.pinned_versions().await })).await
    }
}
