//! Reclaiming staged files (`%strata/` of each mount) whose write died with its process: a file
//! is deleted only when no multipart part or publish intent names it and this master has seen it
//! unchanged (same modification time and size) for a grace period by its own clock (a live
//! write keeps changing its file, a finished one is committed within moments). An under store's
//! own time is not trusted: S3 dates a multipart upload by its start, and its clock is not ours.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_common::kv::{KvStore, transact};
use strata_common::proto::Mount;
use strata_common::ufs::{STAGING_DIR, UfsRegistry, staging_path, upload_files};
use strata_common::{Error, Result};

use crate::schema::Schema;

/// A staged file as last seen (its modification time and size), and since when it looks so.
type Sighting = (DateTime<Utc>, u64, Instant);

/// When each staged file was first seen as it is now, by mount and name.
#[derive(Default)]
pub(crate) struct Sightings(Mutex<HashMap<(String, String), Sighting>>);

impl Sightings {
    /// Records the files of `mount` listed now (forgetting the ones gone); true for each that has
    /// been seen unchanged for `grace`.
    fn settled(&self, mount: &str, files: &[Staged], grace: Duration) -> Vec<bool> {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut fresh = HashMap::new();
        let out = files
            .iter()
            .map(|f| {
                let key = (mount.to_string(), f.name.clone());
                let first = match seen.get(&key) {
                    Some(&(m, size, first)) if m == f.modified && size == f.size => first,
                    _ => now,
                };
                fresh.insert(key, (f.modified, f.size, first));
                now.duration_since(first) >= grace
            })
            .collect();
        seen.retain(|(m, _), _| m != mount);
        seen.extend(fresh);
        out
    }
}

/// Deletes every unclaimed staged file seen unchanged for `grace` in the root under store
/// (multipart parts) and every writable mount; returns how many it deleted.
pub(crate) async fn sweep(
    store: &dyn KvStore,
    ufs: &UfsRegistry,
    root: Mount,
    grace: Duration,
    seen: &Sightings,
) -> Result<usize> {
    // Read before listing: a file staged after this read is younger than `grace` when listed.
    let (buckets, claimed, upload_dirs) = transact(store, |t| {
        Box::pin(async move {
            let parts = t.all_parts().await?;
            // The in-place file of an upload with parts, and the marks of its parts' places.
            let upload_dirs: HashSet<String> =
                parts.iter().filter_map(|p| Some(p.staging_path.rsplit_once('/')?.0.to_string())).collect();
            let mut claimed: HashSet<String> = parts.into_iter().map(|p| p.staging_path).collect();
            claimed.extend(t.publish_intents().await?.into_iter().map(|i| i.staging));
            Ok((t.buckets().await?, claimed, upload_dirs))
        })
    })
    .await?;
    let mut mounts = vec![root];
    mounts.extend(buckets.into_iter().filter_map(|b| b.mount).filter(|m| !m.read_only));
    mounts.dedup_by(|a, b| a.uri == b.uri);
    let mut deleted = 0;
    for mount in mounts {
        let files = staged_files(ufs, &mount).await?;
        let settled = seen.settled(&mount.uri, &files, grace);
        // An upload's folder with a file still changing (a part being written in place) is
        // kept whole: its slot marks and lock are in use before any part is recorded.
        let live: HashSet<&str> = files
            .iter()
            .zip(&settled)
            .filter(|(f, settled)| {
                !**settled && f.name.strip_prefix(upload_files::DIR).is_some_and(|r| r.starts_with('/'))
            })
            .filter_map(|(f, _)| Some(f.name.rsplit_once('/')?.0))
            .collect();
        for (f, &settled) in files.iter().zip(&settled) {
            let in_upload = f.name.rsplit_once('/').is_some_and(|(dir, file)| {
                live.contains(dir)
                    || (upload_dirs.contains(dir) && upload_files::ALL.iter().any(|m| file.starts_with(m)))
            });
            if !settled || claimed.contains(&f.name) || in_upload {
                continue;
            }
            match f.delete(ufs, &mount).await {
                Ok(()) => deleted += 1,
                Err(e) => {
                    tracing::warn!(file = f.name, mount = mount.uri, "cannot delete a dead write's staged file: {e}")
                }
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "deleted staged files of writes that died");
    }
    Ok(deleted)
}

/// A file under `%strata/` of a mount, named relative to it.
struct Staged {
    name: String,
    modified: DateTime<Utc>,
    size: u64,
    local: Option<PathBuf>,
}

impl Staged {
    async fn delete(&self, ufs: &UfsRegistry, mount: &Mount) -> Result<()> {
        if let Some(p) = &self.local {
            return match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::internal(e.to_string())),
                _ => Ok(()),
            };
        }
        match ufs.open(mount)?.delete(&staging_path(&self.name)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::internal(e.to_string())),
        }
    }
}

/// The staged files of a mount. A local folder is walked itself: the object store's listing
/// hides the `name#N` files of writes cut off mid-way, which must go too.
async fn staged_files(ufs: &UfsRegistry, mount: &Mount) -> Result<Vec<Staged>> {
    if let Some(root) = strata_common::ufs::local_folder(mount) {
        let dir = root.join(STAGING_DIR);
        return tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&dir, &dir, &mut out);
            out
        })
        .await
        .map_err(|e| Error::internal(e.to_string()));
    }
    let dir = Path::parse(STAGING_DIR).map_err(|e| Error::internal(format!("staging folder: {e}")))?;
    let files: Vec<_> = ufs
        .open(mount)?
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| Error::internal(format!("cannot list the staged files of {}: {e}", mount.uri)))?;
    Ok(files
        .into_iter()
        .map(|f| Staged {
            name: f.location.as_ref().strip_prefix(STAGING_DIR).unwrap_or_default().trim_start_matches('/').into(),
            modified: f.last_modified,
            size: f.size,
            local: None,
        })
        .collect())
}

fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<Staged>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let (path, Ok(meta)) = (e.path(), e.metadata()) else { continue };
        if meta.is_dir() {
            walk(base, &path, out);
        } else if let (Ok(rel), Ok(modified)) = (path.strip_prefix(base), meta.modified()) {
            let name = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
            out.push(Staged { name, modified: modified.into(), size: meta.len(), local: Some(path) });
        }
    }
}
