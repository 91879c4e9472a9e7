//! Objects whose bytes live in a worker's journal (MUST_CACHE: for good; ASYNC_THROUGH: until
//! that worker has written them to the under store). Each is a key ("j", worker, version) set
//! in the transaction that commits the object and cleared in the one that replaces, deletes or
//! persists it, so the list a worker gets is exactly what it must keep and persist.

use strata_common::kv::{Txn, transact};
use strata_common::proto::{JournalEntry, ObjectMeta, PersistedRequest};
use strata_common::{Error, ErrorKind, Result, codec, keys};

use crate::master::{Master, read_bucket};
use crate::objects::read_object;
use crate::publish::Committed;

/// In a transaction that writes `new` over `old` (either may be absent): the journal keys follow.
pub(crate) fn rejournal(t: &mut Txn, bucket: &str, old: Option<&ObjectMeta>, new: Option<&ObjectMeta>) {
    if let Some(o) = old.filter(|o| o.journal_worker != 0) {
        t.clear(&keys::journal(o.journal_worker, o.version));
    }
    if let Some(n) = new.filter(|n| n.journal_worker != 0) {
        let e =
            JournalEntry { bucket: bucket.into(), key: n.key.clone(), version: n.version, persist: n.persist_pending };
        t.set(&keys::journal(n.journal_worker, n.version), &codec::encode(&e));
    }
}

impl Master {
    pub(crate) async fn do_journal(&self, worker: u64) -> Result<Vec<JournalEntry>> {
        transact(self.store.as_ref(), |t| {
            Box::pin(async move {
                let (b, e) = keys::journals(worker);
                t.get_range(&b, &e, 0, false).await?.iter().map(|(_, v)| codec::decode(v)).collect()
            })
        })
        .await
    }

    /// Moves a persisted ASYNC_THROUGH object's bytes onto its key, in commit order with other
    /// writes of the key, and records that the under store has it.
    pub(crate) async fn do_persisted(&self, req: PersistedRequest) -> Result<()> {
        let (bucket, key, staging) = (req.bucket.clone(), req.key.clone(), req.staging_key.clone());
        let commit = transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                let b = read_bucket(t, &req.bucket).await?;
                let current = read_object(t, &req.bucket, &req.key).await?;
                let Some(cur) = current.filter(|c| c.version == req.version && c.journal_worker != 0) else {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        format!("{}/{} changed before version {} was persisted", req.bucket, req.key, req.version),
                    ));
                };
                let mut done = cur.clone();
                done.journal_worker = 0;
                done.persist_pending = false;
                done.ufs_etag = req.ufs_etag.clone();
                rejournal(t, &req.bucket, Some(&cur), None);
                t.set(&keys::object(&req.bucket, &req.key), &codec::encode(&done));
                Ok(Committed { value: (), mount: b.mount, replaced: Some(cur), version: req.version })
            })
        });
        self.publish(&bucket, &key, &staging, commit).await
    }
}
