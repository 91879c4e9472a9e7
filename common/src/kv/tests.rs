//! `transact`'s retry rules on a store that conflicts on demand.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// A store whose first `conflicts` commits (or reads, with `on_read`) conflict.
#[derive(Default)]
struct Flaky {
    data: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
    conflicts: AtomicU32,
    on_read: bool,
    fail: Option<Error>,
}

struct FlakyTxn {
    data: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
    writes: Vec<KeyValue>,
    conflict: bool,
    on_read: bool,
    fail: Option<Error>,
}

#[async_trait]
impl KvStore for Flaky {
    async fn begin(&self) -> KvResult<Box<dyn KvTxn>> {
        let conflict = self.conflicts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        Ok(Box::new(FlakyTxn {
            data: self.data.clone(),
            writes: Vec::new(),
            conflict,
            on_read: self.on_read,
            fail: self.fail.clone(),
        }))
    }
    fn name(&self) -> &str {
        "flaky"
    }
}

#[async_trait]
impl KvTxn for FlakyTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        if self.conflict && self.on_read {
            return Err(StoreError::conflict("read conflict"));
        }
        Ok(self.data.lock().unwrap().get(key).cloned())
    }
    async fn get_range(&mut self, _: &[u8], _: &[u8], _: usize, _: bool) -> KvResult<Vec<KeyValue>> {
        Ok(Vec::new())
    }
    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes.push((key.to_vec(), value.to_vec()));
    }
    fn clear(&mut self, _: &[u8]) {}
    fn clear_range(&mut self, _: &[u8], _: &[u8]) {}
    fn atomic_add(&mut self, _: &[u8], _: i64) {}
    async fn commit(self: Box<Self>) -> KvResult<()> {
        if let Some(e) = self.fail {
            return Err(e.into());
        }
        if self.conflict {
            return Err(StoreError::conflict("commit conflict"));
        }
        self.data.lock().unwrap().extend(self.writes);
        Ok(())
    }
}

async fn count_runs(store: &Flaky, result: Result<()>) -> (Result<()>, u32) {
    let runs = AtomicU32::new(0);
    let runs_ref = &runs;
    let r = transact(store, |t| {
        runs_ref.fetch_add(1, Ordering::SeqCst);
        let result = result.clone();
        Box::pin(async move {
            t.get(b"k").await?;
            t.set(b"k", b"v");
            result
        })
    })
    .await;
    (r, runs.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_commit_conflict_is_rerun_until_it_commits() {
    let store = Flaky { conflicts: AtomicU32::new(3), ..Default::default() };
    let (r, runs) = count_runs(&store, Ok(())).await;
    assert!(r.is_ok());
    assert_eq!(runs, 4);
    assert_eq!(store.data.lock().unwrap().get(&b"k"[..]).map(|v| v.as_slice()), Some(&b"v"[..]));
}

#[tokio::test]
async fn a_read_conflict_is_rerun_whatever_the_closure_makes_of_it() {
    let store = Flaky { conflicts: AtomicU32::new(2), on_read: true, ..Default::default() };
    let runs = AtomicU32::new(0);
    let runs_ref = &runs;
    let r = transact(&store, |t| {
        runs_ref.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            // The closure turns the store's error into a domain one: still a rerun.
            t.get(b"k").await.map_err(|_| Error::new(ErrorKind::NoSuchKey, "looks missing"))?;
            Ok(())
        })
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_domain_conflict_is_returned_at_once() {
    let store = Flaky::default();
    let (r, runs) = count_runs(&store, Err(Error::new(ErrorKind::Conflict, "domain"))).await;
    assert_eq!(r.unwrap_err().message, "domain");
    assert_eq!(runs, 1);
    assert!(store.data.lock().unwrap().is_empty(), "a failed closure commits nothing");
}

#[tokio::test]
async fn a_failed_commit_is_returned_at_once() {
    let store = Flaky { fail: Some(Error::new(ErrorKind::NotPrimary, "fenced")), ..Default::default() };
    let (r, runs) = count_runs(&store, Ok(())).await;
    assert_eq!(r.unwrap_err().kind, ErrorKind::NotPrimary);
    assert_eq!(runs, 1);
}

#[tokio::test]
async fn endless_conflicts_give_up_as_unavailable() {
    let store = Flaky { conflicts: AtomicU32::new(u32::MAX), ..Default::default() };
    let (r, runs) = count_runs(&store, Ok(())).await;
    let e = r.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(e.message.contains("kept conflicting"), "{e}");
    assert_eq!(runs, MAX_ATTEMPTS + 1);
}

#[test]
fn store_errors_convert_both_ways() {
    let c = StoreError::conflict("lost");
    assert!(c.is_conflict());
    assert_eq!(Error::from(c).kind, ErrorKind::Conflict);
    let f = StoreError::from(Error::invalid("bad"));
    assert!(!f.is_conflict());
    assert_eq!(Error::from(f), Error::invalid("bad"));
}

#[test]
fn decode_i64_takes_short_and_empty_values() {
    assert_eq!(decode_i64(&7i64.to_le_bytes()), 7);
    assert_eq!(decode_i64(&[]), 0);
    assert_eq!(decode_i64(&[1]), 1);
    assert_eq!(decode_i64(&(-3i64).to_le_bytes()), -3);
}
