//! The benchmark's S3 requests: signed, over one pool of HTTP/1.1 connections.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::BenchArgs;
use super::sign::Signer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Get,
    Head,
    Put,
    List,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Head => "head",
            Op::Put => "put",
            Op::List => "list",
        }
    }
}

/// What SigV4 leaves unencoded in a path, '/' included.
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
/// The same in a query value ('/' encoded).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Bodies above this go out as a stream of this many bytes at a time.
const CHUNK: u64 = 1 << 20;

/// The one existing object of --key.
pub(super) struct Target {
    pub key: String,
    pub size: u64,
}

pub(super) struct Client {
    http: reqwest::Client,
    signer: Signer,
    base: String,
    pub size: u64,
    pub concurrency: u64,
    /// `size` bytes, or one CHUNK of a larger body.
    data: Bytes,
    pub target: Option<Target>,
}

impl Client {
    pub fn new(args: &BenchArgs) -> Result<Client> {
        let endpoint = args.endpoint.trim_end_matches('/');
        if !endpoint.starts_with("http://") {
            bail!("--endpoint must be an http:// URL (this client speaks no TLS): {endpoint}");
        }
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(args.concurrency)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let data: Vec<u8> = (0..args.size.min(CHUNK)).map(|i| (i * 131 % 251) as u8).collect();
        Ok(Client {
            http,
            signer: Signer::new(&args.access_key, &args.secret_key, &args.region),
            base: format!("{endpoint}/{}", utf8_percent_encode(&args.bucket, VALUE)),
            size: args.size,
            concurrency: args.concurrency as u64,
            data: Bytes::from(data),
            target: None,
        })
    }

    fn url(&self, key: &str, query: &str) -> String {
        let mut u = format!("{}/{}", self.base, utf8_percent_encode(key, PATH));
        if !query.is_empty() {
            u.push('?');
            u.push_str(query);
        }
        u
    }

    async fn send(&self, method: reqwest::Method, url: &str, body: Option<reqwest::Body>) -> Result<reqwest::Response> {
        self.send_range(method, url, body, None).await
    }

    /// [`Client::send`] asking for the bytes `range` (start, length).
    async fn send_range(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<reqwest::Body>,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::Response> {
        let headers = self.signer.headers(method.as_str(), url, SystemTime::now())?;
        let mut rb = self.http.request(method.clone(), url);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        if let Some((start, len)) = range {
            rb = rb.header(reqwest::header::RANGE, format!("bytes={start}-{}", start + len - 1));
        }
        if let Some(b) = body {
            rb = rb.header(reqwest::header::CONTENT_LENGTH, self.size).body(b);
        }
        let resp = rb.send().await.with_context(|| format!("{method} {url}"))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let code = between(&text, "<Code>", "</Code>").unwrap_or("");
        let message = xml_text(&text, "Message");
        bail!("{method} {url}: {status} {code} {message}")
    }

    fn body(&self) -> reqwest::Body {
        if self.size <= CHUNK {
            return reqwest::Body::from(self.data.clone());
        }
        let (data, size) = (self.data.clone(), self.size);
        let chunks = (0..size.div_ceil(CHUNK)).map(move |i| {
            let n = (size - i * CHUNK).min(CHUNK) as usize;
            Ok::<Bytes, std::io::Error>(data.slice(..n))
        });
        reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    }

    /// Creates the bucket unless it is there.
    pub async fn create_bucket(&self) -> Result<()> {
        let url = self.base.clone();
        let headers = self.signer.headers("PUT", &url, SystemTime::now())?;
        let mut rb = self.http.put(&url);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        if status.is_success() || status == reqwest::StatusCode::CONFLICT {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        bail!("cannot create the bucket ({url}): {status} {}", xml_text(&text, "Message"))
    }

    /// PUTs `key`; the bytes sent.
    pub async fn put(&self, key: &str) -> Result<u64> {
        self.send(reqwest::Method::PUT, &self.url(key, ""), Some(self.body())).await?;
        Ok(self.size)
    }

    /// GETs `key` to the end; the bytes received.
    pub async fn get(&self, key: &str) -> Result<u64> {
        let url = self.url(key, "");
        let n = drain(self.send(reqwest::Method::GET, &url, None).await?, &url).await?;
        let want = self.target.as_ref().map_or(self.size, |t| t.size);
        if n != want {
            bail!("GET {url}: {n} bytes instead of {want}");
        }
        Ok(n)
    }

    /// GETs `len` bytes of `key` from `start`; the bytes received.
    pub async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<u64> {
        let url = self.url(key, "");
        let resp = self.send_range(reqwest::Method::GET, &url, None, Some((start, len))).await?;
        if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            bail!("GET {url} (bytes {start}+{len}): {} instead of 206 Partial Content", resp.status());
        }
        let n = drain(resp, &url).await?;
        if n != len {
            bail!("GET {url} (bytes {start}+{len}): {n} bytes");
        }
        Ok(n)
    }

    /// The size of `key`, from a HEAD.
    pub async fn object_size(&self, key: &str) -> Result<u64> {
        let resp = self.send(reqwest::Method::HEAD, &self.url(key, ""), None).await?;
        resp.headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .with_context(|| format!("HEAD {key}: no Content-Length"))
    }

    pub async fn head(&self, key: &str) -> Result<()> {
        self.send(reqwest::Method::HEAD, &self.url(key, ""), None).await.map(|_| ())
    }

    pub async fn delete(&self, key: &str) -> Result<u64> {
        self.send(reqwest::Method::DELETE, &self.url(key, ""), None).await.map(|_| 0)
    }

    /// One ListObjectsV2 page of up to 1000 keys under the objects' prefix, continuing from
    /// `token` (None: from the start); the keys in it. `token` becomes the next page's.
    pub async fn list_page(&self, token: &mut Option<String>) -> Result<u64> {
        let prefix = format!("bench-{}/", self.size);
        let mut query = format!("list-type=2&max-keys=1000&prefix={}", utf8_percent_encode(&prefix, VALUE));
        if let Some(t) = token.as_deref() {
            query = format!("continuation-token={}&{query}", utf8_percent_encode(t, VALUE));
        }
        let url = format!("{}?{query}", self.base);
        let text = self.send(reqwest::Method::GET, &url, None).await?.text().await?;
        let keys = text.matches("<Key>").count() as u64;
        *token = match between(&text, "<IsTruncated>", "</IsTruncated>") {
            Some("true") => {
                let t = between(&text, "<NextContinuationToken>", "</NextContinuationToken>")
                    .with_context(|| format!("GET {url}: a truncated listing without NextContinuationToken"))?;
                Some(quick_xml::escape::unescape(t).map(|t| t.into_owned()).unwrap_or_else(|_| t.to_string()))
            }
            _ => None,
        };
        Ok(keys)
    }
}

/// The text of the first `<name>` element, unescaped (empty when there is none).
fn xml_text(text: &str, name: &str) -> String {
    let raw = between(text, &format!("<{name}>"), &format!("</{name}>")).unwrap_or("");
    quick_xml::escape::unescape(raw).map(|t| t.into_owned()).unwrap_or_else(|_| raw.to_string())
}

/// Reads a response's body to its end; the bytes received.
async fn drain(mut resp: reqwest::Response, url: &str) -> Result<u64> {
    let mut n = 0u64;
    while let Some(chunk) = resp.chunk().await.with_context(|| format!("GET {url}: body broke off"))? {
        n += chunk.len() as u64;
    }
    Ok(n)
}

/// The text between the first `open` and the next `close`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_finds_the_first_element() {
        let x = "<A><IsTruncated>true</IsTruncated><Key>a</Key><Key>b</Key></A>";
        assert_eq!(between(x, "<IsTruncated>", "</IsTruncated>"), Some("true"));
        assert_eq!(between(x, "<Key>", "</Key>"), Some("a"));
        assert_eq!(between(x, "<Code>", "</Code>"), None);
        assert_eq!(xml_text("<Message>name &quot;b&quot; &amp; more</Message>", "Message"), "name \"b\" & more");
    }
}
