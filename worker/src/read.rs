//! The worker's read path: a range of an object served page by page from the cache, a
//! missing page filled once (one fill per page at a time) from the under store or the journal.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectStore;
use strata_common::api::{ByteStream, ReadRequest};
use strata_common::read_source;
use strata_common::ufs_read::UfsRange;
use strata_common::{Error, Result};

use crate::Worker;
use crate::pagestore::{MoveUp, PageId};

/// One fill at a time per page: N readers of a missing page cause one under-store read.
pub(crate) type Fills = strata_common::locks::KeyedLocks<PageId>;

/// Pages read ahead of the one being sent, at most.
const READ_AHEAD: usize = 4;

/// Bytes read ahead by all readers together: a read takes up to [`READ_AHEAD`] pages of it when
/// it starts (none once it is spent) and gives them back when done, so that many readers do
/// not hold many pages each beyond the cache's quota.
const READ_AHEAD_BUDGET: u64 = 64 << 20;

/// How long a version's pages stay after its last read here ended: a GET through a gateway
/// reads an object's blocks one after another, from several workers, so a worker's next block
/// of it may come a while after its last. (Shorter than the master tells a version for.)
const READ_LATELY: Duration = Duration::from_secs(5);

/// The reads of each version on this worker: under way, and when the last one ended.
#[derive(Default)]
pub(crate) struct Reads {
    versions: HashMap<u64, (usize, Instant)>,
    pruned: Option<Instant>,
}

impl Reads {
    fn started(&mut self, version: u64) {
        self.versions.entry(version).or_insert((0, Instant::now())).0 += 1;
    }

    fn ended(&mut self, version: u64) {
        if let Some((n, last)) = self.versions.get_mut(&version) {
            *n = n.saturating_sub(1);
            *last = Instant::now();
        }
        // Forgets the reads that no longer keep pages, once a second at most.
        if self.pruned.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.versions.retain(|_, (n, last)| *n > 0 || last.elapsed() < READ_LATELY);
            self.pruned = Some(Instant::now());
        }
    }

    /// Whether a read of `version` is under way or ended lately.
    fn keeps(&self, version: u64) -> bool {
        self.versions.get(&version).is_some_and(|(n, last)| *n > 0 || last.elapsed() < READ_LATELY)
    }
}

/// A read under way, holding its pages of the read-ahead budget while its stream lives, and
/// keeping its version's pages from being freed (and a while after, see [`READ_LATELY`]).
struct Reading {
    worker: Worker,
    ahead: usize,
    version: u64,
}

impl Reading {
    /// Takes up to `READ_AHEAD` pages of the budget, no more than the `pages` after the first.
    fn start(worker: &Worker, version: u64, page_size: u64, pages: u64) -> Reading {
        let budget = (READ_AHEAD_BUDGET / page_size.max(1)) as usize;
        let want = READ_AHEAD.min(usize::try_from(pages.saturating_sub(1)).unwrap_or(READ_AHEAD));
        let taken = &worker.read_ahead_taken;
        let mut ahead = 0;
        let _ = taken.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            ahead = want.min(budget.saturating_sub(now));
            Some(now + ahead)
        });
        worker.reading().started(version);
        Reading { worker: worker.clone(), ahead, version }
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.worker.read_ahead_taken.fetch_sub(self.ahead, Ordering::Relaxed);
        self.worker.reading().ended(self.version);
    }
}

impl Worker {
    fn reading(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the cached pages of `versions` but those pinned or read lately, in the background;
    /// returns the versions dropped and those kept for a read (for a later call).
    pub fn free_versions(&self, versions: impl IntoIterator<Item = u64>) -> (HashSet<u64>, HashSet<u64>) {
        let unpinned = self.cache.unpinned(versions);
        let reading = self.reading();
        let (mut free, mut kept) = (HashSet::new(), HashSet::new());
        for v in unpinned {
            if reading.keeps(v) { &mut kept } else { &mut free }.insert(v);
        }
        drop(reading);
        if !free.is_empty() {
            let (cache, versions) = (self.cache.clone(), free.clone());
            tokio::spawn(async move { cache.remove_versions(&versions).await });
        }
        (free, kept)
    }

    pub(crate) async fn do_read(&self, req: ReadRequest) -> Result<ByteStream> {
        let end = req.offset.checked_add(req.len).filter(|e| *e <= req.object_size).ok_or_else(|| {
            Error::invalid(format!(
                "range {}+{} is outside the object's {} bytes",
                req.offset, req.len, req.object_size
            ))
        })?;
        if req.len == 0 {
            return Ok(stream::empty().boxed());
        }
        let (store, path) = if req.journal {
            (self.journal.clone(), Worker::journal_path(req.version))
        } else {
            self.store_and_path(&req.loc).await?
        };
        let ps = self.cache.page_size();
        let (first, last) = (req.offset / ps, (end - 1) / ps);
        let reading = Reading::start(self, req.version, ps, last - first + 1);
        let ahead = 1 + reading.ahead;
        let this = self.clone();
        let req = Arc::new(req);
        let pages = stream::iter(first..=last)
            .map(move |index| {
                let (this, store, path, req) = (this.clone(), store.clone(), path.clone(), req.clone());
                async move {
                    let page = this.page(&store, &path, &req, index).await?;
                    // Only the part of the page inside the range.
                    let start = req.offset.saturating_sub(index * ps) as usize;
                    let stop = ((end - index * ps).min(ps) as usize).min(page.len());
                    if start > stop {
                        return Err(Error::internal("cached page shorter than expected"));
                    }
                    Ok::<Bytes, Error>(page.slice(start..stop))
                }
            })
            .buffered(ahead);
        Ok(pages
            .inspect_ok(move |b| {
                let _counted = &reading;
                metrics::counter!("strata_worker_bytes_served_total").increment(b.len() as u64)
            })
            .boxed())
    }

    async fn page(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &object_store::path::Path,
        req: &ReadRequest,
        index: u64,
    ) -> Result<Bytes> {
        let id = PageId { version: req.version, index };
        let up = if req.promote {
            MoveUp::Yes
        } else if req.cache {
            MoveUp::IntoRoom
        } else {
            MoveUp::No
        };
        if let Some(p) = self.cache.get(id, up).await {
            metrics::counter!("strata_worker_cache_hits_total").increment(1);
            bucket_lookup(req, "hit");
            return Ok(p);
        }
        let _filling = self.fills.lock(id).await;
        {
            if let Some(p) = self.cache.get(id, up).await {
                // Filled by another reader while this one waited.
                metrics::counter!("strata_worker_cache_hits_total").increment(1);
                metrics::counter!("strata_worker_fill_waits_total").increment(1);
                bucket_lookup(req, "hit");
                return Ok(p);
            }
            let started = std::time::Instant::now();
            metrics::counter!("strata_worker_cache_misses_total").increment(1);
            bucket_lookup(req, "miss");
            let ps = self.cache.page_size();
            let start = index * ps;
            let stop = (start + ps).min(req.object_size);
            let what = format!("reading {}/{}", req.loc.bucket, req.loc.key);
            let range =
                UfsRange { store: store.as_ref(), path, range: start..stop, ufs_etag: &req.ufs_etag, what: &what };
            let room = self.cache.reserve(stop - start).await;
            let data = room.track(range.read().await?);
            metrics::counter!("strata_worker_ufs_bytes_read_total").increment(data.len() as u64);
            metrics::histogram!("strata_worker_fill_seconds").record(started.elapsed().as_secs_f64());
            self.cache.note_miss(data.len() as u64);
            if req.cache {
                self.cache.put(id, data.clone()).await;
            }
            Ok(data)
        }
    }
}

/// A page lookup per bucket (the hit ratio by bucket; bucket labels are capped, keys never
/// labels), noted for the gateway's access log too.
fn bucket_lookup(req: &ReadRequest, result: &'static str) {
    strata_common::read_source::note(if result == "hit" { read_source::CACHE_HIT } else { read_source::UNDER_STORE });
    let bucket = strata_common::ops::bucket_label(&req.loc.bucket, true);
    metrics::counter!("strata_worker_cache_bucket_lookups_total", "bucket" => bucket, "result" => result).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_kept_while_read_and_a_while_after() {
        let mut r = Reads::default();
        assert!(!r.keeps(7), "never read");
        r.started(7);
        r.started(7);
        r.ended(7);
        assert!(r.keeps(7), "one read still under way");
        r.ended(7);
        assert!(r.keeps(7), "read lately");
        let long_ago = Instant::now().checked_sub(READ_LATELY + Duration::from_secs(1)).unwrap();
        r.versions.insert(7, (0, long_ago));
        r.versions.insert(8, (1, long_ago));
        assert!(!r.keeps(7), "its last read ended long ago");
        assert!(r.keeps(8), "a read under way, however long");
        r.pruned = None;
        r.ended(9);
        assert_eq!(r.versions.keys().copied().collect::<HashSet<_>>(), HashSet::from([8]), "the old ones forgotten");
    }
}
