//! Starts Strata in-process on free ports and talks S3 to it, signed with aws-sigv4 (the
//! signer of AWS's own SDKs), over real sockets.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use strata_common::config::Config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct S3 {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub http: reqwest::Client,
}

pub enum Body {
    /// Signed with its SHA-256.
    Signed(Bytes),
    /// `x-amz-content-sha256` set to this value; the bytes sent as they are.
    Raw(&'static str, Bytes),
}

impl S3 {
    pub fn new(endpoint: String, access_key: String, secret_key: String) -> S3 {
        S3 { endpoint, access_key, secret_key, http: reqwest::Client::new() }
    }

    /// Signs and sends `method path_and_query` with `headers` (names lower-case).
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> reqwest::Response {
        let url = format!("{}{}", self.endpoint, path);
        let identity = Credentials::new(&self.access_key, &self.secret_key, None, None, "test").into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let (bytes, signable_body) = match &body {
            Body::Signed(b) => (b.clone(), SignableBody::Bytes(b)),
            Body::Raw(hash, b) => (b.clone(), SignableBody::Precomputed(hash.to_string())),
        };
        let signable = SignableRequest::new(method, &url, headers.iter().copied(), signable_body).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut req = http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut req);
        let mut rb = self.http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), &url);
        for (k, v) in req.headers() {
            rb = rb.header(k, v);
        }
        rb.body(bytes).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, data: &[u8]) -> reqwest::Response {
        self.send("PUT", path, &[], Body::Signed(Bytes::copy_from_slice(data))).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send("GET", path, &[], Body::Signed(Bytes::new())).await
    }
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

pub fn config(dir: &Path) -> Config {
    Config { data_dir: dir.to_path_buf(), heartbeat_interval_ms: 200, ..Config::default() }
}

pub struct Running {
    pub s3: S3,
    pub shutdown: CancellationToken,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(self) {
        // Pooled client connections keep server-side state alive; close them first.
        drop(self.s3);
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
        }
    }
}

pub async fn start_local(dir: &Path) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let token = shutdown.clone();
    let cfg = config(dir);
    let task = tokio::spawn(async move {
        strata::run_local(cfg, listener, token, move |info| {
            let _ = tx.send((info.endpoint, info.access_key.clone(), info.secret_key.clone()));
        })
        .await
        .unwrap();
    });
    let (addr, ak, sk) = rx.await.unwrap();
    Running { s3: S3::new(format!("http://{addr}"), ak, sk), shutdown, tasks: vec![task] }
}

async fn wait_ready(url: &str) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

/// Master, worker and gateway as in a cluster: gRPC and HTTP between them, in one test process.
pub async fn start_cluster(dir: &Path) -> (Running, String) {
    let shutdown = CancellationToken::new();
    let (m, w, g) = (free_addr(), free_addr(), free_addr());
    let mut base = config(dir);
    base.cluster_secret = Some("test-secret".into());
    base.root_access_key = Some("AKTEST".into());
    base.root_secret_key = Some("SKTEST".into());
    base.masters = vec![format!("http://{m}")];
    let mut tasks = Vec::new();
    for (role, addr, sub) in [("master", m, "m"), ("worker", w, "w"), ("gateway", g, "g")] {
        let mut cfg = base.clone();
        cfg.listen = Some(addr.to_string());
        cfg.data_dir = dir.join(sub);
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let r = match role {
                "master" => strata::run_master(cfg, None, token).await,
                "worker" => strata::run_worker(cfg, token).await,
                _ => strata::run_gateway(cfg, token).await,
            };
            r.unwrap();
        }));
        wait_ready(&format!("http://{addr}")).await;
    }
    let s3 = S3::new(format!("http://{g}"), "AKTEST".into(), "SKTEST".into());
    (Running { s3, shutdown, tasks }, format!("http://{w}"))
}
