use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use md5::{Digest, Md5};
use strata_common::api::{ComposeRequest, UfsLocation, WriteResult};
use strata_common::ids;
use strata_common::proto::*;

use super::get::set;
use super::put::{check_key, checksum_of, stored_headers, user_metadata, write_body, write_conditions};
use crate::body::{ChecksumAlgo, Verified, composite};
use crate::error::{S3Error, S3Result};
use crate::http::{Ctx, small_body};
use crate::xml::{self, NS};

/// Every part but the last must be at least this large.
const MIN_PART: u64 = 5 << 20;

fn upload_ref(ctx: &Ctx, upload_id: &str) -> UploadRef {
    UploadRef { bucket: ctx.bucket.clone(), key: ctx.key.clone(), upload_id: upload_id.to_string() }
}

pub async fn create(ctx: &Ctx) -> S3Result<Response> {
    check_key(&ctx.key)?;
    let algo = match ctx.header("x-amz-checksum-algorithm") {
        Some(a) => Some(
            ChecksumAlgo::parse(a)
                .ok_or_else(|| S3Error::invalid_request(format!("Checksum algorithm {a} is not supported")))?,
        ),
        None => None,
    };
    let upload = ctx
        .gw
        .master
        .create_upload(Upload {
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            headers: stored_headers(&ctx.headers),
            user_metadata: user_metadata(&ctx.headers)?,
            checksum_algorithm: algo.map(|a| a.name().to_string()).unwrap_or_default(),
            tags: super::tagging::from_header(ctx.header("x-amz-tagging"))?,
            ..Default::default()
        })
        .await?;
    let mut r = xml::response(
        "InitiateMultipartUploadResult",
        &xml::InitiateMultipartUploadResult {
            xmlns: NS,
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            upload_id: upload.upload_id,
        },
    )?;
    if let Some(a) = algo {
        set(r.headers_mut(), "x-amz-checksum-algorithm", a.name());
    }
    Ok(r)
}

/// Records bytes written to `staging` as part `number` of an upload.
pub async fn commit_written_part(
    ctx: &Ctx,
    upload: UploadRef,
    number: u32,
    (version, staging_path): (u64, String),
    (written, verified): (WriteResult, Verified),
) -> S3Result<PartMeta> {
    let part = PartMeta {
        number,
        size: written.size,
        etag: hex::encode(verified.md5),
        version,
        staging_path,
        checksums: checksum_of(&verified),
        last_modified_ms: ids::now_ms(),
        ufs_etag: written.ufs_etag,
    };
    ctx.gw.master.commit_part(CommitPartRequest { upload: Some(upload), part: Some(part.clone()) }).await?;
    Ok(part)
}

pub async fn upload_part(ctx: &Ctx, number: u32, upload_id: &str, body: Body) -> S3Result<Response> {
    let r = upload_ref(ctx, upload_id);
    ctx.gw.master.get_upload(r.clone()).await?;
    let version = ctx.gw.master.allocate_version().await?;
    let staging = format!("uploads/{upload_id}/{number}-{version}");
    let (written, verified) = write_body(ctx, body, UfsLocation::staging("", &staging), version, false).await?;
    let part = commit_written_part(ctx, r, number, (version, staging), (written, verified)).await?;
    let mut resp = super::empty(StatusCode::OK);
    set(resp.headers_mut(), "etag", &format!("\"{}\"", part.etag));
    for c in &part.checksums {
        set(resp.headers_mut(), &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
    }
    Ok(resp)
}

pub async fn complete(ctx: &Ctx, upload_id: &str, body: Body) -> S3Result<Response> {
    let raw = small_body(body, 4 << 20).await?;
    let req: xml::CompleteMultipartUpload = xml::parse(&raw)?;
    if req.parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if req.parts.windows(2).any(|w| w[0].part_number >= w[1].part_number) {
        return Err(S3Error::new(
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    let (if_match, if_none_match_any) = write_conditions(ctx).await?;
    let r = upload_ref(ctx, upload_id);
    let state = ctx.gw.master.get_upload(r.clone()).await?;
    let upload = state.upload.unwrap_or_default();
    let mut used = Vec::with_capacity(req.parts.len());
    for (i, p) in req.parts.iter().enumerate() {
        let etag = p.etag.trim().trim_matches('"');
        let stored = state.parts.iter().find(|s| s.number == p.part_number && s.etag == etag).ok_or_else(|| {
            S3Error::new(
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            )
        })?;
        if i + 1 < req.parts.len() && stored.size < MIN_PART {
            return Err(S3Error::new(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            ));
        }
        used.push(stored.clone());
    }
    let mut md5s = Md5::new();
    for p in &used {
        md5s.update(hex::decode(&p.etag).map_err(S3Error::internal)?);
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), used.len());
    let checksums: Vec<Checksum> = ChecksumAlgo::parse(&upload.checksum_algorithm)
        .and_then(|algo| {
            let values: Option<Vec<String>> = used
                .iter()
                .map(|p| p.checksums.iter().find(|c| c.algorithm == algo.name()).map(|c| c.value.clone()))
                .collect();
            composite(algo, &values?).map(|value| Checksum { algorithm: algo.name().to_string(), value })
        })
        .into_iter()
        .collect();
    let version = ctx.gw.master.allocate_version().await?;
    let staging = format!("tmp/{version}");
    let workers = ctx.gw.workers.ranked(version, 0).await?;
    let size: u64 = used.iter().map(|p| p.size).sum();
    let cache = ctx.gw.workers.single_owner(version, Some(size), ctx.gw.opts.block_size).await;
    let written = workers[0]
        .compose(ComposeRequest {
            target: UfsLocation::staging(&ctx.bucket, &staging),
            version,
            sources: used.iter().map(|p| UfsLocation::staging("", &p.staging_path)).collect(),
            cache,
        })
        .await?;
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        version,
        size: written.size,
        etag: etag.clone(),
        last_modified_ms: ids::now_ms(),
        headers: upload.headers.clone(),
        user_metadata: upload.user_metadata.clone(),
        checksums: checksums.clone(),
        block_size: ctx.gw.opts.block_size,
        ufs_etag: written.ufs_etag,
        parts: used
            .iter()
            .map(|p| PartInfo { number: p.number, size: p.size, etag: p.etag.clone(), checksums: p.checksums.clone() })
            .collect(),
        tags: upload.tags.clone(),
        ..Default::default()
    };
    ctx.gw
        .master
        .complete_upload(CompleteUploadRequest {
            upload: Some(r),
            meta: Some(meta),
            if_match,
            if_none_match_any,
            staging_key: staging,
        })
        .await?;
    xml::response(
        "CompleteMultipartUploadResult",
        &xml::CompleteMultipartUploadResult {
            xmlns: NS,
            location: format!("/{}/{}", ctx.bucket, ctx.key),
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            etag: format!("\"{etag}\""),
            checksums: xml::ChecksumsXml::of(&checksums),
            checksum_type: (!checksums.is_empty()).then(|| "COMPOSITE".to_string()),
        },
    )
}

pub async fn abort(ctx: &Ctx, upload_id: &str) -> S3Result<Response> {
    ctx.gw.master.abort_upload(upload_ref(ctx, upload_id)).await?;
    Ok(super::empty(StatusCode::NO_CONTENT))
}

pub async fn list_parts(ctx: &Ctx, upload_id: &str) -> S3Result<Response> {
    let state = ctx.gw.master.get_upload(upload_ref(ctx, upload_id)).await?;
    let marker: u32 = ctx.query.get("part-number-marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let max: u32 = ctx.query.get("max-parts").and_then(|m| m.parse().ok()).unwrap_or(1000).min(1000);
    let after: Vec<&PartMeta> = state.parts.iter().filter(|p| p.number > marker).collect();
    let page: Vec<&PartMeta> = after.iter().take(max as usize).copied().collect();
    let truncated = after.len() > page.len();
    let upload = state.upload.unwrap_or_default();
    xml::response(
        "ListPartsResult",
        &xml::ListPartsResult {
            xmlns: NS,
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            upload_id: upload_id.to_string(),
            part_number_marker: marker,
            next_part_number_marker: page.last().map(|p| p.number).unwrap_or(marker),
            max_parts: max,
            is_truncated: truncated,
            storage_class: "STANDARD",
            checksum_algorithm: (!upload.checksum_algorithm.is_empty()).then(|| upload.checksum_algorithm.clone()),
            parts: page
                .iter()
                .map(|p| xml::PartXml {
                    part_number: p.number,
                    last_modified: xml::time(p.last_modified_ms),
                    etag: format!("\"{}\"", p.etag),
                    size: p.size,
                    checksums: xml::ChecksumsXml::of(&p.checksums),
                })
                .collect(),
        },
    )
}

pub async fn list_uploads(ctx: &Ctx) -> S3Result<Response> {
    let q = &ctx.query;
    let max = q.get("max-uploads").and_then(|m| m.parse::<u32>().ok()).unwrap_or(1000).min(1000);
    let page = ctx
        .gw
        .master
        .list_uploads(ListUploadsRequest {
            bucket: ctx.bucket.clone(),
            prefix: q.get("prefix").unwrap_or("").to_string(),
            key_marker: q.get("key-marker").unwrap_or("").to_string(),
            upload_id_marker: q.get("upload-id-marker").unwrap_or("").to_string(),
            max_uploads: max,
            delimiter: q.get("delimiter").unwrap_or("").to_string(),
        })
        .await?;
    let last = page.uploads.last();
    xml::response(
        "ListMultipartUploadsResult",
        &xml::ListMultipartUploadsResult {
            xmlns: NS,
            bucket: ctx.bucket.clone(),
            key_marker: q.get("key-marker").unwrap_or("").to_string(),
            upload_id_marker: q.get("upload-id-marker").unwrap_or("").to_string(),
            next_key_marker: last.map(|u| u.key.clone()).unwrap_or_default(),
            next_upload_id_marker: last.map(|u| u.upload_id.clone()).unwrap_or_default(),
            prefix: q.get("prefix").unwrap_or("").to_string(),
            max_uploads: max,
            is_truncated: page.truncated,
            delimiter: q.get("delimiter").filter(|d| !d.is_empty()).map(str::to_string),
            common_prefixes: page.common_prefixes.iter().map(|p| xml::PrefixXml { prefix: p.clone() }).collect(),
            uploads: page
                .uploads
                .iter()
                .map(|u| xml::UploadXml {
                    key: u.key.clone(),
                    upload_id: u.upload_id.clone(),
                    initiated: xml::time(u.initiated_ms),
                    storage_class: "STANDARD",
                })
                .collect(),
        },
    )
}
