//! Per-request accounting, settled when the answer's body ends (sent, failed or dropped): the
//! in-flight gauge, requests and bytes per bucket (labels capped), and the JSON access log,
//! one line per request.

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use strata_common::ops::bucket_label;
use strata_common::read_source;

/// Where the access log goes: a file (appended to) or stdout.
pub struct AccessLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl AccessLog {
    /// `target`: a file path, or `-` for stdout.
    pub fn open(target: &str) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(target)?)
        };
        Ok(AccessLog { out: Mutex::new(out) })
    }

    /// Writes one line in one call, so that lines of concurrent requests never interleave.
    fn write_line(&self, mut line: String) {
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|_| out.flush()) {
            tracing::warn!("cannot write the access log: {e}");
        }
    }
}

/// What one request did; counted and logged when dropped (with the answer's body).
pub(crate) struct Record {
    pub time: chrono::DateTime<chrono::Utc>,
    pub started: Instant,
    pub request_id: String,
    pub access_key: Option<String>,
    pub op: &'static str,
    pub bucket: String,
    pub key: String,
    pub status: u16,
    pub bytes_in: Arc<AtomicU64>,
    pub bytes_out: u64,
    pub source: Arc<AtomicU8>,
    pub log: Option<Arc<AccessLog>>,
}

impl Record {
    pub fn new(request_id: &str, log: Option<Arc<AccessLog>>) -> Record {
        metrics::gauge!("strata_gateway_requests_in_flight").increment(1.0);
        Record {
            time: chrono::Utc::now(),
            started: Instant::now(),
            request_id: request_id.to_string(),
            access_key: None,
            op: "Unknown",
            bucket: String::new(),
            key: String::new(),
            status: 0,
            bytes_in: Default::default(),
            bytes_out: 0,
            source: Default::default(),
            log,
        }
    }

    /// The request's body, its bytes counted.
    pub fn count_in(&self, body: Body) -> Body {
        Body::new(CountIn { inner: body, n: self.bytes_in.clone() })
    }

    /// The answer's body, its bytes counted; the record is settled when that body ends.
    pub fn count_out(self, resp: axum::response::Response) -> axum::response::Response {
        resp.map(|inner| Body::new(CountOut { inner, record: self }))
    }

    fn line(&self) -> String {
        serde_json::json!({
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "request_id": self.request_id,
            "access_key": self.access_key,
            "op": self.op,
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status,
            "bytes_in": self.bytes_in.load(Ordering::Relaxed),
            "bytes_out": self.bytes_out,
            "ms": self.started.elapsed().as_secs_f64() * 1000.0,
            "source": read_source::label(self.source.load(Ordering::Relaxed)),
        })
        .to_string()
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        metrics::gauge!("strata_gateway_requests_in_flight").decrement(1.0);
        if !self.bucket.is_empty() {
            let bucket = bucket_label(&self.bucket, self.status < 400);
            metrics::counter!("strata_gateway_bucket_requests_total", "bucket" => bucket.clone()).increment(1);
            metrics::counter!("strata_gateway_bucket_received_bytes_total", "bucket" => bucket.clone())
                .increment(self.bytes_in.load(Ordering::Relaxed));
            metrics::counter!("strata_gateway_bucket_sent_bytes_total", "bucket" => bucket).increment(self.bytes_out);
        }
        if let Some(log) = &self.log {
            log.write_line(self.line());
        }
    }
}

struct CountIn {
    inner: Body,
    n: Arc<AtomicU64>,
}

impl http_body::Body for CountIn {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r
            && let Some(d) = f.data_ref()
        {
            self.n.fetch_add(d.len() as u64, Ordering::Relaxed);
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

struct CountOut {
    inner: Body,
    record: Record,
}

impl http_body::Body for CountOut {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        // Reads opened while the body streams note where their bytes came from.
        let cell = this.record.source.clone();
        let r = read_source::sync_scope(cell, || Pin::new(&mut this.inner).poll_frame(cx));
        match &r {
            Poll::Ready(Some(Ok(f))) => this.record.bytes_out += f.data_ref().map_or(0, |d| d.len() as u64),
            Poll::Ready(Some(Err(e))) => {
                // The status is sent already: the client sees only a connection cut short.
                let rec = &this.record;
                let what = format!(
                    "{} {}/{} broke off after {} bytes: {e} (request id {})",
                    rec.op, rec.bucket, rec.key, rec.bytes_out, rec.request_id
                );
                tracing::warn!("{what}");
                strata_common::recent_errors::record("request", what);
            }
            _ => {}
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_record_is_logged_with_its_bytes_once_the_answer_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = Arc::new(AccessLog::open(path.to_str().unwrap()).unwrap());
        let mut rec = Record::new("req1", Some(log));
        let body = rec.count_in(Body::from("12345"));
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 5);
        (rec.op, rec.bucket, rec.key, rec.status) = ("GetObject", "b".into(), "k/1".into(), 200);
        rec.access_key = Some("AK".into());
        read_source::sync_scope(rec.source.clone(), || read_source::note(read_source::CACHE_HIT));
        let resp = rec.count_out(axum::response::Response::new(Body::from("abc")));
        assert!(std::fs::read_to_string(&path).unwrap().is_empty(), "logged before the body was sent");
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "abc");
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["request_id"], "req1");
        assert_eq!(v["access_key"], "AK");
        assert_eq!(v["op"], "GetObject");
        assert_eq!((v["bucket"].as_str(), v["key"].as_str()), (Some("b"), Some("k/1")));
        assert_eq!(
            (v["status"].as_u64(), v["bytes_in"].as_u64(), v["bytes_out"].as_u64()),
            (Some(200), Some(5), Some(3))
        );
        assert_eq!(v["source"], "cache");
        assert!(v["ms"].as_f64().is_some() && v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
