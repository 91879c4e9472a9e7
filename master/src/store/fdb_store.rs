//! The FoundationDB backend (large HA clusters): the trait's semantics are FoundationDB's, so
//! each call maps to one FDB call. Retries follow FDB's own loop: a retryable error goes
//! through `on_error` (FDB's backoff), then surfaces as `StoreError::Conflict` so `transact` reruns the
//! closure. Keys live under a prefix, so one FDB cluster can hold several Strata clusters.
//! Built with `--features fdb`; it links libfdb_c, so it runs only where FDB is installed.

use std::sync::{Arc, Once};

use async_trait::async_trait;
use foundationdb::options::{MutationType, StreamingMode};
use foundationdb::{Database, FdbError, KeySelector, RangeOption, Transaction};
use futures::TryStreamExt;
use strata_common::kv::{KeyValue, KvResult, KvStore, KvTxn, StoreError};
use strata_common::{Error, Result};

pub struct FdbStore {
    db: Arc<Database>,
    prefix: Vec<u8>,
}

static NETWORK: Once = Once::new();

fn fdb_err(e: FdbError) -> StoreError {
    if e.is_retryable() {
        StoreError::conflict(format!("FoundationDB: {} ({})", e.message(), e.code()))
    } else {
        Error::unavailable(format!("FoundationDB: {} ({})", e.message(), e.code())).into()
    }
}

impl FdbStore {
    /// `fdb:///path/to/fdb.cluster[?prefix=NAME]` (`fdb://` alone: the default cluster file).
    pub fn connect(url: &str) -> Result<FdbStore> {
        let rest = url.strip_prefix("fdb://").ok_or_else(|| Error::invalid("a FoundationDB URL starts with fdb://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let prefix = match query.strip_prefix("prefix=") {
            Some(p) if !p.is_empty() => p.to_string(),
            None if query.is_empty() => "strata".to_string(),
            _ => return Err(Error::invalid(format!("unknown FoundationDB URL option {query:?} (known: prefix=NAME)"))),
        };
        // The network thread runs for the life of the process; FDB allows one per process.
        // SAFETY: booted once, never stopped, before any database is opened.
        NETWORK.call_once(|| std::mem::forget(unsafe { foundationdb::boot() }));
        let db = Database::new(if path.is_empty() { None } else { Some(path) })
            .map_err(|e| Error::unavailable(format!("cannot open the FoundationDB cluster file {path:?}: {e}")))?;
        let mut prefix = prefix.into_bytes();
        prefix.push(b'/');
        Ok(FdbStore { db: Arc::new(db), prefix })
    }
}

#[async_trait]
impl KvStore for FdbStore {
    async fn begin(&self) -> KvResult<Box<dyn KvTxn>> {
        let tr = self.db.create_trx().map_err(fdb_err)?;
        Ok(Box::new(FdbTxn { tr, prefix: self.prefix.clone() }))
    }

    fn name(&self) -> &str {
        "fdb"
    }
}

struct FdbTxn {
    tr: Transaction,
    prefix: Vec<u8>,
}

impl FdbTxn {
    fn full(&self, key: &[u8]) -> Vec<u8> {
        [self.prefix.as_slice(), key].concat()
    }
}

#[async_trait]
impl KvTxn for FdbTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        Ok(self.tr.get(&self.full(key), false).await.map_err(fdb_err)?.map(|v| v.to_vec()))
    }

    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> KvResult<Vec<KeyValue>> {
        if begin >= end {
            return Ok(Vec::new());
        }
        let opt = RangeOption {
            begin: KeySelector::first_greater_or_equal(self.full(begin)),
            end: KeySelector::first_greater_or_equal(self.full(end)),
            limit: (limit > 0).then_some(limit),
            mode: StreamingMode::WantAll,
            reverse,
            ..RangeOption::default()
        };
        let plen = self.prefix.len();
        let rows: Vec<KeyValue> = self
            .tr
            .get_ranges_keyvalues(opt, false)
            .map_ok(|kv| (kv.key()[plen..].to_vec(), kv.value().to_vec()))
            .try_collect()
            .await
            .map_err(fdb_err)?;
        Ok(rows)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.tr.set(&self.full(key), value)
    }

    fn clear(&mut self, key: &[u8]) {
        self.tr.clear(&self.full(key))
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.tr.clear_range(&self.full(begin), &self.full(end))
    }

    fn atomic_add(&mut self, key: &[u8], delta: i64) {
        self.tr.atomic_op(&self.full(key), &delta.to_le_bytes(), MutationType::Add)
    }

    async fn commit(self: Box<Self>) -> KvResult<()> {
        match self.tr.commit().await {
            Ok(_) => Ok(()),
            Err(e) if e.is_retryable() => {
                let code = (*e).code();
                // FDB's backoff for this error, then a rerun of the whole closure.
                let _ = e.on_error().await;
                Err(StoreError::conflict(format!("FoundationDB commit: retryable error {code}")))
            }
            Err(e) => Err(fdb_err(*e)),
        }
    }
}
