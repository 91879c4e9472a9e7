//! The write pipeline of PUT, UploadPart, CopyObject, UploadPartCopy and
//! CompleteMultipartUpload: the write's type and conditions, the body decoded (aws-chunked)
//! and wrapped to be verified, sent to the worker that owns block 0, and the written bytes
//! committed with the master as an object or a part.

use std::collections::HashMap;

use axum::body::Body;
use futures::{StreamExt, TryStreamExt};
use strata_common::api::{ByteStream, ComposeRequest, UfsLocation, WorkerApi, WriteRequest, WriteResult};
use strata_common::etag::{Compare, ETagCondition, WriteConditions};
use strata_common::ids;
use strata_common::io_mode::{WRITE_TYPES, WriteType};
use strata_common::proto::{Checksum, CommitObjectRequest, CommitPartRequest, ObjectMeta, PartMeta, UploadRef};

use crate::auth::Payload;
use crate::auth::chunked;
use crate::body::{self, BodyStream, ChecksumAlgo, Expect, Outcome, Trailers, Verified};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::request::Ctx;

/// The largest object a single PUT (or one part) may carry.
pub const MAX_PUT: u64 = 5 << 30;

/// A header whose value must be a number.
fn number(ctx: &Ctx, name: &str) -> S3Result<Option<u64>> {
    ctx.header(name)
        .map(|v| v.trim().parse::<u64>().map_err(|_| S3Error::invalid_argument(format!("{name} is not a number"))))
        .transpose()
}

/// The checksum the body must carry: one `x-amz-checksum-*` header, or one announced in
/// `x-amz-trailer`.
fn expected_checksum(ctx: &Ctx) -> S3Result<Option<(ChecksumAlgo, Option<String>)>> {
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
    Ok(checksum)
}

/// The body of a PUT or UploadPart, decoded (aws-chunked) and wrapped to be verified.
pub fn prepare_body(ctx: &Ctx, body: Body) -> S3Result<(ByteStream, Outcome, Option<u64>)> {
    let raw: BodyStream = body.into_data_stream().map_err(|e| crate::request::body_error(&e)).boxed();
    // The signed payload says whether the body is aws-chunked; a Content-Encoding of aws-chunked
    // without one counts only with the decoded length beside it (else the body is plain, as
    // AWS takes it).
    let chunked = matches!(ctx.auth.payload, Payload::StreamingSigned { .. } | Payload::StreamingUnsignedTrailer)
        || (ctx.header("content-encoding").is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"))
            && ctx.headers.contains_key("x-amz-decoded-content-length"));
    let trailers = Trailers::default();
    let (stream, length) = if chunked {
        let length = number(ctx, "x-amz-decoded-content-length")?;
        if length.is_none() {
            return Err(S3Error::new(
                S3ErrorCode::MissingContentLength,
                "You must provide the x-amz-decoded-content-length HTTP header.",
            ));
        }
        let signed = matches!(ctx.auth.payload, Payload::StreamingSigned { .. }).then_some(&ctx.auth);
        (chunked::decode(raw, signed, trailers.clone()).boxed() as BodyStream, length)
    } else {
        let length = number(ctx, "content-length")?;
        if length.is_none() && !ctx.headers.contains_key("transfer-encoding") {
            return Err(S3Error::new(
                S3ErrorCode::MissingContentLength,
                "You must provide the Content-Length HTTP header.",
            ));
        }
        (raw, length)
    };
    if length.is_some_and(|l| l > MAX_PUT) {
        return Err(S3Error::entity_too_large());
    }
    let checksum = expected_checksum(ctx)?;
    if let Some(md5) = ctx.header("content-md5") {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD.decode(md5).map(|d| d.len() != 16).unwrap_or(true) {
            return Err(S3Error::new(S3ErrorCode::InvalidDigest, "The Content-MD5 you specified is not valid."));
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
    send(ctx, stream, outcome, length, WriteRequest { loc, version, cache, ..Default::default() }).await
}

/// Streams a request body into the journal of the worker owning block 0 of `version`; every
/// read of it goes there until the under store has it. Returns that worker's id.
pub async fn write_journaled(ctx: &Ctx, body: Body, version: u64) -> S3Result<(u64, (WriteResult, Verified))> {
    let (worker_id, worker) = ctx.gw.workers.owner(version).await?;
    let (stream, outcome, _) = prepare_body(ctx, body)?;
    let loc = UfsLocation::object(&ctx.bucket, &ctx.key);
    let req = WriteRequest { loc, version, cache: true, journal: true, in_place: None };
    let (mut written, verified) = send_to(worker, stream, outcome, req).await?;
    written.ufs_etag.clear(); // not in the under store
    Ok((worker_id, (written, verified)))
}

/// Where a PUT's bytes go: the `x-strata-write-type` header, or else the mount's setting.
pub async fn write_type(ctx: &Ctx) -> S3Result<WriteType> {
    if let Some(h) = ctx.header("x-strata-write-type") {
        return WriteType::from_header(h)
            .ok_or_else(|| S3Error::invalid_argument(format!("x-strata-write-type {h:?}: use {WRITE_TYPES}")));
    }
    let mount = ctx.gw.mount_of(&ctx.bucket).await?;
    Ok(WriteType::from_wire(&mount.write_type))
}

/// Streams a verifying stream into the under store through the worker that owns block 0 of
/// `version`; returns what the worker wrote and what the bytes turned out to be.
pub async fn send(
    ctx: &Ctx,
    stream: ByteStream,
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
    worker: std::sync::Arc<dyn WorkerApi>,
    stream: ByteStream,
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

/// Has the worker owning block 0 of `version` concatenate ranges (offset, length) of staged
/// `sources` into `target`, by the file system where they are local folders.
pub async fn compose(
    ctx: &Ctx,
    target: UfsLocation,
    version: u64,
    (sources, ranges): (Vec<UfsLocation>, Vec<(u64, u64)>),
    size: u64,
) -> S3Result<WriteResult> {
    let workers = ctx.gw.workers.ranked(version, 0).await?;
    let cache = ctx.gw.workers.single_owner(version, Some(size), ctx.gw.opts.block_size).await;
    let worker = workers.into_iter().next().ok_or_else(|| S3Error::internal("no worker ranked"))?;
    Ok(worker.compose(ComposeRequest { target, version, sources, cache, ranges, local: true }).await?)
}

pub fn checksum_of(v: &Verified) -> Vec<Checksum> {
    v.checksum.iter().map(|(a, val)| Checksum { algorithm: a.name().to_string(), value: val.clone() }).collect()
}

/// `x-amz-checksum-algorithm` of CreateMultipartUpload and CopyObject.
pub fn requested_algo(ctx: &Ctx) -> S3Result<Option<ChecksumAlgo>> {
    match ctx.header("x-amz-checksum-algorithm") {
        Some(a) => ChecksumAlgo::parse(a)
            .map(Some)
            .ok_or_else(|| S3Error::invalid_request(format!("Checksum algorithm {a} is not supported"))),
        None => Ok(None),
    }
}

/// A write's `If-Match` / `If-None-Match` headers (`*` or entity tags).
pub fn parse_conditions(if_match: Option<&str>, if_none_match: Option<&str>) -> S3Result<WriteConditions> {
    let none_match = if_none_match.map(ETagCondition::parse).map(|c| c.to_string()).unwrap_or_default();
    Ok(WriteConditions::from_wire(if_match.unwrap_or(""), false).with_if_none_match(&none_match))
}

/// A write's conditions, checked early so that a write bound to fail does not stream its
/// bytes; the commit checks them again atomically.
pub async fn write_conditions(ctx: &Ctx) -> S3Result<WriteConditions> {
    let conditions = parse_conditions(ctx.header("if-match"), ctx.header("if-none-match"))?;
    if !conditions.is_empty() {
        let current = match ctx.gw.master.lookup(&ctx.bucket, &ctx.key).await {
            Ok(m) => Some(m),
            Err(e) if e.is(strata_common::ErrorKind::NoSuchKey) => None,
            Err(e) => return Err(e.into()),
        };
        let etag = current.as_ref().map(|m| m.etag.as_str());
        conditions.check(etag, Compare::Strong).map_err(|r| S3Error::from(r.into_error()))?;
    }
    Ok(conditions)
}

/// The storage classes S3 knows; Strata stores every object the same way.
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// `x-amz-storage-class` of a write, if given, must be one S3 knows.
pub fn check_storage_class(ctx: &Ctx) -> S3Result<()> {
    match ctx.header("x-amz-storage-class") {
        Some(c) if !STORAGE_CLASSES.contains(&c) => {
            Err(S3Error::new(S3ErrorCode::InvalidStorageClass, "The storage class you specified is not valid"))
        }
        _ => Ok(()),
    }
}

/// S3's key rules: not empty, at most 1024 bytes.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > strata_common::names::MAX_KEY_LEN {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError, "Your key is too long"));
    }
    Ok(strata_common::names::check_key(key)?)
}

/// What describes a new object besides its bytes.
pub struct Described {
    pub headers: HashMap<String, String>,
    pub user_metadata: HashMap<String, String>,
    pub tags: HashMap<String, String>,
    /// The object's owner and ACL grants.
    pub acl: (crate::acl::Owner, Vec<strata_common::proto::Grant>),
}

/// Commits the metadata of bytes written to `staging` as the object of the request's key,
/// under the write's conditions.
pub async fn commit_written(
    ctx: &Ctx,
    described: Described,
    (version, staging): (u64, String),
    (written, verified): (WriteResult, Verified),
    conditions: &WriteConditions,
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
        owner: described.acl.0.id,
        owner_display_name: described.acl.0.display_name,
        grants: described.acl.1,
    };
    let (if_match, if_none_match_any) = conditions.to_wire();
    let req = CommitObjectRequest {
        bucket: ctx.bucket.clone(),
        meta: Some(meta.clone()),
        if_match,
        if_none_match_any,
        staging_key: staging,
        if_none_match: conditions.if_none_match_wire(),
    };
    ctx.gw.master.commit_object(req).await?;
    Ok(meta)
}

/// Records bytes written to `staging` as part `number` of an upload.
pub async fn commit_written_part(
    ctx: &Ctx,
    upload: UploadRef,
    number: u32,
    (version, staging): (u64, String),
    (written, verified): (WriteResult, Verified),
) -> S3Result<PartMeta> {
    let staging_path = written.placed.as_ref().map_or(staging, |p| p.0.clone());
    let part = PartMeta {
        number,
        size: written.size,
        etag: hex::encode(verified.md5),
        version,
        staging_path,
        checksums: checksum_of(&verified),
        last_modified_ms: ids::now_ms(),
        ufs_etag: written.ufs_etag,
        in_place: written.placed.is_some(),
        offset: written.placed.as_ref().map_or(0, |p| p.1),
    };
    ctx.gw.master.commit_part(CommitPartRequest { upload: Some(upload), part: Some(part.clone()) }).await?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_headers_no_conditions() {
        let c = parse_conditions(None, None).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.to_wire(), (String::new(), false));
    }

    #[test]
    fn if_none_match_star_with_blanks_is_any() {
        let c = parse_conditions(None, Some(" * ")).unwrap();
        assert_eq!(c.to_wire(), (String::new(), true));
    }

    #[test]
    fn if_none_match_with_an_etag_refuses_that_object_only() {
        let c = parse_conditions(None, Some("\"abc\"")).unwrap();
        assert_eq!(c.if_none_match_wire(), "\"abc\"");
        assert_eq!(c.check(Some("abc"), Compare::Strong), Err(strata_common::etag::WriteRefused::PreconditionFailed));
        assert_eq!(c.check(Some("abd"), Compare::Strong), Ok(()));
    }

    #[test]
    fn an_empty_if_match_is_no_condition() {
        assert!(parse_conditions(Some(""), None).unwrap().is_empty());
    }

    #[test]
    fn the_gateway_compares_if_match_strongly() {
        let c = parse_conditions(Some("W/\"b\""), None).unwrap();
        let e = c.check(Some("b"), Compare::Strong).map_err(|r| S3Error::from(r.into_error())).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::PreconditionFailed);
        assert_eq!(e.message, "At least one of the pre-conditions you specified did not hold");
    }

    #[test]
    fn refusals_keep_their_s3_codes() {
        let c = parse_conditions(Some("\"a\""), None).unwrap();
        let e = c.check(None, Compare::Strong).map_err(|r| S3Error::from(r.into_error())).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (S3ErrorCode::NoSuchKey, "The specified key does not exist."));
    }
}
