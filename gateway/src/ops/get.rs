use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures::{StreamExt, TryStreamExt, stream};
use strata_common::api::{ByteStream, ReadRequest, UfsLocation};
use strata_common::proto::ObjectMeta;
use strata_common::{Error, ErrorKind};

use super::http_date;
use crate::Gateway;
use crate::error::{S3Error, S3Result};
use crate::http::Ctx;

/// Headers stored as sent with a write and returned on reads.
pub const STORED_HEADERS: [&str; 6] =
    ["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"];

/// Blocks whose streams are opened ahead of the one being sent.
const BLOCKS_AHEAD: usize = 2;

/// How a read uses the cache, from the `x-strata-read-type` header: `CACHE` (the default:
/// misses are cached), `CACHE_PROMOTE` (and hot pages move to the top tier), `NO_CACHE`.
#[derive(Debug, Clone, Copy)]
pub struct ReadMode {
    pub cache: bool,
    pub promote: bool,
}

impl ReadMode {
    pub const CACHE: ReadMode = ReadMode { cache: true, promote: false };

    pub fn from_header(v: Option<&str>) -> S3Result<ReadMode> {
        match v.map(|v| v.trim().to_ascii_uppercase()).as_deref() {
            None | Some("CACHE") => Ok(ReadMode::CACHE),
            Some("CACHE_PROMOTE") => Ok(ReadMode { cache: true, promote: true }),
            Some("NO_CACHE") => Ok(ReadMode { cache: false, promote: false }),
            Some(other) => Err(S3Error::invalid_argument(format!(
                "x-strata-read-type {other:?}: use CACHE, CACHE_PROMOTE or NO_CACHE"
            ))),
        }
    }
}

pub async fn get_object(ctx: &Ctx, with_body: bool) -> S3Result<Response> {
    let mode = ReadMode::from_header(ctx.header("x-strata-read-type"))?;
    let meta = ctx.gw.master.lookup(&ctx.bucket, &ctx.key).await?;
    if let Some(status) = preconditions(&ctx.headers, &meta, "")? {
        let mut r = super::empty(status);
        set(r.headers_mut(), "etag", &format!("\"{}\"", meta.etag));
        set(r.headers_mut(), "last-modified", &http_date(meta.last_modified_ms));
        return Ok(r);
    }
    let range = match (ctx.query.get("partNumber"), ctx.header("range")) {
        (Some(_), Some(_)) => {
            return Err(S3Error::invalid_request("Cannot specify both Range header and partNumber query parameter"));
        }
        (Some(n), None) => part_range(&meta, n)?,
        (None, Some(r)) => parse_range(r, meta.size)?,
        (None, None) => None,
    };
    let (start, len) = range.unwrap_or((0, meta.size));
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    object_headers(h, &meta);
    set(h, "content-length", &len.to_string());
    if range.is_some() {
        set(h, "content-range", &format!("bytes {}-{}/{}", start, start + len - 1, meta.size));
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    } else if ctx.header("x-amz-checksum-mode").is_some_and(|m| m.eq_ignore_ascii_case("ENABLED")) {
        for c in &meta.checksums {
            set(resp.headers_mut(), &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
            let kind = if c.value.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" };
            set(resp.headers_mut(), "x-amz-checksum-type", kind);
        }
    }
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = ctx.query.get(param) {
            set(resp.headers_mut(), header, v);
        }
    }
    if with_body && len > 0 {
        let body = read_range(&ctx.gw, &ctx.bucket, &meta, start, len, mode)
            .inspect_ok(|b| metrics::counter!("strata_gateway_bytes_out_total").increment(b.len() as u64))
            .map_err(|e| std::io::Error::other(e.to_string()));
        *resp.body_mut() = Body::from_stream(body);
    }
    Ok(resp)
}

pub fn set(h: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        h.insert(n, v);
    }
}

/// The headers of an object on GET and HEAD.
pub fn object_headers(h: &mut HeaderMap, meta: &ObjectMeta) {
    set(h, "etag", &format!("\"{}\"", meta.etag));
    set(h, "last-modified", &http_date(meta.last_modified_ms));
    set(h, "accept-ranges", "bytes");
    set(h, "content-type", "binary/octet-stream");
    for name in STORED_HEADERS {
        if let Some(v) = meta.headers.get(name) {
            set(h, name, v);
        }
    }
    for (k, v) in &meta.user_metadata {
        set(h, &format!("x-amz-meta-{k}"), v);
    }
    if !meta.tags.is_empty() {
        set(h, "x-amz-tagging-count", &meta.tags.len().to_string());
    }
    if !meta.parts.is_empty() {
        set(h, "x-amz-mp-parts-count", &meta.parts.len().to_string());
    }
}

fn etag_list_matches(condition: &str, etag: &str) -> bool {
    condition.split(',').map(|c| c.trim().trim_start_matches("W/").trim_matches('"')).any(|c| c == "*" || c == etag)
}

fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s).ok().map(|d| d.timestamp())
}

/// The range of part `n` of a multipart object; a plain object is its only part.
fn part_range(meta: &ObjectMeta, n: &str) -> S3Result<Option<(u64, u64)>> {
    let n: usize =
        n.parse().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
            S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
        })?;
    let not_there = || S3Error::new("InvalidPartNumber", "The requested partnumber is not satisfiable");
    if meta.parts.is_empty() {
        return if n == 1 { Ok(None) } else { Err(not_there()) };
    }
    let part = meta.parts.get(n - 1).ok_or_else(not_there)?;
    let start: u64 = meta.parts[..n - 1].iter().map(|p| p.size).sum();
    Ok(Some((start, part.size)))
}

/// The conditional headers of GET and HEAD (`prefix` ""), or of a copy's source (`prefix`
/// "x-amz-copy-source-"), as S3 combines them: a status to answer instead of the object
/// (304), or None to go on.
pub fn preconditions(h: &HeaderMap, meta: &ObjectMeta, prefix: &str) -> S3Result<Option<StatusCode>> {
    let get = |n: &str| h.get(format!("{prefix}{n}").as_str()).and_then(|v| v.to_str().ok());
    let modified = meta.last_modified_ms / 1000;
    let failed = || S3Error::new("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
    match get("if-match") {
        Some(c) if !etag_list_matches(c, &meta.etag) => return Err(failed()),
        Some(_) => {}
        None => {
            if get("if-unmodified-since").and_then(parse_http_date).is_some_and(|t| modified > t) {
                return Err(failed());
            }
        }
    }
    match get("if-none-match") {
        Some(c) if etag_list_matches(c, &meta.etag) => return Ok(Some(StatusCode::NOT_MODIFIED)),
        Some(_) => {}
        None => {
            if get("if-modified-since").and_then(parse_http_date).is_some_and(|t| modified <= t) {
                return Ok(Some(StatusCode::NOT_MODIFIED));
            }
        }
    }
    Ok(None)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` as (start, length); None for a header S3 ignores.
pub fn parse_range(header: &str, size: u64) -> S3Result<Option<(u64, u64)>> {
    let unsatisfiable = || {
        S3Error::new("InvalidRange", "The requested range is not satisfiable")
            .with_header("content-range", format!("bytes */{size}"))
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                return Err(unsatisfiable());
            }
            (start, end.min(size - 1) - start + 1)
        }
        (Some(_), Some(_)) => return Ok(None),
        (Some(start), None) if b.is_empty() => {
            if start >= size {
                return Err(unsatisfiable());
            }
            (start, size - start)
        }
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            let n = n.min(size);
            (size - n, n)
        }
        _ => return Ok(None),
    };
    Ok(Some(range))
}

/// The bytes `[start, start+len)` of an object: each block from the worker that owns it (the
/// next one in rendezvous order when it is down; the under store itself when none is up), the
/// next blocks opened ahead.
pub fn read_range(gw: &Gateway, bucket: &str, meta: &ObjectMeta, start: u64, len: u64, mode: ReadMode) -> ByteStream {
    if len == 0 {
        return stream::empty().boxed();
    }
    let bs = if meta.block_size == 0 { gw.opts.block_size } else { meta.block_size };
    let end = start + len;
    let gw = gw.clone();
    let loc = UfsLocation::object(bucket, &meta.key);
    let meta = meta.clone();
    stream::iter(start / bs..=(end - 1) / bs)
        .map(move |block| {
            let (gw, loc, meta) = (gw.clone(), loc.clone(), meta.clone());
            async move {
                let req = ReadRequest {
                    loc,
                    version: meta.version,
                    object_size: meta.size,
                    ufs_etag: meta.ufs_etag.clone(),
                    offset: start.max(block * bs),
                    len: end.min((block + 1) * bs) - start.max(block * bs),
                    cache: mode.cache,
                    promote: mode.promote,
                    journal: meta.journal_worker != 0,
                };
                if meta.journal_worker != 0 {
                    return open_journaled(&gw, req, meta.journal_worker).await;
                }
                open_block(&gw, req, block).await
            }
        })
        .buffered(BLOCKS_AHEAD)
        .try_flatten()
        .boxed()
}

/// An object whose bytes are only in one worker's journal is read there, or not at all.
async fn open_journaled(gw: &Gateway, req: ReadRequest, worker: u64) -> Result<ByteStream, Error> {
    match gw.workers.by_id(worker).await {
        Some(w) => w.read(req).await,
        None => Err(Error::unavailable(format!(
            "{}/{} is so far only in the cache of worker {worker}, which is down; it is served again once \
             that worker is back",
            req.loc.bucket, req.loc.key
        ))),
    }
}

async fn open_block(gw: &Gateway, req: ReadRequest, block: u64) -> Result<ByteStream, Error> {
    let workers = gw.workers.ranked(req.version, block).await.unwrap_or_default();
    for w in workers {
        match w.read(req.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is(ErrorKind::Unavailable) => {
                tracing::warn!(block, "worker unavailable, trying the next one: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    metrics::counter!("strata_gateway_direct_reads_total").increment(1);
    tracing::warn!(block, bucket = %req.loc.bucket, key = %req.loc.key, "no worker can serve this block; reading the under store directly");
    gw.direct_read(&req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-200", 100).unwrap(), Some((90, 10)));
        assert_eq!(parse_range("bytes=95-", 100).unwrap(), Some((95, 5)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 10)));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), Some((0, 100)));
        assert_eq!(parse_range("bytes=5-1", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        let e = parse_range("bytes=100-", 100).unwrap_err();
        assert_eq!((e.code, e.headers[0].1.as_str()), ("InvalidRange", "bytes */100"));
        assert_eq!(parse_range("bytes=-0", 100).unwrap_err().code, "InvalidRange");
    }
}
