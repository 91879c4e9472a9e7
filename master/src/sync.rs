//! Metadata sync: objects created, overwritten or deleted directly in a mount's under store are
//! seen through Strata. A lookup miss asks the under store; a listing merges the under store's
//! listing once the mount's sync interval has passed. A changed fingerprint (size, or the under
//! store's ETag, which carries the mtime on a local folder) gives a new version id, so the cache
//! never serves the old bytes.
//!
//! Each change is applied under the key's publish lock. A key changed or gone is looked at
//! afresh (HEAD): a write through Strata in flight (committed, bytes not yet moved) is never
//! mistaken for a deletion. Keys new to the metadata are recorded as listed, unless published
//! through Strata since the sync began (the listing may predate a delete): those get a HEAD too.
//!
//! A listing's sync runs as a task of its own ([`SyncRun`]): a client's listing waits for it a
//! while; the first sync of a range that takes longer answers 503 meanwhile, a later one lets
//! the listing be answered from the metadata as it stands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use md5::{Digest, Md5};
use object_store::{ObjectMeta as UfsMeta, ObjectStore, ObjectStoreExt};
use strata_common::kv::{KvStore, Txn, transact};
use strata_common::proto::{Bucket, ObjectMeta, SyncProgress};
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, ErrorKind, Result, keys, ufs};
use tokio::sync::watch;

use crate::buckets::Buckets;
use crate::ha::HaState;
use crate::publish::Publisher;
use crate::schema::Schema;
use crate::versions::Versions;

/// When each (bucket, prefix) was last synced; soft state (a new primary syncs again).
#[derive(Default)]
struct SyncTimes(Mutex<HashMap<(String, String), Instant>>);

const MAX_REMEMBERED: usize = 100_000;

/// Who waits for a listing's sync, and how long (see [`UfsSync::sync_listing`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lister {
    /// A client's listing, its first page.
    FirstPage,
    /// A client's listing, a page after the first (or one that starts after a key).
    LaterPage,
    /// The master's own passes (pins, TTL).
    Master,
}

/// Syncs of listings' ranges that list their under stores at once; more wait for a turn.
pub(crate) const MAX_RUNS: usize = 4;

/// Takes a run out of the running ones as its task ends, however it ends.
struct Ending<'a> {
    sync: &'a UfsSync,
    id: (String, String),
    run: &'a Arc<SyncRun>,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut running = self.sync.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.get(&self.id).is_some_and(|cur| Arc::ptr_eq(cur, self.run)) {
            running.remove(&self.id);
            sync_gauges(&running);
        }
    }
}

/// One sync of a listing's range with the under store, run as a task of its own: a listing
/// that stops waiting for it (or whose caller hangs up) leaves it running, and listings of the
/// range that come meanwhile wait for the same run.
pub(crate) struct SyncRun {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    started: Instant,
    /// Keys of the range the under store listed so far.
    listed: AtomicU64,
    /// Keys recorded, changed or removed so far.
    changes: AtomicU64,
    /// Whether it holds one of the [`MAX_RUNS`] turns (else it waits for one).
    listing: AtomicBool,
    /// Whether no sync of the range (or of the whole bucket) ran to the end before this one.
    first: bool,
    done: watch::Receiver<Option<Result<()>>>,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl SyncRun {
    pub(crate) fn progress(&self) -> SyncProgress {
        SyncProgress {
            listed: self.listed.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            done: self.done.borrow().is_some(),
            waiting: !self.listing.load(Ordering::Relaxed),
        }
    }

    /// How the run ended, once it has, waiting at most `within`.
    pub(crate) async fn finished(&self, within: Duration) -> Option<Result<()>> {
        let mut rx = self.done.clone();
        match tokio::time::timeout(within, rx.wait_for(Option::is_some)).await {
            Err(_) => None,
            Ok(Ok(done)) => done.clone(),
            Ok(Err(_)) => Some(Err(Error::unavailable(format!(
                "the sync of bucket {} stopped before its end (the bucket was unmounted, or the master is \
                 stopping); retry",
                self.bucket
            )))),
        }
    }

    /// Waits for the end of the run, at most `within`: past it, a run that found the range
    /// recorded before lets the listing go on (with the metadata as it stands), a first one
    /// gives a [`ErrorKind::Syncing`] error saying how far it got.
    async fn wait(&self, within: Option<Duration>) -> Result<()> {
        if let Some(done) = self.finished(within.unwrap_or(Duration::MAX)).await {
            return done;
        }
        if !self.first {
            return Ok(());
        }
        let p = self.progress();
        let range = if self.prefix.is_empty() { String::new() } else { format!(" under {:?}", self.prefix) };
        let message = if p.waiting {
            format!(
                "bucket {}: the listing of its under store{range} waits for its turn to be recorded ({MAX_RUNS} \
                 under stores are listed at once; {} s so far); it is answered once that ends: retry it",
                self.bucket,
                p.elapsed_ms / 1000
            )
        } else {
            format!(
                "bucket {}: the listing of its under store{range} is being recorded ({} keys listed, {} recorded \
                 or changed, {} s so far); it is answered once that ends: retry it",
                self.bucket,
                p.listed,
                p.changes,
                p.elapsed_ms / 1000
            )
        };
        Err(Error::new(ErrorKind::Syncing, message))
    }
}

/// Objects new to the metadata recorded per transaction: with a read and a write each, within
/// etcd's default 128 operations.
const IMPORT_BATCH: usize = 100;

impl SyncTimes {
    /// Whether `(bucket, what)` is due under `interval_ms`: its last sync ended longer ago.
    fn due(&self, bucket: &str, what: &str, interval_ms: i64) -> bool {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let k = (bucket.to_string(), what.to_string());
        interval_ms <= 0 || m.get(&k).is_none_or(|t| t.elapsed() >= Duration::from_millis(interval_ms as u64))
    }

    /// Notes that a sync of `(bucket, what)` ended now.
    fn mark(&self, bucket: &str, what: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_REMEMBERED {
            m.clear();
        }
        m.insert((bucket.to_string(), what.to_string()), Instant::now());
    }
}

/// Counts one sync pass (`kind`: a listing, or one key looked up), as it ends.
fn sync_pass(bucket: &str, kind: &'static str, ok: bool) {
    let bucket = strata_common::ops::bucket_label(bucket, true);
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!("strata_master_sync_passes_total", "bucket" => bucket, "kind" => kind, "result" => result)
        .increment(1);
}

/// Runs listing their under stores, and runs waiting for a turn to.
fn sync_gauges(running: &HashMap<(String, String), Arc<SyncRun>>) {
    let listing = running.values().filter(|r| r.listing.load(Ordering::Relaxed)).count();
    metrics::gauge!("strata_master_syncs_running").set(listing as f64);
    metrics::gauge!("strata_master_syncs_waiting").set((running.len() - listing) as f64);
}

/// Counts changes a sync pass made, as it makes them.
fn sync_changes(bucket: &str, kind: &'static str, changes: u64) {
    let bucket = strata_common::ops::bucket_label(bucket, true);
    metrics::counter!("strata_master_sync_changes_total", "bucket" => bucket, "kind" => kind).increment(changes);
}

/// What identifies one state of an under-store object: its ETag as the under store gives it
/// (the form a fill's If-Match sends back).
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

/// Fails unless `bucket` is still the one the sync began with (not one mounted since under the
/// same name).
async fn same_mount(t: &mut Txn, bucket: &str, created_ms: i64) -> Result<()> {
    if t.bucket(bucket).await?.created_ms != created_ms {
        return Err(Error::unavailable(format!("bucket {bucket} was unmounted during a sync of it; retry")));
    }
    Ok(())
}

/// The metadata of an object found in the under store.
fn found_object(key: String, version: u64, m: &UfsMeta, block_size: u64) -> ObjectMeta {
    ObjectMeta {
        key,
        version,
        size: m.size,
        etag: s3_etag(m),
        last_modified_ms: m.last_modified.timestamp_millis(),
        block_size,
        ufs_etag: fingerprint(m),
        ..Default::default()
    }
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
    /// Ranges known recorded (bucket, prefix, the mount's created_ms): found by
    /// [`UfsSync::recorded_before`] or marked by a sync's end, so later pages do not ask the store.
    pub(crate) recorded: Mutex<std::collections::HashSet<(String, String, i64)>>,
    /// The syncs of listings' ranges running now, by (bucket, prefix).
    running: Mutex<HashMap<(String, String), Arc<SyncRun>>>,
    /// [`MAX_RUNS`] turns to list an under store.
    pub(crate) turns: tokio::sync::Semaphore,
    /// A run stops when this master stops being the primary.
    ha: Arc<HaState>,
    /// How long a client's listing waits for a sync.
    listing_wait: Duration,
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
        listing_wait: Duration,
    ) -> UfsSync {
        sync_gauges(&HashMap::new()); // both at 0 before any sync, not absent
        UfsSync {
            store,
            ufs,
            buckets,
            publisher: publisher.clone(),
            versions,
            times: SyncTimes::default(),
            recorded: Default::default(),
            running: Mutex::default(),
            turns: tokio::sync::Semaphore::new(MAX_RUNS),
            ha: publisher.ha().clone(),
            listing_wait,
            block_size,
        }
    }

    /// Forgets when `bucket` was synced, and stops its syncs (it was unmounted).
    pub(crate) fn forget(&self, bucket: &str) {
        self.times.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|(b, _), _| b != bucket);
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).retain(|(b, _, _)| b != bucket);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|(b, _), run| {
            if b == bucket
                && let Some(task) = run.task.get()
            {
                task.abort();
            }
            b != bucket
        });
        sync_gauges(&running);
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
        if found.is_some() {
            let what = format!("\0{key}");
            if !self.times.due(&b.name, &what, interval) {
                return Ok(found);
            }
            self.times.mark(&b.name, &what); // one lookup of a hot key asks, not each
        }
        if found.as_ref().is_some_and(|f| f.ufs_etag.is_empty() || f.journal_worker != 0) {
            return Ok(found); // not in the under store (yet): nothing to compare
        }
        let now = self.sync_key(b, key).await;
        sync_pass(&b.name, "lookup", now.is_ok());
        let (now, changed) = now?;
        sync_changes(&b.name, "lookup", u64::from(changed));
        Ok(now)
    }

    /// Brings the metadata of `prefix` in line with the under store's listing, if due. A
    /// client's first page waits for that at most the configured time (for a re-sync, until the
    /// run is that old), a later page only for a first sync (which it starts when none ran);
    /// the master's own passes wait to the end.
    pub(crate) async fn sync_listing(self: &Arc<Self>, bucket: &str, prefix: &str, who: Lister) -> Result<()> {
        let b = self.buckets.get(bucket).await?;
        let Some(interval) = Self::sync_interval(&b) else { return Ok(()) };
        let joined =
            self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&(b.name.clone(), prefix.to_string())).cloned();
        let run = match joined {
            Some(run) => run,
            // The first page started what was due; a page starting after a key with nothing of
            // the range ever recorded (StartAfter on a first page, a V1 marker) would list none.
            None if who == Lister::LaterPage => {
                if self.recorded_before(&b, prefix).await? {
                    return Ok(());
                }
                match self.start(b, prefix, Some(interval), true) {
                    Some(run) => run,
                    None => return Ok(()),
                }
            }
            None if !self.times.due(bucket, prefix, interval) => return Ok(()),
            None => {
                let first = !self.recorded_before(&b, prefix).await?;
                match self.start(b, prefix, Some(interval), first) {
                    Some(run) => run,
                    None => return Ok(()),
                }
            }
        };
        let resync = !run.first;
        match who {
            Lister::Master => run.wait(None).await,
            Lister::LaterPage if resync => Ok(()),
            Lister::FirstPage if resync => {
                run.wait(Some(self.listing_wait.saturating_sub(run.started.elapsed()))).await
            }
            _ => run.wait(Some(self.listing_wait)).await,
        }
    }

    /// The syncs running now, with their progress, by bucket and prefix.
    pub(crate) fn running(&self) -> Vec<(String, String, SyncProgress)> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = running.values().map(|r| (r.bucket.clone(), r.prefix.clone(), r.progress())).collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// Syncs `prefix` of a mounted bucket now, whatever its interval, or joins the sync of it
    /// running (`strata admin sync`).
    pub(crate) async fn sync_now(self: &Arc<Self>, bucket: &str, prefix: &str) -> Result<Arc<SyncRun>> {
        let b = self.buckets.get(bucket).await?;
        if b.mount.is_none() {
            return Err(Error::invalid(format!("bucket {bucket} is not a mount: it has no under store to sync with")));
        }
        let first = !self.recorded_before(&b, prefix).await?;
        self.start(b, prefix, None, first).ok_or_else(|| Error::internal("a sync forced to run did not start"))
    }

    /// The running sync of (bucket, prefix), else a new one if due under `interval` (always
    /// without one).
    fn start(self: &Arc<Self>, b: Bucket, prefix: &str, interval: Option<i64>, first: bool) -> Option<Arc<SyncRun>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let id = (b.name.clone(), prefix.to_string());
        if let Some(run) = running.get(&id) {
            return Some(run.clone());
        }
        if interval.is_some_and(|ms| !self.times.due(&b.name, prefix, ms)) {
            return None;
        }
        let (tx, done) = watch::channel(None);
        let run = Arc::new(SyncRun {
            bucket: b.name.clone(),
            prefix: prefix.to_string(),
            started: Instant::now(),
            listed: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            listing: AtomicBool::new(false),
            first,
            done,
            task: OnceLock::new(),
        });
        running.insert(id.clone(), run.clone());
        sync_gauges(&running);
        let (this, r) = (self.clone(), run.clone());
        let mut demoted = self.ha.demotions();
        let task = tokio::spawn(async move {
            let _ending = Ending { sync: &this, id, run: &r };
            let out = tokio::select! {
                out = async {
                    let _turn = this.turns.acquire().await;
                    r.listing.store(true, Ordering::Relaxed);
                    sync_gauges(&this.running.lock().unwrap_or_else(|p| p.into_inner()));
                    let n = this.sync_range(&b, &r).await?;
                    this.mark_recorded(&b, &r.prefix).await?;
                    Ok(n)
                } => out,
                Ok(()) = demoted.changed() => Err(Error::unavailable("this master stepped down during the sync; retry")),
            };
            sync_pass(&b.name, "listing", out.is_ok());
            if out.is_ok() {
                this.times.mark(&b.name, &r.prefix); // else due again at the next listing
            }
            let _ = tx.send(Some(out.map(|_| ())));
        });
        let _ = run.task.set(task.abort_handle());
        Some(run)
    }

    /// One pass over the under store's listing of `run`'s range: keys new to the metadata are
    /// recorded as they come, a batch per transaction; keys changed or gone are looked at afresh
    /// one by one. Returns the changes made.
    async fn sync_range(&self, b: &Bucket, run: &SyncRun) -> Result<u64> {
        let (bucket, prefix) = (b.name.as_str(), run.prefix.as_str());
        let mount = b.mount.clone().ok_or_else(|| Error::internal("a syncing bucket without a mount"))?;
        let store = self.ufs.open(&mount)?;
        // Keys published from here on are checked afresh: the listing may predate them.
        let watch = self.publisher.watch(bucket);
        let mut known = self.known_objects(bucket, prefix).await?;
        // object_store lists by whole path segments: list the folder part, filter the rest.
        let dir = match prefix.rfind('/') {
            Some(i) => Some(ufs::key_path(&prefix[..i])?),
            None => None,
        };
        let failed = |e| Error::unavailable(format!("cannot list the under store of bucket {bucket}: {e}"));
        let mut listing = store.list(dir.as_ref());
        let staging = format!("{}/", ufs::STAGING_DIR);
        let (mut new, mut recheck) = (Vec::with_capacity(IMPORT_BATCH), Vec::new());
        let mut changes = 0;
        // Object stores list in key order: their keys are recorded as they come. A folder's
        // come in no order: they are recorded at the end, sorted (the metadata store writes a
        // batch of neighbouring keys several times faster than one spread over the key space).
        let (mut in_order, mut last) = (true, String::new());
        while let Some(m) = listing.try_next().await.map_err(failed)? {
            let key = ufs::path_key(&m.location);
            if m.location.as_ref().starts_with(&staging) || !key.starts_with(prefix) {
                continue;
            }
            let listed = run.listed.fetch_add(1, Ordering::Relaxed) + 1;
            if listed.is_multiple_of(100_000) {
                let changes = run.changes.load(Ordering::Relaxed);
                tracing::info!(bucket, prefix, listed, changes, "syncing with the under store");
            }
            match known.remove(&key) {
                Some((size, fp)) if size != m.size || fp != fingerprint(&m) => recheck.push(key),
                Some(_) => {}
                None => {
                    in_order &= last.is_empty() || last < key;
                    last.clone_from(&key);
                    new.push((key, m));
                }
            }
            if in_order && new.len() == IMPORT_BATCH {
                changes += self.import(b, run, std::mem::take(&mut new), &watch, &mut recheck).await?;
            }
        }
        new.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        let mut rest = new.into_iter().peekable();
        while rest.peek().is_some() {
            let batch = rest.by_ref().take(IMPORT_BATCH).collect();
            changes += self.import(b, run, batch, &watch, &mut recheck).await?;
        }
        // Gone from the under store (objects never persisted there have no fingerprint).
        recheck.extend(known.into_iter().filter(|(_, (_, fp))| !fp.is_empty()).map(|(k, _)| k));
        for key in recheck {
            let (_, changed) = self.sync_key(b, &key).await?;
            let n = u64::from(changed);
            changes += n;
            run.changes.fetch_add(n, Ordering::Relaxed);
            sync_changes(bucket, "listing", n);
        }
        if changes > 0 {
            tracing::info!(bucket, prefix, changes, "metadata synced with the under store");
        }
        Ok(changes)
    }

    /// Records objects of the under store that the metadata did not hold, as the listing gave
    /// them (no HEAD each), under their publish locks. Keys published since the sync began, or
    /// being published, go to `recheck` instead: the listing may be older than a delete through
    /// Strata. Returns how many were recorded.
    async fn import(
        &self,
        bucket: &Bucket,
        run: &SyncRun,
        batch: Vec<(String, UfsMeta)>,
        watch: &crate::publish::Watch<'_>,
        recheck: &mut Vec<String>,
    ) -> Result<u64> {
        // A key whose lock is held is being published: looked at afresh after.
        let mut held = Vec::with_capacity(batch.len());
        let mut metas = Vec::with_capacity(batch.len());
        for (key, m) in batch {
            let Some(guard) = self.publisher.try_lock(&bucket.name, &key) else {
                recheck.push(key);
                continue;
            };
            if watch.published(&key) {
                recheck.push(key);
                continue;
            }
            held.push(guard);
            metas.push(found_object(key, self.versions.next().await?, &m, self.block_size));
        }
        let (b, created) = (bucket.name.clone(), bucket.created_ms);
        let n = transact(self.store.as_ref(), |t| {
            let (b, metas) = (b.clone(), metas.clone());
            Box::pin(async move {
                same_mount(t, &b, created).await?;
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
        .await?;
        run.changes.fetch_add(n, Ordering::Relaxed);
        sync_changes(&bucket.name, "listing", n);
        Ok(n)
    }

    /// Whether a sync of `prefix` (or of the whole bucket) ran to the end since `b` was mounted:
    /// the metadata then holds every key of the range, if not the newest state of each.
    async fn recorded_before(&self, b: &Bucket, prefix: &str) -> Result<bool> {
        let known = (b.name.clone(), prefix.to_string(), b.created_ms);
        if self.recorded.lock().unwrap_or_else(|p| p.into_inner()).contains(&known) {
            return Ok(true);
        }
        let (name, p, created) = (b.name.clone(), prefix.to_string(), b.created_ms.to_be_bytes());
        let recorded = transact(self.store.as_ref(), |t| {
            let (name, p) = (name.clone(), p.clone());
            Box::pin(async move {
                for range in [p.as_str(), ""] {
                    if t.get(&keys::synced(&name, range)).await?.is_some_and(|v| v == created) {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
        })
        .await?;
        if recorded {
            self.remember_recorded(known);
        }
        Ok(recorded)
    }

    fn remember_recorded(&self, known: (String, String, i64)) {
        let mut set = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX_REMEMBERED {
            set.clear();
        }
        set.insert(known);
    }

    /// Notes that a sync of `prefix` ran to the end (see [`UfsSync::recorded_before`]).
    async fn mark_recorded(&self, b: &Bucket, prefix: &str) -> Result<()> {
        let (name, p, created) = (b.name.clone(), prefix.to_string(), b.created_ms);
        transact(self.store.as_ref(), |t| {
            let (name, p) = (name.clone(), p.clone());
            Box::pin(async move {
                same_mount(t, &name, created).await?;
                t.set(&keys::synced(&name, &p), &created.to_be_bytes());
                Ok(())
            })
        })
        .await?;
        self.remember_recorded((b.name.clone(), prefix.to_string(), created));
        Ok(())
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
    /// there: a new version when it changed, nothing when it is gone. Returns the object as it
    /// now is, and whether that changed.
    pub(crate) async fn sync_key(&self, bucket: &Bucket, key: &str) -> Result<(Option<ObjectMeta>, bool)> {
        let mount = bucket.mount.clone().ok_or_else(|| Error::internal("a syncing bucket without a mount"))?;
        let Ok(path) = ufs::key_path(key) else { return Ok((None, false)) };
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
        let (b, k, created) = (bucket.name.clone(), key.to_string(), bucket.created_ms);
        let block_size = self.block_size;
        transact(self.store.as_ref(), |t| {
            let (b, k, head) = (b.clone(), k.clone(), head.clone());
            Box::pin(async move {
                same_mount(t, &b, created).await?;
                let current = t.object(&b, &k).await?;
                match (head, current) {
                    (None, Some(cur)) if !cur.ufs_etag.is_empty() && cur.journal_worker == 0 => {
                        t.remove_object(&b, &cur).await?;
                        Ok((None, true))
                    }
                    (None, current) => Ok((current, false)),
                    // Written through Strata and not in the under store yet: Strata's is newer.
                    (Some(_), Some(cur)) if cur.journal_worker != 0 => Ok((Some(cur), false)),
                    // Written through Strata, its fingerprint not recorded (a store that gave no
                    // ETag): record it, keep the object as written.
                    (Some(h), Some(mut cur)) if cur.ufs_etag.is_empty() && cur.size == h.size => {
                        cur.ufs_etag = fingerprint(&h);
                        t.rewrite_object(&b, &cur);
                        Ok((Some(cur), false))
                    }
                    (Some(h), Some(cur)) if cur.size == h.size && cur.ufs_etag == fingerprint(&h) => {
                        Ok((Some(cur), false))
                    }
                    (Some(h), current) => {
                        let meta = found_object(k.clone(), version, &h, block_size);
                        t.replace_object(&b, current.as_ref(), &meta).await?;
                        Ok((Some(meta), true))
                    }
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: bool) -> (SyncRun, watch::Sender<Option<Result<()>>>) {
        let (tx, done) = watch::channel(None);
        let run = SyncRun {
            bucket: "b".into(),
            prefix: String::new(),
            started: Instant::now(),
            listed: AtomicU64::new(7),
            changes: AtomicU64::new(5),
            listing: AtomicBool::new(true),
            first,
            done,
            task: OnceLock::new(),
        };
        (run, tx)
    }

    #[tokio::test]
    async fn a_listing_past_its_wait_is_refused_only_while_a_first_sync_runs() {
        let (r, _tx) = run(true);
        let e = r.wait(Some(Duration::ZERO)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Syncing);
        assert!(e.message.contains("7 keys listed, 5 recorded"), "{e}");
        r.listing.store(false, Ordering::Relaxed);
        assert!(r.progress().waiting);
        let e = r.wait(Some(Duration::ZERO)).await.unwrap_err();
        assert!(e.message.contains("waits for its turn") && !e.message.contains("keys listed"), "{e}");
        // The range was recorded before: the listing goes on with the metadata as it stands.
        let (r, tx) = run(false);
        assert_eq!(r.wait(Some(Duration::ZERO)).await, Ok(()));
        // A run that ended answers how it ended; one whose task went away, an error.
        tx.send(Some(Err(Error::unavailable("under store down")))).unwrap();
        assert_eq!(r.wait(Some(Duration::ZERO)).await.unwrap_err().message, "under store down");
        let (r, tx) = run(true);
        drop(tx);
        assert_eq!(r.wait(None).await.unwrap_err().kind, ErrorKind::Unavailable);
        assert!(!r.progress().done);
    }
}
