//! Metadata sync: objects created, overwritten or deleted directly in a mount's under store are
//! seen through Strata. A lookup miss asks the under store; a listing merges the under store's
//! listing once the mount's sync interval has passed. A changed fingerprint (size, or the under
//! store's ETag, which carries the mtime on a local folder) gives a new version id, so the cache
//! never serves the old bytes.
//!
//! Each change is applied under the key's publish lock, after a fresh HEAD: a write through
//! Strata in flight (committed, bytes not yet moved) is never mistaken for a deletion.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use md5::{Digest, Md5};
use object_store::{ObjectMeta as UfsMeta, ObjectStore, ObjectStoreExt};
use strata_common::kv::{KvStore, transact};
use strata_common::proto::{Bucket, ObjectMeta};
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, Result, ufs};

use crate::buckets::Buckets;
use crate::publish::Publisher;
use crate::schema::Schema;
use crate::versions::Versions;

/// When each (bucket, prefix) was last synced; soft state (a new primary syncs again).
#[derive(Default)]
struct SyncTimes(Mutex<HashMap<(String, String), Instant>>);

const MAX_REMEMBERED: usize = 100_000;

/// Forgets, unless `done`, that a listing's sync ran.
struct Unfinished<'a> {
    times: &'a SyncTimes,
    bucket: &'a str,
    prefix: &'a str,
    done: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.times.forget(self.bucket, self.prefix);
        }
    }
}

/// Objects new to the metadata recorded per transaction: with a read and a write each, within
/// etcd's default 128 operations.
const IMPORT_BATCH: usize = 100;

impl SyncTimes {
    /// True (and noted) when `(bucket, what)` is due under `interval_ms`.
    fn due(&self, bucket: &str, what: &str, interval_ms: i64) -> bool {
        if interval_ms <= 0 {
            return true;
        }
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let k = (bucket.to_string(), what.to_string());
        if m.get(&k).is_some_and(|t| t.elapsed() < Duration::from_millis(interval_ms as u64)) {
            return false;
        }
        if m.len() >= MAX_REMEMBERED {
            m.clear();
        }
        m.insert(k, Instant::now());
        true
    }

    /// `(bucket, what)` is due again (its sync failed).
    fn forget(&self, bucket: &str, what: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&(bucket.to_string(), what.to_string()));
    }
}

/// What identifies one state of an under-store object: its ETag as the under store gives it
/// (the form a fill's If-Match sends back).
/// Counts one sync pass (`kind`: a listing, or one key looked up) and the changes it found.
fn sync_pass(bucket: &str, kind: &'static str, ok: bool, changes: usize) {
    let bucket = strata_common::ops::bucket_label(bucket, true);
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!("strata_master_sync_passes_total", "bucket" => bucket.clone(), "kind" => kind, "result" => result)
        .increment(1);
    metrics::counter!("strata_master_sync_changes_total", "bucket" => bucket, "kind" => kind).increment(changes as u64);
}

fn fingerprint(m: &UfsMeta) -> String {
    match &m.e_tag {
        Some(t) => t.clone(),
        None => format!("{}-{}", m.size, m.last_modified.timestamp_millis()),
    }
}

/// The S3 ETag of an object found in the under store: its own when it is an MD5 (S3, GCS),
/// else one derived from the fingerprint, with a `-1` suffix so that no client takes it for
/// the MD5 of the bytes.
fn s3_etag(m: &UfsMeta) -> String {
    let fp = fingerprint(m).trim_matches('"').to_string();
    let (hash, parts) = fp.split_once('-').unwrap_or((&fp, "1"));
    if hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && parts.bytes().all(|b| b.is_ascii_digit()) {
        return fp.to_ascii_lowercase();
    }
    format!("{}-1", hex::encode(Md5::digest(fp.as_bytes())))
}

fn not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

/// The metadata of syncing mounts, kept in line with their under stores.
pub(crate) struct UfsSync {
    store: Arc<dyn KvStore>,
    ufs: Arc<UfsRegistry>,
    buckets: Arc<Buckets>,
    publisher: Arc<Publisher>,
    versions: Arc<Versions>,
    times: SyncTimes,
    /// Block size recorded for objects found in an under store.
    block_size: u64,
}

impl UfsSync {
    pub(crate) fn new(
        store: Arc<dyn KvStore>,
        ufs: Arc<UfsRegistry>,
        buckets: Arc<Buckets>,
        publisher: Arc<Publisher>,
        versions: Arc<Versions>,
        block_size: u64,
    ) -> UfsSync {
        UfsSync { store, ufs, buckets, publisher, versions, times: SyncTimes::default(), block_size }
    }

    /// Forgets when `bucket` was synced (it was unmounted).
    pub(crate) fn forget(&self, bucket: &str) {
        self.times.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|(b, _), _| b != bucket);
    }

    fn sync_interval(bucket: &Bucket) -> Option<i64> {
        bucket.mount.as_ref().and_then(|m| m.sync_interval_ms)
    }

    /// A lookup on a syncing mount: a miss asks the under store; a hit is checked against it
    /// once its interval has passed. Returns the object as it now is.
    pub(crate) async fn synced_lookup(
        &self,
        b: &Bucket,
        key: &str,
        found: Option<ObjectMeta>,
    ) -> Result<Option<ObjectMeta>> {
        let Some(interval) = Self::sync_interval(b) else { return Ok(found) };
        if found.is_some() && !self.times.due(&b.name, &format!("\0{key}"), interval) {
            return Ok(found);
        }
        if found.as_ref().is_some_and(|f| f.ufs_etag.is_empty() || f.journal_worker != 0) {
            return Ok(found); // not in the under store (yet): nothing to compare
        }
        let now = self.sync_key(b, key).await;
        let changes = match &now {
            Ok(now) => usize::from(now.as_ref().map(|o| o.version) != found.as_ref().map(|o| o.version)),
            Err(_) => 0,
        };
        sync_pass(&b.name, "lookup", now.is_ok(), changes);
        now
    }

    /// Brings the metadata of `prefix` in line with the under store's listing, if due.
    pub(crate) async fn sync_listing(&self, bucket: &str, prefix: &str) -> Result<()> {
        let b = self.buckets.get(bucket).await?;
        let Some(interval) = Self::sync_interval(&b) else { return Ok(()) };
        if !self.times.due(bucket, prefix, interval) {
            return Ok(());
        }
        // A sync that fails or is dropped (its request gone) is due again at the next listing.
        let mut unfinished = Unfinished { times: &self.times, bucket, prefix, done: false };
        let mount = b.mount.clone().ok_or_else(|| Error::internal("a syncing bucket without a mount"))?;
        let store = self.ufs.open(&mount)?;
        // object_store lists by whole path segments: list the folder part, filter the rest.
        let dir = match prefix.rfind('/') {
            Some(i) => Some(ufs::key_path(&prefix[..i])?),
            None => None,
        };
        let found: HashMap<String, UfsMeta> = store
            .list(dir.as_ref())
            .try_filter_map(|m| async move {
                let key = ufs::path_key(&m.location);
                let ours = m.location.as_ref().starts_with(&format!("{}/", ufs::STAGING_DIR));
                Ok((!ours && key.starts_with(prefix)).then_some((key, m)))
            })
            .try_collect()
            .await
            .map_err(|e| {
                sync_pass(bucket, "listing", false, 0);
                Error::unavailable(format!("cannot list the under store of bucket {bucket}: {e}"))
            })?;
        let known = self.known_objects(bucket, prefix).await?;
        // On a read-only mount, keys new to the metadata are recorded from the listing, a batch
        // per transaction. On a writable one, a listing taken before a delete through Strata
        // finished would bring the object back: each key is looked at afresh under its lock.
        let batched = mount.read_only;
        let mut new: Vec<(&String, &UfsMeta)> =
            found.iter().filter(|(k, _)| batched && !known.contains_key(*k)).collect();
        new.sort_unstable_by_key(|(k, _)| *k);
        let mut imported = 0;
        for batch in new.chunks(IMPORT_BATCH) {
            match self.import(&b, batch).await {
                Ok(n) => imported += n,
                Err(e) => {
                    sync_pass(bucket, "listing", false, imported);
                    return Err(e);
                }
            }
        }
        let mut changed: Vec<&String> = found
            .iter()
            .filter(|(k, m)| match known.get(*k) {
                Some((size, fp)) => *size != m.size || *fp != fingerprint(m),
                None => !batched,
            })
            .map(|(k, _)| k)
            .collect();
        // Gone from the under store (objects never persisted there have no fingerprint).
        changed.extend(known.iter().filter(|(k, (_, fp))| !fp.is_empty() && !found.contains_key(*k)).map(|(k, _)| k));
        let n = imported + changed.len();
        for key in changed {
            if let Err(e) = self.sync_key(&b, key).await {
                sync_pass(bucket, "listing", false, 0);
                return Err(e);
            }
        }
        sync_pass(bucket, "listing", true, n);
        unfinished.done = true;
        if n > 0 {
            tracing::info!(bucket, prefix, changes = n, "metadata synced with the under store");
        }
        Ok(())
    }

    /// Records objects of a read-only mount's under store that the metadata did not hold, as
    /// the listing gave them (no HEAD each, no publish lock: nothing is written or deleted
    /// there through Strata). Returns how many.
    async fn import(&self, bucket: &Bucket, batch: &[(&String, &UfsMeta)]) -> Result<usize> {
        let mut metas = Vec::with_capacity(batch.len());
        for (key, m) in batch {
            metas.push(ObjectMeta {
                key: (*key).clone(),
                version: self.versions.next().await?,
                size: m.size,
                etag: s3_etag(m),
                last_modified_ms: m.last_modified.timestamp_millis(),
                block_size: self.block_size,
                ufs_etag: fingerprint(m),
                ..Default::default()
            });
        }
        let b = bucket.name.clone();
        transact(self.store.as_ref(), |t| {
            let (b, metas) = (b.clone(), metas.clone());
            Box::pin(async move {
                t.bucket(&b).await?;
                let mut n = 0;
                for meta in &metas {
                    if t.object(&b, &meta.key).await?.is_none() {
                        t.replace_object(&b, None, meta).await?;
                        n += 1;
                    }
                }
                Ok(n)
            })
        })
        .await
    }

    /// Key → (size, fingerprint) of the objects the metadata holds under `prefix`.
    async fn known_objects(&self, bucket: &str, prefix: &str) -> Result<HashMap<String, (u64, String)>> {
        let mut out = HashMap::new();
        let mut after = String::new();
        loop {
            let rows = transact(self.store.as_ref(), |t| {
                let (b, p, a) = (bucket.to_string(), prefix.to_string(), after.clone());
                Box::pin(async move { t.objects_after(&b, &p, &a, 1000).await })
            })
            .await?;
            let n = rows.len();
            let last = rows.last().map(|(k, _)| k.clone());
            for (key, meta) in rows {
                out.insert(key, (meta.size, meta.ufs_etag));
            }
            match last {
                Some(k) if n == 1000 => after = k,
                _ => return Ok(out),
            }
        }
    }

    /// Re-reads one key from the under store, under its publish lock, and records what is
    /// there: a new version when it changed, nothing when it is gone.
    pub(crate) async fn sync_key(&self, bucket: &Bucket, key: &str) -> Result<Option<ObjectMeta>> {
        let mount = bucket.mount.clone().ok_or_else(|| Error::internal("a syncing bucket without a mount"))?;
        let Ok(path) = ufs::key_path(key) else { return Ok(None) };
        let _held = self.publisher.lock(&bucket.name, key).await;
        let store = self.ufs.open(&mount)?;
        let head = match store.head(&path).await {
            Ok(m) => Some(m),
            Err(e) if not_found(&e) => None,
            Err(e) => return Err(Error::unavailable(format!("cannot read the under store of {}: {e}", bucket.name))),
        };
        let version = match &head {
            Some(_) => self.versions.next().await?,
            None => 0,
        };
        let (b, k) = (bucket.name.clone(), key.to_string());
        let block_size = self.block_size;
        transact(self.store.as_ref(), |t| {
            let (b, k, head) = (b.clone(), k.clone(), head.clone());
            Box::pin(async move {
                t.bucket(&b).await?;
                let current = t.object(&b, &k).await?;
                match (head, current) {
                    (None, Some(cur)) if !cur.ufs_etag.is_empty() && cur.journal_worker == 0 => {
                        t.remove_object(&b, &cur).await?;
                        Ok(None)
                    }
                    (None, current) => Ok(current),
                    // Written through Strata and not in the under store yet: Strata's is newer.
                    (Some(_), Some(cur)) if cur.journal_worker != 0 => Ok(Some(cur)),
                    // Written through Strata, its fingerprint not recorded (a store that gave no
                    // ETag): record it, keep the object as written.
                    (Some(h), Some(mut cur)) if cur.ufs_etag.is_empty() && cur.size == h.size => {
                        cur.ufs_etag = fingerprint(&h);
                        t.rewrite_object(&b, &cur);
                        Ok(Some(cur))
                    }
                    (Some(h), Some(cur)) if cur.size == h.size && cur.ufs_etag == fingerprint(&h) => Ok(Some(cur)),
                    (Some(h), current) => {
                        let meta = ObjectMeta {
                            key: k.clone(),
                            version,
                            size: h.size,
                            etag: s3_etag(&h),
                            last_modified_ms: h.last_modified.timestamp_millis(),
                            block_size,
                            ufs_etag: fingerprint(&h),
                            ..Default::default()
                        };
                        t.replace_object(&b, current.as_ref(), &meta).await?;
                        Ok(Some(meta))
                    }
                }
            })
        })
        .await
    }
}
