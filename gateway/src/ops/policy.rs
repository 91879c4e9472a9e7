//! Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. A policy is checked
//! (`policy::Policy::parse`) before it is stored, and kept as put: GetBucketPolicy answers the
//! same bytes. Who may call them is decided before, in `access`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use strata_common::proto::BucketAccessRequest;

use crate::access::policy_is_public;
use crate::acl;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::empty;
use crate::policy::{MAX_POLICY, Policy};
use crate::request::{Ctx, small_body};
use crate::xml::NS;

pub async fn put(ctx: &Ctx, body: Body) -> S3Result<Response> {
    let raw = small_body(body, MAX_POLICY + 1).await?;
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let policy = Policy::parse(&raw, &ctx.bucket)?;
    if b.public_access_block.is_some_and(|p| p.block_public_policy) && policy.is_public() {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "Access Denied: the bucket's PublicAccessBlock (BlockPublicPolicy) refuses public policies",
        ));
    }
    // Parsed as JSON, so UTF-8.
    let text = String::from_utf8_lossy(&raw).into_owned();
    let req = BucketAccessRequest { bucket: ctx.bucket.clone(), set_policy: true, policy: text, ..Default::default() };
    ctx.gw.set_bucket_access(req).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn get(ctx: &Ctx) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    if b.policy.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchBucketPolicy, "The bucket policy does not exist"));
    }
    let mut r = Response::new(Body::from(b.policy));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    Ok(r)
}

pub async fn delete(ctx: &Ctx) -> S3Result<Response> {
    let req = BucketAccessRequest { bucket: ctx.bucket.clone(), set_policy: true, ..Default::default() };
    ctx.gw.set_bucket_access(req).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Public: its policy lets anyone in, or (as RGW answers) its ACL grants to a public group.
pub async fn status(ctx: &Ctx) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let ignore_acls = b.public_access_block.is_some_and(|p| p.ignore_public_acls);
    let public = policy_is_public(&ctx.gw, &b) || (!ignore_acls && b.grants.iter().any(acl::is_public));
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PolicyStatus xmlns=\"{NS}\"><IsPublic>{public}</IsPublic></PolicyStatus>"
    );
    let mut r = Response::new(Body::from(doc));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    Ok(r)
}
