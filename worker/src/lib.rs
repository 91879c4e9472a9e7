//! The worker: a page cache over memory and disk in front of the under stores, serving
//! object bytes to gateways and writing them through to the under stores.

mod in_place;
mod membership;
pub mod pagestore;
mod read;
mod server;
mod write;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_trait::async_trait;
use object_store::ObjectStore;
use strata_common::Result;
use strata_common::api::*;
use strata_common::proto::Mount;
use strata_common::ttl_cache::TtlCache;
use strata_common::ufs::UfsRegistry;

pub use membership::{WorkerIdentity, register_and_heartbeat};
pub use pagestore::{PageStore, TierSpec};
pub use server::{api_router, router, run};
/// What `TierSpec` and `PageStore::open` take.
pub use strata_common::cache_types::{EvictionPolicy, Medium};

/// How long a bucket's mount is trusted before it is asked of the master again.
const MOUNT_TTL: Duration = Duration::from_secs(10);

/// Cheap to clone: streams that outlive a call hold one.
#[derive(Clone)]
pub struct Worker(Arc<Inner>);

pub struct Inner {
    master: Arc<dyn MasterApi>,
    ufs: UfsRegistry,
    /// Bytes of MUST_CACHE and ASYNC_THROUGH writes, one file a version, on this worker's disk.
    journal: Arc<dyn ObjectStore>,
    journal_dir: std::path::PathBuf,
    pub cache: Arc<PageStore>,
    mounts: TtlCache<String, Mount>,
    fills: read::Fills,
    /// Cache loads (`strata admin load`) on this worker, reported with each heartbeat.
    pub loads: LoadStats,
    /// Pages of the read-ahead budget the reads under way hold (see read.rs).
    read_ahead_taken: std::sync::atomic::AtomicUsize,
    /// Reads of each version, under way and lately ended: their pages stay (see [`Worker::free_versions`]).
    reading: std::sync::Mutex<read::Reads>,
}

/// Block loads running now, ended since start, and the bytes they brought in (while running).
#[derive(Default)]
pub struct LoadStats {
    pub running: AtomicU64,
    pub done: AtomicU64,
    pub bytes: AtomicU64,
}

/// Counts one load as running until dropped.
struct Running<'a>(&'a LoadStats);

impl<'a> Running<'a> {
    fn start(s: &'a LoadStats) -> Running<'a> {
        s.running.fetch_add(1, Relaxed);
        metrics::gauge!("strata_worker_loads_in_progress").increment(1.0);
        Running(s)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Relaxed);
        self.0.done.fetch_add(1, Relaxed);
        metrics::gauge!("strata_worker_loads_in_progress").decrement(1.0);
    }
}

impl Worker {
    /// `journal_dir`: where MUST_CACHE and ASYNC_THROUGH writes are kept (durable, local).
    pub fn new(master: Arc<dyn MasterApi>, cache: PageStore, journal_dir: &std::path::Path) -> Result<Worker> {
        std::fs::create_dir_all(journal_dir).map_err(|e| {
            strata_common::Error::internal(format!("cannot create the journal folder {}: {e}", journal_dir.display()))
        })?;
        let journal = object_store::local::LocalFileSystem::new_with_prefix(journal_dir)
            .map_err(|e| strata_common::Error::internal(format!("cannot open the journal folder: {e}")))?
            .with_fsync(true);
        Ok(Worker(Arc::new(Inner {
            master,
            ufs: UfsRegistry::default(),
            journal: Arc::new(journal),
            journal_dir: journal_dir.to_path_buf(),
            cache: Arc::new(cache),
            mounts: TtlCache::new(MOUNT_TTL),
            fills: Default::default(),
            loads: Default::default(),
            read_ahead_taken: Default::default(),
            reading: Default::default(),
        })))
    }

    async fn mount(&self, bucket: &str) -> Result<Mount> {
        self.mounts.get_or_fetch(bucket.to_string(), self.master.get_mount(bucket)).await
    }

    /// Where a version's bytes are in the journal.
    fn journal_path(version: u64) -> object_store::path::Path {
        object_store::path::Path::from(version.to_string())
    }

    async fn store_and_path(&self, loc: &UfsLocation) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
        let mount = self.mount(&loc.bucket).await?;
        Ok((self.ufs.open(&mount)?, loc.path()?))
    }

    /// The same, for a write: a read-only mount refuses it before any byte moves.
    async fn store_and_path_for_write(
        &self,
        loc: &UfsLocation,
    ) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path)> {
        let mount = self.mount(&loc.bucket).await?;
        if mount.read_only {
            return Err(strata_common::Error::new(
                strata_common::ErrorKind::AccessDenied,
                format!("bucket {} is a read-only mount: writes are refused", loc.bucket),
            ));
        }
        Ok((self.ufs.open(&mount)?, loc.path()?))
    }
}

impl std::ops::Deref for Worker {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[async_trait]
impl WorkerApi for Worker {
    async fn read(&self, req: ReadRequest) -> Result<ByteStream> {
        self.do_read(req).await
    }
    async fn load(&self, mut req: ReadRequest) -> Result<LoadResult> {
        use futures::TryStreamExt;
        req.cache = true;
        let ps = self.cache.page_size();
        let (first, last) = (req.offset / ps, (req.offset + req.len).saturating_sub(1) / ps);
        let missing = (first..=last)
            .filter(|&index| self.cache.tier_of(pagestore::PageId { version: req.version, index }).is_none())
            .map(|index| ((index + 1) * ps).min(req.object_size) - index * ps)
            .sum::<u64>();
        let _running = Running::start(&self.loads);
        let stats = &self.loads;
        let bytes = async {
            let count = |n: u64, b: bytes::Bytes| async move {
                stats.bytes.fetch_add(b.len() as u64, Relaxed);
                metrics::counter!("strata_worker_load_bytes_total").increment(b.len() as u64);
                Ok(n + b.len() as u64)
            };
            self.do_read(req).await?.try_fold(0u64, count).await
        }
        .await;
        let result = if bytes.is_ok() { "ok" } else { "failed" };
        metrics::counter!("strata_worker_loads_total", "result" => result).increment(1);
        let bytes = bytes?;
        Ok(LoadResult { bytes, from_ufs: missing.min(bytes) })
    }
    async fn free(&self, versions: Vec<u64>) -> Result<u64> {
        let versions = self.cache.unpinned(versions);
        Ok(self.cache.remove_versions(&versions).await)
    }
    async fn write(&self, req: WriteRequest, body: ByteStream) -> Result<WriteResult> {
        self.do_write(req, body).await
    }
    async fn compose(&self, req: ComposeRequest) -> Result<WriteResult> {
        self.do_compose(req).await
    }
    async fn delete(&self, locs: Vec<UfsLocation>) -> Result<()> {
        self.do_delete(locs).await
    }
}

/// Maps an under store's error to ours, saying which object it was about.
pub(crate) use strata_common::ufs::ufs_error;
