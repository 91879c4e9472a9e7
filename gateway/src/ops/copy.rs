//! CopyObject and UploadPartCopy: the source's bytes stream from the workers that cache them
//! into a new write, checked on the way like any body.

use axum::http::StatusCode;
use axum::response::Response;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::percent_decode_str;
use strata_common::api::{UfsLocation, WriteRequest};
use strata_common::io_mode::ReadType;
use strata_common::proto::*;

use crate::body::{self, BodyStream, ChecksumAlgo, Expect, Outcome, Verified};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{stored_headers, user_metadata};
use crate::read::{preconditions, read_range};
use crate::request::Ctx;
use crate::tags;
use crate::write::{
    Described, MAX_PUT, check_key, commit_written, commit_written_part, requested_algo, send, write_conditions,
};
use crate::xml::{self, NS};

/// `x-amz-copy-source`: `[/]bucket/key`, URL-encoded.
fn source(raw: Option<&str>) -> S3Result<(String, String)> {
    let raw = raw.unwrap_or("");
    let (path, version) = match raw.split_once('?') {
        Some((p, q)) => (p, q.strip_prefix("versionId=")),
        None => (raw, None),
    };
    if version.is_some_and(|v| v != "null") {
        return Err(S3Error::invalid_argument("Strata keeps no object versions: versionId must be absent or null"));
    }
    let path = percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8()
        .map_err(|_| S3Error::invalid_argument("x-amz-copy-source is not valid UTF-8"))?;
    match path.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_string(), k.to_string())),
        _ => {
            Err(S3Error::invalid_argument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey"))
        }
    }
}

/// The source's metadata, once its `x-amz-copy-source-if-*` conditions hold.
async fn source_meta(ctx: &Ctx, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
    let meta = ctx.gw.master.lookup(bucket, key).await?;
    if preconditions(&ctx.headers, &meta, "x-amz-copy-source-")?.is_some() {
        return Err(S3Error::precondition_failed());
    }
    Ok(meta)
}

/// Streams `len` bytes at `start` of the source into `dest`, hashing them (MD5 and `algo`).
async fn copy_bytes(
    ctx: &Ctx,
    src_bucket: &str,
    src: &ObjectMeta,
    (start, len): (u64, u64),
    algo: Option<ChecksumAlgo>,
    dest: WriteRequest,
) -> S3Result<(strata_common::api::WriteResult, Verified)> {
    let bytes: BodyStream =
        read_range(&ctx.gw, src_bucket, src, start, len, ReadType::Cache).map_err(S3Error::from).boxed();
    let expect = Expect { length: Some(len), checksum: algo.map(|a| (a, None)), ..Default::default() };
    let outcome = Outcome::default();
    let stream = body::verify(bytes, expect, outcome.clone());
    send(ctx, stream, outcome, Some(len), dest).await
}

/// `COPY` (the default) or `REPLACE`.
fn directive(ctx: &Ctx, name: &str) -> S3Result<bool> {
    replace_directive(name, ctx.header(name))
}

fn replace_directive(name: &str, value: Option<&str>) -> S3Result<bool> {
    match value {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(other) => Err(S3Error::invalid_argument(format!("Unknown {name}: {other}"))),
    }
}

pub async fn copy_object(ctx: &Ctx) -> S3Result<Response> {
    check_key(&ctx.key)?;
    crate::write::check_storage_class(ctx)?;
    let (src_bucket, src_key) = source(ctx.header("x-amz-copy-source"))?;
    let replace_meta = directive(ctx, "x-amz-metadata-directive")?;
    let replace_tags = directive(ctx, "x-amz-tagging-directive")?;
    if src_bucket == ctx.bucket && src_key == ctx.key && !replace_meta && !replace_tags {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let src = source_meta(ctx, &src_bucket, &src_key).await?;
    if src.size > MAX_PUT {
        return Err(S3Error::invalid_request(
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    let (headers, user_metadata) = if replace_meta {
        (stored_headers(&ctx.headers), user_metadata(&ctx.headers)?)
    } else {
        (src.headers.clone(), src.user_metadata.clone())
    };
    let tags = if replace_tags { tags::from_header(ctx.header("x-amz-tagging"))? } else { src.tags.clone() };
    // Keep the source's full-object checksum unless another algorithm is asked for.
    let algo = requested_algo(ctx)?.or_else(|| {
        src.checksums.iter().find(|c| !c.value.contains('-')).and_then(|c| ChecksumAlgo::parse(&c.algorithm))
    });
    let conditions = write_conditions(ctx).await?;
    let version = ctx.gw.master.allocate_version().await?;
    let staging = strata_common::ufs::staged_name(version);
    let dest = WriteRequest {
        loc: UfsLocation::staging(&ctx.bucket, &staging),
        version,
        cache: true,
        journal: false,
        in_place: None,
    };
    let (written, verified) = copy_bytes(ctx, &src_bucket, &src, (0, src.size), algo, dest).await?;
    let acl = crate::access::new_object_acl(ctx).await?;
    let described = Described { headers, user_metadata, tags, acl };
    let meta = commit_written(ctx, described, (version, staging), (written, verified), &conditions, (0, false)).await?;
    let result = xml::CopyResult {
        xmlns: NS,
        last_modified: xml::time(meta.last_modified_ms),
        etag: format!("\"{}\"", meta.etag),
        checksums: xml::ChecksumsXml::of(&meta.checksums),
    };
    xml::response("CopyObjectResult", &result)
}

/// `x-amz-copy-source-range: bytes=first-last`, inside the source.
pub(crate) fn copy_range(header: Option<&str>, size: u64) -> S3Result<(u64, u64)> {
    let Some(r) = header else { return Ok((0, size)) };
    let bad = || S3Error::invalid_argument(format!("Range specified is not valid for source object of size: {size}"));
    let (a, b) = r.trim().strip_prefix("bytes=").and_then(|s| s.split_once('-')).ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    if b >= size {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRange,
            format!("The requested range bytes={a}-{b} is not satisfiable: the source object has {size} bytes"),
        )
        .with_header("content-range", format!("bytes */{size}")));
    }
    Ok((a, b - a + 1))
}

pub async fn upload_part_copy(ctx: &Ctx, number: u32, upload_id: &str) -> S3Result<Response> {
    let r = UploadRef { bucket: ctx.bucket.clone(), key: ctx.key.clone(), upload_id: upload_id.to_string() };
    let upload = ctx.gw.master.get_upload(r.clone()).await?.upload.unwrap_or_default();
    let (src_bucket, src_key) = source(ctx.header("x-amz-copy-source"))?;
    let src = source_meta(ctx, &src_bucket, &src_key).await?;
    let range = copy_range(ctx.header("x-amz-copy-source-range"), src.size)?;
    if range.1 > MAX_PUT {
        return Err(S3Error::entity_too_large());
    }
    let algo = ChecksumAlgo::parse(&upload.checksum_algorithm);
    let version = ctx.gw.master.allocate_version().await?;
    let staging = format!("uploads/{upload_id}/{number}-{version}");
    let dest =
        WriteRequest { loc: UfsLocation::staging("", &staging), version, cache: false, journal: false, in_place: None };
    let (written, verified) = copy_bytes(ctx, &src_bucket, &src, range, algo, dest).await?;
    let part = commit_written_part(ctx, r, number, (version, staging), (written, verified)).await?;
    let result = xml::CopyResult {
        xmlns: NS,
        last_modified: xml::time(part.last_modified_ms),
        etag: format!("\"{}\"", part.etag),
        checksums: xml::ChecksumsXml::of(&part.checksums),
    };
    let mut resp = xml::response("CopyPartResult", &result)?;
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_decoded_with_or_without_a_leading_slash() {
        assert_eq!(source(Some("/b/a%20b/c")).unwrap(), ("b".to_string(), "a b/c".to_string()));
        assert_eq!(source(Some("b/k?versionId=null")).unwrap(), ("b".to_string(), "k".to_string()));
    }

    #[test]
    fn sources_without_a_key_or_with_a_version_are_refused() {
        for bad in [None, Some("b"), Some("/b/"), Some("//k"), Some("b/k?versionId=3"), Some("b/%FF")] {
            assert_eq!(source(bad).unwrap_err().code, S3ErrorCode::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn copy_ranges_lie_inside_the_source() {
        assert_eq!(copy_range(None, 10).unwrap(), (0, 10));
        assert_eq!(copy_range(Some("bytes=2-5"), 10).unwrap(), (2, 4));
        assert_eq!(copy_range(Some("bytes=9-9"), 10).unwrap(), (9, 1));
        for bad in ["bytes=5-2", "bytes=-3", "bytes=3-", "items=0-1"] {
            let e = copy_range(Some(bad), 10).unwrap_err();
            assert_eq!(e.message, "Range specified is not valid for source object of size: 10", "{bad}");
        }
        for past in ["bytes=0-10", "bytes=10-21"] {
            assert_eq!(copy_range(Some(past), 10).unwrap_err().code, S3ErrorCode::InvalidRange, "{past}");
        }
    }

    #[test]
    fn directives_are_copy_or_replace() {
        assert!(!replace_directive("d", None).unwrap());
        assert!(!replace_directive("d", Some("COPY")).unwrap());
        assert!(replace_directive("d", Some("REPLACE")).unwrap());
        assert_eq!(replace_directive("d", Some("replace")).unwrap_err().message, "Unknown d: replace");
    }
}
