//! Objects whose bytes live in a worker's journal (MUST_CACHE: for good; ASYNC_THROUGH: until
//! that worker has written them to the under store). Each is a key ("j", worker, version) set
//! in the transaction that commits the object and cleared in the one that replaces, deletes or
//! persists it (`schema` keeps them so), so the list a worker gets is exactly what it must
//! keep and persist.

use std::sync::Arc;

use strata_common::kv::{KvStore, transact};
use strata_common::proto::{JournalEntry, PersistedRequest};
use strata_common::{Error, ErrorKind, Result};

use crate::publish::{Committed, Publisher, intend};
use crate::schema::Schema;

pub(crate) struct Journal {
    store: Arc<dyn KvStore>,
    publisher: Arc<Publisher>,
}

impl Journal {
    pub(crate) fn new(store: Arc<dyn KvStore>, publisher: Arc<Publisher>) -> Journal {
        Journal { store, publisher }
    }

    pub(crate) async fn entries(&self, worker: u64) -> Result<Vec<JournalEntry>> {
        transact(self.store.as_ref(), |t| Box::pin(async move { t.journal(worker).await })).await
    }

    /// Moves a persisted ASYNC_THROUGH object's bytes onto its key, in commit order with other
    /// writes of the key, and records that the under store has it.
    pub(crate) async fn persisted(&self, req: PersistedRequest) -> Result<()> {
        let (bucket, key, staging) = (req.bucket.clone(), req.key.clone(), req.staging_key.clone());
        let commit = transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                let b = t.bucket(&req.bucket).await?;
                let current = t.object(&req.bucket, &req.key).await?;
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
                t.replace_object(&req.bucket, Some(&cur), &done).await?;
                if b.mount.is_some() {
                    intend(t, &req.bucket, &req.key, &req.staging_key, req.version);
                }
                Ok(Committed { value: (), mount: b.mount, replaced: Some(cur), version: req.version })
            })
        });
        self.publisher.publish(&bucket, &key, &staging, commit).await
    }
}
