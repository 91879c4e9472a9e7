use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::{StreamExt, TryStreamExt};
use strata_common::api::{UfsLocation, WriteRequest, WriteResult};
use strata_common::ids;
use strata_common::proto::{Checksum, CommitObjectRequest, ObjectMeta};

use super::get::{STORED_HEADERS, set};
use crate::auth::Payload;
use crate::auth::chunked::{self, Trailers};
use crate::body::{self, BodyStream, ChecksumAlgo, Expect, Outcome, Verified};
use crate::error::{S3Error, S3Result};
use crate::http::Ctx;

/// The largest object a single PUT (or one part) may carry.
pub const MAX_PUT: u64 = 5 << 30;
const MAX_USER_METADATA: usize = 2048;

/// The `x-amz-meta-*` headers, without the prefix; S3 allows 2 KiB of them.
pub fn user_metadata(h: &HeaderMap) -> S3Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut size = 0;
    for (name, value) in h {
        if let Some(k) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            size += k.len() + v.len();
            out.insert(k.to_string(), v);
        }
    }
    if size > MAX_USER_METADATA {
        return Err(S3Error::new(
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size (2 KiB).",
        ));
    }
    Ok(out)
}

pub fn stored_headers(h: &HeaderMap) -> HashMap<String, String> {
    STORED_HEADERS
        .iter()
        .filter_map(|n| h.get(*n).and_then(|v| v.to_str().ok()).map(|v| (n.to_string(), v.to_string())))
        .collect()
}

/// The body of a PUT or UploadPart, decoded (aws-chunked) and wrapped to be verified.
pub fn prepare_body(ctx: &Ctx, body: Body) -> S3Result<(strata_common::api::ByteStream, Outcome, Option<u64>)> {
    let raw: BodyStream = body
        .into_data_stream()
        .map_err(|e| S3Error::new("IncompleteBody", format!("The request body was cut off: {e}")))
        .boxed();
    let chunked = matches!(ctx.auth.payload, Payload::StreamingSigned { .. } | Payload::StreamingUnsignedTrailer)
        || ctx.header("content-encoding").is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"));
    let trailers = Trailers::default();
    let number = |name: &str| -> S3Result<Option<u64>> {
        ctx.header(name)
            .map(|v| v.trim().parse::<u64>().map_err(|_| S3Error::invalid_argument(format!("{name} is not a number"))))
            .transpose()
    };
    let (stream, length) = if chunked {
        let length = number("x-amz-decoded-content-length")?;
        if length.is_none() {
            return Err(S3Error::new(
                "MissingContentLength",
                "You must provide the x-amz-decoded-content-length HTTP header.",
            ));
        }
        let signed = matches!(ctx.auth.payload, Payload::StreamingSigned { .. }).then_some(&ctx.auth);
        (chunked::decode(raw, signed, trailers.clone()).boxed() as BodyStream, length)
    } else {
        (raw, number("content-length")?)
    };
    if length.is_some_and(|l| l > MAX_PUT) {
        return Err(S3Error::new("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size."));
    }
    let mut checksum = None;
    for algo in body::ALL_ALGOS {
        if let Some(v) = ctx.header(algo.header()) {
            if checksum.is_some() {
                return Err(S3Error::invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            checksum = Some((algo, Some(v.to_string())));
        }
    }
    if checksum.is_none()
        && let Some(t) = ctx.header("x-amz-trailer")
    {
        let algo = t.trim().strip_prefix("x-amz-checksum-").and_then(ChecksumAlgo::parse).ok_or_else(|| {
            S3Error::invalid_request(format!("The value specified in the x-amz-trailer header is not supported: {t}"))
        })?;
        checksum = Some((algo, None));
    }
    if let Some(md5) = ctx.header("content-md5") {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD.decode(md5).map(|d| d.len() != 16).unwrap_or(true) {
            return Err(S3Error::new("InvalidDigest", "The Content-MD5 you specified is not valid."));
        }
    }
    let expect = Expect {
        content_md5: ctx.header("content-md5").map(str::to_string),
        sha256_hex: match &ctx.auth.payload {
            Payload::Sha256(h) => Some(h.clone()),
            _ => None,
        },
        checksum,
        length,
        trailers: Some(trailers),
    };
    let outcome = Outcome::default();
    let counted =
        stream.inspect_ok(|b| metrics::counter!("strata_gateway_bytes_in_total").increment(b.len() as u64)).boxed();
    Ok((body::verify(counted, expect, outcome.clone()), outcome, length))
}

/// Streams a request body into the under store (see [`send`]).
pub async fn write_body(
    ctx: &Ctx,
    body: Body,
    loc: UfsLocation,
    version: u64,
    cache: bool,
) -> S3Result<(WriteResult, Verified)> {
    let (stream, outcome, length) = prepare_body(ctx, body)?;
    send(ctx, stream, outcome, length, WriteRequest { loc, version, cache, journal: false }).await
}

/// Where a PUT's bytes go, from the `x-strata-write-type` header or else the mount's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only the cache (a worker's journal): fast, never in the under store.
    MustCache,
    /// The cache and the under store, before the answer.
    CacheThrough,
    /// Only the under store.
    Through,
    /// The cache now, the under store soon after (a background job of the worker).
    AsyncThrough,
}

impl WriteMode {
    pub fn parse(s: &str) -> Option<WriteMode> {
        match s.trim().to_ascii_uppercase().as_str() {
            "MUST_CACHE" => Some(WriteMode::MustCache),
            "" | "CACHE_THROUGH" => Some(WriteMode::CacheThrough),
            "THROUGH" => Some(WriteMode::Through),
            "ASYNC_THROUGH" => Some(WriteMode::AsyncThrough),
            _ => None,
        }
    }

    fn journaled(self) -> bool {
        matches!(self, WriteMode::MustCache | WriteMode::AsyncThrough)
    }
}

pub async fn write_mode(ctx: &Ctx) -> S3Result<WriteMode> {
    if let Some(h) = ctx.header("x-strata-write-type") {
        return WriteMode::parse(h).ok_or_else(|| {
            S3Error::invalid_argument(format!(
                "x-strata-write-type {h:?}: use MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH"
            ))
        });
    }
    let mount = ctx.gw.mount_of(&ctx.bucket).await?;
    Ok(WriteMode::parse(&mount.write_type).unwrap_or(WriteMode::CacheThrough))
}

/// Streams a verifying stream into the under store through the worker that owns block 0 of
/// `version`; returns what the worker wrote and what the bytes turned out to be.
pub async fn send(
    ctx: &Ctx,
    stream: strata_common::api::ByteStream,
    outcome: Outcome,
    length: Option<u64>,
    mut req: WriteRequest,
) -> S3Result<(WriteResult, Verified)> {
    req.cache = req.cache && ctx.gw.workers.single_owner(req.version, length, ctx.gw.opts.block_size).await;
    let worker = ctx.gw.workers.ranked(req.version, 0).await?.swap_remove(0);
    send_to(worker, stream, outcome, req).await
}

/// [`send`] to a given worker.
pub async fn send_to(
    worker: std::sync::Arc<dyn strata_common::api::WorkerApi>,
    stream: strata_common::api::ByteStream,
    outcome: Outcome,
    req: WriteRequest,
) -> S3Result<(WriteResult, Verified)> {
    let written = worker.write(req, stream).await;
    let verdict = outcome.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (written, verdict) {
        (Ok(w), Some(Ok(v))) if w.size == v.size => Ok((w, v)),
        (Ok(w), Some(Ok(v))) => {
            Err(S3Error::internal(format!("the worker wrote {} bytes of a {}-byte body", w.size, v.size)))
        }
        (_, Some(Err(e))) => Err(e),
        (Err(e), _) => Err(e.into()),
        (Ok(_), None) => Err(S3Error::internal("the body was written but never verified")),
    }
}

pub fn checksum_of(v: &Verified) -> Vec<Checksum> {
    v.checksum.iter().map(|(a, val)| Checksum { algorithm: a.name().to_string(), value: val.clone() }).collect()
}

/// `If-None-Match: *` / `If-Match` of a write, checked early so that a write bound to fail does
/// not stream its bytes; the commit checks them again atomically.
pub async fn write_conditions(ctx: &Ctx) -> S3Result<(String, bool)> {
    let if_match = ctx.header("if-match").unwrap_or("").to_string();
    let if_none_match_any = match ctx.header("if-none-match") {
        None => false,
        Some(v) if v.trim() == "*" => true,
        Some(_) => return Err(S3Error::not_implemented("If-None-Match with an ETag on a write (only * is supported)")),
    };
    if if_none_match_any || !if_match.is_empty() {
        let current = match ctx.gw.master.lookup(&ctx.bucket, &ctx.key).await {
            Ok(m) => Some(m),
            Err(e) if e.is(strata_common::ErrorKind::NoSuchKey) => None,
            Err(e) => return Err(e.into()),
        };
        let failed =
            || S3Error::new("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        if if_none_match_any && current.is_some() {
            return Err(failed());
        }
        if !if_match.is_empty() {
            match &current {
                None => return Err(S3Error::new("NoSuchKey", "The specified key does not exist.")),
                Some(m) if !if_match.split(',').any(|c| c.trim().trim_matches('"') == m.etag || c.trim() == "*") => {
                    return Err(failed());
                }
                Some(_) => {}
            }
        }
    }
    Ok((if_match, if_none_match_any))
}

/// S3's key rules: not empty, at most 1024 bytes.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > strata_common::names::MAX_KEY_LEN {
        return Err(S3Error::new("KeyTooLongError", "Your key is too long"));
    }
    Ok(strata_common::names::check_key(key)?)
}

/// What describes a new object besides its bytes.
pub struct Described {
    pub headers: HashMap<String, String>,
    pub user_metadata: HashMap<String, String>,
    pub tags: HashMap<String, String>,
}

/// Commits the metadata of bytes written to `staging` as the object of the request's key,
/// under the write's conditions (`If-Match`, `If-None-Match: *`).
pub async fn commit_written(
    ctx: &Ctx,
    described: Described,
    (version, staging): (u64, String),
    (written, verified): (WriteResult, Verified),
    (if_match, if_none_match_any): (String, bool),
    (journal_worker, persist_pending): (u64, bool),
) -> S3Result<ObjectMeta> {
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        version,
        size: written.size,
        etag: hex::encode(verified.md5),
        last_modified_ms: ids::now_ms(),
        headers: described.headers,
        user_metadata: described.user_metadata,
        checksums: checksum_of(&verified),
        block_size: ctx.gw.opts.block_size,
        ufs_etag: written.ufs_etag,
        parts: Vec::new(),
        tags: described.tags,
        journal_worker,
        persist_pending,
    };
    let req = CommitObjectRequest {
        bucket: ctx.bucket.clone(),
        meta: Some(meta.clone()),
        if_match,
        if_none_match_any,
        staging_key: staging,
    };
    ctx.gw.master.commit_object(req).await?;
    Ok(meta)
}

pub async fn put_object(ctx: &Ctx, body: Body) -> S3Result<Response> {
    check_key(&ctx.key)?;
    let user_metadata = user_metadata(&ctx.headers)?;
    let tags = super::tagging::from_header(ctx.header("x-amz-tagging"))?;
    let (if_match, if_none_match_any) = write_conditions(ctx).await?;
    let mode = write_mode(ctx).await?;
    let version = ctx.gw.master.allocate_version().await?;
    let described = Described { headers: stored_headers(&ctx.headers), user_metadata, tags };
    let conditions = (if_match, if_none_match_any);
    let meta = if mode.journaled() {
        // Into the journal of the worker owning block 0; every read of it goes there until the
        // under store has it.
        let (worker_id, worker) = ctx.gw.workers.owner(version).await?;
        let (stream, outcome, _) = prepare_body(ctx, body)?;
        let req = WriteRequest { loc: UfsLocation::object(&ctx.bucket, &ctx.key), version, cache: true, journal: true };
        let (mut written, verified) = send_to(worker, stream, outcome, req).await?;
        written.ufs_etag.clear(); // not in the under store
        let written = (written, verified);
        let journal = (worker_id, mode == WriteMode::AsyncThrough);
        commit_written(ctx, described, (version, String::new()), written, conditions, journal).await?
    } else {
        let staging = format!("tmp/{version}");
        let loc = UfsLocation::staging(&ctx.bucket, &staging);
        let written = write_body(ctx, body, loc, version, mode == WriteMode::CacheThrough).await?;
        commit_written(ctx, described, (version, staging), written, conditions, (0, false)).await?
    };
    let mut r = super::empty(StatusCode::OK);
    set(r.headers_mut(), "etag", &format!("\"{}\"", meta.etag));
    for c in &meta.checksums {
        set(r.headers_mut(), &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
    }
    Ok(r)
}
