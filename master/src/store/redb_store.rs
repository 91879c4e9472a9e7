//! The embedded store (one master) and the in-memory one (tests): redb underneath, with
//! optimistic serializable transactions on top. A transaction reads one redb snapshot and
//! records what it read; its commit fails with `Conflict` when a transaction that committed
//! after that snapshot wrote any of it. Commits are serialised through one lock, so the check
//! and the write are atomic. redb is pure Rust, crash-safe (copy-on-write B-tree, checksummed
//! commits) and keeps keys ordered, which is all the trait needs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};
use strata_common::kv::{KeyValue, KvStore, KvTxn, decode_i64};
use strata_common::{Error, ErrorKind, Result};
use tokio::sync::Mutex;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// How many committed transactions are remembered for conflict checks; an older reader fails
/// with a retryable conflict.
const LOG_LEN: usize = 100_000;

struct Committed {
    version: u64,
    keys: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

struct CommitLog {
    version: u64,
    entries: VecDeque<Committed>,
}

pub struct RedbStore {
    db: Arc<Database>,
    log: Arc<Mutex<CommitLog>>,
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
            log: Arc::new(Mutex::new(CommitLog { version: 0, entries: VecDeque::new() })),
            name,
        })
    }
}

#[async_trait]
impl KvStore for RedbStore {
    async fn begin(&self) -> Result<Box<dyn KvTxn>> {
        // The snapshot and the version it corresponds to must be taken together.
        let log = self.log.lock().await;
        let snapshot = self.db.begin_read().map_err(db_err)?;
        let table = snapshot.open_table(TABLE).map_err(db_err)?;
        Ok(Box::new(RedbTxn {
            store_db: self.db.clone(),
            log: self.log.clone(),
            read_version: log.version,
            table,
            read_keys: BTreeSet::new(),
            read_ranges: Vec::new(),
            writes: BTreeMap::new(),
            cleared: Vec::new(),
        }))
    }

    fn name(&self) -> &str {
        self.name
    }
}

#[derive(Clone)]
enum Op {
    Set(Vec<u8>),
    Clear,
    Add(i64),
}

struct RedbTxn {
    store_db: Arc<Database>,
    log: Arc<Mutex<CommitLog>>,
    read_version: u64,
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    read_keys: BTreeSet<Vec<u8>>,
    read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    writes: BTreeMap<Vec<u8>, Op>,
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

fn in_ranges(ranges: &[(Vec<u8>, Vec<u8>)], key: &[u8]) -> bool {
    ranges.iter().any(|(b, e)| b.as_slice() <= key && key < e.as_slice())
}

fn add(base: Option<&[u8]>, delta: i64) -> Vec<u8> {
    base.map(decode_i64).unwrap_or(0).wrapping_add(delta).to_le_bytes().to_vec()
}

impl RedbTxn {
    fn snapshot_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if in_ranges(&self.cleared, key) {
            return Ok(None);
        }
        Ok(self.table.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// The value as this transaction sees it: its own writes over the snapshot.
    fn visible(&self, key: &[u8], snapshot: Option<Vec<u8>>) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(Op::Set(v)) => Some(v.clone()),
            Some(Op::Clear) => None,
            Some(Op::Add(d)) => Some(add(snapshot.as_deref(), *d)),
            None => snapshot,
        }
    }
}

#[async_trait]
impl KvTxn for RedbTxn {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let snapshot = match self.writes.get(key) {
            Some(Op::Set(_)) | Some(Op::Clear) => None,
            _ => {
                self.read_keys.insert(key.to_vec());
                self.snapshot_get(key)?
            }
        };
        Ok(self.visible(key, snapshot))
    }

    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<KeyValue>> {
        let mut out = Vec::new();
        if begin >= end {
            return Ok(out);
        }
        let limit = if limit == 0 { usize::MAX } else { limit };
        let bounds = (Bound::Included(begin), Bound::Excluded(end));
        let mut snap = self.table.range::<&[u8]>(bounds).map_err(db_err)?;
        let own: Vec<(Vec<u8>, Op)> =
            self.writes.range::<[u8], _>(bounds).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut own = own.into_iter();
        let (mut next_snap, mut next_own) = (None, None);
        // Merge the snapshot with our own writes, in key order (or reversed).
        let mut last_key: Option<Vec<u8>> = None;
        loop {
            if next_snap.is_none() {
                let item = if reverse { snap.next_back() } else { snap.next() };
                next_snap = match item {
                    Some(r) => {
                        let (k, v) = r.map_err(db_err)?;
                        Some((k.value().to_vec(), v.value().to_vec()))
                    }
                    None => None,
                };
            }
            if next_own.is_none() {
                next_own = if reverse { own.next_back() } else { own.next() };
            }
            let take_snap = match (&next_snap, &next_own) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((sk, _)), Some((ok, _))) => {
                    // On equal keys our own write shadows the snapshot.
                    if sk == ok {
                        false
                    } else if reverse {
                        sk > ok
                    } else {
                        sk < ok
                    }
                }
            };
            let (key, value) = if take_snap {
                let (k, v) = next_snap.take().unwrap_or_default();
                if in_ranges(&self.cleared, &k) { (k, None) } else { (k, Some(v)) }
            } else {
                let (k, op) = next_own.take().unwrap_or_else(|| (Vec::new(), Op::Clear));
                let snapshot = match next_snap.take() {
                    Some((sk, sv)) if sk == k => (!in_ranges(&self.cleared, &sk)).then_some(sv),
                    other => {
                        next_snap = other;
                        None
                    }
                };
                let v = match op {
                    Op::Set(v) => Some(v),
                    Op::Clear => None,
                    Op::Add(d) => Some(add(snapshot.as_deref(), d)),
                };
                (k, v)
            };
            last_key = Some(key.clone());
            if let Some(v) = value {
                out.push((key, v));
                if out.len() >= limit {
                    break;
                }
            }
        }
        // Record only the part of the range this read depended on.
        let read = match (out.len() >= limit, last_key) {
            (true, Some(k)) if reverse => (k, end.to_vec()),
            (true, Some(mut k)) => {
                k.push(0);
                (begin.to_vec(), k)
            }
            _ => (begin.to_vec(), end.to_vec()),
        };
        self.read_ranges.push(read);
        Ok(out)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert(key.to_vec(), Op::Set(value.to_vec()));
    }

    fn clear(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), Op::Clear);
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let doomed: Vec<Vec<u8>> = self
            .writes
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.writes.remove(&k);
        }
        self.cleared.push((begin.to_vec(), end.to_vec()));
    }

    fn atomic_add(&mut self, key: &[u8], delta: i64) {
        let op = match self.writes.get(key) {
            Some(Op::Set(v)) => Op::Set(add(Some(v), delta)),
            Some(Op::Clear) => Op::Set(add(None, delta)),
            Some(Op::Add(d)) => Op::Add(d.wrapping_add(delta)),
            None if in_ranges(&self.cleared, key) => Op::Set(add(None, delta)),
            None => Op::Add(delta),
        };
        self.writes.insert(key.to_vec(), op);
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let txn = *self;
        if txn.writes.is_empty() && txn.cleared.is_empty() {
            return Ok(());
        }
        let mut log = txn.log.lock().await;
        if log.version > txn.read_version {
            let oldest = log.entries.front().map(|c| c.version).unwrap_or(u64::MAX);
            if oldest > txn.read_version + 1 {
                return Err(Error::new(ErrorKind::Conflict, "transaction too old"));
            }
            for c in log.entries.iter().filter(|c| c.version > txn.read_version) {
                let hit_key = txn.read_keys.iter().any(|k| c.keys.contains(k) || in_ranges(&c.ranges, k));
                let hit_range = txn.read_ranges.iter().any(|(b, e)| {
                    c.keys.range::<Vec<u8>, _>((Bound::Included(b), Bound::Excluded(e))).next().is_some()
                        || c.ranges.iter().any(|(cb, ce)| cb < e && b < ce)
                });
                if hit_key || hit_range {
                    return Err(Error::new(ErrorKind::Conflict, "a concurrent transaction changed what this one read"));
                }
            }
        }
        let db = txn.store_db.clone();
        let writes = txn.writes;
        let cleared = txn.cleared;
        let keys: BTreeSet<Vec<u8>> = writes.keys().cloned().collect();
        let ranges = cleared.clone();
        // redb's commit fsyncs: keep it off the async threads.
        tokio::task::spawn_blocking(move || -> Result<()> {
            let w = db.begin_write().map_err(db_err)?;
            {
                let mut t = w.open_table(TABLE).map_err(db_err)?;
                for (b, e) in &cleared {
                    t.retain_in::<&[u8], _>((Bound::Included(b.as_slice()), Bound::Excluded(e.as_slice())), |_, _| {
                        false
                    })
                    .map_err(db_err)?;
                }
                for (k, op) in &writes {
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
            w.commit().map_err(db_err)
        })
        .await
        .map_err(db_err)??;
        log.version += 1;
        let version = log.version;
        log.entries.push_back(Committed { version, keys, ranges });
        while log.entries.len() > LOG_LEN {
            log.entries.pop_front();
        }
        Ok(())
    }
}
