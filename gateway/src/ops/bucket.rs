//! Bucket operations: list, create, delete, head, location and versioning.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::error::{S3Error, S3Result};
use crate::headers::empty;
use crate::request::{Ctx, small_body};
use crate::xml::{self, NS};

/// ListBuckets, in name order; `prefix` filters, and `max-buckets` pages with a
/// `ContinuationToken` (the last name of the page) when more buckets follow.
pub async fn list_buckets(ctx: &Ctx) -> S3Result<Response> {
    let max = match ctx.query.get("max-buckets") {
        None => None,
        Some(m) => Some(
            m.parse::<usize>()
                .ok()
                .filter(|m| (1..=10_000).contains(m))
                .ok_or_else(|| S3Error::invalid_argument("max-buckets must be an integer from 1 to 10000"))?,
        ),
    };
    let prefix = ctx.query.get("prefix").unwrap_or("");
    let after = ctx.query.get("continuation-token").unwrap_or("");
    let mut buckets = ctx.gw.master.list_buckets().await?;
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    buckets.retain(|b| {
        b.name.starts_with(prefix) && b.name.as_str() > after && crate::access::lists_bucket(&ctx.principal, b)
    });
    let more = max.is_some_and(|m| buckets.len() > m);
    buckets.truncate(max.unwrap_or(usize::MAX));
    let continuation_token = if more { buckets.last().map(|b| b.name.clone()) } else { None };
    xml::response(
        "ListAllMyBucketsResult",
        &xml::ListAllMyBucketsResult {
            xmlns: NS,
            owner: ctx.owner(),
            buckets: xml::BucketsXml {
                bucket: buckets
                    .into_iter()
                    .map(|b| xml::BucketXml { name: b.name, creation_date: xml::time(b.created_ms) })
                    .collect(),
            },
            continuation_token,
            prefix: ctx.query.get("prefix").map(str::to_string),
        },
    )
}

pub async fn create_bucket(ctx: &Ctx, body: Body) -> S3Result<Response> {
    // A CreateBucketConfiguration may name a location; every location is this cluster.
    let raw = small_body(body, 64 << 10).await?;
    let mut location = None;
    if !raw.iter().all(|b| b.is_ascii_whitespace()) {
        let conf = xml::parse::<xml::CreateBucketConfiguration>(&raw)?;
        tracing::debug!(location = ?conf.location_constraint, "CreateBucket location constraint accepted");
        location = conf.location_constraint.filter(|l| !l.is_empty());
    }
    // AWS's legacy rule in us-east-1: creating a bucket one has (without a location
    // constraint) succeeds and leaves the bucket as it is.
    let legacy = ctx.gw.opts.region == "us-east-1" && location.is_none();
    super::acl::create_owned_bucket(ctx, legacy).await?;
    let mut r = empty(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&format!("/{}", ctx.bucket)) {
        r.headers_mut().insert("location", v);
    }
    Ok(r)
}

pub async fn delete_bucket(ctx: &Ctx) -> S3Result<Response> {
    ctx.gw.master.delete_bucket(&ctx.bucket).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn head_bucket(ctx: &Ctx) -> S3Result<Response> {
    ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let mut r = empty(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&ctx.gw.opts.region) {
        r.headers_mut().insert("x-amz-bucket-region", v);
    }
    Ok(r)
}

pub async fn get_bucket_location(ctx: &Ctx) -> S3Result<Response> {
    ctx.gw.master.get_bucket(&ctx.bucket).await?;
    // us-east-1 is written as an empty constraint, as AWS does.
    let region = if ctx.gw.opts.region == "us-east-1" { String::new() } else { ctx.gw.opts.region.clone() };
    xml::response("LocationConstraint", &xml::LocationConstraint { xmlns: NS, region })
}

pub async fn get_bucket_versioning(ctx: &Ctx) -> S3Result<Response> {
    ctx.gw.master.get_bucket(&ctx.bucket).await?;
    xml::response("VersioningConfiguration", &xml::VersioningConfiguration { xmlns: NS })
}
