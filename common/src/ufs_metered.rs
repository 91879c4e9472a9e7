//! Under-store metrics: every call to an under store counted and timed per mount and
//! operation (`strata_ufs_*`), the bytes read and written counted per mount. This is the egress
//! the cache saves. The mount label is the mount's URI without credentials or query, so it is
//! bounded by the number of mounts.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// The label a mount's metrics carry: scheme, host and path of its URI, nothing else.
pub fn mount_label(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) => format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or_default(), u.path().trim_end_matches('/')),
        Err(_) => "invalid".to_string(),
    }
}

fn error_kind(e: &object_store::Error) -> &'static str {
    match e {
        object_store::Error::NotFound { .. } => "not_found",
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => "precondition",
        object_store::Error::AlreadyExists { .. } => "already_exists",
        _ => "other",
    }
}

/// Counts one finished call of `op` on `mount`, and its error if it failed.
fn count<T>(mount: &str, op: &'static str, r: &Result<T>) {
    metrics::counter!("strata_ufs_requests_total", "mount" => mount.to_string(), "op" => op).increment(1);
    if let Err(e) = r {
        metrics::counter!("strata_ufs_errors_total", "mount" => mount.to_string(), "op" => op, "kind" => error_kind(e))
            .increment(1);
        error_event(mount, op, e);
    }
}

/// A failure that is not an answer (missing object, failed condition) is an error event.
fn error_event(mount: &str, op: &str, e: &object_store::Error) {
    if error_kind(e) == "other" {
        crate::recent_errors::record("under_store", format!("{mount}: {op} failed: {e}"));
    }
}

/// Counts and times one finished call of `op` on `mount`.
fn record<T>(mount: &str, op: &'static str, started: Instant, r: &Result<T>) {
    count(mount, op, r);
    metrics::histogram!("strata_ufs_request_seconds", "mount" => mount.to_string(), "op" => op)
        .record(started.elapsed().as_secs_f64());
}

fn read_bytes(mount: &str, n: u64) {
    metrics::counter!("strata_ufs_read_bytes_total", "mount" => mount.to_string()).increment(n);
}

fn written_bytes(mount: &str, n: u64) {
    metrics::counter!("strata_ufs_written_bytes_total", "mount" => mount.to_string()).increment(n);
}

/// An under store with its calls metered.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn ObjectStore>,
    mount: Arc<str>,
}

impl Metered {
    pub fn wrap(inner: Arc<dyn ObjectStore>, uri: &str) -> Arc<dyn ObjectStore> {
        Arc::new(Metered { inner, mount: mount_label(uri).into() })
    }
}

impl std::fmt::Display for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let (started, len) = (Instant::now(), payload.content_length() as u64);
        let r = self.inner.put_opts(location, payload, opts).await;
        record(&self.mount, "put", started, &r);
        if r.is_ok() {
            written_bytes(&self.mount, len);
        }
        r
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let started = Instant::now();
        let r = self.inner.put_multipart_opts(location, opts).await;
        record(&self.mount, "put_multipart", started, &r);
        r.map(|inner| Box::new(MeteredUpload { inner, mount: self.mount.clone() }) as Box<dyn MultipartUpload>)
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let (started, head) = (Instant::now(), options.head);
        let r = self.inner.get_opts(location, options).await;
        record(&self.mount, if head { "head" } else { "get" }, started, &r);
        if let (Ok(g), false) = (&r, head) {
            read_bytes(&self.mount, g.range.end.saturating_sub(g.range.start));
        }
        r
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let started = Instant::now();
        let r = self.inner.get_ranges(location, ranges).await;
        record(&self.mount, "get", started, &r);
        if let Ok(parts) = &r {
            read_bytes(&self.mount, parts.iter().map(|b| b.len() as u64).sum());
        }
        r
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let mount = self.mount.clone();
        self.inner.delete_stream(locations).inspect(move |r| count(&mount, "delete", r)).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        // Each listed entry is not a request: count the listing once, and its errors.
        count::<()>(&self.mount, "list", &Ok(()));
        let mount = self.mount.clone();
        self.inner
            .list(prefix)
            .inspect(move |r| {
                if let Err(e) = r {
                    metrics::counter!("strata_ufs_errors_total", "mount" => mount.to_string(), "op" => "list", "kind" => error_kind(e))
                        .increment(1);
                    error_event(&mount, "list", e);
                }
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let started = Instant::now();
        let r = self.inner.list_with_delimiter(prefix).await;
        record(&self.mount, "list", started, &r);
        r
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let started = Instant::now();
        let r = self.inner.copy_opts(from, to, options).await;
        record(&self.mount, "copy", started, &r);
        r
    }

    /// Forwarded: the default is a copy and a delete, where a folder renames in place.
    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let started = Instant::now();
        let r = self.inner.rename_opts(from, to, options).await;
        record(&self.mount, "rename", started, &r);
        r
    }
}

#[derive(Debug)]
struct MeteredUpload {
    inner: Box<dyn MultipartUpload>,
    mount: Arc<str>,
}

#[async_trait]
impl MultipartUpload for MeteredUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (mount, len) = (self.mount.clone(), data.content_length() as u64);
        let part = self.inner.put_part(data);
        Box::pin(async move {
            let started = Instant::now();
            let r = part.await;
            record(&mount, "put_part", started, &r);
            if r.is_ok() {
                written_bytes(&mount, len);
            }
            r
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let started = Instant::now();
        let r = self.inner.complete().await;
        record(&self.mount, "complete_multipart", started, &r);
        r
    }

    async fn abort(&mut self) -> Result<()> {
        let started = Instant::now();
        let r = self.inner.abort().await;
        record(&self.mount, "abort_multipart", started, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_labels_carry_no_credentials() {
        assert_eq!(mount_label("s3://key:secret@data/prefix/?region=x"), "s3://data/prefix");
        assert_eq!(mount_label("file:///srv/ufs/b1/"), "file:///srv/ufs/b1");
        assert_eq!(mount_label("not a uri"), "invalid");
    }
}
