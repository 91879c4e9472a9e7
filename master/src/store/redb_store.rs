//! The embedded store (one master) and the in-memory one (tests): redb underneath, with
//! optimistic serializable transactions on top. A transaction reads one redb snapshot and
//! records what it read; its commit fails with `Conflict` when a transaction that committed
//! after that snapshot wrote any of it. Commits are checked and ordered under one lock, then
//! written by group commit: the writes of every transaction that passed its check while the
//! previous group was being written go to redb in one write transaction, one fsync, and each
//! commit returns once its group is durable. redb is pure Rust, crash-safe (copy-on-write
//! B-tree, checksummed commits) and keeps keys ordered, which is all the trait needs.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{AccessGuard, Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};
use strata_common::kv::{KeyValue, KvResult, KvStore, KvTxn, StoreError};
use strata_common::{Error, Result};
use tokio::sync::Mutex;

use super::buffer::{Op, WriteBuffer, add, in_ranges};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// How many committed transactions are remembered for conflict checks; an older reader fails
/// with a retryable conflict.
const LOG_LEN: usize = 100_000;
/// And for how long: only a transaction open longer than this needs older entries (it fails
/// with a retryable conflict). Without it, the log held ~40 MiB at a steady write rate.
const LOG_AGE: std::time::Duration = std::time::Duration::from_secs(60);

struct Committed {
    at: std::time::Instant,
    version: u64,
    keys: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

struct CommitLog {
    /// The last version given to a commit that passed its check.
    version: u64,
    /// The last version whose writes are in redb (snapshots are taken at it).
    durable: u64,
    entries: VecDeque<Committed>,
    max_age: std::time::Duration,
}

/// Checked commits waiting for their group to be written, in version order.
#[derive(Default)]
struct Group {
    queue: std::sync::Mutex<Vec<Queued>>,
    writing: std::sync::atomic::AtomicBool,
}

struct Queued {
    version: u64,
    buffer: WriteBuffer,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

pub struct RedbStore {
    db: Arc<Database>,
    log: Arc<Mutex<CommitLog>>,
    group: Arc<Group>,
    name: &'static str,
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("metadata store: {e}"))
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<RedbStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        // A process that just let go of the file (a restart) may need a moment to release it.
        let mut tries = 0;
        let db = loop {
            match Database::create(path) {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(Error::internal(format!(
                        "cannot open the metadata store {}: {e} (is another master using this data folder?)",
                        path.display()
                    )));
                }
            }
        };
        RedbStore::init(db, "embedded")
    }

    pub fn memory() -> Result<RedbStore> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(db_err)?;
        RedbStore::init(db, "memory")
    }

    fn init(db: Database, name: &'static str) -> Result<RedbStore> {
        let w = db.begin_write().map_err(db_err)?;
        w.open_table(TABLE).map_err(db_err)?;
        w.commit().map_err(db_err)?;
        Ok(RedbStore {
            db: Arc::new(db),
            log: Arc::new(Mutex::new(CommitLog { version: 0, durable: 0, entries: VecDeque::new(), max_age: LOG_AGE })),
            group: Default::default(),
            name,
        })
    }
}

#[async_trait]
impl KvStore for RedbStore {
    async fn begin(&self) -> KvResult<Box<dyn KvTxn>> {
        // The snapshot holds at least the durable version's writes (maybe a group more, being
        // written: then the check finds spurious conflicts, never misses one).
        let log = self.log.lock().await;
        let snapshot = self.db.begin_read().map_err(db_err)?;
        let table = snapshot.open_table(TABLE).map_err(db_err)?;
        Ok(Box::new(RedbTxn {
            store_db: self.db.clone(),
            log: self.log.clone(),
            group: self.group.clone(),
            read_version: log.durable,
            table,
            read_keys: BTreeSet::new(),
            read_ranges: Vec::new(),
            buffer: WriteBuffer::default(),
        }))
    }

    fn name(&self) -> &str {
        self.name
    }
}

struct RedbTxn {
    store_db: Arc<Database>,
    log: Arc<Mutex<CommitLog>>,
    group: Arc<Group>,
    read_version: u64,
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    read_keys: BTreeSet<Vec<u8>>,
    read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    buffer: WriteBuffer,
}

#[async_trait]
impl KvTxn for RedbTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        let snapshot = if self.buffer.needs_snapshot(key) {
            self.read_keys.insert(key.to_vec());
            self.table.get(key).map_err(db_err)?.map(|v| v.value().to_vec())
        } else {
            None
        };
        Ok(self.buffer.visible(key, snapshot))
    }

    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> KvResult<Vec<KeyValue>> {
        if begin >= end {
            return Ok(Vec::new());
        }
        let range = self.table.range::<&[u8]>((Bound::Included(begin), Bound::Excluded(end))).map_err(db_err)?;
        let rows = |r: std::result::Result<(AccessGuard<&[u8]>, AccessGuard<&[u8]>), redb::StorageError>| {
            r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())).map_err(db_err)
        };
        let merged = if reverse {
            self.buffer.merge(range.rev().map(rows), begin, end, limit, true)?
        } else {
            self.buffer.merge(range.map(rows), begin, end, limit, false)?
        };
        self.read_ranges.push(merged.read);
        Ok(merged.rows)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.buffer.set(key, value)
    }

    fn clear(&mut self, key: &[u8]) {
        self.buffer.clear(key)
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.buffer.clear_range(begin, end)
    }

    fn atomic_add(&mut self, key: &[u8], delta: i64) {
        self.buffer.atomic_add(key, delta)
    }

    async fn commit(self: Box<Self>) -> KvResult<()> {
        let txn = *self;
        if txn.buffer.is_empty() {
            return Ok(());
        }
        let mut log = txn.log.lock().await;
        if log.version > txn.read_version {
            let oldest = log.entries.front().map(|c| c.version).unwrap_or(u64::MAX);
            if oldest > txn.read_version + 1 {
                return Err(StoreError::conflict("transaction too old"));
            }
            // The log is in version order: skip what this transaction already saw.
            let newer = log.entries.partition_point(|c| c.version <= txn.read_version);
            for c in log.entries.range(newer..) {
                let hit_key = txn.read_keys.iter().any(|k| c.keys.contains(k) || in_ranges(&c.ranges, k));
                let hit_range = txn.read_ranges.iter().any(|(b, e)| {
                    c.keys.range::<Vec<u8>, _>((Bound::Included(b), Bound::Excluded(e))).next().is_some()
                        || c.ranges.iter().any(|(cb, ce)| cb < e && b < ce)
                });
                if hit_key || hit_range {
                    return Err(StoreError::conflict("a concurrent transaction changed what this one read"));
                }
            }
        }
        log.version += 1;
        let version = log.version;
        let keys: BTreeSet<Vec<u8>> = txn.buffer.writes.keys().cloned().collect();
        log.entries.push_back(Committed {
            at: std::time::Instant::now(),
            version,
            keys,
            ranges: txn.buffer.cleared.clone(),
        });
        while log.entries.len() > LOG_LEN || log.entries.front().is_some_and(|c| c.at.elapsed() > log.max_age) {
            log.entries.pop_front();
        }
        let (done, durable) = tokio::sync::oneshot::channel();
        // Queued under the log lock: the queue is in version order.
        txn.group.queue.lock().unwrap_or_else(|p| p.into_inner()).push(Queued { version, buffer: txn.buffer, done });
        drop(log);
        if !txn.group.writing.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::spawn(write_groups(txn.store_db.clone(), txn.log.clone(), txn.group.clone()));
        }
        durable.await.map_err(|_| db_err("the group commit ended without an answer"))??;
        Ok(())
    }
}

/// Writes queued commits, a group at a time, until the queue stays empty.
async fn write_groups(db: Arc<Database>, log: Arc<Mutex<CommitLog>>, group: Arc<Group>) {
    use std::sync::atomic::Ordering;
    loop {
        let batch = std::mem::take(&mut *group.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            group.writing.store(false, Ordering::SeqCst);
            // A commit queued after the take but before the flag went down writes itself.
            if group.queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
                || group.writing.swap(true, Ordering::SeqCst)
            {
                return;
            }
            continue;
        }
        let last = batch.last().map(|q| q.version).unwrap_or(0);
        let (buffers, senders): (Vec<_>, Vec<_>) = batch.into_iter().map(|q| (q.buffer, q.done)).unzip();
        let db = db.clone();
        metrics::counter!("strata_master_group_commits_total").increment(1);
        metrics::counter!("strata_master_group_committed_transactions_total").increment(buffers.len() as u64);
        // redb's commit fsyncs: keep it off the async threads.
        let written =
            tokio::task::spawn_blocking(move || write_group(&db, buffers)).await.map_err(db_err).and_then(|r| r);
        if written.is_ok() {
            let mut l = log.lock().await;
            l.durable = l.durable.max(last);
        }
        for s in senders {
            let _ = s.send(written.clone());
        }
    }
}

/// The writes of a group of commits, in order, in one redb transaction.
fn write_group(db: &Database, buffers: Vec<WriteBuffer>) -> Result<()> {
    let w = db.begin_write().map_err(db_err)?;
    {
        let mut t = w.open_table(TABLE).map_err(db_err)?;
        for WriteBuffer { writes, cleared } in &buffers {
            for (b, e) in cleared {
                t.retain_in::<&[u8], _>((Bound::Included(b.as_slice()), Bound::Excluded(e.as_slice())), |_, _| false)
                    .map_err(db_err)?;
            }
            for (k, op) in writes {
                match op {
                    Op::Set(v) => {
                        t.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
                    }
                    Op::Clear => {
                        t.remove(k.as_slice()).map_err(db_err)?;
                    }
                    Op::Add(d) => {
                        let cur = t.get(k.as_slice()).map_err(db_err)?.map(|v| v.value().to_vec());
                        let v = add(cur.as_deref(), *d);
                        t.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
                    }
                }
            }
        }
    }
    w.commit().map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_common::kv::transact;

    async fn put(s: &RedbStore, k: &'static [u8]) {
        transact(s, |t| {
            Box::pin(async move {
                t.set(k, b"v");
                Ok(())
            })
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_commit_log_forgets_what_no_open_transaction_can_need() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(&dir.path().join("m.redb")).unwrap();
        for _ in 0..10 {
            put(&s, b"a").await;
        }
        assert_eq!(s.log.lock().await.entries.len(), 10);
        let age = std::time::Duration::from_millis(300);
        s.log.lock().await.max_age = age;
        let mut old = s.begin().await.unwrap();
        old.get(b"a").await.unwrap();
        put(&s, b"a").await; // what `old` read changes
        tokio::time::sleep(age * 2).await;
        put(&s, b"b").await;
        assert_eq!(s.log.lock().await.entries.len(), 1, "entries older than the age limit are dropped");
        // The entry that conflicts with `old` is gone, yet `old` still fails (too old to check).
        old.set(b"c", b"v");
        let e = old.commit().await.unwrap_err();
        assert!(e.is_conflict(), "{e:?}");
    }
}
