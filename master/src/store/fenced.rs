//! Fencing: a master that takes the primary role writes a new epoch into the store, and every
//! transaction that writes reads the epoch at commit and fails unless it is still this master's.
//! The read joins the transaction's read set, so a takeover that lands between the check and
//! the commit makes the commit conflict, and the rerun fails the check: a primary that lost its
//! lease can never write again, whatever its clock or its knowledge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use strata_common::keys::Changed;
use strata_common::kv::{KeyValue, KvResult, KvStore, KvTxn, decode_i64};
use strata_common::{Error, ErrorKind, Result, keys};

use super::watch::MetaWatch;

/// No fencing (a single master on the embedded store).
pub const UNFENCED: u64 = 0;
/// Fenced off: no epoch matches (a standby, or a primary stepping down).
pub const FENCED_OFF: u64 = u64::MAX;

pub struct FencedStore {
    inner: Arc<dyn KvStore>,
    epoch: Arc<AtomicU64>,
    /// Where committed writes of what gateways cache are published.
    watch: Option<Arc<MetaWatch>>,
}

impl FencedStore {
    pub fn new(inner: Arc<dyn KvStore>, epoch: Arc<AtomicU64>) -> FencedStore {
        FencedStore { inner, epoch, watch: None }
    }

    /// The same, publishing every commit's cached keys to `watch` before it returns.
    pub fn watched(inner: Arc<dyn KvStore>, epoch: Arc<AtomicU64>, watch: Arc<MetaWatch>) -> FencedStore {
        FencedStore { inner, epoch, watch: Some(watch) }
    }
}

#[async_trait]
impl KvStore for FencedStore {
    async fn begin(&self) -> KvResult<Box<dyn KvTxn>> {
        Ok(Box::new(FencedTxn {
            inner: self.inner.begin().await?,
            epoch: self.epoch.clone(),
            writes: false,
            watch: self.watch.clone(),
            changed: Vec::new(),
            everything: false,
        }))
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}

struct FencedTxn {
    inner: Box<dyn KvTxn>,
    epoch: Arc<AtomicU64>,
    writes: bool,
    watch: Option<Arc<MetaWatch>>,
    /// Written keys that gateways cache.
    changed: Vec<Changed>,
    /// A cleared range holds some: every cache entry goes.
    everything: bool,
}

impl FencedTxn {
    fn note(&mut self, key: &[u8]) {
        if self.watch.is_some() {
            let c = keys::classify(key);
            if c != Changed::Other && !self.changed.contains(&c) {
                self.changed.push(c);
            }
        }
    }
}

#[async_trait]
impl KvTxn for FencedTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> KvResult<Vec<KeyValue>> {
        self.inner.get_range(begin, end, limit, reverse).await
    }
    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes = true;
        self.note(key);
        self.inner.set(key, value)
    }
    fn clear(&mut self, key: &[u8]) {
        self.writes = true;
        self.note(key);
        self.inner.clear(key)
    }
    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.writes = true;
        self.everything |= self.watch.is_some() && keys::range_is_cached(begin);
        self.inner.clear_range(begin, end)
    }
    fn atomic_add(&mut self, key: &[u8], delta: i64) {
        self.writes = true;
        self.inner.atomic_add(key, delta)
    }
    async fn commit(mut self: Box<Self>) -> KvResult<()> {
        let mine = self.epoch.load(Ordering::SeqCst);
        if self.writes && mine != UNFENCED {
            let stored = self.inner.get(&keys::epoch()).await?.map(|v| decode_i64(&v) as u64).unwrap_or(0);
            if stored != mine {
                return Err(Error::new(
                    ErrorKind::NotPrimary,
                    format!(
                        "this master is not the primary (store epoch {stored}, this master's {}); nothing was written",
                        if mine == FENCED_OFF { "none".to_string() } else { mine.to_string() }
                    ),
                )
                .into());
            }
        }
        let (watch, changed, everything) = (self.watch.take(), std::mem::take(&mut self.changed), self.everything);
        self.inner.commit().await?;
        if let Some(w) = watch
            && (everything || !changed.is_empty())
        {
            w.publish(&changed, everything).await;
        }
        Ok(())
    }
}

/// Takes the next epoch: the write that fences off every earlier primary. Run on the raw store.
pub async fn take_epoch(store: &dyn KvStore) -> Result<u64> {
    strata_common::kv::transact(store, |t| {
        Box::pin(async move {
            let k = keys::epoch();
            let next = t.get(&k).await?.map(|v| decode_i64(&v)).unwrap_or(0) + 1;
            t.set(&k, &next.to_le_bytes());
            Ok(next as u64)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use strata_common::kv::{conformance, transact};

    use super::*;

    fn fenced(epoch: u64) -> (Arc<dyn KvStore>, Arc<dyn KvStore>) {
        let raw: Arc<dyn KvStore> = Arc::new(crate::store::RedbStore::memory().unwrap());
        (raw.clone(), Arc::new(FencedStore::new(raw, Arc::new(AtomicU64::new(epoch)))))
    }

    /// The wrapper passes the store's conflicts through, so `transact` still reruns them.
    #[tokio::test]
    async fn an_unfenced_wrapper_conforms() {
        conformance::run_all(|| async { fenced(UNFENCED).1 }).await;
    }

    #[tokio::test]
    async fn a_write_under_a_stale_epoch_fails_once_and_writes_nothing() {
        let (raw, store) = fenced(1);
        take_epoch(raw.as_ref()).await.unwrap();
        take_epoch(raw.as_ref()).await.unwrap(); // epoch 2: another primary
        let runs = AtomicU32::new(0);
        let runs_ref = &runs;
        let e = transact(store.as_ref(), |t| {
            runs_ref.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                t.set(b"k", b"v");
                Ok(())
            })
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotPrimary);
        assert!(e.message.contains("store epoch 2"), "{e}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "a fenced write is not a conflict to rerun");
        let v = transact(raw.as_ref(), |t| Box::pin(async move { t.get(b"k").await })).await.unwrap();
        assert_eq!(v, None);
        // Reads still work under a stale epoch.
        assert!(transact(store.as_ref(), |t| Box::pin(async move { t.get(b"k").await })).await.is_ok());
    }

    #[tokio::test]
    async fn a_write_under_the_current_epoch_lands() {
        let (raw, store) = fenced(1);
        assert_eq!(take_epoch(raw.as_ref()).await.unwrap(), 1);
        transact(store.as_ref(), |t| {
            Box::pin(async move {
                t.set(b"k", b"v");
                Ok(())
            })
        })
        .await
        .unwrap();
        let v = transact(raw.as_ref(), |t| Box::pin(async move { t.get(b"k").await })).await.unwrap();
        assert_eq!(v.as_deref(), Some(&b"v"[..]));
    }
}
