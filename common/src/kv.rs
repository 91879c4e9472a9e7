//! The metadata store: ordered byte keys and serializable transactions, with the semantics of
//! FoundationDB. This module knows no backend; backends live in `strata-master` and each passes
//! [`conformance`].

use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::error::{Error, ErrorKind, Result};

pub type KeyValue = (Vec<u8>, Vec<u8>);

#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Starts a transaction. Reads see one consistent snapshot plus the transaction's own writes.
    async fn begin(&self) -> Result<Box<dyn KvTxn>>;
    /// A short name for logs: "memory", "embedded", ...
    fn name(&self) -> &str;
}

#[async_trait]
pub trait KvTxn: Send {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Keys in `[begin, end)`, at most `limit` (0 = no limit), last first when `reverse`.
    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>>;
    fn set(&mut self, key: &[u8], value: &[u8]);
    fn clear(&mut self, key: &[u8]);
    fn clear_range(&mut self, begin: &[u8], end: &[u8]);
    /// Adds `delta` to the little-endian i64 at `key` (absent = 0) without a read conflict.
    fn atomic_add(&mut self, key: &[u8], delta: i64);
    /// Commits; a `Conflict` error means a concurrent transaction won and this one may be rerun.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// A transaction as callers see it.
pub struct Txn {
    inner: Box<dyn KvTxn>,
}

impl Txn {
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    pub async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>> {
        self.inner.get_range(begin, end, limit, reverse).await
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

/// Runs `f` in a transaction and commits it, rerunning the whole closure on conflict with
/// jittered backoff. `f` must have no side effects outside the transaction: do them after.
pub async fn transact<T, F>(store: &dyn KvStore, mut f: F) -> Result<T>
where
    F: for<'t> FnMut(&'t mut Txn) -> BoxFuture<'t, Result<T>>,
{
    let mut attempt = 0u32;
    loop {
        let mut txn = Txn { inner: store.begin().await? };
        let result = match f(&mut txn).await {
            Ok(v) => txn.inner.commit().await.map(|_| v),
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e.is(ErrorKind::Conflict) && attempt < MAX_ATTEMPTS => {
                attempt += 1;
                let base = 1u64 << attempt.min(7); // 2 ms .. 128 ms
                let jitter = rand::random::<u64>() % base.max(1);
                tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
            }
            Err(e) if e.is(ErrorKind::Conflict) => {
                return Err(Error::unavailable(format!(
                    "metadata transaction kept conflicting after {MAX_ATTEMPTS} attempts: {}",
                    e.message
                )));
            }
            other => return other,
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
        assert!(e.is(ErrorKind::Conflict), "{e}");
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
}
