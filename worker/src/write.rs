//! The worker's writes: a body streamed into an under store (one put or a multipart upload),
//! all or nothing, or into this worker's journal, caching its pages on the way; and composes.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use strata_common::Result;
use strata_common::api::{ByteStream, ComposeRequest, UfsLocation, WriteRequest, WriteResult};

use crate::pagestore::PageId;
use crate::{Worker, ufs_error};

/// Bodies up to this size are one `put`; larger ones a multipart upload of parts this size.
const PART: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;

/// Writes one object into an under store, all or nothing, caching its pages on the way.
struct Sink {
    worker: Worker,
    store: Arc<dyn ObjectStore>,
    path: Path,
    what: String,
    buf: BytesMut,
    upload: Option<WriteMultipart>,
    size: u64,
    cache: Option<(u64, BytesMut, u64)>, // version, current page, its index
    /// A staged file: named for this write alone, so removed if the write fails.
    staged: bool,
}

impl Sink {
    async fn new(worker: &Worker, loc: &UfsLocation, version: u64, cache: bool, journal: bool) -> Result<Sink> {
        let (store, path) = if journal {
            worker.store_and_path_for_write(loc).await?; // a read-only mount refuses it all the same
            (worker.journal.clone(), Worker::journal_path(version))
        } else {
            worker.store_and_path_for_write(loc).await?
        };
        Ok(Sink {
            worker: worker.clone(),
            store,
            path,
            what: format!("writing {}/{}", loc.bucket, loc.key),
            buf: BytesMut::new(),
            upload: None,
            size: 0,
            cache: cache.then(|| (version, BytesMut::new(), 0)),
            staged: loc.staging && !journal,
        })
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.size += data.len() as u64;
        self.cache_pages(&data).await;
        if self.upload.is_none() && self.buf.len() + data.len() <= PART {
            self.buf.extend_from_slice(&data);
            return Ok(());
        }
        if self.upload.is_none() {
            let up = self.store.put_multipart(&self.path).await.map_err(|e| ufs_error(&self.what, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(up, PART);
            w.put(std::mem::take(&mut self.buf).freeze());
            self.upload = Some(w);
        }
        if let Some(w) = self.upload.as_mut() {
            w.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| ufs_error(&self.what, e))?;
            w.put(data);
        }
        Ok(())
    }

    async fn cache_pages(&mut self, mut data: &[u8]) {
        let ps = self.worker.cache.page_size() as usize;
        let Some((version, page, index)) = self.cache.as_mut() else { return };
        while !data.is_empty() {
            if page.is_empty() {
                page.reserve(ps); // not grown by doubling: one allocation, no copies
            }
            let n = (ps - page.len()).min(data.len());
            page.extend_from_slice(&data[..n]);
            data = &data[n..];
            if page.len() == ps {
                let id = PageId { version: *version, index: *index };
                *index += 1;
                let full = self.worker.cache.track(std::mem::take(page).freeze());
                self.worker.cache.put(id, full).await;
            }
        }
    }

    async fn finish(mut self) -> Result<WriteResult> {
        if let Some((version, page, index)) = self.cache.as_mut()
            && !page.is_empty()
        {
            let id = PageId { version: *version, index: *index };
            let last = self.worker.cache.track(std::mem::take(page).freeze());
            self.worker.cache.put(id, last).await;
        }
        let put = match self.upload.take() {
            Some(w) => w.finish().await,
            None => self.store.put(&self.path, PutPayload::from_bytes(std::mem::take(&mut self.buf).freeze())).await,
        };
        let ufs_etag = match put {
            Ok(put) => put.e_tag.unwrap_or_default(),
            Err(e) => match landed(self.staged, self.store.as_ref(), &self.path, self.size).await {
                Some(tag) => {
                    tracing::info!("{}: the upload's answer was lost, but the whole file is there: {e}", self.what);
                    tag
                }
                None => {
                    self.forget().await;
                    return Err(ufs_error(&self.what, e));
                }
            },
        };
        metrics::counter!("strata_worker_ufs_bytes_written_total").increment(self.size);
        Ok(WriteResult { size: self.size, ufs_etag, placed: None })
    }

    /// Writes every chunk of `body`; on the first error (of the body or of the write) the
    /// write is aborted, leaving nothing behind, and the error returned.
    async fn pump(&mut self, mut body: impl futures::Stream<Item = Result<Bytes>> + Unpin) -> Result<()> {
        while let Some(chunk) = body.next().await {
            let step = match chunk {
                Ok(data) => self.write(data).await,
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                self.abort().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn abort(&mut self) {
        if let Some(w) = self.upload.take()
            && let Err(e) = w.abort().await
        {
            tracing::warn!("{}: aborting the under store upload failed: {e}", self.what);
        }
        self.forget().await;
    }

    /// After a failed write: its cached pages, and a staged file that an upload whose answer was
    /// lost may have completed all the same.
    async fn forget(&mut self) {
        if let Some((version, ..)) = self.cache.take() {
            self.worker.cache.remove_version(version).await;
        }
        if self.staged {
            match self.store.delete(&self.path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!("{}: cannot delete the staged file of a failed write: {e}", self.what),
            }
        }
    }
}

/// After a failed end of a staged write: the file's ETag if the upload completed all the same
/// (a multipart complete whose answer was lost, then retried into NoSuchUpload). The staged
/// name is this write's alone, and an under store shows a file only whole.
async fn landed(staged: bool, store: &dyn ObjectStore, path: &Path, size: u64) -> Option<String> {
    if !staged {
        return None;
    }
    let meta = store.head(path).await.ok()?;
    (meta.size == size).then(|| meta.e_tag.unwrap_or_default())
}

impl Worker {
    pub(crate) async fn do_write(&self, req: WriteRequest, body: ByteStream) -> Result<WriteResult> {
        let body = match &req.in_place {
            Some(p) => match self.write_in_place(p, req.version, body).await? {
                Ok((name, offset, size)) => {
                    return Ok(WriteResult { size, ufs_etag: String::new(), placed: Some((name, offset)) });
                }
                Err(body) => body,
            },
            None => body,
        };
        let mut sink = Sink::new(self, &req.loc, req.version, req.cache, req.journal).await?;
        sink.pump(body).await?;
        sink.finish().await
    }

    pub(crate) async fn do_compose(&self, req: ComposeRequest) -> Result<WriteResult> {
        if req.local
            && let Some(size) = self.compose_local(&req).await?
        {
            let (store, path) = self.store_and_path(&req.target).await?;
            let tag = store.head(&path).await.map_err(|e| ufs_error("composing", e))?.e_tag;
            metrics::counter!("strata_worker_ufs_bytes_written_total").increment(size);
            return Ok(WriteResult { size, ufs_etag: tag.unwrap_or_default(), placed: None });
        }
        let mut sink = Sink::new(self, &req.target, req.version, req.cache, false).await?;
        for (i, src) in req.sources.iter().enumerate() {
            let what = format!("reading part {}", src.key);
            let range = req.ranges.get(i).map(|&(off, len)| object_store::GetRange::Bounded(off..off + len));
            let part = match self.store_and_path(src).await {
                Ok((store, path)) => store
                    .get_opts(&path, object_store::GetOptions { range, ..Default::default() })
                    .await
                    .map_err(|e| ufs_error(&what, e)),
                Err(e) => Err(e),
            };
            match part {
                Ok(part) => sink.pump(part.into_stream().map_err(|e| ufs_error(&what, e))).await?,
                Err(e) => {
                    sink.abort().await;
                    return Err(e);
                }
            }
        }
        sink.finish().await
    }

    pub(crate) async fn do_delete(&self, locs: Vec<UfsLocation>) -> Result<()> {
        for loc in locs {
            let (store, path) = self.store_and_path_for_write(&loc).await?;
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(ufs_error(&format!("deleting {}/{}", loc.bucket, loc.key), e)),
            }
        }
        Ok(())
    }
}

impl Worker {
    /// Writes an ASYNC_THROUGH object from the journal to the under store (staged, then moved
    /// onto its key by the master), then drops it from the journal.
    async fn persist(&self, e: &strata_common::proto::JournalEntry) -> Result<()> {
        let what = format!("persisting {}/{}", e.bucket, e.key);
        let staging = strata_common::ufs::staged_name(e.version);
        let src = self
            .journal
            .get(&Worker::journal_path(e.version))
            .await
            .map_err(|err| ufs_error(&format!("{what}: its journal file"), err))?
            .into_stream();
        let mut sink = match Sink::new(self, &UfsLocation::staging(&e.bucket, &staging), e.version, false, false).await
        {
            Ok(s) => s,
            Err(err) if err.is(strata_common::ErrorKind::NoSuchBucket) => {
                tracing::warn!(bucket = %e.bucket, key = %e.key, "its bucket is gone: dropped from the journal");
                let _ = self.journal.delete(&Worker::journal_path(e.version)).await;
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        sink.pump(src.map_err(|err| ufs_error(&what, err))).await?;
        let written = sink.finish().await?;
        let req = strata_common::proto::PersistedRequest {
            bucket: e.bucket.clone(),
            key: e.key.clone(),
            version: e.version,
            staging_key: staging,
            ufs_etag: written.ufs_etag,
        };
        match self.master.persisted(req).await {
            Ok(()) => {
                tracing::info!(bucket = %e.bucket, key = %e.key, version = e.version, "persisted to the under store")
            }
            Err(err)
                if err.is(strata_common::ErrorKind::PreconditionFailed)
                    || err.is(strata_common::ErrorKind::NoSuchBucket) =>
            {
                tracing::info!(bucket = %e.bucket, key = %e.key, "replaced or deleted before it was persisted: dropped");
            }
            Err(err) => return Err(err),
        }
        let _ = self.journal.delete(&Worker::journal_path(e.version)).await;
        Ok(())
    }

    /// Persists what the master lists as pending in this worker's journal, and deletes journal
    /// files nothing refers to any more (written long enough ago not to be a commit in flight).
    pub async fn journal_pass(&self, worker_id: u64) -> Result<()> {
        // The folder first: a file listed here and committed after the list below is young.
        let files: Vec<(u64, std::path::PathBuf, bool)> = std::fs::read_dir(&self.journal_dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|f| {
                        let version = f.file_name().to_str()?.parse::<u64>().ok()?;
                        let age = f.metadata().and_then(|m| m.modified()).ok()?.elapsed().unwrap_or_default();
                        Some((version, f.path(), age > JOURNAL_GRACE))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let entries = self.master.journal(worker_id).await?;
        for e in entries.iter().filter(|e| e.persist) {
            if let Err(err) = self.persist(e).await {
                tracing::warn!(bucket = %e.bucket, key = %e.key, "cannot persist yet (will retry): {err}");
            }
        }
        let listed: std::collections::HashSet<u64> = entries.iter().map(|e| e.version).collect();
        for (version, path, old) in files {
            if old && !listed.contains(&version) {
                let _ = std::fs::remove_file(path);
                self.cache.remove_version(version).await;
            }
        }
        Ok(())
    }
}

/// A journal file younger than this may belong to a write whose commit is still in flight.
const JOURNAL_GRACE: std::time::Duration = std::time::Duration::from_secs(600);
