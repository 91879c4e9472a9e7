//! Multipart uploads. Parts are staged as objects in the root under store under
//! `%strata/uploads/<upload id>/`; a completed upload is composed into the real key by a worker
//! before `complete_upload` commits it. Until then nothing of it is visible as an object.

use object_store::ObjectStoreExt;
use strata_common::kv::{Txn, transact};
use strata_common::proto::*;
use strata_common::{Error, ErrorKind, Result, codec, ids, keys, ufs};

use crate::listing::{self, Scan};
use crate::master::{Master, read_bucket, writable_bucket};
use crate::objects::{MAX_LIST_KEYS, check_write_conditions, read_object};
use crate::publish::Committed;

fn no_such_upload() -> Error {
    Error::new(
        ErrorKind::NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

async fn read_upload(t: &mut Txn, r: &UploadRef) -> Result<Upload> {
    read_bucket(t, &r.bucket).await?;
    match t.get(&keys::upload(&r.bucket, &r.key, &r.upload_id)).await? {
        Some(v) => codec::decode(&v),
        None => Err(no_such_upload()),
    }
}

async fn read_parts(t: &mut Txn, r: &UploadRef) -> Result<Vec<PartMeta>> {
    let (b, e) = keys::parts(&r.bucket, &r.upload_id);
    t.get_range(&b, &e, 0, false).await?.iter().map(|(_, v)| codec::decode(v)).collect()
}

fn clear_upload(t: &mut Txn, r: &UploadRef) {
    t.clear(&keys::upload(&r.bucket, &r.key, &r.upload_id));
    let (b, e) = keys::parts(&r.bucket, &r.upload_id);
    t.clear_range(&b, &e);
}

impl Master {
    pub(crate) async fn do_create_upload(&self, mut upload: Upload) -> Result<Upload> {
        upload.upload_id = ids::upload_id();
        upload.initiated_ms = ids::now_ms();
        let u = upload.clone();
        transact(self.store.as_ref(), |t| {
            let u = u.clone();
            Box::pin(async move {
                writable_bucket(t, &u.bucket).await?;
                t.set(&keys::upload(&u.bucket, &u.key, &u.upload_id), &codec::encode(&u));
                Ok(())
            })
        })
        .await?;
        Ok(upload)
    }

    pub(crate) async fn do_get_upload(&self, r: UploadRef) -> Result<UploadState> {
        transact(self.store.as_ref(), |t| {
            let r = r.clone();
            Box::pin(async move {
                let upload = read_upload(t, &r).await?;
                let parts = read_parts(t, &r).await?;
                Ok(UploadState { upload: Some(upload), parts })
            })
        })
        .await
    }

    pub(crate) async fn do_commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        let r = req.upload.clone().ok_or_else(|| Error::invalid("part without upload"))?;
        let part = req.part.clone().ok_or_else(|| Error::invalid("part without metadata"))?;
        let replaced = transact(self.store.as_ref(), |t| {
            let (r, part) = (r.clone(), part.clone());
            Box::pin(async move {
                read_upload(t, &r).await?;
                let k = keys::part(&r.bucket, &r.upload_id, part.number);
                let old = t.get(&k).await?.map(|v| codec::decode::<PartMeta>(&v)).transpose()?;
                t.set(&k, &codec::encode(&part));
                Ok(old)
            })
        });
        let replaced = match replaced.await {
            Ok(old) => old,
            Err(e) => {
                // The upload is gone (aborted, completed): its staged bytes must not linger.
                self.delete_staged(std::slice::from_ref(&part)).await;
                return Err(e);
            }
        };
        if let Some(old) = &replaced
            && old.staging_path != part.staging_path
        {
            self.delete_staged(std::slice::from_ref(old)).await;
        }
        Ok(CommitPartResponse { replaced })
    }

    pub(crate) async fn do_complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        let r = req.upload.clone().ok_or_else(|| Error::invalid("complete without upload"))?;
        let meta = req.meta.clone().ok_or_else(|| Error::invalid("complete without object metadata"))?;
        let commit = transact(self.store.as_ref(), |t| {
            let (r, meta, req) = (r.clone(), meta.clone(), req.clone());
            Box::pin(async move {
                read_upload(t, &r).await?;
                let bucket = writable_bucket(t, &r.bucket).await?;
                let parts = read_parts(t, &r).await?;
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
                let current = read_object(t, &r.bucket, &r.key).await?;
                check_write_conditions(current.as_ref(), &req.if_match, req.if_none_match_any)?;
                if let Some(c) = &current {
                    crate::mounts::carry_pin(t, c.version, meta.version).await?;
                }
                crate::journal::rejournal(t, &r.bucket, current.as_ref(), Some(&meta));
                t.set(&keys::object(&r.bucket, &r.key), &codec::encode(&meta));
                clear_upload(t, &r);
                let mount = (!req.staging_key.is_empty()).then_some(bucket.mount).flatten();
                Ok(Committed { value: parts, mount, replaced: current, version: meta.version })
            })
        });
        let staged = self.publish(&r.bucket, &r.key, &req.staging_key, commit).await?;
        self.delete_staged(&staged).await;
        Ok(CompleteUploadResponse { staged })
    }

    pub(crate) async fn do_abort_upload(&self, r: UploadRef) -> Result<AbortUploadResponse> {
        let staged = transact(self.store.as_ref(), |t| {
            let r = r.clone();
            Box::pin(async move {
                read_upload(t, &r).await?;
                let parts = read_parts(t, &r).await?;
                clear_upload(t, &r);
                Ok(parts)
            })
        })
        .await?;
        self.delete_staged(&staged).await;
        Ok(AbortUploadResponse { staged })
    }

    pub(crate) async fn do_list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                read_bucket(t, &req.bucket).await?;
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
                    t,
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
            })
        })
        .await
    }

    /// Deletes staged part files; failures are logged, not returned (the upload's fate is
    /// already committed).
    async fn delete_staged(&self, parts: &[PartMeta]) {
        let store = match self.ufs.open(&self.root_mount()) {
            Ok(s) => s,
            Err(e) => return tracing::warn!("cannot open the root under store to delete staged parts: {e}"),
        };
        for p in parts {
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
}

impl Master {
    /// Aborts every multipart upload started more than `max_age` ago; returns how many.
    pub async fn abort_stale_uploads(&self, max_age: std::time::Duration) -> Result<usize> {
        let cutoff = ids::now_ms() - max_age.as_millis() as i64;
        let mut aborted = 0;
        for bucket in self.do_list_buckets().await? {
            let (mut key_marker, mut upload_id_marker) = (String::new(), String::new());
            loop {
                let page = self
                    .do_list_uploads(ListUploadsRequest {
                        bucket: bucket.name.clone(),
                        key_marker: key_marker.clone(),
                        upload_id_marker: upload_id_marker.clone(),
                        ..Default::default()
                    })
                    .await?;
                for u in page.uploads.iter().filter(|u| u.initiated_ms < cutoff) {
                    let r = UploadRef { bucket: u.bucket.clone(), key: u.key.clone(), upload_id: u.upload_id.clone() };
                    match self.do_abort_upload(r).await {
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

/// Runs [`Master::abort_stale_uploads`] every `every` until `shutdown`.
pub async fn expire_uploads(
    master: std::sync::Arc<Master>,
    max_age: std::time::Duration,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = master.abort_stale_uploads(max_age).await {
            tracing::warn!("cleaning up stale multipart uploads failed (will retry): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_uploads_are_aborted_and_their_parts_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::master::test_master(dir.path());
        m.do_create_bucket("bkt").await.unwrap();
        let u =
            m.do_create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
        let staged = dir.path().join("%strata/uploads/x");
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("1-5"), b"part").unwrap();
        let r = UploadRef { bucket: "bkt".into(), key: "k".into(), upload_id: u.upload_id.clone() };
        let part = PartMeta { number: 1, staging_path: "uploads/x/1-5".into(), ..Default::default() };
        m.do_commit_part(CommitPartRequest { upload: Some(r.clone()), part: Some(part) }).await.unwrap();
        assert_eq!(m.abort_stale_uploads(std::time::Duration::from_secs(3600)).await.unwrap(), 0);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(m.abort_stale_uploads(std::time::Duration::from_millis(1)).await.unwrap(), 1);
        assert_eq!(m.do_get_upload(r).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
        assert!(!staged.join("1-5").exists());
    }
}
