//! Moving a write's bytes from staging to its key in the under store, in commit order.
//!
//! A write streams into `%strata/tmp/<version>` of the bucket's mount; only once the master has
//! committed its metadata is it renamed onto the key. Commit and rename of one key happen under
//! one lock, so two writers of a key leave the under store holding the bytes of the one whose
//! metadata won, and a write that fails its commit (a condition, a deleted bucket) never
//! touches the object already there. Should the move itself fail after the commit (a full or
//! broken disk), the commit is undone, so that no object is left without its bytes.

use std::future::Future;

use object_store::ObjectStoreExt;
use strata_common::kv::transact;
use strata_common::proto::{Mount, ObjectMeta};
use strata_common::{Error, Result, codec, keys, ufs};

use crate::master::Master;
use crate::objects::read_object;

pub(crate) type KeyLocks = strata_common::locks::KeyedLocks<(String, String)>;

/// What a metadata commit tells [`Master::publish`].
pub(crate) struct Committed<T> {
    pub value: T,
    /// The bucket's mount when the under store must change (bytes to move, a key to delete).
    pub mount: Option<Mount>,
    /// The object the commit replaced, and the version it wrote: what an undo restores.
    pub replaced: Option<ObjectMeta>,
    pub version: u64,
}

impl Master {
    /// Runs `commit` (a metadata transaction) for `bucket/key` and then, if it succeeded, moves
    /// the staged bytes onto the key; if it failed, deletes them. Deletes run here too (with
    /// `staging` empty) so that they are ordered with writes of the same key.
    pub(crate) async fn publish<T, F>(&self, bucket: &str, key: &str, staging: &str, commit: F) -> Result<T>
    where
        F: Future<Output = Result<Committed<T>>>,
    {
        let _held = self.key_locks.lock((bucket.to_string(), key.to_string())).await;
        if !staging.is_empty() {
            let mount = self.mount_of(bucket).await?;
            if let Err(e) = ufs::check_placeable(&mount, key) {
                self.remove_staged(&mount, staging).await;
                return Err(e);
            }
        }
        let epoch = self.ha.epoch();
        match commit.await {
            Ok(Committed { value, mount: Some(mount), replaced, version }) => {
                // A master that lost the primary role since its commit leaves the under store to
                // the new primary (its commit may stand; its bytes do not move).
                if !self.ha.is_primary() || self.ha.epoch() != epoch {
                    self.remove_staged(&mount, staging).await;
                    return Err(Error::new(
                        strata_common::ErrorKind::NotPrimary,
                        "this master lost the primary role during the write; retry it",
                    ));
                }
                match self.move_into_place(&mount, key, staging).await {
                    Ok(()) => {
                        if !staging.is_empty() && !mount.uri.starts_with("file:") {
                            self.refresh_ufs_etag(&mount, bucket, key, version).await;
                        }
                        Ok(value)
                    }
                    Err(e) => {
                        self.undo(bucket, key, version, replaced).await;
                        self.remove_staged(&mount, staging).await;
                        Err(e)
                    }
                }
            }
            Ok(Committed { value, mount: None, .. }) => Ok(value),
            Err(e) => {
                if !staging.is_empty()
                    && let Ok(mount) = self.mount_of(bucket).await
                {
                    self.remove_staged(&mount, staging).await;
                }
                Err(e)
            }
        }
    }

    async fn move_into_place(&self, mount: &Mount, key: &str, staging: &str) -> Result<()> {
        let store = self.ufs.open(mount)?;
        let target = ufs::key_path(key)?;
        if staging.is_empty() {
            return match store.delete(&target).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => {
                    tracing::warn!(key, "deleted from the namespace but not from the under store: {e}");
                    Ok(())
                }
            };
        }
        store.rename(&ufs::staging_path(staging)?, &target).await.map_err(|e| {
            tracing::error!(key, staging, "committed, but the bytes could not be moved onto the key: {e}");
            Error::internal(format!("cannot move the written object onto its key in the under store: {e}"))
        })
    }

    /// An object store's move is a copy, which may give the object a new ETag (S3 gives a copy
    /// of a multipart upload the MD5 of the whole): record it, or fills would take the object
    /// for changed behind Strata's back.
    async fn refresh_ufs_etag(&self, mount: &Mount, bucket: &str, key: &str, version: u64) {
        let (Ok(store), Ok(path)) = (self.ufs.open(mount), ufs::key_path(key)) else { return };
        let Ok(Some(tag)) = store.head(&path).await.map(|m| m.e_tag) else { return };
        let (b, k) = (bucket.to_string(), key.to_string());
        let done = transact(self.store.as_ref(), |t| {
            let (b, k, tag) = (b.clone(), k.clone(), tag.clone());
            Box::pin(async move {
                if let Some(mut cur) = read_object(t, &b, &k).await?
                    && cur.version == version
                    && cur.ufs_etag != tag
                {
                    cur.ufs_etag = tag;
                    t.set(&keys::object(&b, &k), &codec::encode(&cur));
                }
                Ok(())
            })
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(bucket, key, "cannot record the under store's ETag after the move: {e}");
        }
    }

    /// Puts back the object a commit replaced, if the commit's version is still the current one.
    async fn undo(&self, bucket: &str, key: &str, version: u64, replaced: Option<ObjectMeta>) {
        let (b, k) = (bucket.to_string(), key.to_string());
        let undone = transact(self.store.as_ref(), |t| {
            let (b, k, replaced) = (b.clone(), k.clone(), replaced.clone());
            Box::pin(async move {
                let current = read_object(t, &b, &k).await?;
                if let Some(cur) = current.filter(|c| c.version == version) {
                    match &replaced {
                        Some(old) => t.set(&keys::object(&b, &k), &codec::encode(old)),
                        None => t.clear(&keys::object(&b, &k)),
                    }
                    // What the commit moved goes back too: the journal key and the pin.
                    crate::journal::rejournal(t, &b, Some(&cur), replaced.as_ref());
                    if let Some(old) = &replaced {
                        crate::mounts::carry_pin(t, cur.version, old.version).await?;
                    }
                }
                Ok(())
            })
        })
        .await;
        if let Err(e) = undone {
            tracing::error!(bucket, key, version, "could not undo a commit whose bytes were not moved into place: {e}");
        }
    }

    async fn remove_staged(&self, mount: &Mount, staging: &str) {
        let (Ok(store), Ok(path)) = (self.ufs.open(mount), ufs::staging_path(staging)) else { return };
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(staging, "cannot delete the staged bytes of a failed write: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_common::ErrorKind;
    use strata_common::proto::CommitObjectRequest;

    #[tokio::test]
    async fn a_commit_whose_bytes_cannot_move_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::master::test_master(dir.path());
        m.do_create_bucket("bkt").await.unwrap();
        let staged = dir.path().join("bkt/%strata/tmp");
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("1"), b"first").unwrap();
        let commit = |version: u64, staging: &str| CommitObjectRequest {
            bucket: "bkt".into(),
            meta: Some(ObjectMeta { key: "k".into(), version, ..Default::default() }),
            staging_key: staging.into(),
            ..Default::default()
        };
        m.do_commit_object(commit(1, "tmp/1")).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("bkt/k")).unwrap(), b"first");
        // Version 2's staged bytes are missing: the move fails, version 1 stays.
        let e = m.do_commit_object(commit(2, "tmp/2")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(m.do_lookup("bkt", "k").await.unwrap().version, 1);
        assert_eq!(std::fs::read(dir.path().join("bkt/k")).unwrap(), b"first");
    }
}
