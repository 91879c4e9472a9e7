//! The gateway's metadata cache: object metadata, buckets (owner, ACL, CORS, mount) and
//! credentials from the master, kept exact by the master's watch of changed keys
//! (`master/src/store/watch.rs`). An entry is served only while the watch is healthy and the
//! lease of its last acknowledged ack runs; any doubt (stream broken, new epoch, a gap in the
//! sequence) drops every entry. A fetch caches its answer only if no change of its key arrived
//! while it ran (a pending slot that any invalidation removes).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use strata_common::api::MasterApi;
use strata_common::master_client::GrpcMaster;
use strata_common::proto::*;
use strata_common::{Error, Result};
use tokio_util::sync::CancellationToken;

/// A watch that hears nothing for this long is given up (and the cache dropped).
const SILENCE: Duration = Duration::from_secs(2);
/// Object entries kept at most; past it they are all dropped (and fill again).
const MAX_OBJECTS: usize = 200_000;

enum Slot<V> {
    /// A fetch is under way; its answer is kept only if this slot (same token) is still here.
    Pending(u64),
    Ready(V),
}

#[derive(Default)]
struct State {
    /// Entries may be served until then (None: not watching).
    valid_until: Option<Instant>,
    objects: HashMap<String, HashMap<String, Slot<ObjectMeta>>>,
    object_count: usize,
    buckets: HashMap<String, Slot<Bucket>>,
    mounts: HashMap<String, Slot<Mount>>,
    credentials: HashMap<String, Slot<CredentialResponse>>,
}

impl State {
    fn healthy(&self) -> bool {
        self.valid_until.is_some_and(|t| Instant::now() < t)
    }

    fn clear(&mut self) {
        self.objects.clear();
        self.object_count = 0;
        self.buckets.clear();
        self.mounts.clear();
        self.credentials.clear();
    }

    fn apply(&mut self, ev: &MetaWatchEvent) {
        if ev.everything {
            self.clear();
            return;
        }
        for o in &ev.objects {
            if let Some(m) = self.objects.get_mut(&o.bucket)
                && m.remove(&o.key).is_some()
            {
                self.object_count -= 1;
            }
        }
        for b in &ev.buckets {
            self.buckets.remove(b);
            self.mounts.remove(b);
            if let Some(m) = self.objects.remove(b) {
                self.object_count -= m.len();
            }
        }
        if ev.credentials {
            self.credentials.clear();
        }
    }
}

/// The master as the gateway calls it: reads of what it caches answered from the cache,
/// everything else passed through.
pub struct CachedMaster {
    inner: Arc<GrpcMaster>,
    state: Arc<Mutex<State>>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a lookup in one of the maps found.
enum Found<V> {
    Hit(V),
    /// Fetch, and keep the answer under this token.
    Fetch(u64),
    /// Fetch, keep nothing (not watching, or another fetch of the key is under way).
    Pass,
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn find<K: Eq + Hash, V: Clone>(healthy: bool, m: &mut HashMap<K, Slot<V>>, key: K) -> Found<V> {
    if !healthy {
        return Found::Pass;
    }
    match m.entry(key) {
        Entry::Occupied(e) => match e.get() {
            Slot::Ready(v) => Found::Hit(v.clone()),
            Slot::Pending(_) => Found::Pass,
        },
        Entry::Vacant(e) => {
            let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
            e.insert(Slot::Pending(token));
            Found::Fetch(token)
        }
    }
}

/// Keeps a fetched answer if its pending slot is still there, else forgets that slot. True
/// when the slot was removed.
fn settle<K: Eq + Hash, V: Clone>(
    healthy: bool,
    m: &mut HashMap<K, Slot<V>>,
    key: K,
    token: u64,
    answer: &Result<V>,
) -> bool {
    if !matches!(m.get(&key), Some(Slot::Pending(t)) if *t == token) {
        return false;
    }
    match answer {
        Ok(v) if healthy => {
            m.insert(key, Slot::Ready(v.clone()));
            false
        }
        _ => m.remove(&key).is_some(),
    }
}

type Select<K, V> = fn(&mut State) -> &mut HashMap<K, Slot<V>>;

impl CachedMaster {
    /// Wraps `inner` and watches the master until `shutdown`.
    pub fn start(inner: Arc<GrpcMaster>, shutdown: CancellationToken) -> Arc<CachedMaster> {
        let c = Arc::new(CachedMaster { inner, state: Default::default() });
        tokio::spawn(watch_loop(c.inner.clone(), c.state.clone(), shutdown));
        c
    }

    async fn cached<K, V, F>(&self, map: Select<K, V>, key: K, fetch: F) -> Result<V>
    where
        K: Eq + Hash + Clone,
        V: Clone,
        F: Future<Output = Result<V>>,
    {
        let found = {
            let mut s = lock(&self.state);
            let healthy = s.healthy();
            find(healthy, map(&mut s), key.clone())
        };
        match found {
            Found::Hit(v) => {
                metrics::counter!("strata_gateway_meta_cache_hits_total").increment(1);
                Ok(v)
            }
            Found::Pass => fetch.await,
            Found::Fetch(token) => {
                metrics::counter!("strata_gateway_meta_cache_misses_total").increment(1);
                let answer = fetch.await;
                let mut s = lock(&self.state);
                let healthy = s.healthy();
                settle(healthy, map(&mut s), key, token, &answer);
                answer
            }
        }
    }

    /// Healthy now: for tests and /metrics.
    pub fn watching(&self) -> bool {
        lock(&self.state).healthy()
    }
}

/// Subscribes, follows, and on any trouble drops the cache and subscribes again.
async fn watch_loop(master: Arc<GrpcMaster>, state: Arc<Mutex<State>>, shutdown: CancellationToken) {
    let mut pause = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let why = tokio::select! {
            r = follow(&master, &state) => r,
            _ = shutdown.cancelled() => break,
        };
        {
            let mut s = lock(&state);
            s.valid_until = None;
            s.clear();
        }
        let why = why.err().map(|e| e.to_string()).unwrap_or_else(|| "the stream ended".into());
        tracing::info!("metadata watch interrupted ({why}); the metadata cache is off until it resumes");
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => break,
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One subscription, until it breaks (Ok: it ended).
async fn follow(master: &GrpcMaster, state: &Mutex<State>) -> Result<()> {
    let (tx, rx) = futures::channel::mpsc::unbounded::<MetaWatchAck>();
    let mut stream = master.watch_meta(rx).await?;
    let mut first: Option<(u64, u64)> = None; // epoch, seq
    let mut ping = 0u64;
    // The acks in flight: (ping, when it was sent).
    let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
    loop {
        // Heartbeats come every 200 ms: silence means a stream that is gone.
        let ev = match tokio::time::timeout(SILENCE, stream.next()).await {
            Ok(Some(ev)) => ev.map_err(Error::from)?,
            Ok(None) => return Ok(()),
            Err(_) => return Err(Error::unavailable(format!("the master sent nothing for {SILENCE:?}"))),
        };
        let seq = match first {
            None if ev.heartbeat => ev.seq,
            None => return Err(Error::unavailable("the watch began without a heartbeat")),
            Some((epoch, _)) if epoch != ev.epoch => return Err(Error::unavailable("the master's epoch changed")),
            Some((_, last)) if ev.heartbeat && ev.seq == last => last,
            Some((_, last)) if !ev.heartbeat && ev.seq == last + 1 => ev.seq,
            Some((_, last)) => {
                return Err(Error::unavailable(format!("a gap in the watch: seq {} after {last}", ev.seq)));
            }
        };
        first = Some((ev.epoch, seq));
        while sent.front().is_some_and(|(p, _)| *p < ev.acked_ping) {
            sent.pop_front();
        }
        {
            let mut s = lock(state);
            if !ev.heartbeat {
                s.apply(&ev);
            }
            if let Some((p, at)) = sent.front()
                && *p == ev.acked_ping
            {
                s.valid_until = Some(*at + Duration::from_millis(ev.lease_ms));
            }
        }
        if !ev.heartbeat || sent.is_empty() || ev.acked_ping >= ping {
            // Applied (or a heartbeat to renew the lease with): ack it, numbered.
            ping += 1;
            sent.push_back((ping, Instant::now()));
            tx.unbounded_send(MetaWatchAck { seq, ping }).map_err(|_| Error::unavailable("the ack stream closed"))?;
        }
    }
}

#[async_trait]
impl MasterApi for CachedMaster {
    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        // A syncing mount changes with its under store, which nobody publishes: not cached.
        let b = self.get_bucket(bucket).await?;
        if b.mount.as_ref().is_some_and(|m| m.sync_interval_ms.is_some()) {
            return self.inner.lookup(bucket, key).await;
        }
        let found = {
            let mut s = lock(&self.state);
            let healthy = s.healthy();
            if s.object_count >= MAX_OBJECTS {
                s.objects.clear();
                s.object_count = 0;
            }
            if !s.objects.contains_key(bucket) {
                s.objects.insert(bucket.to_string(), HashMap::new());
            }
            let m = s.objects.get_mut(bucket).expect("inserted above");
            let f = find(healthy, m, key.to_string());
            if matches!(f, Found::Fetch(_)) {
                s.object_count += 1;
            }
            f
        };
        match found {
            Found::Hit(v) => {
                metrics::counter!("strata_gateway_meta_cache_hits_total").increment(1);
                Ok(v)
            }
            Found::Pass => self.inner.lookup(bucket, key).await,
            Found::Fetch(token) => {
                metrics::counter!("strata_gateway_meta_cache_misses_total").increment(1);
                let answer = self.inner.lookup(bucket, key).await;
                let mut s = lock(&self.state);
                let healthy = s.healthy();
                let removed =
                    s.objects.get_mut(bucket).is_some_and(|m| settle(healthy, m, key.to_string(), token, &answer));
                if removed {
                    s.object_count -= 1;
                }
                answer
            }
        }
    }
    async fn get_bucket(&self, name: &str) -> Result<Bucket> {
        self.cached(|s| &mut s.buckets, name.to_string(), self.inner.get_bucket(name)).await
    }
    async fn get_mount(&self, bucket: &str) -> Result<Mount> {
        self.cached(|s| &mut s.mounts, bucket.to_string(), self.inner.get_mount(bucket)).await
    }
    async fn get_credential(&self, access_key: &str) -> Result<CredentialResponse> {
        self.cached(|s| &mut s.credentials, access_key.to_string(), self.inner.get_credential(access_key)).await
    }

    async fn create_bucket(&self, name: &str) -> Result<Bucket> {
        self.inner.create_bucket(name).await
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.inner.delete_bucket(name).await
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        self.inner.list_buckets().await
    }
    async fn allocate_version(&self) -> Result<u64> {
        self.inner.allocate_version().await
    }
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        self.inner.commit_object(req).await
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        self.inner.delete_object(bucket, key).await
    }
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        self.inner.list_objects(req).await
    }
    async fn create_upload(&self, upload: Upload) -> Result<Upload> {
        self.inner.create_upload(upload).await
    }
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState> {
        self.inner.get_upload(upload).await
    }
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        self.inner.commit_part(req).await
    }
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        self.inner.complete_upload(req).await
    }
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse> {
        self.inner.abort_upload(upload).await
    }
    async fn get_completed_upload(&self, upload: UploadRef) -> Result<CompletedUpload> {
        self.inner.get_completed_upload(upload).await
    }
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        self.inner.list_uploads(req).await
    }
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        self.inner.set_tags(req).await
    }
    async fn set_bucket_cors(&self, req: SetCorsRequest) -> Result<()> {
        self.inner.set_bucket_cors(req).await
    }
    async fn set_bucket_access(&self, req: BucketAccessRequest) -> Result<Bucket> {
        self.inner.set_bucket_access(req).await
    }
    async fn set_object_acl(&self, req: ObjectAclRequest) -> Result<()> {
        self.inner.set_object_acl(req).await
    }
    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo> {
        self.inner.register_worker(info).await
    }
    async fn journal(&self, worker_id: u64) -> Result<Vec<JournalEntry>> {
        self.inner.journal(worker_id).await
    }
    async fn persisted(&self, req: PersistedRequest) -> Result<()> {
        self.inner.persisted(req).await
    }
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        self.inner.heartbeat(req).await
    }
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>> {
        self.inner.list_workers().await
    }
}
