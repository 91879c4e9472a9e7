//! A whole Strata in one test: a real master on the memory store over a temp-folder root
//! under store, a real in-process worker and a gateway, whose axum router is driven without
//! sockets (`tower::ServiceExt::oneshot`) with requests signed by aws-sigv4.

#![allow(dead_code)]

pub mod faults;
pub mod sign;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use strata_common::api::{MasterApi, WorkerApi};
use strata_common::ops::Readiness;
use strata_common::proto::WorkerInfo;
use strata_gateway::{Gateway, GatewayOptions, IN_PROCESS, LocalWorker};
use strata_master::{Master, MasterOptions, RootCredentials};
use strata_worker::{EvictionPolicy, Medium, PageStore, TierSpec, Worker};
use tower::ServiceExt;

pub use sign::Payload;

pub const AK: &str = "AKTESTGATEWAY";
pub const SK: &str = "sk-test-gateway-secret";
/// Small pages and blocks, so that a few KiB span several of each.
pub const PAGE: u64 = 4096;
pub const BLOCK: u64 = 16 * 1024;
pub const MIB: usize = 1 << 20;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub master: Arc<Master>,
    pub worker: Worker,
    pub router: axum::Router,
}

/// Replaces a real part by a wrapper around it (fault injection).
pub type WrapMaster = Box<dyn FnOnce(Arc<dyn MasterApi>) -> Arc<dyn MasterApi>>;
pub type WrapWorker = Box<dyn FnOnce(Arc<dyn WorkerApi>) -> Arc<dyn WorkerApi>>;

impl Env {
    pub async fn new() -> Env {
        Env::with(Box::new(|m| m), Box::new(|w| w)).await
    }

    /// The gateway talks to `wrap_master(master)` and `wrap_worker(worker)`.
    pub async fn with(wrap_master: WrapMaster, wrap_worker: WrapWorker) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let master = Arc::new(new_master(dir.path()).await);
        let cache = PageStore::open(
            PAGE,
            vec![TierSpec { medium: Medium::Mem, dirs: vec![], quota: 64 << 20 }],
            EvictionPolicy::Lru,
        )
        .unwrap();
        let worker = Worker::new(master.clone() as Arc<dyn MasterApi>, cache, &dir.path().join("journal")).unwrap();
        master
            .register_worker(WorkerInfo { address: IN_PROCESS.into(), capacity_bytes: 64 << 20, ..Default::default() })
            .await
            .unwrap();
        let gw = Gateway::new(
            wrap_master(master.clone() as Arc<dyn MasterApi>),
            Some(LocalWorker {
                address: IN_PROCESS.into(),
                api: wrap_worker(Arc::new(worker.clone()) as Arc<dyn WorkerApi>),
            }),
            "cluster-secret".into(),
            GatewayOptions {
                domain: None,
                region: "us-east-1".into(),
                block_size: BLOCK,
                limits: Default::default(),
                access_log: None,
            },
        );
        let ready = Readiness::default();
        ready.set(true);
        Env { dir, master, worker, router: strata_gateway::router(gw, ready) }
    }

    /// A fresh env with bucket `b` in it.
    pub async fn bucket() -> Env {
        let env = Env::new().await;
        env.ok(env.req("PUT", "/bkt")).await;
        env
    }

    /// Drops the worker's cached pages of an object; returns the bytes freed.
    pub async fn drop_cache(&self, bucket: &str, key: &str) -> u64 {
        let meta = self.master.lookup(bucket, key).await.unwrap();
        self.worker.free(vec![meta.version]).await.unwrap()
    }

    /// The root under store's folder.
    pub fn ufs(&self) -> PathBuf {
        self.dir.path().join("ufs")
    }

    pub fn req(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            env: self,
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
            payload: Payload::Signed,
            creds: (AK.to_string(), SK.to_string()),
            stream: None,
            late: 0,
            tampered: Vec::new(),
            unframed: false,
        }
    }

    /// Sends and asserts a 2xx answer.
    pub async fn ok(&self, r: Req<'_>) -> Resp {
        let (m, p) = (r.method.clone(), r.path.clone());
        let resp = r.send().await;
        assert!(resp.status.is_success(), "{m} {p}: {} {}", resp.status, resp.text());
        resp
    }

    pub async fn put(&self, path: &str, data: impl Into<Bytes>) -> Resp {
        self.ok(self.req("PUT", path).body(data)).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req("GET", path).send().await
    }
}

async fn new_master(dir: &Path) -> Master {
    let store = strata_master::store::open("memory://").await.unwrap();
    std::fs::create_dir_all(dir.join("ufs")).unwrap();
    Master::new(
        store,
        MasterOptions {
            root_ufs: format!("file://{}", dir.join("ufs").display()),
            credentials: RootCredentials::new(AK.into(), SK.into()),
            worker_timeout: Duration::from_secs(3600),
            address: IN_PROCESS.into(),
            elected: false,
            block_size: BLOCK,
            listing_sync_wait: Duration::from_secs(20),
        },
    )
    .unwrap()
}

pub struct Req<'a> {
    env: &'a Env,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    payload: Payload,
    creds: (String, String),
    /// A body sent as this stream instead of `body` (signed as UNSIGNED-PAYLOAD).
    stream: Option<Body>,
    /// Seconds the signer's clock is behind.
    late: u64,
    /// Headers set after signing (a request changed on its way).
    tampered: Vec<(String, String)>,
    /// Sent with neither Content-Length nor Transfer-Encoding.
    unframed: bool,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
    pub fn body(mut self, data: impl Into<Bytes>) -> Self {
        self.body = data.into();
        self
    }
    pub fn payload(mut self, p: Payload) -> Self {
        self.payload = p;
        self
    }
    pub fn creds(mut self, ak: &str, sk: &str) -> Self {
        self.creds = (ak.into(), sk.into());
        self
    }
    /// Sets a header after the request is signed.
    pub fn tamper(mut self, name: &str, value: &str) -> Self {
        self.tampered.push((name.to_string(), value.to_string()));
        self
    }
    /// Signs as a client whose clock is `secs` behind.
    pub fn late(mut self, secs: u64) -> Self {
        self.late = secs;
        self
    }
    /// Sent with neither Content-Length nor Transfer-Encoding.
    pub fn unframed(mut self) -> Self {
        self.unframed = true;
        self
    }
    /// The body as a stream (e.g. one that fails half-way), sent unsigned.
    pub fn stream(mut self, body: Body) -> Self {
        self.stream = Some(body);
        self.payload = Payload::Unsigned;
        self
    }

    pub async fn send(self) -> Resp {
        let mut headers = self.headers;
        headers.push(("host".into(), "localhost".into()));
        let url = format!("http://localhost{}", self.path);
        let (ak, sk) = &self.creds;
        let when = std::time::SystemTime::now() - Duration::from_secs(self.late);
        let (mut signed, body) =
            sign::sign(self.method.as_str(), &url, &headers, self.body, &self.payload, (ak, sk), when);
        for (k, v) in &self.tampered {
            signed.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        let mut req = http::Request::builder().method(self.method.clone()).uri(&self.path);
        for (k, v) in signed.iter() {
            req = req.header(k, v);
        }
        // As an HTTP client frames a body: with its length, or chunked when streamed.
        let framed = signed.contains_key("content-length") || signed.contains_key("transfer-encoding");
        let body = match self.stream {
            Some(s) => {
                if !framed {
                    req = req.header("transfer-encoding", "chunked");
                }
                s
            }
            None => {
                if !framed && !self.unframed && (!body.is_empty() || self.method == Method::PUT) {
                    req = req.header("content-length", body.len().to_string());
                }
                Body::from(body)
            }
        };
        let resp = self.env.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map(|c| c.to_bytes());
        let body_failed = body.is_err();
        Resp { status: parts.status, headers: parts.headers, body: body.unwrap_or_default(), body_failed }
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body stream ended in an error instead of its end.
    pub body_failed: bool,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn etag(&self) -> String {
        self.header("etag").unwrap_or("").trim_matches('"').to_string()
    }
    /// The S3 error code of an error body.
    pub fn code(&self) -> String {
        tag(&self.text(), "Code").unwrap_or_default()
    }
    /// Asserts the status and the S3 error code of the XML body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status.as_u16(), self.code().as_str()), (status, code), "body: {}", self.text());
    }
}

/// The text of the first `<name>` element.
pub fn tag(xml: &str, name: &str) -> Option<String> {
    tags(xml, name).into_iter().next()
}

/// The texts of every `<name>` element, in order.
pub fn tags(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

/// An ETag from an XML body, without its quotes.
pub fn unquote(etag: &str) -> String {
    etag.replace("&quot;", "\"").trim_matches('"').to_string()
}

/// Every file under `dir`, as paths relative to it, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `n` bytes of a pattern that differs at every offset of a page.
pub fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

pub fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(b))
}

pub fn md5_b64(b: &[u8]) -> String {
    use base64::Engine;
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(b))
}

pub fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
