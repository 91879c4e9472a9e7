//! GetObject and HeadObject: conditions, Range or partNumber, the object's headers, and its
//! bytes streamed through the read pipeline.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use futures::{StreamExt, TryStreamExt, stream};
use strata_common::Error;
use strata_common::proto::Checksum;

use crate::error::S3Result;
use crate::headers::{checksum_type, empty, http_date, object_headers, set, set_checksums};
use crate::read::{preconditions, read_range, read_type, requested_range};
use crate::request::Ctx;

/// `response-*` query parameters and the headers they override.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

pub async fn get_object(ctx: &Ctx, with_body: bool) -> S3Result<Response> {
    let mode = read_type(ctx.header("x-strata-read-type"))?;
    let meta = ctx.object().await?;
    if let Some(status) = preconditions(&ctx.headers, &meta, "")? {
        let mut r = empty(status);
        set(r.headers_mut(), "etag", &format!("\"{}\"", meta.etag));
        set(r.headers_mut(), "last-modified", &http_date(meta.last_modified_ms));
        return Ok(r);
    }
    let range = requested_range(ctx, &meta)?;
    let (start, len) = range.unwrap_or((0, meta.size));
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    object_headers(h, &meta);
    set(h, "content-length", &len.to_string());
    let checksum_mode = ctx.header("x-amz-checksum-mode").is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    // A part asked by number carries its own checksum, beside the type of the object's.
    let part = ctx
        .query
        .get("partNumber")
        .and_then(|n| n.parse::<usize>().ok()?.checked_sub(1))
        .and_then(|i| meta.parts.get(i));
    if range.is_some() {
        set(h, "content-range", &format!("bytes {}-{}/{}", start, start + len - 1, meta.size));
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    if checksum_mode && (range.is_none() || part.is_some()) {
        for c in &meta.checksums {
            let same_algo = |p: &&Checksum| p.algorithm == c.algorithm;
            let values: Vec<Checksum> = match part {
                Some(p) => p.checksums.iter().filter(same_algo).cloned().collect(),
                None => vec![c.clone()],
            };
            set_checksums(resp.headers_mut(), &values);
            set(resp.headers_mut(), "x-amz-checksum-type", checksum_type(c));
        }
    }
    for (param, header) in RESPONSE_OVERRIDES {
        if let Some(v) = ctx.query.get(param) {
            set(resp.headers_mut(), header, v);
        }
    }
    if with_body && len > 0 {
        let mut bytes = read_range(&ctx.gw, &ctx.bucket, &meta, start, len, mode);
        // The first bytes before the status: a read that fails at once is an S3 error, not a
        // 200 whose body breaks off (later failures can only cut the body).
        let first = match bytes.next().await {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Err(e.into()),
            None => {
                return Err(Error::internal(format!("the read of {}/{} gave no bytes", ctx.bucket, meta.key)).into());
            }
        };
        let body = stream::once(async { Ok(first) })
            .chain(bytes)
            .inspect_ok(|b| metrics::counter!("strata_gateway_bytes_out_total").increment(b.len() as u64))
            .map_err(|e| std::io::Error::other(e.to_string()));
        *resp.body_mut() = Body::from_stream(body);
    }
    Ok(resp)
}
