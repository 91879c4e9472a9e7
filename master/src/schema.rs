//! The schema: typed accessors over the key layout of `strata_common::keys`, on a transaction.
//! Nothing above this file builds a key or decodes a value.
//!
//! It owns the rules that go with an object's life: when an object is replaced
//! ([`Schema::replace_object`]) or removed ([`Schema::remove_object`]), its pin follows it (or
//! goes), its journal key follows it (or goes, which releases the worker's journal copy of the
//! old version's bytes), and the new value is written, in the same transaction.
//! Values are stored as `codec` encodes them, byte for byte as before.

use async_trait::async_trait;
use strata_common::kv::{Txn, decode_i64};
use strata_common::proto::*;
use strata_common::{Error, ErrorKind, Result, codec, keys};

use crate::listing::{self, Scan};

/// The longest listing page, as S3.
pub const MAX_LIST_KEYS: u32 = 1000;

pub(crate) fn no_such_key() -> Error {
    Error::new(ErrorKind::NoSuchKey, "The specified key does not exist.")
}

pub(crate) fn no_such_bucket(name: &str) -> Error {
    Error::new(ErrorKind::NoSuchBucket, format!("The specified bucket does not exist: {name}"))
}

pub(crate) fn no_such_upload() -> Error {
    Error::new(
        ErrorKind::NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

async fn value<M: prost::Message + Default>(t: &mut Txn, key: &[u8]) -> Result<Option<M>> {
    t.get(key).await?.map(|v| codec::decode(&v)).transpose()
}

async fn values<M: prost::Message + Default>(t: &mut Txn, (b, e): (Vec<u8>, Vec<u8>)) -> Result<Vec<M>> {
    t.get_range(&b, &e, 0, false).await?.iter().map(|(_, v)| codec::decode(v)).collect()
}

/// In a transaction that writes `new` over `old` (either may be absent): the journal keys follow.
fn rejournal(t: &mut Txn, bucket: &str, old: Option<&ObjectMeta>, new: Option<&ObjectMeta>) {
    if let Some(o) = old.filter(|o| o.journal_worker != 0) {
        t.clear(&keys::journal(o.journal_worker, o.version));
    }
    if let Some(n) = new.filter(|n| n.journal_worker != 0) {
        let e =
            JournalEntry { bucket: bucket.into(), key: n.key.clone(), version: n.version, persist: n.persist_pending };
        t.set(&keys::journal(n.journal_worker, n.version), &codec::encode(&e));
    }
}

/// In a transaction that replaces or deletes version `old`: its pin moves to `new` (0: deleted).
async fn carry_pin(t: &mut Txn, old: u64, new: u64) -> Result<()> {
    if t.get(&keys::pin(old)).await?.is_some() {
        t.clear(&keys::pin(old));
        if new != 0 {
            t.set(&keys::pin(new), b"");
        }
    }
    Ok(())
}

#[async_trait]
pub(crate) trait Schema {
    // --- counters -------------------------------------------------------------------------
    /// Reserves `n` more version ids; returns the new high-water mark.
    async fn reserve_versions(&mut self, n: u64) -> Result<u64>;
    /// The next worker id (1, 2, ...).
    async fn next_worker_id(&mut self) -> Result<u64>;
    /// The persisted primary epoch (0: none taken yet).
    async fn epoch(&mut self) -> Result<u64>;
    /// True while a restore into this store has not finished.
    async fn restoring(&mut self) -> Result<bool>;
    fn set_restoring(&mut self, on: bool);

    // --- buckets --------------------------------------------------------------------------
    async fn find_bucket(&mut self, name: &str) -> Result<Option<Bucket>>;
    /// The bucket, or NoSuchBucket.
    async fn bucket(&mut self, name: &str) -> Result<Bucket>;
    /// The bucket, if writes may change it: a read-only mount refuses with AccessDenied.
    async fn writable_bucket(&mut self, name: &str) -> Result<Bucket>;
    fn put_bucket(&mut self, b: &Bucket);
    async fn buckets(&mut self) -> Result<Vec<Bucket>>;
    /// No object and no multipart upload in it.
    async fn bucket_is_empty(&mut self, name: &str) -> Result<bool>;
    /// The bucket's record, its TTL rules and its remembered completions.
    async fn remove_bucket(&mut self, name: &str) -> Result<()>;
    /// Every object, upload and completion record of the bucket (an unmount: the data stays in
    /// the store).
    fn clear_bucket_contents(&mut self, name: &str);

    // --- objects --------------------------------------------------------------------------
    async fn object(&mut self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>>;
    /// Writes `new` at its key over `old` (what is there now, if anything): the pin follows,
    /// the journal key follows. Returns the replaced version (0: none).
    async fn replace_object(&mut self, bucket: &str, old: Option<&ObjectMeta>, new: &ObjectMeta) -> Result<u64>;
    /// Removes `old`: its pin and its journal key go with it.
    async fn remove_object(&mut self, bucket: &str, old: &ObjectMeta) -> Result<()>;
    /// Rewrites an object's value without changing its version or journal (tags, a recorded
    /// under-store ETag).
    fn rewrite_object(&mut self, bucket: &str, meta: &ObjectMeta);
    /// One page of a listing, S3's delimiter rules applied.
    async fn list_objects(&mut self, req: &ListObjectsRequest) -> Result<ListObjectsResponse>;
    /// Up to `limit` objects under `prefix` after `after` (exclusive), with their keys.
    async fn objects_after(
        &mut self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, ObjectMeta)>>;

    // --- multipart uploads ----------------------------------------------------------------
    /// The upload (its bucket must exist), or NoSuchUpload.
    async fn upload(&mut self, r: &UploadRef) -> Result<Upload>;
    fn put_upload(&mut self, u: &Upload);
    async fn parts(&mut self, r: &UploadRef) -> Result<Vec<PartMeta>>;
    /// Writes a part; returns the one it replaced.
    async fn replace_part(&mut self, r: &UploadRef, part: &PartMeta) -> Result<Option<PartMeta>>;
    /// The upload and all its parts.
    fn remove_upload(&mut self, r: &UploadRef);
    async fn list_uploads(&mut self, req: &ListUploadsRequest) -> Result<ListUploadsResponse>;
    /// Remembers a completion (written in the completing transaction).
    fn put_completed_upload(&mut self, c: &CompletedUpload);
    /// The remembered completion of upload `r` (its key must match too).
    async fn completed_upload(&mut self, r: &UploadRef) -> Result<Option<CompletedUpload>>;
    fn remove_completed_upload(&mut self, r: &UploadRef);
    /// Of up to `limit` completions after `after` (None: from the first), forgets those made
    /// before `before_ms`. Returns how many it forgot and the last one it read (None: no more).
    async fn forget_completed_uploads(
        &mut self,
        after: Option<&CompletedUpload>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(usize, Option<CompletedUpload>)>;

    // --- publish intents -------------------------------------------------------------------
    fn put_publish_intent(&mut self, i: &PublishIntent);
    fn clear_publish_intent(&mut self, i: &PublishIntent);
    async fn publish_intents(&mut self) -> Result<Vec<PublishIntent>>;
    async fn has_publish_intent(&mut self, i: &PublishIntent) -> Result<bool>;
    /// The parts of every upload (their staged files are claimed).
    async fn all_parts(&mut self) -> Result<Vec<PartMeta>>;

    // --- pins, journals, TTL rules, workers -----------------------------------------------
    fn set_pin(&mut self, version: u64, pinned: bool);
    async fn pinned_versions(&mut self) -> Result<Vec<u64>>;
    async fn journal(&mut self, worker: u64) -> Result<Vec<JournalEntry>>;
    /// An object of `bucket` that only a worker's journal holds, if any.
    async fn journaled_in(&mut self, bucket: &str) -> Result<Option<JournalEntry>>;
    async fn ttl_rules(&mut self) -> Result<Vec<TtlRule>>;
    /// Sets the rule, or with `ttl_ms` 0 removes it.
    fn put_ttl_rule(&mut self, rule: &TtlRule);
    async fn workers(&mut self) -> Result<Vec<WorkerInfo>>;
    fn put_worker(&mut self, w: &WorkerInfo);
    fn remove_worker(&mut self, id: u64);
}

#[async_trait]
impl Schema for Txn {
    async fn reserve_versions(&mut self, n: u64) -> Result<u64> {
        let k = keys::version_counter();
        let cur = self.get(&k).await?.map(|v| decode_i64(&v) as u64).unwrap_or(0);
        let end = cur + n;
        self.set(&k, &(end as i64).to_le_bytes());
        Ok(end)
    }

    async fn next_worker_id(&mut self) -> Result<u64> {
        let k = keys::worker_id_counter();
        let next = self.get(&k).await?.map(|v| decode_i64(&v)).unwrap_or(0) + 1;
        self.set(&k, &next.to_le_bytes());
        Ok(next as u64)
    }

    async fn epoch(&mut self) -> Result<u64> {
        Ok(self.get(&keys::epoch()).await?.map(|v| decode_i64(&v) as u64).unwrap_or(0))
    }

    async fn restoring(&mut self) -> Result<bool> {
        Ok(self.get(&keys::restoring()).await?.is_some())
    }

    fn set_restoring(&mut self, on: bool) {
        match on {
            true => self.set(&keys::restoring(), b""),
            false => self.clear(&keys::restoring()),
        }
    }

    async fn find_bucket(&mut self, name: &str) -> Result<Option<Bucket>> {
        value(self, &keys::bucket(name)).await
    }

    async fn bucket(&mut self, name: &str) -> Result<Bucket> {
        self.find_bucket(name).await?.ok_or_else(|| no_such_bucket(name))
    }

    async fn writable_bucket(&mut self, name: &str) -> Result<Bucket> {
        let b = self.bucket(name).await?;
        if b.mount.as_ref().is_some_and(|m| m.read_only) {
            return Err(Error::new(
                ErrorKind::AccessDenied,
                format!("bucket {name} is a read-only mount: writes are refused"),
            ));
        }
        Ok(b)
    }

    fn put_bucket(&mut self, b: &Bucket) {
        self.set(&keys::bucket(&b.name), &codec::encode(b))
    }

    async fn buckets(&mut self) -> Result<Vec<Bucket>> {
        values(self, keys::buckets()).await
    }

    async fn bucket_is_empty(&mut self, name: &str) -> Result<bool> {
        let (ob, oe) = keys::objects(name, "");
        let (ub, ue) = keys::uploads(name, "");
        Ok(self.get_range(&ob, &oe, 1, false).await?.is_empty() && self.get_range(&ub, &ue, 1, false).await?.is_empty())
    }

    async fn remove_bucket(&mut self, name: &str) -> Result<()> {
        self.clear(&keys::bucket(name));
        let (cb, ce) = keys::completed_uploads_of(name);
        self.clear_range(&cb, &ce);
        let (b, e) = keys::ttls();
        for (k, v) in self.get_range(&b, &e, 0, false).await? {
            let rule: TtlRule = codec::decode(&v)?;
            if rule.bucket == name {
                self.clear(&k);
            }
        }
        Ok(())
    }

    fn clear_bucket_contents(&mut self, name: &str) {
        let (ob, oe) = keys::objects(name, "");
        let (ub, ue) = keys::uploads(name, "");
        self.clear_range(&ob, &oe);
        self.clear_range(&ub, &ue);
        let (cb, ce) = keys::completed_uploads_of(name);
        self.clear_range(&cb, &ce);
        let (sb, se) = keys::synced_of(name);
        self.clear_range(&sb, &se);
    }

    async fn object(&mut self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>> {
        value(self, &keys::object(bucket, key)).await
    }

    async fn replace_object(&mut self, bucket: &str, old: Option<&ObjectMeta>, new: &ObjectMeta) -> Result<u64> {
        if let Some(o) = old {
            carry_pin(self, o.version, new.version).await?;
        }
        rejournal(self, bucket, old, Some(new));
        self.set(&keys::object(bucket, &new.key), &codec::encode(new));
        Ok(old.map(|o| o.version).unwrap_or(0))
    }

    async fn remove_object(&mut self, bucket: &str, old: &ObjectMeta) -> Result<()> {
        self.clear(&keys::object(bucket, &old.key));
        carry_pin(self, old.version, 0).await?;
        rejournal(self, bucket, Some(old), None);
        Ok(())
    }

    fn rewrite_object(&mut self, bucket: &str, meta: &ObjectMeta) {
        self.set(&keys::object(bucket, &meta.key), &codec::encode(meta))
    }

    async fn list_objects(&mut self, req: &ListObjectsRequest) -> Result<ListObjectsResponse> {
        let (mut begin, end) = keys::objects(&req.bucket, &req.prefix);
        if !req.start_after.is_empty() {
            let mut after = keys::object(&req.bucket, &req.start_after);
            after.push(0);
            begin = begin.max(after);
        }
        let scan = Scan {
            begin,
            end,
            prefix: &req.prefix,
            delimiter: &req.delimiter,
            marker: &req.start_after,
            max: req.max_keys.min(MAX_LIST_KEYS) as usize,
        };
        let bucket = req.bucket.as_str();
        let page = listing::scan(
            self,
            scan,
            |full, value| {
                let key = keys::object_key_of(bucket, full)
                    .ok_or_else(|| Error::internal("object key out of its bucket's range"))?;
                Ok((key, codec::decode::<ObjectMeta>(value)?))
            },
            |cp| keys::prefix_end(&keys::object(bucket, cp)),
        )
        .await?;
        Ok(ListObjectsResponse {
            objects: page.items,
            common_prefixes: page.common_prefixes,
            truncated: page.truncated,
            next_marker: page.next_marker,
        })
    }

    async fn objects_after(
        &mut self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, ObjectMeta)>> {
        let (mut begin, end) = keys::objects(bucket, prefix);
        if !after.is_empty() {
            let mut a = keys::object(bucket, after);
            a.push(0);
            begin = begin.max(a);
        }
        let rows = self.get_range(&begin, &end, limit, false).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in &rows {
            let meta: ObjectMeta = codec::decode(v)?;
            if let Some(key) = keys::object_key_of(bucket, k) {
                out.push((key, meta));
            }
        }
        Ok(out)
    }

    async fn upload(&mut self, r: &UploadRef) -> Result<Upload> {
        self.bucket(&r.bucket).await?;
        value(self, &keys::upload(&r.bucket, &r.key, &r.upload_id)).await?.ok_or_else(no_such_upload)
    }

    fn put_upload(&mut self, u: &Upload) {
        self.set(&keys::upload(&u.bucket, &u.key, &u.upload_id), &codec::encode(u))
    }

    async fn parts(&mut self, r: &UploadRef) -> Result<Vec<PartMeta>> {
        values(self, keys::parts(&r.bucket, &r.upload_id)).await
    }

    async fn replace_part(&mut self, r: &UploadRef, part: &PartMeta) -> Result<Option<PartMeta>> {
        let k = keys::part(&r.bucket, &r.upload_id, part.number);
        let old = value(self, &k).await?;
        self.set(&k, &codec::encode(part));
        Ok(old)
    }

    fn remove_upload(&mut self, r: &UploadRef) {
        self.clear(&keys::upload(&r.bucket, &r.key, &r.upload_id));
        let (b, e) = keys::parts(&r.bucket, &r.upload_id);
        self.clear_range(&b, &e);
    }

    async fn list_uploads(&mut self, req: &ListUploadsRequest) -> Result<ListUploadsResponse> {
        let (mut begin, end) = keys::uploads(&req.bucket, &req.prefix);
        if !req.key_marker.is_empty() {
            // After the marker key (all its uploads), or after one of its uploads.
            let after = if req.upload_id_marker.is_empty() {
                keys::prefix_end(&keys::upload(&req.bucket, &req.key_marker, ""))
            } else {
                let mut k = keys::upload(&req.bucket, &req.key_marker, &req.upload_id_marker);
                k.push(0);
                k
            };
            begin = begin.max(after);
        }
        let max = if req.max_uploads == 0 { MAX_LIST_KEYS } else { req.max_uploads.min(MAX_LIST_KEYS) };
        let scan = Scan {
            begin,
            end,
            prefix: &req.prefix,
            delimiter: &req.delimiter,
            marker: &req.key_marker,
            max: max as usize,
        };
        let bucket = req.bucket.as_str();
        let page = listing::scan(
            self,
            scan,
            |_, value| {
                let u: Upload = codec::decode(value)?;
                Ok((u.key.clone(), u))
            },
            |cp| keys::uploads(bucket, cp).1,
        )
        .await?;
        Ok(ListUploadsResponse {
            uploads: page.items,
            truncated: page.truncated,
            common_prefixes: page.common_prefixes,
        })
    }

    fn put_publish_intent(&mut self, i: &PublishIntent) {
        self.set(&keys::publish_intent(&i.bucket, &i.key, i.version), &codec::encode(i))
    }

    fn clear_publish_intent(&mut self, i: &PublishIntent) {
        self.clear(&keys::publish_intent(&i.bucket, &i.key, i.version))
    }

    async fn publish_intents(&mut self) -> Result<Vec<PublishIntent>> {
        values(self, keys::publish_intents()).await
    }

    async fn has_publish_intent(&mut self, i: &PublishIntent) -> Result<bool> {
        Ok(self.get(&keys::publish_intent(&i.bucket, &i.key, i.version)).await?.is_some())
    }

    async fn all_parts(&mut self) -> Result<Vec<PartMeta>> {
        values(self, keys::all_parts()).await
    }

    fn put_completed_upload(&mut self, c: &CompletedUpload) {
        self.set(&keys::completed_upload(&c.bucket, &c.upload_id), &codec::encode(c))
    }

    async fn completed_upload(&mut self, r: &UploadRef) -> Result<Option<CompletedUpload>> {
        let c: Option<CompletedUpload> = value(self, &keys::completed_upload(&r.bucket, &r.upload_id)).await?;
        Ok(c.filter(|c| c.key == r.key))
    }

    fn remove_completed_upload(&mut self, r: &UploadRef) {
        self.clear(&keys::completed_upload(&r.bucket, &r.upload_id))
    }

    async fn forget_completed_uploads(
        &mut self,
        after: Option<&CompletedUpload>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(usize, Option<CompletedUpload>)> {
        let (mut begin, end) = keys::completed_uploads();
        if let Some(a) = after {
            begin = keys::completed_upload(&a.bucket, &a.upload_id);
            begin.push(0);
        }
        let rows = self.get_range(&begin, &end, limit, false).await?;
        let mut forgot = 0;
        let mut last = None;
        for (k, v) in &rows {
            let c: CompletedUpload = codec::decode(v)?;
            if c.completed_ms < before_ms {
                self.clear(k);
                forgot += 1;
            }
            last = Some(c);
        }
        Ok((forgot, last.filter(|_| limit > 0 && rows.len() >= limit)))
    }

    fn set_pin(&mut self, version: u64, pinned: bool) {
        match pinned {
            true => self.set(&keys::pin(version), b""),
            false => self.clear(&keys::pin(version)),
        }
    }

    async fn pinned_versions(&mut self) -> Result<Vec<u64>> {
        let (b, e) = keys::pins();
        Ok(self.get_range(&b, &e, 0, false).await?.iter().filter_map(|(k, _)| keys::pin_version(k)).collect())
    }

    async fn journal(&mut self, worker: u64) -> Result<Vec<JournalEntry>> {
        values(self, keys::journals(worker)).await
    }

    async fn journaled_in(&mut self, bucket: &str) -> Result<Option<JournalEntry>> {
        let all: Vec<JournalEntry> = values(self, keys::all_journals()).await?;
        Ok(all.into_iter().find(|e| e.bucket == bucket))
    }

    async fn ttl_rules(&mut self) -> Result<Vec<TtlRule>> {
        values(self, keys::ttls()).await
    }

    fn put_ttl_rule(&mut self, rule: &TtlRule) {
        let k = keys::ttl(&rule.bucket, &rule.prefix);
        if rule.ttl_ms > 0 {
            self.set(&k, &codec::encode(rule));
        } else {
            self.clear(&k);
        }
    }

    async fn workers(&mut self) -> Result<Vec<WorkerInfo>> {
        values(self, keys::workers()).await
    }

    fn put_worker(&mut self, w: &WorkerInfo) {
        self.set(&keys::worker(w.id), &codec::encode(w))
    }

    fn remove_worker(&mut self, id: u64) {
        self.clear(&keys::worker(id))
    }
}

mod users;
pub(crate) use users::UserSchema;

#[cfg(test)]
mod tests;
