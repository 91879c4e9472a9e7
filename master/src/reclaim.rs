//! Reclaiming staged files (`%strata/` of each mount) whose write died with its process: a file
//! is deleted only when it is older than a grace period (a live write keeps touching its file, a
//! finished one is committed within moments) and no multipart part or publish intent names it.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_common::kv::{KvStore, transact};
use strata_common::proto::Mount;
use strata_common::ufs::{STAGING_DIR, UfsRegistry};
use strata_common::{Error, Result};

use crate::schema::Schema;

/// Deletes every unclaimed staged file older than `grace` in the root under store (multipart
/// parts) and every writable mount; returns how many it deleted.
pub(crate) async fn sweep(store: &dyn KvStore, ufs: &UfsRegistry, root: Mount, grace: Duration) -> Result<usize> {
    // Read before listing: a file staged after this read is younger than `grace` when listed.
    let (buckets, claimed) = transact(store, |t| {
        Box::pin(async move {
            let mut claimed: HashSet<String> = t.all_parts().await?.into_iter().map(|p| p.staging_path).collect();
            claimed.extend(t.publish_intents().await?.into_iter().map(|i| i.staging));
            Ok((t.buckets().await?, claimed))
        })
    })
    .await?;
    let cutoff = chrono::Utc::now() - grace;
    let dir = Path::parse(STAGING_DIR).map_err(|e| Error::internal(format!("staging folder: {e}")))?;
    let mut deleted = 0;
    let mut mounts = vec![root];
    mounts.extend(buckets.into_iter().filter_map(|b| b.mount).filter(|m| !m.read_only));
    mounts.dedup_by(|a, b| a.uri == b.uri);
    for mount in mounts {
        let ufs_store = ufs.open(&mount)?;
        let files: Vec<_> = ufs_store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| Error::internal(format!("cannot list the staged files of {}: {e}", mount.uri)))?;
        for f in files {
            let name = f.location.as_ref().strip_prefix(STAGING_DIR).unwrap_or_default().trim_start_matches('/');
            if f.last_modified > cutoff || claimed.contains(name) {
                continue;
            }
            match ufs_store.delete(&f.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => tracing::warn!(file = %f.location, "cannot delete a dead write's staged file: {e}"),
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "deleted staged files of writes that died");
    }
    Ok(deleted)
}
