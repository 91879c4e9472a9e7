//! A worker's data server over HTTP, as the gateway sees it. The request travels as
//! percent-encoded JSON in one header so that the body stays free for the bytes.

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::api::*;
use crate::error::{Error, ErrorKind, Result};
use crate::master_client::SECRET_HEADER;

pub const REQUEST_HEADER: &str = "x-strata-request";

#[derive(Serialize, Deserialize)]
pub struct WireError {
    pub kind: String,
    pub message: String,
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        Error::new(ErrorKind::parse(&w.kind).unwrap_or(ErrorKind::Internal), w.message)
    }
}

pub fn encode_request<T: Serialize>(req: &T) -> Result<String> {
    let json = serde_json::to_string(req).map_err(Error::internal)?;
    Ok(utf8_percent_encode(&json, NON_ALPHANUMERIC).to_string())
}

pub fn decode_request<T: DeserializeOwned>(header: &str) -> Result<T> {
    let json = percent_decode_str(header).decode_utf8().map_err(|_| Error::invalid("request header is not UTF-8"))?;
    serde_json::from_str(&json).map_err(|e| Error::invalid(format!("bad request header: {e}")))
}

pub struct HttpWorker {
    base: String,
    secret: String,
    http: reqwest::Client,
}

static INTERNAL_TLS: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();

type ReadClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// The most a read connection buffers from its socket. hyper grows a connection's buffer to
/// 400 KiB by default (reqwest has no knob), and a gateway holds two read connections a GET
/// open: 64 concurrent 1 GiB GETs took 55 MiB of the gateway's RSS in these buffers.
const READ_BUFFER: usize = 64 << 10;

/// The client every read of a process goes through (one connection pool).
fn read_client() -> &'static ReadClient {
    static CLIENT: std::sync::OnceLock<ReadClient> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(3)));
        http.enforce_http(false);
        // Without the cluster's TLS, no https:// worker is trusted.
        let tls = INTERNAL_TLS.get().cloned().unwrap_or_else(|| {
            rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth())
                .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
        });
        // The connector sets ALPN itself (HTTP/1.1 only: reads are long streams).
        let mut tls = tls;
        tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .http1_max_buf_size(READ_BUFFER)
            .build(https)
    })
}

impl HttpWorker {
    pub fn new(address: &str, secret: &str, http: reqwest::Client) -> HttpWorker {
        let base = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        HttpWorker { base: base.trim_end_matches('/').to_string(), secret: secret.to_string(), http }
    }

    /// The client every HttpWorker of a process shares (one connection pool); `https://`
    /// workers are called with the TLS set by [`HttpWorker::use_tls`].
    pub fn client() -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(tls) = INTERNAL_TLS.get() {
            b = b.use_preconfigured_tls(tls.clone());
        }
        b.build().unwrap_or_default()
    }

    /// This process's TLS to workers (the cluster CA, a client certificate): one per process,
    /// set at start before any client is made.
    pub fn use_tls(tls: rustls::ClientConfig) {
        let _ = INTERNAL_TLS.set(tls);
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path)).header(SECRET_HEADER, &self.secret)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = rb.send().await.map_err(|e| self.unreachable(e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        Err(self.failed(status, &resp.bytes().await.unwrap_or_default()))
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::unavailable(format!("worker {} unreachable: {e}", self.base))
    }

    /// The error a worker's answer of `status` carries in `body`.
    fn failed(&self, status: http::StatusCode, body: &[u8]) -> Error {
        match serde_json::from_slice::<WireError>(body) {
            Ok(w) => w.into(),
            Err(_) => Error::internal(format!("worker {} answered {status}", self.base)),
        }
    }

    async fn json<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> Result<T> {
        let resp = self.send(rb).await?;
        resp.json().await.map_err(|e| Error::unavailable(format!("bad answer from worker {}: {e}", self.base)))
    }
}

#[async_trait]
impl WorkerApi for HttpWorker {
    async fn read(&self, req: ReadRequest) -> Result<ByteStream> {
        let request = http::Request::get(format!("{}/v1/read", self.base))
            .header(SECRET_HEADER, &self.secret)
            .header(REQUEST_HEADER, encode_request(&req)?)
            .body(http_body_util::Empty::new())
            .map_err(|e| Error::internal(format!("bad read request for worker {}: {e}", self.base)))?;
        let (head, body) = read_client().request(request).await.map_err(|e| self.unreachable(e))?.into_parts();
        if !head.status.is_success() {
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(self.failed(head.status, &bytes));
        }
        let base = self.base.clone();
        Ok(http_body_util::BodyDataStream::new(body)
            .map_err(move |e| Error::unavailable(format!("read from worker {base} broke off: {e}")))
            .boxed())
    }

    async fn write(&self, req: WriteRequest, body: ByteStream) -> Result<WriteResult> {
        let rb = self
            .request(reqwest::Method::PUT, "/v1/write")
            .header(REQUEST_HEADER, encode_request(&req)?)
            .body(reqwest::Body::wrap_stream(body));
        self.json(rb).await
    }

    async fn compose(&self, req: ComposeRequest) -> Result<WriteResult> {
        self.json(self.request(reqwest::Method::POST, "/v1/compose").json(&req)).await
    }

    async fn delete(&self, locs: Vec<UfsLocation>) -> Result<()> {
        self.send(self.request(reqwest::Method::POST, "/v1/delete").json(&locs)).await.map(|_| ())
    }
    async fn load(&self, req: ReadRequest) -> Result<LoadResult> {
        self.json(self.request(reqwest::Method::POST, "/v1/load").json(&req)).await
    }
    async fn free(&self, versions: Vec<u64>) -> Result<u64> {
        self.json(self.request(reqwest::Method::POST, "/v1/free").json(&versions)).await
    }
}
