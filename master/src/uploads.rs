//! Multipart uploads. Parts are staged as objects in the root under store under
//! `%strata/uploads/<upload id>/`, or (local-folder buckets) written in place into one file of
//! the upload in the bucket's mount (see the worker's `in_place`); a completed upload is
//! composed (or that file linked) by a worker before `complete_upload` commits it. Until then
//! nothing of it is visible as an object.
//!
//! The completing transaction also leaves a record of what the completion answered, kept for
//! [`COMPLETIONS_KEPT`]: a client whose answer was lost retries the complete, and S3 answers a
//! retry of a completed upload with the same 200 and ETag (even if the key was overwritten
//! since), not NoSuchUpload.

use std::sync::Arc;

use object_store::ObjectStoreExt;
use strata_common::kv::{KvStore, transact};
use strata_common::proto::*;
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, ErrorKind, Result, ids, ufs};

use crate::buckets::Buckets;
use crate::objects::check_write_conditions;
use crate::publish::{Committed, Publisher, intend};
use crate::schema::{Schema, no_such_upload};

/// How long a completion is remembered for its retries (less if uploads expire sooner).
pub const COMPLETIONS_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Completion records read per transaction when forgetting old ones.
const FORGET_BATCH: usize = 500;

/// What a retry of the completion that commits `meta` for `r` must answer.
fn completion(r: &UploadRef, meta: &ObjectMeta) -> CompletedUpload {
    CompletedUpload {
        bucket: r.bucket.clone(),
        key: r.key.clone(),
        upload_id: r.upload_id.clone(),
        etag: meta.etag.clone(),
        version: meta.version,
        checksums: meta.checksums.clone(),
        parts: meta
            .parts
            .iter()
            .map(|p| PartInfo { number: p.number, etag: p.etag.clone(), ..Default::default() })
            .collect(),
        completed_ms: ids::now_ms(),
    }
}

pub(crate) struct Uploads {
    store: Arc<dyn KvStore>,
    ufs: Arc<UfsRegistry>,
    buckets: Arc<Buckets>,
    publisher: Arc<Publisher>,
}

impl Uploads {
    pub(crate) fn new(
        store: Arc<dyn KvStore>,
        ufs: Arc<UfsRegistry>,
        buckets: Arc<Buckets>,
        publisher: Arc<Publisher>,
    ) -> Uploads {
        Uploads { store, ufs, buckets, publisher }
    }

    pub(crate) async fn create(&self, mut upload: Upload) -> Result<Upload> {
        upload.upload_id = ids::upload_id();
        upload.initiated_ms = ids::now_ms();
        let u = upload.clone();
        transact(self.store.as_ref(), |t| {
            let u = u.clone();
            Box::pin(async move {
                t.writable_bucket(&u.bucket).await?;
                t.put_upload(&u);
                Ok(())
            })
        })
        .await?;
        Ok(upload)
    }

    pub(crate) async fn get(&self, r: UploadRef) -> Result<UploadState> {
        transact(self.store.as_ref(), |t| {
            let r = r.clone();
            Box::pin(async move {
                let upload = t.upload(&r).await?;
                let parts = t.parts(&r).await?;
                Ok(UploadState { upload: Some(upload), parts })
            })
        })
        .await
    }

    pub(crate) async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        let r = req.upload.clone().ok_or_else(|| Error::invalid("part without upload"))?;
        let part = req.part.clone().ok_or_else(|| Error::invalid("part without metadata"))?;
        let replaced = transact(self.store.as_ref(), |t| {
            let (r, part) = (r.clone(), part.clone());
            Box::pin(async move {
                t.upload(&r).await?;
                t.replace_part(&r, &part).await
            })
        });
        let replaced = match replaced.await {
            Ok(old) => old,
            Err(e) => {
                // The upload is gone (aborted, completed): its staged bytes must not linger.
                self.delete_staged(std::slice::from_ref(&part)).await;
                if part.in_place {
                    self.drop_upload_dir(&r).await;
                }
                return Err(e);
            }
        };
        if let Some(old) = &replaced
            && old.staging_path != part.staging_path
            && !old.in_place
        {
            self.delete_staged(std::slice::from_ref(old)).await;
        }
        Ok(CommitPartResponse { replaced })
    }

    pub(crate) async fn complete(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        let r = req.upload.clone().ok_or_else(|| Error::invalid("complete without upload"))?;
        let meta = req.meta.clone().ok_or_else(|| Error::invalid("complete without object metadata"))?;
        let commit = transact(self.store.as_ref(), |t| {
            let (r, meta, req) = (r.clone(), meta.clone(), req.clone());
            Box::pin(async move {
                t.upload(&r).await?;
                let bucket = t.writable_bucket(&r.bucket).await?;
                let parts = t.parts(&r).await?;
                // The parts composed must still be the parts of the upload (no re-upload since).
                for used in &meta.parts {
                    let same =
                        parts.iter().any(|p| p.number == used.number && p.etag == used.etag && p.size == used.size);
                    if !same {
                        return Err(Error::new(
                            ErrorKind::InvalidPart,
                            format!("part {} changed while the upload was being completed", used.number),
                        ));
                    }
                }
                let current = t.object(&r.bucket, &r.key).await?;
                check_write_conditions(current.as_ref(), &req.if_match, (req.if_none_match_any, &req.if_none_match))?;
                t.replace_object(&r.bucket, current.as_ref(), &meta).await?;
                t.remove_upload(&r);
                t.put_completed_upload(&completion(&r, &meta));
                let mount = (!req.staging_key.is_empty()).then_some(bucket.mount).flatten();
                if mount.is_some() {
                    intend(t, &r.bucket, &r.key, &req.staging_key, meta.version);
                }
                Ok(Committed { value: parts, mount, replaced: current, version: meta.version })
            })
        });
        let staged = match self.publisher.publish(&r.bucket, &r.key, &req.staging_key, commit).await {
            Ok(staged) => staged,
            Err(e) => {
                self.forget_failed_completion(&r, meta.version).await;
                return Err(e);
            }
        };
        self.delete_staged(&staged).await;
        self.drop_upload_dir(&r).await;
        Ok(CompleteUploadResponse { staged })
    }

    /// A completion whose commit was undone (its bytes could not be moved onto the key) must
    /// not answer a retry with success; one of an earlier complete (another version) stays.
    async fn forget_failed_completion(&self, r: &UploadRef, version: u64) {
        let forgot = transact(self.store.as_ref(), |t| {
            let r = r.clone();
            Box::pin(async move {
                if t.completed_upload(&r).await?.is_some_and(|c| c.version == version) {
                    t.remove_completed_upload(&r);
                }
                Ok(())
            })
        })
        .await;
        if let Err(e) = forgot {
            tracing::warn!(upload_id = %r.upload_id, "cannot forget the completion of a failed complete: {e}");
        }
    }

    /// What completing `r` answered, while remembered; else NoSuchUpload.
    pub(crate) async fn completed(&self, r: UploadRef) -> Result<CompletedUpload> {
        transact(self.store.as_ref(), |t| {
            let r = r.clone();
            Box::pin(async move {
                t.bucket(&r.bucket).await?;
                t.completed_upload(&r).await?.ok_or_else(no_such_upload)
            })
        })
        .await
    }

    /// Forgets the completions made more than `max_age` ago; returns how many.
    pub async fn forget_completions(&self, max_age: std::time::Duration) -> Result<usize> {
        let before = ids::now_ms() - max_age.as_millis() as i64;
        let (mut forgot, mut after) = (0, None);
        loop {
            let (n, last) = transact(self.store.as_ref(), |t| {
                let after = after.clone();
                Box::pin(async move { t.forget_completed_uploads(after.as_ref(), before, FORGET_BATCH).await })
            })
            .await?;
            forgot += n;
            match last {
                Some(l) => after = Some(l),
                None => break,
            }
        }
        if forgot > 0 {
            tracing::debug!(forgot, "forgot multipart completions older than {max_age:?}");
        }
        Ok(forgot)
    }

    pub(crate) async fn abort(&self, r: UploadRef) -> Result<AbortUploadResponse> {
        let staged = transact(self.store.as_ref(), |t| {
            let r = r.clone();
            Box::pin(async move {
                t.upload(&r).await?;
                let parts = t.parts(&r).await?;
                t.remove_upload(&r);
                Ok(parts)
            })
        })
        .await?;
        self.delete_staged(&staged).await;
        self.drop_upload_dir(&r).await;
        Ok(AbortUploadResponse { staged })
    }

    pub(crate) async fn list(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                t.bucket(&req.bucket).await?;
                t.list_uploads(&req).await
            })
        })
        .await
    }

    /// Deletes the upload's folder in its bucket's mount, when a local folder: the file of
    /// the parts written in place (an object made of it is a link of its own) and the marks
    /// of their places.
    async fn drop_upload_dir(&self, r: &UploadRef) {
        let Ok(mount) = self.buckets.mount_of(&r.bucket).await else { return };
        let Some(folder) = ufs::local_folder(&mount) else { return };
        if !r.upload_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') || r.upload_id.is_empty() {
            return;
        }
        let dir = folder.join(ufs::STAGING_DIR).join("uploads").join(&r.upload_id);
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(upload_id = %r.upload_id, "cannot delete the folder of an upload's parts: {e}");
        }
    }

    /// Deletes staged part files of their own (not those written in place); failures are
    /// logged, not returned (the upload's fate is already committed).
    async fn delete_staged(&self, parts: &[PartMeta]) {
        let store = match self.ufs.open(&self.buckets.root_mount()) {
            Ok(s) => s,
            Err(e) => return tracing::warn!("cannot open the root under store to delete staged parts: {e}"),
        };
        for p in parts.iter().filter(|p| !p.in_place) {
            let path = match ufs::staging_path(&p.staging_path) {
                Ok(p) => p,
                Err(_) => continue,
            };
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(path = %p.staging_path, "cannot delete a staged part: {e}"),
            }
        }
    }

    /// Aborts every multipart upload started more than `max_age` ago; returns how many.
    pub async fn abort_stale_uploads(&self, max_age: std::time::Duration) -> Result<usize> {
        let cutoff = ids::now_ms() - max_age.as_millis() as i64;
        let mut aborted = 0;
        for bucket in self.buckets.list().await? {
            let (mut key_marker, mut upload_id_marker) = (String::new(), String::new());
            loop {
                let page = self
                    .list(ListUploadsRequest {
                        bucket: bucket.name.clone(),
                        key_marker: key_marker.clone(),
                        upload_id_marker: upload_id_marker.clone(),
                        ..Default::default()
                    })
                    .await?;
                for u in page.uploads.iter().filter(|u| u.initiated_ms < cutoff) {
                    let r = UploadRef { bucket: u.bucket.clone(), key: u.key.clone(), upload_id: u.upload_id.clone() };
                    match self.abort(r).await {
                        Ok(_) => aborted += 1,
                        Err(e) if e.is(ErrorKind::NoSuchUpload) => {}
                        Err(e) => return Err(e),
                    }
                }
                match (page.truncated, page.uploads.last()) {
                    (true, Some(last)) => {
                        key_marker = last.key.clone();
                        upload_id_marker = last.upload_id.clone();
                    }
                    _ => break,
                }
            }
        }
        if aborted > 0 {
            tracing::info!(aborted, "aborted multipart uploads left unfinished for more than {max_age:?}");
        }
        Ok(aborted)
    }
}
