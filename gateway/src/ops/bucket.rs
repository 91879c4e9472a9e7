//! Bucket operations: list, create, delete, head, location and versioning.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::error::S3Result;
use crate::headers::empty;
use crate::request::{Ctx, small_body};
use crate::xml::{self, NS};

pub async fn list_buckets(ctx: &Ctx) -> S3Result<Response> {
    let buckets = ctx.gw.master.list_buckets().await?;
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
        },
    )
}

pub async fn create_bucket(ctx: &Ctx, body: Body) -> S3Result<Response> {
    // A CreateBucketConfiguration may name a location; every location is this cluster.
    let raw = small_body(body, 64 << 10).await?;
    if !raw.iter().all(|b| b.is_ascii_whitespace()) {
        let conf = xml::parse::<xml::CreateBucketConfiguration>(&raw)?;
        tracing::debug!(location = ?conf.location_constraint, "CreateBucket location constraint accepted");
    }
    ctx.gw.master.create_bucket(&ctx.bucket).await?;
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
