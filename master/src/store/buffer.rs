//! A transaction's own writes, kept until commit, and how reads see them over a snapshot
//! (read-your-writes). Shared by the backends that buffer writes client-side.

use std::collections::BTreeMap;
use std::ops::Bound;

use strata_common::Result;
use strata_common::kv::{KeyValue, decode_i64};

#[derive(Clone)]
pub enum Op {
    Set(Vec<u8>),
    Clear,
    Add(i64),
}

pub fn add(base: Option<&[u8]>, delta: i64) -> Vec<u8> {
    base.map(decode_i64).unwrap_or(0).wrapping_add(delta).to_le_bytes().to_vec()
}

pub fn in_ranges(ranges: &[(Vec<u8>, Vec<u8>)], key: &[u8]) -> bool {
    ranges.iter().any(|(b, e)| b.as_slice() <= key && key < e.as_slice())
}

#[derive(Default)]
pub struct WriteBuffer {
    pub writes: BTreeMap<Vec<u8>, Op>,
    /// Ranges cleared before the point writes in `writes` (which come after them).
    pub cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a range read returned, and how far it looked.
pub struct Merged {
    pub rows: Vec<KeyValue>,
    /// The range the result depends on: the whole range, or up to the last key seen.
    pub read: (Vec<u8>, Vec<u8>),
}

impl WriteBuffer {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.cleared.is_empty()
    }

    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert(key.to_vec(), Op::Set(value.to_vec()));
    }

    pub fn clear(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), Op::Clear);
    }

    pub fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
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

    pub fn atomic_add(&mut self, key: &[u8], delta: i64) {
        let op = match self.writes.get(key) {
            Some(Op::Set(v)) => Op::Set(add(Some(v), delta)),
            Some(Op::Clear) => Op::Set(add(None, delta)),
            Some(Op::Add(d)) => Op::Add(d.wrapping_add(delta)),
            None if in_ranges(&self.cleared, key) => Op::Set(add(None, delta)),
            None => Op::Add(delta),
        };
        self.writes.insert(key.to_vec(), op);
    }

    /// Whether a read of `key` needs the snapshot (it is not simply set or cleared here).
    pub fn needs_snapshot(&self, key: &[u8]) -> bool {
        match self.writes.get(key) {
            Some(Op::Set(_)) | Some(Op::Clear) => false,
            // An add inside a cleared range was turned into a set when it was made.
            Some(Op::Add(_)) => true,
            None => !in_ranges(&self.cleared, key),
        }
    }

    /// `key` as this transaction sees it, given its value in the snapshot.
    pub fn visible(&self, key: &[u8], snapshot: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let snapshot = if in_ranges(&self.cleared, key) { None } else { snapshot };
        match self.writes.get(key) {
            Some(Op::Set(v)) => Some(v.clone()),
            Some(Op::Clear) => None,
            Some(Op::Add(d)) => Some(add(snapshot.as_deref(), *d)),
            None => snapshot,
        }
    }

    /// How many snapshot rows of `[begin, end)` to fetch for `limit` visible ones (0 = all).
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub fn snapshot_limit(&self, begin: &[u8], end: &[u8], limit: usize) -> usize {
        if limit == 0 || self.cleared.iter().any(|(b, e)| b.as_slice() < end && begin < e.as_slice()) {
            return 0;
        }
        limit + self.writes.range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end))).count()
    }

    /// Merges snapshot rows of `[begin, end)` (in the read's order) with this buffer.
    pub fn merge(
        &self,
        snapshot: impl Iterator<Item = Result<KeyValue>>,
        begin: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Merged> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let bounds = (Bound::Included(begin), Bound::Excluded(end));
        let own: Vec<(Vec<u8>, Op)> =
            self.writes.range::<[u8], _>(bounds).map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut own = own.into_iter();
        let mut snap = snapshot;
        let (mut next_snap, mut next_own): (Option<KeyValue>, Option<(Vec<u8>, Op)>) = (None, None);
        let mut rows = Vec::new();
        let mut last_key: Option<Vec<u8>> = None;
        loop {
            if next_snap.is_none() {
                next_snap = snap.next().transpose()?;
            }
            if next_own.is_none() {
                next_own = if reverse { own.next_back() } else { own.next() };
            }
            let take_snap = match (&next_snap, &next_own) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // On equal keys our own write shadows the snapshot.
                (Some((sk, _)), Some((ok, _))) => sk != ok && ((sk < ok) != reverse),
            };
            let (key, value) = match (take_snap, next_snap.take(), next_own.take()) {
                (true, Some((k, v)), own_next) => {
                    next_own = own_next;
                    let v = (!in_ranges(&self.cleared, &k)).then_some(v);
                    (k, v)
                }
                (_, snap_next, Some((k, op))) => {
                    let base = match snap_next {
                        Some((sk, sv)) if sk == k => (!in_ranges(&self.cleared, &sk)).then_some(sv),
                        other => {
                            next_snap = other;
                            None
                        }
                    };
                    let v = match op {
                        Op::Set(v) => Some(v),
                        Op::Clear => None,
                        Op::Add(d) => Some(add(base.as_deref(), d)),
                    };
                    (k, v)
                }
                _ => break,
            };
            last_key = Some(key.clone());
            if let Some(v) = value {
                rows.push((key, v));
                if rows.len() >= limit {
                    break;
                }
            }
        }
        let read = match (rows.len() >= limit, last_key) {
            (true, Some(k)) if reverse => (k, end.to_vec()),
            (true, Some(mut k)) => {
                k.push(0);
                (begin.to_vec(), k)
            }
            _ => (begin.to_vec(), end.to_vec()),
        };
        Ok(Merged { rows, read })
    }
}
