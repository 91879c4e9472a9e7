//! The etcd backend (HA clusters of modest size): optimistic transactions compared on
//! revisions. A transaction reads at one revision (that of its first read); at commit, one
//! etcd `Txn` checks that every key it read still has the mod revision it saw (0 = absent) and
//! that nothing in the ranges it read changed after that revision, and only then writes.
//! A transaction larger than etcd takes (128 operations, ~1.5 MiB by default) fails with a
//! clear error: it is never split.

use std::collections::BTreeMap;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, SortOrder, SortTarget, Txn, TxnOp,
};
use strata_common::kv::{KeyValue, KvResult, KvStore, KvTxn, StoreError};
use strata_common::{Error, Result};

use super::buffer::{Op, WriteBuffer, add};

/// etcd's default `--max-txn-ops`.
const DEFAULT_MAX_TXN_OPS: usize = 128;

pub struct EtcdStore {
    client: Client,
    prefix: Vec<u8>,
    max_txn_ops: usize,
}

fn etcd_err(e: etcd_client::Error) -> Error {
    Error::unavailable(format!("etcd: {e}"))
}

impl EtcdStore {
    /// `etcd://host:port[,host:port...]/prefix[?max_txn_ops=N]` (N: etcd's `--max-txn-ops`).
    pub async fn connect(url: &str) -> Result<EtcdStore> {
        let rest = url.strip_prefix("etcd://").ok_or_else(|| Error::invalid("an etcd URL starts with etcd://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let max_txn_ops = match query.strip_prefix("max_txn_ops=") {
            Some(n) => n.parse().map_err(|_| Error::invalid(format!("max_txn_ops={n} is not a number")))?,
            None if query.is_empty() => DEFAULT_MAX_TXN_OPS,
            None => return Err(Error::invalid(format!("unknown etcd URL option {query:?} (known: max_txn_ops=N)"))),
        };
        let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, "strata"));
        let endpoints: Vec<String> = hosts.split(',').map(|h| format!("http://{h}")).collect();
        let opts = ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(10));
        let client = Client::connect(&endpoints, Some(opts))
            .await
            .map_err(|e| Error::unavailable(format!("cannot reach etcd at {hosts}: {e}")))?;
        let mut prefix = prefix.trim_end_matches('/').as_bytes().to_vec();
        prefix.push(b'/');
        Ok(EtcdStore { client, prefix, max_txn_ops })
    }
}

#[async_trait]
impl KvStore for EtcdStore {
    async fn begin(&self) -> KvResult<Box<dyn KvTxn>> {
        Ok(Box::new(EtcdTxn {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            max_txn_ops: self.max_txn_ops,
            revision: 0,
            read_keys: BTreeMap::new(),
            read_ranges: Vec::new(),
            buffer: WriteBuffer::default(),
        }))
    }

    fn name(&self) -> &str {
        "etcd"
    }
}

struct EtcdTxn {
    client: Client,
    prefix: Vec<u8>,
    max_txn_ops: usize,
    /// The revision every read of this transaction sees; 0 until the first read.
    revision: i64,
    /// Key → mod revision seen (0: absent).
    read_keys: BTreeMap<Vec<u8>, i64>,
    read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    buffer: WriteBuffer,
}

impl EtcdTxn {
    fn full(&self, key: &[u8]) -> Vec<u8> {
        [self.prefix.as_slice(), key].concat()
    }

    fn at_revision(&self, opts: GetOptions) -> GetOptions {
        if self.revision > 0 { opts.with_revision(self.revision) } else { opts }
    }

    fn pin(&mut self, header: Option<&etcd_client::ResponseHeader>) {
        if self.revision == 0 {
            self.revision = header.map(|h| h.revision()).unwrap_or(0);
        }
    }
}

#[async_trait]
impl KvTxn for EtcdTxn {
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        let snapshot = if self.buffer.needs_snapshot(key) {
            let opts = self.at_revision(GetOptions::new());
            let resp = self.client.get(self.full(key), Some(opts)).await.map_err(etcd_err)?;
            self.pin(resp.header());
            let kv = resp.kvs().first();
            self.read_keys.insert(key.to_vec(), kv.map(|kv| kv.mod_revision()).unwrap_or(0));
            kv.map(|kv| kv.value().to_vec())
        } else {
            None
        };
        Ok(self.buffer.visible(key, snapshot))
    }

    async fn get_range(&mut self, begin: &[u8], end: &[u8], limit: usize, reverse: bool) -> KvResult<Vec<KeyValue>> {
        if begin >= end {
            return Ok(Vec::new());
        }
        let fetch = self.buffer.snapshot_limit(begin, end, limit);
        let order = if reverse { SortOrder::Descend } else { SortOrder::Ascend };
        let mut opts = GetOptions::new().with_range(self.full(end)).with_sort(SortTarget::Key, order);
        if fetch > 0 {
            opts = opts.with_limit(fetch as i64);
        }
        let opts = self.at_revision(opts);
        let resp = self.client.get(self.full(begin), Some(opts)).await.map_err(etcd_err)?;
        self.pin(resp.header());
        let plen = self.prefix.len();
        let mut snapshot = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let key = kv.key()[plen..].to_vec();
            self.read_keys.insert(key.clone(), kv.mod_revision());
            snapshot.push(Ok((key, kv.value().to_vec())));
        }
        let merged = self.buffer.merge(snapshot.into_iter(), begin, end, limit, reverse)?;
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

    /// etcd has no atomic add: the key is read (and so conflicts) like any read-modify-write.
    fn atomic_add(&mut self, key: &[u8], delta: i64) {
        self.buffer.atomic_add(key, delta)
    }

    async fn commit(self: Box<Self>) -> KvResult<()> {
        let mut txn = *self;
        if txn.buffer.is_empty() {
            return Ok(());
        }
        // Adds on keys never read need their current value: read them now (and check them).
        let adds: Vec<Vec<u8>> =
            txn.buffer.writes.iter().filter(|(_, op)| matches!(op, Op::Add(_))).map(|(k, _)| k.clone()).collect();
        let mut base = BTreeMap::new();
        for k in adds {
            if !txn.read_keys.contains_key(&k) || txn.revision == 0 {
                let resp = txn.client.get(txn.full(&k), None).await.map_err(etcd_err)?;
                let kv = resp.kvs().first();
                txn.read_keys.insert(k.clone(), kv.map(|kv| kv.mod_revision()).unwrap_or(0));
                base.insert(k, kv.map(|kv| kv.value().to_vec()));
            } else {
                let opts = GetOptions::new().with_revision(txn.revision);
                let resp = txn.client.get(txn.full(&k), Some(opts)).await.map_err(etcd_err)?;
                base.insert(k, resp.kvs().first().map(|kv| kv.value().to_vec()));
            }
        }
        let mut compares = Vec::new();
        for (k, rev) in &txn.read_keys {
            compares.push(Compare::mod_revision(txn.full(k), CompareOp::Equal, *rev));
        }
        if txn.revision > 0 {
            for (b, e) in &txn.read_ranges {
                compares.push(
                    Compare::mod_revision(txn.full(b), CompareOp::Less, txn.revision + 1).with_range(txn.full(e)),
                );
            }
        }
        let WriteBuffer { writes, cleared } = std::mem::take(&mut txn.buffer);
        let mut ops = Vec::new();
        for (b, e) in &cleared {
            ops.push(TxnOp::delete(txn.full(b), Some(DeleteOptions::new().with_range(txn.full(e)))));
        }
        for (k, op) in writes {
            ops.push(match op {
                Op::Set(v) => TxnOp::put(txn.full(&k), v, None),
                Op::Clear => TxnOp::delete(txn.full(&k), None),
                Op::Add(d) => TxnOp::put(txn.full(&k), add(base.get(&k).cloned().flatten().as_deref(), d), None),
            });
        }
        if ops.len() > txn.max_txn_ops || compares.len() > txn.max_txn_ops {
            return Err(Error::invalid(format!(
                "this metadata transaction needs {} writes and {} checks, more than etcd takes in one transaction ({}); \
                 it is not split: raise etcd's --max-txn-ops and add ?max_txn_ops=N to the metadata URL",
                ops.len(),
                compares.len(),
                txn.max_txn_ops
            ))
            .into());
        }
        let resp = txn.client.txn(Txn::new().when(compares).and_then(ops)).await.map_err(|e| match e {
            etcd_client::Error::GRpcStatus(s)
                if s.message().contains("too many operations") || s.message().contains("too large") =>
            {
                Error::invalid(format!(
                    "the metadata transaction is too large for etcd (it is never split): {}",
                    s.message()
                ))
            }
            other => etcd_err(other),
        })?;
        if !resp.succeeded() {
            return Err(StoreError::conflict("a concurrent transaction changed what this one read"));
        }
        Ok(())
    }
}
