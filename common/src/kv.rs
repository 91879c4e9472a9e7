//! The metadata store: ordered byte keys and serializable transactions, with the semantics of
//! FoundationDB. This module knows no backend; backends live in `strata-master` and each passes
//! [`conformance`].
//!
//! Backends answer with [`StoreError`]: a [`StoreError::Conflict`] (a concurrent transaction
//! won; only a backend produces one) is what [`transact`] reruns. A domain error a closure
//! returns, `ErrorKind::Conflict` included, is never retried.

use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::error::{Error, ErrorKind, Result};

pub type KeyValue = (Vec<u8>, Vec<u8>);

/// What a backend's call fails with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A concurrent transaction changed what this one read (or the backend says "retry"):
    /// rerunning the whole transaction may succeed.
    Conflict(String),
    /// Anything else: returned to the caller as it is.
    Failed(Error),
}

impl StoreError {
    pub fn conflict(message: impl Into<String>) -> StoreError {
        StoreError::Conflict(message.into())
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> StoreError {
        StoreError::Failed(e)
    }
}

/// For callers outside [`transact`] (a snapshot's reader): a conflict keeps its kind's name.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Conflict(m) => Error::new(ErrorKind::Conflict, m),
            StoreError::Failed(e) => e,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Conflict(m) => write!(f, "store conflict: {m}"),
            StoreError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type KvResult<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Starts a transaction. Reads see one consistent snapshot plus the transaction's own writes.
    async fn begin(&self) -> KvResult<Box<dyn KvTxn>>;
    /// A short name for logs: "memory", "embedded", ...
    fn name(&self) -> &str;
}

#[async_trait]
pub trait KvTxn: Send {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;
    /// Keys in `[begin, end)`, at most `limit` (0 = no limit), last first when `reverse`.
    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> KvResult<Vec<KeyValue>>;
    fn set(&mut self, key: &[u8], value: &[u8]);
    fn clear(&mut self, key: &[u8]);
    fn clear_range(&mut self, begin: &[u8], end: &[u8]);
    /// Adds `delta` to the little-endian i64 at `key` (absent = 0) without a read conflict.
    fn atomic_add(&mut self, key: &[u8], delta: i64);
    /// Commits; a [`StoreError::Conflict`] means a concurrent transaction won and this one may
    /// be rerun.
    async fn commit(self: Box<Self>) -> KvResult<()>;
}

/// A transaction as callers see it: store errors become [`Error`]s, and a store conflict is
/// remembered so that [`transact`] reruns the closure whatever error it then returns.
pub struct Txn {
    inner: Box<dyn KvTxn>,
    conflicted: bool,
}

impl Txn {
    fn seen<T>(&mut self, r: KvResult<T>) -> Result<T> {
        r.map_err(|e| {
            self.conflicted |= e.is_conflict();
            Error::from(e)
        })
    }
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let r = self.inner.get(key).await;
        self.seen(r)
    }
    pub async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>> {
        let r = self.inner.get_range(begin, end, limit, reverse).await;
        self.seen(r)
    }
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.inner.set(key, value)
    }
    pub fn clear(&mut self, key: &[u8]) {
        self.inner.clear(key)
    }
    pub fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(begin, end)
    }
    pub fn atomic_add(&mut self, key: &[u8], delta: i64) {
        self.inner.atomic_add(key, delta)
    }
}

pub fn decode_i64(v: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    i64::from_le_bytes(b)
}

const MAX_ATTEMPTS: u32 = 30;

/// How one attempt of [`transact`] ended.
enum Attempt<T> {
    Done(Result<T>),
    Conflicted(String),
}

async fn attempt<T, F>(store: &dyn KvStore, f: &mut F) -> Attempt<T>
where
    F: for<'t> FnMut(&'t mut Txn) -> BoxFuture<'t, Result<T>>,
{
    let inner = match store.begin().await {
        Ok(t) => t,
        Err(StoreError::Conflict(m)) => return Attempt::Conflicted(m),
        Err(StoreError::Failed(e)) => return Attempt::Done(Err(e)),
    };
    let mut txn = Txn { inner, conflicted: false };
    match f(&mut txn).await {
        Ok(v) => match txn.inner.commit().await {
            Ok(()) => Attempt::Done(Ok(v)),
            Err(StoreError::Conflict(m)) => Attempt::Conflicted(m),
            Err(StoreError::Failed(e)) => Attempt::Done(Err(e)),
        },
        Err(e) if txn.conflicted => Attempt::Conflicted(e.message),
        Err(e) => Attempt::Done(Err(e)),
    }
}

/// Runs `f` in a transaction and commits it, rerunning the whole closure when the store
/// conflicts, with jittered backoff. `f` must have no side effects outside the transaction: do
/// them after.
pub async fn transact<T, F>(store: &dyn KvStore, mut f: F) -> Result<T>
where
    F: for<'t> FnMut(&'t mut Txn) -> BoxFuture<'t, Result<T>>,
{
    let mut attempts = 0u32;
    let started = std::time::Instant::now();
    loop {
        let outcome = attempt(store, &mut f).await;
        let result = match &outcome {
            Attempt::Done(Ok(_)) => "committed",
            Attempt::Done(Err(_)) => "failed",
            Attempt::Conflicted(_) => "conflict",
        };
        metrics::counter!("strata_master_kv_transactions_total", "result" => result).increment(1);
        if let Attempt::Done(_) = &outcome {
            metrics::histogram!("strata_master_kv_transaction_seconds").record(started.elapsed().as_secs_f64());
        }
        match outcome {
            Attempt::Done(r) => return r,
            Attempt::Conflicted(m) if attempts >= MAX_ATTEMPTS => {
                return Err(Error::unavailable(format!(
                    "metadata transaction kept conflicting after {MAX_ATTEMPTS} attempts: {m}"
                )));
            }
            Attempt::Conflicted(_) => {
                attempts += 1;
                let base = 1u64 << attempts.min(7); // 2 ms .. 128 ms
                let jitter = rand::random::<u64>() % base.max(1);
                tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
            }
        }
    }
}

/// The one test suite every backend passes. Call each function on an empty store.
pub mod conformance {
    use super::*;
    use std::sync::Arc;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    /// `make` gives a new, empty store each time.
    pub async fn run_all<F, Fut>(make: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Arc<dyn KvStore>>,
    {
        set_get_clear(make().await.as_ref()).await;
        ranges(make().await.as_ref()).await;
        read_your_writes(make().await.as_ref()).await;
        atomic_add(make().await.as_ref()).await;
        conflicts_abort(make().await.as_ref()).await;
        concurrent_increments(make().await).await;
        failed_closure_writes_nothing(make().await.as_ref()).await;
        domain_conflict_is_not_retried(make().await.as_ref()).await;
        store_conflict_is_retried(make().await).await;
    }

    pub async fn set_get_clear(s: &dyn KvStore) {
        transact(s, |t| {
            Box::pin(async move {
                t.set(b"a", b"1");
                t.set(b"b", b"2");
                Ok(())
            })
        })
        .await
        .expect("commit");
        let got = transact(s, |t| Box::pin(async move { Ok((t.get(b"a").await?, t.get(b"zz").await?)) }))
            .await
            .expect("read");
        assert_eq!(got, (Some(k("1")), None));
        transact(s, |t| {
            Box::pin(async move {
                t.clear(b"a");
                Ok(())
            })
        })
        .await
        .expect("clear");
        let got = transact(s, |t| Box::pin(async move { t.get(b"a").await })).await.expect("read");
        assert_eq!(got, None);
    }

    pub async fn ranges(s: &dyn KvStore) {
        transact(s, |t| {
            Box::pin(async move {
                for key in ["k1", "k2", "k3", "k4", "l1"] {
                    t.set(key.as_bytes(), key.as_bytes());
                }
                Ok(())
            })
        })
        .await
        .expect("commit");
        let keys =
            |rows: Vec<KeyValue>| rows.into_iter().map(|(k, _)| String::from_utf8(k).unwrap()).collect::<Vec<_>>();
        let all = transact(s, |t| Box::pin(async move { t.get_range(b"k", b"l", 0, false).await })).await.unwrap();
        assert_eq!(keys(all), ["k1", "k2", "k3", "k4"]);
        let two = transact(s, |t| Box::pin(async move { t.get_range(b"k", b"l", 2, false).await })).await.unwrap();
        assert_eq!(keys(two), ["k1", "k2"]);
        let rev = transact(s, |t| Box::pin(async move { t.get_range(b"k", b"l", 3, true).await })).await.unwrap();
        assert_eq!(keys(rev), ["k4", "k3", "k2"]);
        transact(s, |t| {
            Box::pin(async move {
                t.clear_range(b"k2", b"k4");
                Ok(())
            })
        })
        .await
        .unwrap();
        let left = transact(s, |t| Box::pin(async move { t.get_range(b"", b"\xff", 0, false).await })).await.unwrap();
        assert_eq!(keys(left), ["k1", "k4", "l1"]);
    }

    pub async fn read_your_writes(s: &dyn KvStore) {
        transact(s, |t| {
            Box::pin(async move {
                t.set(b"r2", b"old");
                t.set(b"r4", b"x");
                Ok(())
            })
        })
        .await
        .unwrap();
        let seen = transact(s, |t| {
            Box::pin(async move {
                t.set(b"r1", b"new");
                t.set(b"r2", b"changed");
                t.set(b"r3", b"gone");
                t.clear(b"r3");
                t.clear_range(b"r4", b"r5");
                t.set(b"r5", b"after");
                let point = t.get(b"r2").await?;
                let rows = t.get_range(b"r", b"s", 0, false).await?;
                let rev = t.get_range(b"r", b"s", 2, true).await?;
                Ok((point, rows, rev))
            })
        })
        .await
        .unwrap();
        assert_eq!(seen.0, Some(k("changed")));
        assert_eq!(seen.1, vec![(k("r1"), k("new")), (k("r2"), k("changed")), (k("r5"), k("after"))]);
        assert_eq!(seen.2, vec![(k("r5"), k("after")), (k("r2"), k("changed"))]);
    }

    pub async fn atomic_add(s: &dyn KvStore) {
        for _ in 0..3 {
            transact(s, |t| {
                Box::pin(async move {
                    t.atomic_add(b"ctr", 5);
                    Ok(())
                })
            })
            .await
            .unwrap();
        }
        let v = transact(s, |t| {
            Box::pin(async move {
                t.atomic_add(b"ctr", -1);
                t.get(b"ctr").await
            })
        })
        .await
        .unwrap();
        assert_eq!(v.map(|v| decode_i64(&v)), Some(14));
    }

    pub async fn conflicts_abort(s: &dyn KvStore) {
        let mut t1 = s.begin().await.unwrap();
        let mut t2 = s.begin().await.unwrap();
        assert_eq!(t1.get(b"c").await.unwrap(), None);
        assert_eq!(t2.get_range(b"c", b"d", 0, false).await.unwrap(), vec![]);
        t1.set(b"c", b"1");
        t2.set(b"c0", b"2");
        t1.commit().await.expect("first writer commits");
        let e = t2.commit().await.expect_err("second writer read what the first changed");
        assert!(e.is_conflict(), "{e}");
        // A blind write (nothing read) does not conflict.
        let mut t3 = s.begin().await.unwrap();
        let mut t4 = s.begin().await.unwrap();
        t3.set(b"blind", b"3");
        t4.set(b"blind", b"4");
        t3.commit().await.unwrap();
        t4.commit().await.unwrap();
    }

    pub async fn concurrent_increments(s: Arc<dyn KvStore>) {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    transact(s.as_ref(), |t| {
                        Box::pin(async move {
                            let v = t.get(b"n").await?.map(|v| decode_i64(&v)).unwrap_or(0);
                            t.set(b"n", &(v + 1).to_le_bytes());
                            Ok(())
                        })
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v = transact(s.as_ref(), |t| Box::pin(async move { t.get(b"n").await })).await.unwrap();
        assert_eq!(v.map(|v| decode_i64(&v)), Some(80), "lost updates");
    }

    pub async fn failed_closure_writes_nothing(s: &dyn KvStore) {
        let r: Result<()> = transact(s, |t| {
            Box::pin(async move {
                t.set(b"f", b"1");
                Err(Error::invalid("no"))
            })
        })
        .await;
        assert!(r.is_err());
        let v = transact(s, |t| Box::pin(async move { t.get(b"f").await })).await.unwrap();
        assert_eq!(v, None);
    }

    /// A closure's own `ErrorKind::Conflict` is a domain answer: returned at once, not rerun.
    pub async fn domain_conflict_is_not_retried(s: &dyn KvStore) {
        let runs = std::sync::atomic::AtomicU32::new(0);
        let runs = &runs;
        let r: Result<()> = transact(s, |t| {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                t.set(b"d", b"1");
                Err(Error::new(ErrorKind::Conflict, "the caller's own conflict"))
            })
        })
        .await;
        let e = r.expect_err("the closure failed");
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Conflict, "the caller's own conflict"));
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1, "a domain conflict was rerun");
    }

    /// A transaction whose read is overwritten before its commit is rerun, and the rerun wins.
    pub async fn store_conflict_is_retried(s: Arc<dyn KvStore>) {
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (s2, r2) = (s.clone(), runs.clone());
        let seen = transact(s.as_ref(), move |t| {
            let (s, run) = (s2.clone(), r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
            Box::pin(async move {
                let v = t.get(b"x").await?;
                if run == 0 {
                    let mut other = s.begin().await?;
                    other.set(b"x", b"theirs");
                    other.commit().await?;
                }
                t.set(b"y", b"mine");
                Ok(v)
            })
        })
        .await
        .expect("the rerun commits");
        assert_eq!(seen, Some(k("theirs")), "the rerun read the other writer's value");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}

#[cfg(test)]
mod tests;
