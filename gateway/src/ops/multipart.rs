//! Multipart uploads: create, upload a part, complete (the parts composed by a worker into
//! one staged object, then committed), abort, and the listings of parts and uploads.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use md5::{Digest, Md5};
use strata_common::api::{InPlace, UfsLocation, WriteRequest};
use strata_common::ids;
use strata_common::proto::*;

use crate::body::{ChecksumAlgo, composite, full_object};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{checksum_type, empty, set, set_checksums, stored_headers, user_metadata};
use crate::request::{Ctx, small_body};
use crate::tags;
use crate::write::{check_key, commit_written_part, compose, prepare_body, requested_algo, send, write_conditions};
use crate::xml::{self, NS};

/// Every part but the last must be at least this large.
const MIN_PART: u64 = 5 << 20;

fn upload_ref(ctx: &Ctx, upload_id: &str) -> UploadRef {
    UploadRef { bucket: ctx.bucket.clone(), key: ctx.key.clone(), upload_id: upload_id.to_string() }
}

const COMPOSITE: &str = "COMPOSITE";
const FULL_OBJECT: &str = "FULL_OBJECT";

/// `x-amz-checksum-type` of CreateMultipartUpload: FULL_OBJECT only for the CRCs, COMPOSITE
/// never for CRC64NVME; without it, CRC64NVME is FULL_OBJECT and the others COMPOSITE.
fn checksum_type_of(algo: Option<ChecksumAlgo>, header: Option<&str>) -> S3Result<Option<&'static str>> {
    let asked = match header.map(|h| h.trim().to_ascii_uppercase()) {
        None => None,
        Some(t) if t == COMPOSITE => Some(COMPOSITE),
        Some(t) if t == FULL_OBJECT => Some(FULL_OBJECT),
        Some(t) => {
            return Err(S3Error::invalid_request(format!(
                "x-amz-checksum-type {t:?} is not supported: use COMPOSITE or FULL_OBJECT"
            )));
        }
    };
    let Some(algo) = algo else {
        return match asked {
            None => Ok(None),
            Some(_) => Err(S3Error::invalid_request("x-amz-checksum-type needs x-amz-checksum-algorithm beside it")),
        };
    };
    match (asked, algo) {
        (Some(FULL_OBJECT), a) if !a.is_crc() => Err(S3Error::invalid_request(format!(
            "The FULL_OBJECT checksum type cannot be used with the {} checksum algorithm: use CRC32, CRC32C or CRC64NVME",
            a.name()
        ))),
        (Some(COMPOSITE), ChecksumAlgo::Crc64Nvme) => Err(S3Error::invalid_request(
            "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm: use FULL_OBJECT",
        )),
        (Some(t), _) => Ok(Some(t)),
        (None, ChecksumAlgo::Crc64Nvme) => Ok(Some(FULL_OBJECT)),
        (None, _) => Ok(Some(COMPOSITE)),
    }
}

pub async fn create(ctx: &Ctx) -> S3Result<Response> {
    check_key(&ctx.key)?;
    crate::write::check_storage_class(ctx)?;
    let algo = requested_algo(ctx)?;
    let kind = checksum_type_of(algo, ctx.header("x-amz-checksum-type"))?;
    let acl = crate::access::new_object_acl(ctx).await?;
    let upload = ctx
        .gw
        .master
        .create_upload(Upload {
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            headers: stored_headers(&ctx.headers),
            user_metadata: user_metadata(&ctx.headers)?,
            checksum_algorithm: algo.map(|a| a.name().to_string()).unwrap_or_default(),
            tags: tags::from_header(ctx.header("x-amz-tagging"))?,
            checksum_type: kind.unwrap_or_default().to_string(),
            owner: acl.0.id,
            owner_display_name: acl.0.display_name,
            grants: acl.1,
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
    if let Some(t) = kind {
        set(r.headers_mut(), "x-amz-checksum-type", t);
    }
    Ok(r)
}

pub async fn upload_part(ctx: &Ctx, number: u32, upload_id: &str, body: Body) -> S3Result<Response> {
    let r = upload_ref(ctx, upload_id);
    ctx.gw.master.get_upload(r.clone()).await?;
    let version = ctx.gw.master.allocate_version().await?;
    let staging = format!("uploads/{upload_id}/{number}-{version}");
    let (stream, outcome, length) = prepare_body(ctx, body)?;
    let in_place =
        length.map(|size| InPlace { bucket: ctx.bucket.clone(), upload_id: upload_id.to_string(), number, size });
    let req = WriteRequest { loc: UfsLocation::staging("", &staging), version, in_place, ..Default::default() };
    let (written, verified) = send(ctx, stream, outcome, length, req).await?;
    let part = commit_written_part(ctx, r, number, (version, staging), (written, verified)).await?;
    let mut resp = empty(StatusCode::OK);
    set(resp.headers_mut(), "etag", &format!("\"{}\"", part.etag));
    set_checksums(resp.headers_mut(), &part.checksums);
    Ok(resp)
}

/// A CompleteMultipartUpload names at least one part, in ascending order. A number named
/// twice in a row (a part re-sent while its first sending was still under way) counts once,
/// as its last entry: the part as it was stored last.
pub(crate) fn check_order(asked: &mut Vec<xml::CompletedPart>) -> S3Result<()> {
    if asked.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if asked.windows(2).any(|w| w[0].part_number > w[1].part_number) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    asked.reverse();
    asked.dedup_by_key(|p| p.part_number);
    asked.reverse();
    Ok(())
}

/// The stored parts a CompleteMultipartUpload names, each found by number and ETag; all but
/// the last at least [`MIN_PART`].
fn chosen_parts(asked: &[xml::CompletedPart], stored: &[PartMeta]) -> S3Result<Vec<PartMeta>> {
    let mut used = Vec::with_capacity(asked.len());
    for (i, p) in asked.iter().enumerate() {
        let etag = p.etag.trim().trim_matches('"');
        let found = stored.iter().find(|s| s.number == p.part_number && s.etag == etag).ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            )
        })?;
        if i + 1 < asked.len() && found.size < MIN_PART {
            return Err(S3Error::new(
                S3ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ));
        }
        used.push(found.clone());
    }
    Ok(used)
}

/// Where the parts' bytes are: their upload's one file in the bucket's mount when all lie
/// end to end in it from its start (the worker links it, nothing copied), else each part's
/// range in its own file or in that one.
fn part_sources(bucket: &str, used: &[PartMeta]) -> (Vec<UfsLocation>, Vec<(u64, u64)>) {
    let loc = |p: &PartMeta| UfsLocation::staging(if p.in_place { bucket } else { "" }, &p.staging_path);
    let mut end = 0;
    let end_to_end = used.iter().all(|p| {
        let next = p.in_place && p.staging_path == used[0].staging_path && p.offset == end;
        end += p.size;
        next
    });
    if end_to_end && !used.is_empty() {
        return (vec![loc(&used[0])], vec![(0, end)]);
    }
    used.iter().map(|p| (loc(p), (p.offset, p.size))).unzip()
}

/// S3's ETag of a multipart object: the MD5 of the parts' MD5s, with `-N`.
fn multipart_etag(parts: &[PartMeta]) -> S3Result<String> {
    let mut md5s = Md5::new();
    for p in parts {
        md5s.update(hex::decode(&p.etag).map_err(S3Error::internal)?);
    }
    Ok(format!("{}-{}", hex::encode(md5s.finalize()), parts.len()))
}

/// The checksum of the upload's algorithm and type (the full object's CRC combined from the
/// parts', or the composite), when every part has one.
fn upload_checksums(upload: &Upload, parts: &[PartMeta]) -> Vec<Checksum> {
    ChecksumAlgo::parse(&upload.checksum_algorithm)
        .and_then(|algo| {
            let values: Option<Vec<(String, u64)>> = parts
                .iter()
                .map(|p| p.checksums.iter().find(|c| c.algorithm == algo.name()).map(|c| (c.value.clone(), p.size)))
                .collect();
            let values = values?;
            let value = if upload.checksum_type == FULL_OBJECT {
                full_object(algo, &values)
            } else {
                composite(algo, &values.into_iter().map(|(v, _)| v).collect::<Vec<_>>())
            };
            value.map(|value| Checksum { algorithm: algo.name().to_string(), value })
        })
        .into_iter()
        .collect()
}

/// The whole object's checksum a CompleteMultipartUpload may carry as `x-amz-checksum-*`: it
/// must be the one computed (a composite one with or without its `-N`).
fn check_given_checksum(ctx: &Ctx, computed: &[Checksum]) -> S3Result<()> {
    for algo in crate::body::ALL_ALGOS {
        let Some(given) = ctx.header(algo.header()) else { continue };
        let ok = computed
            .iter()
            .any(|c| c.algorithm == algo.name() && (c.value == given || c.value.split('-').next() == Some(given)));
        if !ok {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the checksum of the parts (or the parts named lack one).",
                    algo.name()
                ),
            ));
        }
    }
    Ok(())
}

/// A retried complete names the parts the completion named, by number and ETag.
fn same_parts(asked: &[xml::CompletedPart], completed: &[PartInfo]) -> bool {
    asked.len() == completed.len()
        && asked
            .iter()
            .zip(completed)
            .all(|(a, c)| a.part_number == c.number && a.etag.trim().trim_matches('"') == c.etag)
}

/// A complete of an upload that is gone: if it was completed (and is still remembered), the
/// retry of a client whose answer was lost gets the same answer, as S3 gives; a different
/// list of parts is InvalidPart. Else NoSuchUpload.
async fn complete_again(ctx: &Ctx, r: UploadRef, asked: &[xml::CompletedPart]) -> S3Result<Response> {
    let done = ctx.gw.master.get_completed_upload(r).await?;
    if !same_parts(asked, &done.parts) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidPart,
            "This upload was completed already, with other parts: the parts named are not the parts of the object it made.",
        ));
    }
    complete_result(ctx, &done.etag, &done.checksums)
}

fn complete_result(ctx: &Ctx, etag: &str, checksums: &[Checksum]) -> S3Result<Response> {
    xml::response(
        "CompleteMultipartUploadResult",
        &xml::CompleteMultipartUploadResult {
            xmlns: NS,
            location: format!("/{}/{}", ctx.bucket, ctx.key),
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            etag: format!("\"{etag}\""),
            checksums: xml::ChecksumsXml::of(checksums),
            checksum_type: checksums.first().map(|c| checksum_type(c).to_string()),
        },
    )
}

fn gone(e: &strata_common::Error) -> bool {
    e.is(strata_common::ErrorKind::NoSuchUpload)
}

pub async fn complete(ctx: &Ctx, upload_id: &str, body: Body) -> S3Result<Response> {
    let raw = small_body(body, 4 << 20).await?;
    let mut req: xml::CompleteMultipartUpload = xml::parse(&raw)?;
    check_order(&mut req.parts)?;
    let r = upload_ref(ctx, upload_id);
    let state = match ctx.gw.master.get_upload(r.clone()).await {
        Err(e) if gone(&e) => return complete_again(ctx, r, &req.parts).await,
        state => state?,
    };
    // After the retry check: a retry's If-None-Match: * would fail on the object it made.
    let conditions = write_conditions(ctx).await?;
    let upload = state.upload.unwrap_or_default();
    let used = chosen_parts(&req.parts, &state.parts)?;
    let etag = multipart_etag(&used)?;
    let checksums = upload_checksums(&upload, &used);
    check_given_checksum(ctx, &checksums)?;
    let version = ctx.gw.master.allocate_version().await?;
    let staging = strata_common::ufs::staged_name(version);
    let (sources, ranges) = part_sources(&ctx.bucket, &used);
    let size: u64 = used.iter().map(|p| p.size).sum();
    let target = UfsLocation::staging(&ctx.bucket, &staging);
    let written = match compose(ctx, target, version, (sources, ranges), size).await {
        Ok(w) => w,
        // A concurrent complete of the same upload committed and released the parts meanwhile.
        Err(e) => match ctx.gw.master.get_upload(r.clone()).await {
            Err(g) if gone(&g) => return complete_again(ctx, r, &req.parts).await,
            _ => return Err(e),
        },
    };
    let meta = ObjectMeta {
        key: ctx.key.clone(),
        version,
        size: written.size,
        etag: etag.clone(),
        last_modified_ms: ids::now_ms(),
        headers: upload.headers,
        user_metadata: upload.user_metadata,
        checksums: checksums.clone(),
        block_size: ctx.gw.opts.block_size,
        ufs_etag: written.ufs_etag,
        parts: used
            .iter()
            .map(|p| PartInfo { number: p.number, size: p.size, etag: p.etag.clone(), checksums: p.checksums.clone() })
            .collect(),
        tags: upload.tags,
        owner: upload.owner,
        owner_display_name: upload.owner_display_name,
        grants: upload.grants,
        ..Default::default()
    };
    let (if_match, if_none_match_any) = conditions.to_wire();
    let done = CompleteUploadRequest {
        upload: Some(r.clone()),
        meta: Some(meta),
        if_match,
        if_none_match_any,
        staging_key: staging,
        if_none_match: conditions.if_none_match_wire(),
    };
    match ctx.gw.master.complete_upload(done).await {
        // Another complete of the same upload committed first.
        Err(e) if gone(&e) => complete_again(ctx, r, &req.parts).await,
        done => {
            done?;
            complete_result(ctx, &etag, &checksums)
        }
    }
}

pub async fn abort(ctx: &Ctx, upload_id: &str) -> S3Result<Response> {
    ctx.gw.master.abort_upload(upload_ref(ctx, upload_id)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn list_parts(ctx: &Ctx, upload_id: &str) -> S3Result<Response> {
    let state = ctx.gw.master.get_upload(upload_ref(ctx, upload_id)).await?;
    let marker: u32 = ctx.query.get("part-number-marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let max = crate::ops::list::max_keys(ctx, "max-parts")?;
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
    let max = crate::ops::list::max_keys(ctx, "max-uploads")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(parts: &[(u32, &str)]) -> Vec<xml::CompletedPart> {
        parts.iter().map(|(n, e)| xml::CompletedPart { part_number: *n, etag: e.to_string() }).collect()
    }

    fn stored(number: u32, size: u64, etag: &str) -> PartMeta {
        PartMeta { number, size, etag: etag.into(), ..Default::default() }
    }

    #[test]
    fn parts_must_be_named_in_ascending_order() {
        assert_eq!(check_order(&mut vec![]).unwrap_err().code, S3ErrorCode::MalformedXML);
        let mut bad = asked(&[(2, "a"), (1, "b")]);
        assert_eq!(check_order(&mut bad).unwrap_err().code, S3ErrorCode::InvalidPartOrder);
        assert!(check_order(&mut asked(&[(1, "a"), (3, "b")])).is_ok());
    }

    #[test]
    fn a_part_named_twice_counts_as_its_last_entry() {
        let mut twice = asked(&[(1, "b"), (1, "a"), (2, "c")]);
        check_order(&mut twice).unwrap();
        let got: Vec<(u32, &str)> = twice.iter().map(|p| (p.part_number, p.etag.as_str())).collect();
        assert_eq!(got, [(1, "a"), (2, "c")]);
    }

    #[test]
    fn parts_are_found_by_number_and_quoted_etag() {
        let big = MIN_PART;
        let have = [stored(1, big, "aa"), stored(2, 10, "bb"), stored(3, 1, "cc")];
        let used = chosen_parts(&asked(&[(1, "\"aa\""), (3, "cc")]), &have).unwrap();
        assert_eq!(used.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 3]);
        let e = chosen_parts(&asked(&[(1, "\"zz\"")]), &have).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidPart);
    }

    #[test]
    fn only_the_last_part_may_be_small() {
        let have = [stored(1, 10, "aa"), stored(2, 10, "bb")];
        let e = chosen_parts(&asked(&[(1, "aa"), (2, "bb")]), &have).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::EntityTooSmall);
        assert!(chosen_parts(&asked(&[(2, "bb")]), &have).is_ok());
    }

    #[test]
    fn a_retried_complete_must_name_the_same_parts() {
        let done = |parts: &[(u32, &str)]| -> Vec<PartInfo> {
            parts.iter().map(|(n, e)| PartInfo { number: *n, etag: e.to_string(), ..Default::default() }).collect()
        };
        let recorded = done(&[(1, "aa"), (2, "bb")]);
        assert!(same_parts(&asked(&[(1, "\"aa\""), (2, "bb")]), &recorded));
        assert!(!same_parts(&asked(&[(1, "aa")]), &recorded));
        assert!(!same_parts(&asked(&[(1, "aa"), (2, "cc")]), &recorded));
        assert!(!same_parts(&asked(&[(1, "aa"), (3, "bb")]), &recorded));
    }

    #[test]
    fn the_etag_is_the_md5_of_the_part_md5s() {
        // MD5("") and MD5("a"), concatenated and hashed.
        let parts =
            [stored(1, 0, "d41d8cd98f00b204e9800998ecf8427e"), stored(2, 1, "0cc175b9c0f1b6a831c399e269772661")];
        let mut m = Md5::new();
        m.update(hex::decode("d41d8cd98f00b204e9800998ecf8427e0cc175b9c0f1b6a831c399e269772661").unwrap());
        assert_eq!(multipart_etag(&parts).unwrap(), format!("{}-2", hex::encode(m.finalize())));
        assert_eq!(multipart_etag(&[stored(1, 0, "not hex")]).unwrap_err().code, S3ErrorCode::InternalError);
    }

    #[test]
    fn a_composite_checksum_needs_every_part_to_have_one() {
        let with = |v: &str| Checksum { algorithm: "CRC32".into(), value: v.into() };
        let mut a = stored(1, 0, "aa");
        a.checksums.push(with("AAAAAA=="));
        let mut b = stored(2, 0, "bb");
        b.checksums.push(with("AAAAAQ=="));
        let upload =
            |t: &str| Upload { checksum_algorithm: "CRC32".into(), checksum_type: t.into(), ..Default::default() };
        let got = upload_checksums(&upload(""), &[a.clone(), b.clone()]);
        assert_eq!(got.len(), 1);
        assert!(got[0].value.ends_with("-2"), "{}", got[0].value);
        let full = upload_checksums(&upload(FULL_OBJECT), &[a.clone(), b]);
        assert!(!full[0].value.contains('-'), "{}", full[0].value);
        assert!(upload_checksums(&upload(""), &[a.clone(), stored(2, 0, "bb")]).is_empty());
        assert!(upload_checksums(&Upload::default(), &[a]).is_empty());
    }

    #[test]
    fn checksum_types_follow_the_algorithm() {
        use ChecksumAlgo::*;
        assert_eq!(checksum_type_of(None, None).unwrap(), None);
        assert_eq!(checksum_type_of(Some(Crc32), None).unwrap(), Some(COMPOSITE));
        assert_eq!(checksum_type_of(Some(Crc64Nvme), None).unwrap(), Some(FULL_OBJECT));
        assert_eq!(checksum_type_of(Some(Crc32c), Some("full_object")).unwrap(), Some(FULL_OBJECT));
        for (algo, t) in
            [(Some(Sha256), "FULL_OBJECT"), (Some(Crc64Nvme), "COMPOSITE"), (None, "COMPOSITE"), (Some(Crc32), "X")]
        {
            assert_eq!(checksum_type_of(algo, Some(t)).unwrap_err().code, S3ErrorCode::InvalidRequest, "{algo:?} {t}");
        }
    }
}
