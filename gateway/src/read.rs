//! The read pipeline: the read type of a request, the conditions of GET, HEAD and a copy's
//! source, which bytes a Range or partNumber asks for, and the stream of those bytes: each
//! block from the worker that owns it, or from the under store when no worker is alive.

use axum::http::{HeaderMap, StatusCode};
use futures::{StreamExt, TryStreamExt, stream};
use strata_common::api::{ByteStream, ReadRequest, UfsLocation};
use strata_common::etag::ETagCondition;
use strata_common::io_mode::ReadType;
use strata_common::proto::ObjectMeta;
use strata_common::ufs_read::UfsRange;
use strata_common::{Error, ErrorKind};

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::request::Ctx;
use crate::state::Gateway;

/// Blocks whose streams are opened ahead of the one being sent.
const BLOCKS_AHEAD: usize = 2;

/// The `x-strata-read-type` header: `CACHE` when absent.
pub fn read_type(header: Option<&str>) -> S3Result<ReadType> {
    let Some(v) = header else { return Ok(ReadType::Cache) };
    let v = v.trim().to_ascii_uppercase();
    v.parse().map_err(|_| {
        S3Error::invalid_argument(format!("x-strata-read-type {v:?}: use {}", strata_common::io_mode::READ_TYPES))
    })
}

fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s).ok().map(|d| d.timestamp())
}

/// The conditional headers of GET and HEAD (`prefix` ""), or of a copy's source (`prefix`
/// "x-amz-copy-source-"), as S3 combines them: a status to answer instead of the object
/// (304), or None to go on.
pub fn preconditions(h: &HeaderMap, meta: &ObjectMeta, prefix: &str) -> S3Result<Option<StatusCode>> {
    let get = |n: &str| h.get(format!("{prefix}{n}").as_str()).and_then(|v| v.to_str().ok());
    let modified = meta.last_modified_ms / 1000;
    match get("if-match").map(ETagCondition::parse) {
        Some(c) if !c.matches_weak(&meta.etag) => return Err(S3Error::precondition_failed()),
        Some(_) => {}
        None => {
            if get("if-unmodified-since").and_then(parse_http_date).is_some_and(|t| modified > t) {
                return Err(S3Error::precondition_failed());
            }
        }
    }
    match get("if-none-match").map(ETagCondition::parse) {
        Some(c) if c.matches_weak(&meta.etag) => return Ok(Some(StatusCode::NOT_MODIFIED)),
        Some(_) => {}
        None => {
            if get("if-modified-since").and_then(parse_http_date).is_some_and(|t| modified <= t) {
                return Ok(Some(StatusCode::NOT_MODIFIED));
            }
        }
    }
    Ok(None)
}

/// The range a GET asks for (`partNumber` or `Range`, not both) as (start, length); None for
/// the whole object.
pub fn requested_range(ctx: &Ctx, meta: &ObjectMeta) -> S3Result<Option<(u64, u64)>> {
    match (ctx.query.get("partNumber"), ctx.header("range")) {
        (Some(_), Some(_)) => {
            Err(S3Error::invalid_request("Cannot specify both Range header and partNumber query parameter"))
        }
        (Some(n), None) => part_range(meta, n),
        (None, Some(r)) => parse_range(r, meta.size),
        (None, None) => Ok(None),
    }
}

/// The range of part `n` of a multipart object; a plain object is its only part.
pub fn part_range(meta: &ObjectMeta, n: &str) -> S3Result<Option<(u64, u64)>> {
    let n: usize =
        n.parse().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
            S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
        })?;
    // AWS answers a part the object does not have with 400 InvalidPart (not a 416 range error).
    let count = meta.parts.len().max(1);
    let not_there = || {
        S3Error::new(
            S3ErrorCode::InvalidPart,
            format!("The requested partnumber is not satisfiable: the object has {count} part(s)"),
        )
    };
    if meta.parts.is_empty() {
        return if n == 1 { Ok(None) } else { Err(not_there()) };
    }
    let part = meta.parts.get(n - 1).ok_or_else(not_there)?;
    let start: u64 = meta.parts[..n - 1].iter().map(|p| p.size).sum();
    Ok(Some((start, part.size)))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` as (start, length); None for a header S3 ignores.
pub fn parse_range(header: &str, size: u64) -> S3Result<Option<(u64, u64)>> {
    let unsatisfiable = || {
        S3Error::new(S3ErrorCode::InvalidRange, "The requested range is not satisfiable")
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
pub fn read_range(gw: &Gateway, bucket: &str, meta: &ObjectMeta, start: u64, len: u64, mode: ReadType) -> ByteStream {
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
                    cache: mode.cache(),
                    promote: mode.promote(),
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
        Some(w) => {
            strata_common::read_source::note(strata_common::read_source::WORKER);
            w.read(req).await
        }
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
            Ok(s) => {
                strata_common::read_source::note(strata_common::read_source::WORKER);
                return Ok(s);
            }
            Err(e) if e.is(ErrorKind::Unavailable) => {
                tracing::warn!(block, "worker unavailable, trying the next one: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    metrics::counter!("strata_gateway_direct_reads_total").increment(1);
    strata_common::read_source::note(strata_common::read_source::UNDER_STORE);
    tracing::warn!(block, bucket = %req.loc.bucket, key = %req.loc.key, "no worker can serve this block; reading the under store directly");
    direct_read(gw, &req).await
}

/// Reads a block's range from the under store itself (no worker is alive): the same bytes,
/// uncached, refused if the object changed there since it was written.
async fn direct_read(gw: &Gateway, req: &ReadRequest) -> Result<ByteStream, Error> {
    let mount = gw.mount_of(&req.loc.bucket).await?;
    let store = gw.ufs.open(&mount)?;
    let what = format!("reading {}/{} from the under store", req.loc.bucket, req.loc.key);
    let path = req.loc.path()?;
    let range = req.offset..req.offset + req.len;
    UfsRange { store: store.as_ref(), path: &path, range, ufs_etag: &req.ufs_etag, what: &what }.open().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};
    use strata_common::proto::PartInfo;

    fn code<T: std::fmt::Debug>(r: S3Result<T>) -> S3ErrorCode {
        r.unwrap_err().code
    }

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
        assert_eq!((e.code, e.headers[0].1.as_str()), (S3ErrorCode::InvalidRange, "bytes */100"));
        assert_eq!(code(parse_range("bytes=-0", 100)), S3ErrorCode::InvalidRange);
    }

    #[test]
    fn ranges_s3_ignores() {
        for h in ["bytes=0-1,5-6", "bytes=abc", "bytes=1-x", "bytes=x-1", "bytes=-", "0-9"] {
            assert_eq!(parse_range(h, 100).unwrap(), None, "{h}");
        }
    }

    #[test]
    fn ranges_at_the_edges() {
        assert_eq!(parse_range(" bytes= 0 - 0 ", 1).unwrap(), Some((0, 1)));
        assert_eq!(parse_range("bytes=99-99", 100).unwrap(), Some((99, 1)));
        assert_eq!(code(parse_range("bytes=0-0", 0)), S3ErrorCode::InvalidRange);
        assert_eq!(code(parse_range("bytes=-5", 0)), S3ErrorCode::InvalidRange);
        assert_eq!(code(parse_range("bytes=200-300", 100)), S3ErrorCode::InvalidRange);
    }

    fn multipart() -> ObjectMeta {
        let part = |n, size| PartInfo { number: n, size, ..Default::default() };
        ObjectMeta { size: 25, parts: vec![part(1, 10), part(2, 10), part(3, 5)], ..Default::default() }
    }

    #[test]
    fn parts_of_a_multipart_object() {
        let m = multipart();
        assert_eq!(part_range(&m, "1").unwrap(), Some((0, 10)));
        assert_eq!(part_range(&m, "3").unwrap(), Some((20, 5)));
        assert_eq!(code(part_range(&m, "4")), S3ErrorCode::InvalidPart);
        assert_eq!(code(part_range(&m, "0")), S3ErrorCode::InvalidArgument);
        assert_eq!(code(part_range(&m, "x")), S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn a_plain_object_is_its_only_part() {
        let m = ObjectMeta { size: 7, ..Default::default() };
        assert_eq!(part_range(&m, "1").unwrap(), None);
        assert_eq!(code(part_range(&m, "2")), S3ErrorCode::InvalidPart);
    }

    fn meta() -> ObjectMeta {
        // 2021-01-01T00:00:00Z
        ObjectMeta { etag: "abc".into(), last_modified_ms: 1_609_459_200_000, ..Default::default() }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn if_match_and_if_none_match() {
        let m = meta();
        assert_eq!(preconditions(&h(&[("if-match", "\"abc\"")]), &m, "").unwrap(), None);
        assert_eq!(code(preconditions(&h(&[("if-match", "\"xyz\"")]), &m, "")), S3ErrorCode::PreconditionFailed);
        assert_eq!(
            preconditions(&h(&[("if-none-match", "W/\"abc\"")]), &m, "").unwrap(),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(preconditions(&h(&[("if-none-match", "*")]), &m, "").unwrap(), Some(StatusCode::NOT_MODIFIED));
        assert_eq!(preconditions(&h(&[("if-none-match", "\"xyz\"")]), &m, "").unwrap(), None);
    }

    #[test]
    fn dates_count_only_without_their_etag_twin() {
        let m = meta();
        let before = "Thu, 31 Dec 2020 00:00:00 GMT";
        let after = "Sat, 02 Jan 2021 00:00:00 GMT";
        assert_eq!(
            code(preconditions(&h(&[("if-unmodified-since", before)]), &m, "")),
            S3ErrorCode::PreconditionFailed
        );
        assert_eq!(preconditions(&h(&[("if-unmodified-since", after)]), &m, "").unwrap(), None);
        // If-Match that holds wins over If-Unmodified-Since that does not, as in S3.
        assert_eq!(preconditions(&h(&[("if-match", "abc"), ("if-unmodified-since", before)]), &m, "").unwrap(), None);
        assert_eq!(preconditions(&h(&[("if-modified-since", after)]), &m, "").unwrap(), Some(StatusCode::NOT_MODIFIED));
        assert_eq!(preconditions(&h(&[("if-modified-since", before)]), &m, "").unwrap(), None);
        let both = h(&[("if-none-match", "\"xyz\""), ("if-modified-since", after)]);
        assert_eq!(preconditions(&both, &m, "").unwrap(), None);
        assert_eq!(preconditions(&h(&[("if-modified-since", "not a date")]), &m, "").unwrap(), None);
    }

    #[test]
    fn a_copy_reads_its_own_prefixed_conditions() {
        let m = meta();
        let hs = h(&[("x-amz-copy-source-if-match", "\"xyz\""), ("if-match", "\"abc\"")]);
        assert_eq!(code(preconditions(&hs, &m, "x-amz-copy-source-")), S3ErrorCode::PreconditionFailed);
        assert_eq!(preconditions(&hs, &m, "").unwrap(), None);
    }

    #[test]
    fn read_types_from_the_header() {
        assert_eq!(read_type(None).unwrap(), ReadType::Cache);
        assert_eq!(read_type(Some(" cache_promote ")).unwrap(), ReadType::CachePromote);
        assert_eq!(read_type(Some("NO_CACHE")).unwrap(), ReadType::NoCache);
        let e = read_type(Some(" fast ")).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidArgument);
        assert_eq!(e.message, "x-strata-read-type \"FAST\": use CACHE, CACHE_PROMOTE or NO_CACHE");
    }
}
