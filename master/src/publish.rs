//! Moving a write's bytes from staging to its key in the under store, in commit order.
//!
//! A write streams into `%strata/tmp/<version>` of the bucket's mount; only once the master has
//! committed its metadata is it renamed onto the key. Commit and rename of one key happen under
//! one lock, so two writers of a key leave the under store holding the bytes of the one whose
//! metadata won, and a write that fails its commit (a condition, a deleted bucket) never
//! touches the object already there.

use std::future::Future;

use object_store::ObjectStoreExt;
use strata_common::proto::Mount;
use strata_common::{Error, Result, ufs};

use crate::master::Master;

pub(crate) type KeyLocks = strata_common::locks::KeyedLocks<(String, String)>;

impl Master {
    /// Runs `commit` (a metadata transaction) for `bucket/key` and then, if it succeeded, moves
    /// the staged bytes onto the key; if it failed, deletes them. Deletes run here too (with
    /// `staging` empty) so that they are ordered with writes of the same key.
    pub(crate) async fn publish<T, F>(&self, bucket: &str, key: &str, staging: &str, commit: F) -> Result<T>
    where
        F: Future<Output = Result<(T, Option<Mount>)>>,
    {
        let _held = self.key_locks.lock((bucket.to_string(), key.to_string())).await;
        if !staging.is_empty() {
            let mount = self.mount_of(bucket).await?;
            if let Err(e) = ufs::check_placeable(&mount, key) {
                self.remove_staged(&mount, staging).await;
                return Err(e);
            }
        }
        match commit.await {
            Ok((value, Some(mount))) => self.move_into_place(&mount, key, staging).await.map(|_| value),
            Ok((value, None)) => Ok(value),
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

    async fn remove_staged(&self, mount: &Mount, staging: &str) {
        let (Ok(store), Ok(path)) = (self.ufs.open(mount), ufs::staging_path(staging)) else { return };
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(staging, "cannot delete the staged bytes of a failed write: {e}"),
        }
    }
}
