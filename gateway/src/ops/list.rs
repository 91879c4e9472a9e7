//! ListObjects (v1) and ListObjectsV2, with `encoding-type=url` and continuation tokens.

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use strata_common::proto::ListObjectsRequest;

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::request::Ctx;
use crate::xml::{self, NS};

/// Leads every continuation token we hand out, so that one we did not is refused.
const TOKEN_TAG: &[u8] = b"strata1:";

/// `encoding-type=url`: like S3, everything but unreserved characters and `/` is escaped.
const URL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// A listing's `max-keys` (or `max-uploads`, `max-parts`): 0 to 2^31-1, capped at 1000.
pub(crate) fn max_keys(ctx: &Ctx, name: &str) -> S3Result<u32> {
    match ctx.query.get(name) {
        None => Ok(1000),
        Some(v) => v.parse::<i32>().ok().filter(|n| *n >= 0).map(|n| n.min(1000) as u32).ok_or_else(|| {
            S3Error::invalid_argument(format!("Provided {name} not an integer or within integer range"))
        }),
    }
}

pub async fn list_objects(ctx: &Ctx, v2: bool) -> S3Result<Response> {
    let q = &ctx.query;
    let url_encode = match q.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "Invalid Encoding Method specified in Request"));
        }
    };
    let enc = |s: &str| if url_encode { utf8_percent_encode(s, URL).to_string() } else { s.to_string() };
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delimiter = q.get("delimiter").unwrap_or("").to_string();
    let max = max_keys(ctx, "max-keys")?;
    let token = if v2 { q.get("continuation-token") } else { None };
    let start_after = match (v2, token) {
        (true, Some(t)) => {
            let bad = || S3Error::invalid_argument("The continuation token provided is incorrect");
            let raw = TOKEN.decode(t).map_err(|_| bad())?;
            // An empty token is no token (ceph/s3-tests test_bucket_listv2_continuationtoken_empty).
            let key = if t.is_empty() { &[][..] } else { raw.strip_prefix(TOKEN_TAG).ok_or_else(bad)? };
            String::from_utf8(key.to_vec()).map_err(|_| bad())?
        }
        (true, None) => q.get("start-after").unwrap_or("").to_string(),
        (false, _) => q.get("marker").unwrap_or("").to_string(),
    };
    let page = ctx
        .gw
        .master
        .list_objects(ListObjectsRequest {
            bucket: ctx.bucket.clone(),
            prefix: prefix.clone(),
            delimiter: delimiter.clone(),
            start_after,
            max_keys: max,
        })
        .await?;
    let fetch_owner = !v2 || q.get("fetch-owner") == Some("true");
    let contents: Vec<xml::ObjectXml> = page
        .objects
        .iter()
        .map(|o| xml::ObjectXml {
            key: enc(&o.key),
            last_modified: xml::time(o.last_modified_ms),
            etag: format!("\"{}\"", o.etag),
            size: o.size,
            storage_class: "STANDARD",
            owner: fetch_owner.then(|| ctx.owner()),
        })
        .collect();
    let common_prefixes: Vec<xml::PrefixXml> =
        page.common_prefixes.iter().map(|p| xml::PrefixXml { prefix: enc(p) }).collect();
    let mut result = xml::ListBucketResult {
        xmlns: NS,
        name: ctx.bucket.clone(),
        // AWS encodes v1's Prefix never (botocore, which decodes what AWS encodes, leaves it).
        prefix: if v2 { enc(&prefix) } else { prefix.clone() },
        max_keys: max,
        delimiter: (!delimiter.is_empty()).then(|| enc(&delimiter)),
        encoding_type: url_encode.then(|| "url".to_string()),
        is_truncated: page.truncated,
        ..Default::default()
    };
    if v2 {
        result.key_count = Some(contents.len() + common_prefixes.len());
        result.continuation_token = token.map(str::to_string);
        result.next_continuation_token =
            page.truncated.then(|| TOKEN.encode([TOKEN_TAG, page.next_marker.as_bytes()].concat()));
        result.start_after = q.get("start-after").map(enc);
    } else {
        result.marker = Some(enc(q.get("marker").unwrap_or("")));
        // S3 gives NextMarker only with a delimiter; without one, clients use the last key.
        result.next_marker = (page.truncated && !delimiter.is_empty()).then(|| enc(&page.next_marker));
    }
    result.contents = contents;
    result.common_prefixes = common_prefixes;
    xml::response("ListBucketResult", &result)
}
