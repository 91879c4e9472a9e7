//! Moving a write's bytes from staging to its key in the under store, in commit order.
//!
//! A write streams into `%strata/tmp/<version>` of the bucket's mount; only once the master has
//! committed its metadata is it renamed onto the key. Commit and rename of one key happen under
//! one lock, so two writers of a key leave the under store holding the bytes of the one whose
//! metadata won, and a write that fails its commit (a condition, a deleted bucket) never
//! touches the object already there. Should the move itself fail after the commit (a full or
//! broken disk), the commit is undone, so that no object is left without its bytes; a delete
//! whose file stays (a read-only disk) is undone too, so that no file is left without its object.
//!
//! The commit's transaction also records a [`PublishIntent`], cleared once the under store has
//! changed: a master that dies in between (or loses the primary role) leaves it for the next
//! primary, which finishes it before serving ([`Publisher::finish_all`]). The move itself runs
//! apart from its caller (see `Master::detached`), so a client hanging up cannot stop it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use object_store::ObjectStoreExt;
use strata_common::kv::Txn;
use strata_common::kv::{KvStore, transact};
use strata_common::locks::{KeyedGuard, KeyedLocks};
use strata_common::proto::{Mount, ObjectMeta, PublishIntent};
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, Result, ufs};

use crate::buckets::Buckets;
use crate::free::ToFree;
use crate::ha::HaState;
use crate::schema::Schema;
use crate::store::fenced::{FENCED_OFF, UNFENCED};

type Key = (String, String);

/// Tries of a move onto a key before the under store is looked at (the store retries each too).
const MOVE_ATTEMPTS: u32 = 2;

/// In tests, a commit of this key waits between its metadata commit and the move of its bytes.
#[cfg(test)]
pub(crate) const PAUSED_KEY: &str = "paused-after-commit";

/// The intent a commit records in its transaction when the under store must change: `staging`
/// moved onto the key as `version`, or (empty `staging`) the key's file of `version` deleted.
pub(crate) fn intent(bucket: &str, key: &str, staging: &str, version: u64) -> PublishIntent {
    PublishIntent { bucket: bucket.into(), key: key.into(), version, staging: staging.into() }
}

/// Records [`intent`] in a commit's transaction.
pub(crate) fn intend(t: &mut Txn, bucket: &str, key: &str, staging: &str, version: u64) {
    t.put_publish_intent(&intent(bucket, key, staging, version));
}

/// Commits of one key, in order, with their bytes moved into place.
pub(crate) struct Publisher {
    store: Arc<dyn KvStore>,
    ufs: Arc<UfsRegistry>,
    ha: Arc<HaState>,
    buckets: Arc<Buckets>,
    /// The versions commits replaced or deleted, for workers to drop from their caches.
    to_free: Arc<ToFree>,
    locks: KeyedLocks<Key>,
    clears: Clears,
    /// Keys published in buckets whose under store a sync is listing (see [`Publisher::watch`]).
    watched: std::sync::Mutex<HashMap<String, Watched>>,
    /// In tests, how long each commit waits between its metadata commit and the move.
    #[cfg(test)]
    pub(crate) pause: std::sync::Mutex<std::time::Duration>,
}

/// Finished intents to forget, each with whom to tell: forgotten together, in one transaction
/// for all that came while the last one ran (half a small PUT's transactions are these).
#[derive(Default)]
struct Clears {
    queue: std::sync::Mutex<Vec<(PublishIntent, tokio::sync::oneshot::Sender<Result<()>>)>>,
    /// Held by the caller whose transaction runs.
    running: tokio::sync::Mutex<()>,
}

/// The keys published in one bucket while syncs of it list its under store.
#[derive(Default)]
struct Watched {
    /// Where each live watch began, in the bucket's publish count.
    starts: Vec<u64>,
    /// Key → the publish count at its last publish, since the oldest live watch began.
    keys: HashMap<String, u64>,
    count: u64,
}

/// Keeps [`Publisher`] noting the keys it publishes in a bucket until dropped.
pub(crate) struct Watch<'a> {
    publisher: &'a Publisher,
    bucket: String,
    start: u64,
}

impl Watch<'_> {
    /// Whether `key` was published since the watch began: a listing taken before may show
    /// what is no longer there (a delete) or not yet the key's object.
    pub(crate) fn published(&self, key: &str) -> bool {
        let w = self.publisher.watched.lock().unwrap_or_else(|p| p.into_inner());
        w.get(&self.bucket).and_then(|b| b.keys.get(key)).is_some_and(|n| *n > self.start)
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut w = self.publisher.watched.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = w.get_mut(&self.bucket) else { return };
        if let Some(i) = b.starts.iter().position(|s| *s == self.start) {
            b.starts.swap_remove(i);
        }
        match b.starts.iter().min() {
            None => _ = w.remove(&self.bucket),
            Some(&oldest) => b.keys.retain(|_, n| *n > oldest),
        }
    }
}

/// Notes a published key for the watches of its bucket when dropped.
struct Noted<'a> {
    publisher: &'a Publisher,
    bucket: &'a str,
    key: &'a str,
}

impl Drop for Noted<'_> {
    fn drop(&mut self) {
        let mut w = self.publisher.watched.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = w.get_mut(self.bucket) {
            b.count += 1;
            b.keys.insert(self.key.to_string(), b.count);
        }
    }
}

/// What a metadata commit tells [`Publisher::publish`].
pub(crate) struct Committed<T> {
    pub value: T,
    /// The bucket's mount when the under store must change (bytes to move, a key to delete).
    pub mount: Option<Mount>,
    /// The object the commit replaced, and the version it wrote: what an undo restores.
    pub replaced: Option<ObjectMeta>,
    pub version: u64,
}

impl Publisher {
    pub(crate) fn new(
        store: Arc<dyn KvStore>,
        ufs: Arc<UfsRegistry>,
        ha: Arc<HaState>,
        buckets: Arc<Buckets>,
        to_free: Arc<ToFree>,
    ) -> Publisher {
        Publisher {
            store,
            ufs,
            ha,
            buckets,
            to_free,
            locks: KeyedLocks::default(),
            clears: Clears::default(),
            watched: Default::default(),
            #[cfg(test)]
            pause: Default::default(),
        }
    }

    /// Holds the publish lock of `bucket/key` (a sync of the key takes it too).
    pub(crate) async fn lock(&self, bucket: &str, key: &str) -> KeyedGuard<'_, Key> {
        self.locks.lock((bucket.to_string(), key.to_string())).await
    }

    /// Notes the keys published in `bucket` from now until the watch is dropped (a sync
    /// listing the bucket's under store checks its keys against them).
    pub(crate) fn watch(&self, bucket: &str) -> Watch<'_> {
        let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let b = w.entry(bucket.to_string()).or_default();
        b.starts.push(b.count);
        Watch { publisher: self, bucket: bucket.to_string(), start: b.count }
    }

    pub(crate) fn ha(&self) -> &Arc<HaState> {
        &self.ha
    }

    /// The publish lock of `bucket/key` if nobody holds it now.
    pub(crate) fn try_lock(&self, bucket: &str, key: &str) -> Option<KeyedGuard<'_, Key>> {
        self.locks.try_lock((bucket.to_string(), key.to_string()))
    }

    /// Runs `commit` (a metadata transaction) for `bucket/key` and then, if it succeeded, moves
    /// the staged bytes onto the key; if it failed, deletes them. Deletes run here too (with
    /// `staging` empty) so that they are ordered with writes of the same key.
    pub(crate) async fn publish<T, F>(&self, bucket: &str, key: &str, staging: &str, commit: F) -> Result<T>
    where
        F: Future<Output = Result<Committed<T>>>,
    {
        let _held = self.lock(bucket, key).await;
        // Noted as the lock is let go (dropped before it): a publish that began before a
        // sync's watch is noted too, before the sync can take the key's lock.
        let _noted = Noted { publisher: self, bucket, key };
        if !staging.is_empty() {
            let mount = self.buckets.mount_of(bucket).await?;
            if let Err(e) = ufs::check_placeable(&mount, key) {
                self.remove_staged(&mount, staging).await;
                return Err(e);
            }
        }
        let epoch = self.ha.fence_epoch();
        match commit.await {
            Ok(Committed { value, mount: Some(mount), replaced, version }) => {
                #[cfg(test)]
                {
                    let pause = *self.pause.lock().unwrap();
                    let pause = if key == PAUSED_KEY { std::time::Duration::from_millis(300) } else { pause };
                    tokio::time::sleep(pause).await;
                }
                let deleted = replaced.as_ref().map_or(0, |r| r.version);
                let intent = intent(bucket, key, staging, if staging.is_empty() { deleted } else { version });
                // A master that lost the primary role since its commit leaves the under store to
                // the new primary, which finishes the commit's intent.
                self.claim(&intent, epoch).await?;
                let replaced_tag = replaced.as_ref().map(|r| r.ufs_etag.as_str());
                match self.move_into_place(&mount, key, staging, replaced_tag).await {
                    Ok(()) => {
                        if !staging.is_empty() && !mount.uri.starts_with("file:") {
                            self.refresh_ufs_etag(&mount, bucket, key, version).await;
                        }
                        self.clear_intent(&intent).await;
                        self.to_free.replaced(deleted);
                        Ok(value)
                    }
                    Err(e) => {
                        self.undo(&intent, replaced).await;
                        self.remove_staged(&mount, staging).await;
                        Err(e)
                    }
                }
            }
            Ok(Committed { value, mount: None, replaced, .. }) => {
                self.to_free.replaced(replaced.map_or(0, |r| r.version));
                Ok(value)
            }
            Err(e) => {
                if !staging.is_empty()
                    && let Ok(mount) = self.buckets.mount_of(bucket).await
                {
                    self.remove_staged(&mount, staging).await;
                }
                Err(e)
            }
        }
    }

    /// Finishes the under-store change of a commit that a crash (or a lost primary role) left
    /// undone: moves the staged bytes onto the key if the intent's version is still the
    /// object's, else drops them; a delete removes the key's file if no object came since.
    /// Then forgets the intent. Run before a new primary serves.
    pub(crate) async fn finish(&self, i: &PublishIntent) -> Result<()> {
        let _held = self.lock(&i.bucket, &i.key).await;
        let _noted = Noted { publisher: self, bucket: &i.bucket, key: &i.key };
        let epoch = self.ha.fence_epoch();
        let (b, k) = (i.bucket.clone(), i.key.clone());
        let current = transact(self.store.as_ref(), |t| {
            let (b, k) = (b.clone(), k.clone());
            Box::pin(async move { t.object(&b, &k).await })
        })
        .await?;
        let mount = match self.buckets.mount_of(&i.bucket).await {
            Ok(m) => Some(m),
            Err(e) if e.is(strata_common::ErrorKind::NoSuchBucket) => None,
            Err(e) => return Err(e),
        };
        if let Some(mount) = mount {
            self.claim(i, epoch).await?;
            let store = self.ufs.open(&mount)?;
            let current = current.map(|c| c.version);
            if i.staging.is_empty() {
                if current.is_none() {
                    self.move_into_place(&mount, &i.key, "", None).await?;
                }
            } else if current == Some(i.version) {
                match store.rename(&ufs::staging_path(&i.staging)?, &ufs::key_path(&i.key)?).await {
                    Ok(()) => {
                        tracing::info!(
                            bucket = i.bucket,
                            key = i.key,
                            version = i.version,
                            "finished an interrupted publish"
                        );
                        if !mount.uri.starts_with("file:") {
                            self.refresh_ufs_etag(&mount, &i.bucket, &i.key, i.version).await;
                        }
                    }
                    Err(object_store::Error::NotFound { .. }) => {} // moved before the interruption
                    Err(e) => return Err(Error::internal(format!("cannot finish moving {} onto its key: {e}", i.key))),
                }
            } else {
                self.remove_staged(&mount, &i.staging).await;
            }
        }
        transact(self.store.as_ref(), |t| {
            let i = i.clone();
            Box::pin(async move {
                t.clear_publish_intent(&i);
                Ok(())
            })
        })
        .await
    }

    /// Finishes every intent left in the store; returns how many.
    pub(crate) async fn finish_all(&self) -> Result<usize> {
        let intents = transact(self.store.as_ref(), |t| Box::pin(async move { t.publish_intents().await })).await?;
        let mut failed = None;
        for i in &intents {
            if let Err(e) = self.finish(i).await {
                tracing::warn!(bucket = i.bucket, key = i.key, version = i.version, "cannot finish a publish: {e}");
                failed = Some(e);
            }
        }
        failed.map_or(Ok(intents.len()), Err)
    }

    /// Checks, just before the under store changes, that this master still holds `epoch` (the
    /// one it committed or took over under) in the store, and that `intent` is still pending.
    /// Rewriting the intent makes the transaction a write, whose commit the fence checks: once a
    /// newer primary has taken its epoch this fails, and that primary's recovery (which runs
    /// after it took the epoch) finishes the intent instead. Left open: a process stalled
    /// between this check and the move itself, for longer than a lease.
    async fn claim(&self, intent: &PublishIntent, epoch: u64) -> Result<()> {
        let lost = |why: &str| {
            Error::unavailable(format!(
                "this master lost the primary role after committing {}/{} ({why}); the commit stands and the \
                 new primary finishes it: read the key again before retrying",
                intent.bucket, intent.key
            ))
        };
        if epoch == FENCED_OFF || self.ha.fence_epoch() != epoch {
            return Err(lost("stepped down"));
        }
        if epoch == UNFENCED {
            return Ok(()); // a single master: nobody else moves bytes
        }
        let pending = transact(self.store.as_ref(), |t| {
            let i = intent.clone();
            Box::pin(async move {
                let pending = t.has_publish_intent(&i).await?;
                if pending {
                    t.put_publish_intent(&i);
                }
                Ok(pending)
            })
        })
        .await
        .map_err(|e| lost(&e.message))?;
        if !pending || self.ha.fence_epoch() != epoch {
            return Err(lost("another primary finished its intent"));
        }
        Ok(())
    }

    async fn clear_intent(&self, intent: &PublishIntent) {
        use tokio::sync::oneshot::error::TryRecvError;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.clears.queue.lock().unwrap_or_else(|p| p.into_inner()).push((intent.clone(), tx));
        let answer = |rx: &mut tokio::sync::oneshot::Receiver<Result<()>>| match rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Closed) => Some(Err(Error::internal("the transaction forgetting it was cut off"))),
            Err(TryRecvError::Empty) => None,
        };
        // Whoever holds `running` forgets everything queued, this caller's intent too unless an
        // earlier holder took it.
        let cleared = loop {
            if let Some(r) = answer(&mut rx) {
                break r;
            }
            let _running = self.clears.running.lock().await;
            if let Some(r) = answer(&mut rx) {
                break r;
            }
            let batch = std::mem::take(&mut *self.clears.queue.lock().unwrap_or_else(|p| p.into_inner()));
            let intents: Arc<Vec<PublishIntent>> = Arc::new(batch.iter().map(|(i, _)| i.clone()).collect());
            let r = transact(self.store.as_ref(), |t| {
                let intents = intents.clone();
                Box::pin(async move {
                    for i in intents.iter() {
                        t.clear_publish_intent(i);
                    }
                    Ok(())
                })
            })
            .await;
            for (_, tx) in batch {
                let _ = tx.send(r.clone());
            }
        };
        if let Err(e) = cleared {
            // Harmless: the next primary finds the move done and forgets it.
            tracing::warn!(key = intent.key, "cannot forget a finished publish intent: {e}");
        }
    }

    /// Moves the staged bytes onto the key (or, `staging` empty, deletes the key's file). A
    /// move is a copy and a delete whose answers can be lost after they took effect, so a failed
    /// one is tried again, and at last the under store looked at: a move that happened is done.
    async fn move_into_place(&self, mount: &Mount, key: &str, staging: &str, replaced: Option<&str>) -> Result<()> {
        let store = self.ufs.open(mount)?;
        let target = ufs::key_path(key)?;
        if staging.is_empty() {
            return match store.delete(&target).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => {
                    tracing::error!(key, "committed a delete, but the under store kept the file: {e}");
                    Err(ufs::ufs_error(&format!("deleting {key}"), e))
                }
            };
        }
        let from = ufs::staging_path(staging)?;
        let mut failed = None;
        for attempt in 0..MOVE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            match store.rename(&from, &target).await {
                Ok(()) => return Ok(()),
                Err(e @ object_store::Error::NotFound { .. }) if attempt == 0 => {
                    tracing::error!(key, staging, "committed, but the staged bytes are missing: {e}");
                    return Err(Error::internal(format!("the written object's staged bytes are missing: {e}")));
                }
                // An earlier try copied and deleted, and lost its answer.
                Err(object_store::Error::NotFound { .. }) if attempt > 0 && store.head(&target).await.is_ok() => {
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(key, staging, attempt, "moving the written object onto its key failed: {e}");
                    failed = Some(e);
                }
            }
        }
        if moved(store.as_ref(), &from, &target, replaced).await {
            tracing::info!(key, staging, "the move's answers were lost, but its copy is in place");
            self.remove_staged(mount, staging).await;
            return Ok(());
        }
        let e = failed.map_or_else(|| "no attempt".to_string(), |e| e.to_string());
        tracing::error!(key, staging, "committed, but the bytes could not be moved onto the key: {e}");
        Err(Error::unavailable(format!("cannot move the written object onto its key in the under store: {e}")))
    }

    /// An object store's move is a copy, which may give the object a new ETag (S3 gives a copy
    /// of a multipart upload the MD5 of the whole): record it, or fills would take the object
    /// for changed behind Strata's back.
    async fn refresh_ufs_etag(&self, mount: &Mount, bucket: &str, key: &str, version: u64) {
        let (Ok(store), Ok(path)) = (self.ufs.open(mount), ufs::key_path(key)) else { return };
        let Ok(Some(tag)) = store.head(&path).await.map(|m| m.e_tag) else { return };
        let (b, k) = (bucket.to_string(), key.to_string());
        let done = transact(self.store.as_ref(), |t| {
            let (b, k, tag) = (b.clone(), k.clone(), tag.clone());
            Box::pin(async move {
                if let Some(mut cur) = t.object(&b, &k).await?
                    && cur.version == version
                    && cur.ufs_etag != tag
                {
                    cur.ufs_etag = tag;
                    t.rewrite_object(&b, &cur);
                }
                Ok(())
            })
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(bucket, key, "cannot record the under store's ETag after the move: {e}");
        }
    }

    /// Puts back the object a commit replaced, if the commit's version is still the current one,
    /// and forgets the commit's intent.
    async fn undo(&self, intent: &PublishIntent, replaced: Option<ObjectMeta>) {
        let (bucket, key, version) = (intent.bucket.as_str(), intent.key.as_str(), intent.version);
        let (b, k) = (bucket.to_string(), key.to_string());
        let undone = transact(self.store.as_ref(), |t| {
            let (b, k, replaced, intent) = (b.clone(), k.clone(), replaced.clone(), intent.clone());
            Box::pin(async move {
                t.clear_publish_intent(&intent);
                let current = t.object(&b, &k).await?;
                if intent.staging.is_empty() {
                    // A delete: the object comes back (with its journal key; a pin is not kept).
                    if let (None, Some(old)) = (&current, &replaced) {
                        t.replace_object(&b, None, old).await?;
                    }
                    return Ok(());
                }
                // What the commit moved goes back too: the journal key and the pin.
                if let Some(cur) = current.filter(|c| c.version == version) {
                    match &replaced {
                        Some(old) => _ = t.replace_object(&b, Some(&cur), old).await?,
                        None => t.remove_object(&b, &cur).await?,
                    }
                }
                Ok(())
            })
        })
        .await;
        if let Err(e) = undone {
            tracing::error!(bucket, key, version, "could not undo a commit whose bytes were not moved into place: {e}");
        }
    }

    async fn remove_staged(&self, mount: &Mount, staging: &str) {
        let (Ok(store), Ok(path)) = (self.ufs.open(mount), ufs::staging_path(staging)) else { return };
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(staging, "cannot delete the staged bytes of a failed write: {e}"),
        }
    }
}

/// Whether a move whose answers were lost happened all the same: the key holds a file of the
/// staged file's size that is not the object it replaced (`replaced`: that one's under-store
/// ETag, None if there was none), or the staged file is gone and the key is there.
async fn moved(
    store: &dyn object_store::ObjectStore,
    from: &object_store::path::Path,
    to: &object_store::path::Path,
    replaced: Option<&str>,
) -> bool {
    let Ok(target) = store.head(to).await else { return false };
    match replaced {
        None => {}
        Some(tag) if !tag.is_empty() && target.e_tag.as_deref() != Some(tag) => {}
        Some(_) => return false, // the old one, or one that cannot be told from it
    }
    match store.head(from).await {
        Err(object_store::Error::NotFound { .. }) => true,
        Ok(staged) => staged.size == target.size,
        Err(_) => false,
    }
}
