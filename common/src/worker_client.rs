//! A worker's data server over HTTP, as the gateway sees it. The request travels as
//! percent-encoded JSON in one header so that the body stays free for the bytes.

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
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
        let resp = rb.send().await.map_err(|e| Error::unavailable(format!("worker {} unreachable: {e}", self.base)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        Err(match serde_json::from_slice::<WireError>(&body) {
            Ok(w) => w.into(),
            Err(_) => Error::internal(format!("worker {} answered {status}", self.base)),
        })
    }

    async fn json<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> Result<T> {
        let resp = self.send(rb).await?;
        resp.json().await.map_err(|e| Error::unavailable(format!("bad answer from worker {}: {e}", self.base)))
    }
}

#[async_trait]
impl WorkerApi for HttpWorker {
    async fn read(&self, req: ReadRequest) -> Result<ByteStream> {
        let rb = self.request(reqwest::Method::GET, "/v1/read").header(REQUEST_HEADER, encode_request(&req)?);
        let resp = self.send(rb).await?;
        let base = self.base.clone();
        Ok(resp
            .bytes_stream()
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
