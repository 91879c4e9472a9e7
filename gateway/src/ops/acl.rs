//! ACL and PublicAccessBlock operations: Get/Put{Bucket,Object}Acl (a canned `x-amz-acl` or an
//! `AccessControlPolicy` body), Get/Put/DeletePublicAccessBlock, and the owner and ACL a new
//! bucket gets. Who may call them is decided before, in `access`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use strata_common::ErrorKind;
use strata_common::proto::{BucketAccessRequest, Grant, ObjectAclRequest};

use crate::access::{self, bucket_owner, check_public_acl, object_owner};
use crate::acl::{self, Owner, PublicAccessBlockXml};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::empty;
use crate::request::{Ctx, small_body};
use crate::xml;

const MAX_ACL_BODY: usize = 256 << 10;

fn xml_response(doc: String) -> Response {
    let mut r = Response::new(Body::from(doc));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    r
}

/// The grants of a Put*Acl request: its canned header, or else its body.
async fn requested_grants(ctx: &Ctx, body: Body, owner: &Owner, bucket: Option<&Owner>) -> S3Result<Vec<Grant>> {
    let raw = small_body(body, MAX_ACL_BODY).await?;
    let has_body = !raw.iter().all(|b| b.is_ascii_whitespace());
    match ctx.header("x-amz-acl") {
        Some(_) if has_body => Err(S3Error::new(
            S3ErrorCode::UnexpectedContent,
            "This request does not support content: give either x-amz-acl or an AccessControlPolicy body",
        )),
        Some(name) => acl::canned(name, owner, bucket),
        None if has_body => acl::parse_policy(&raw),
        None => Err(S3Error::new(
            S3ErrorCode::MissingSecurityHeader,
            "Your request was missing a required header: x-amz-acl",
        )),
    }
}

pub async fn get_bucket_acl(ctx: &Ctx) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let owner = bucket_owner(&b);
    let grants = if b.grants.is_empty() { acl::canned("private", &owner, None)? } else { b.grants };
    Ok(xml_response(acl::policy_xml(&owner, &grants)))
}

pub async fn put_bucket_acl(ctx: &Ctx, body: Body) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let grants = requested_grants(ctx, body, &bucket_owner(&b), None).await?;
    check_public_acl(&b, &grants)?;
    let req = BucketAccessRequest { bucket: ctx.bucket.clone(), set_grants: true, grants, ..Default::default() };
    ctx.gw.set_bucket_access(req).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_object_acl(ctx: &Ctx) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let m = ctx.object().await?;
    let owner = object_owner(&b, &m);
    let grants = if m.grants.is_empty() { acl::canned("private", &owner, None)? } else { m.grants };
    Ok(xml_response(acl::policy_xml(&owner, &grants)))
}

pub async fn put_object_acl(ctx: &Ctx, body: Body) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let m = ctx.gw.master.lookup(&ctx.bucket, &ctx.key).await?;
    let grants = requested_grants(ctx, body, &object_owner(&b, &m), Some(&bucket_owner(&b))).await?;
    check_public_acl(&b, &grants)?;
    let req = ObjectAclRequest { bucket: ctx.bucket.clone(), key: ctx.key.clone(), grants };
    ctx.gw.master.set_object_acl(req).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_public_access_block(ctx: &Ctx) -> S3Result<Response> {
    let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let Some(p) = b.public_access_block else {
        return Err(S3Error::new(
            S3ErrorCode::NoSuchPublicAccessBlockConfiguration,
            "The public access block configuration was not found",
        ));
    };
    xml::response("PublicAccessBlockConfiguration", &PublicAccessBlockXml::of(&p))
}

pub async fn put_public_access_block(ctx: &Ctx, body: Body) -> S3Result<Response> {
    let raw = small_body(body, MAX_ACL_BODY).await?;
    let pab = PublicAccessBlockXml::parse(&raw)?;
    let req = BucketAccessRequest {
        bucket: ctx.bucket.clone(),
        set_public_access_block: true,
        public_access_block: Some(pab),
        ..Default::default()
    };
    ctx.gw.set_bucket_access(req).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete_public_access_block(ctx: &Ctx) -> S3Result<Response> {
    let req = BucketAccessRequest { bucket: ctx.bucket.clone(), set_public_access_block: true, ..Default::default() };
    ctx.gw.set_bucket_access(req).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// CreateBucket with its owner (the requester) and ACL (`x-amz-acl`, private by default) set
/// in the creating transaction. A bucket that exists and is someone else's is
/// BucketAlreadyExists; one's own is BucketAlreadyOwnedByYou, or left as it is with success
/// under the us-east-1 `legacy` rule.
pub async fn create_owned_bucket(ctx: &Ctx, legacy: bool) -> S3Result<()> {
    let owner = ctx.principal.owner();
    let grants = acl::canned(ctx.header("x-amz-acl").unwrap_or("private"), &owner, None)?;
    let req = BucketAccessRequest {
        bucket: ctx.bucket.clone(),
        set_owner: true,
        owner: owner.id.clone(),
        owner_display_name: owner.display_name.clone(),
        set_grants: true,
        grants,
        ..Default::default()
    };
    let created = ctx.gw.master.create_owned_bucket(&ctx.bucket, req).await;
    ctx.gw.forget_bucket(&ctx.bucket);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.is(ErrorKind::BucketAlreadyOwnedByYou) => {
            let b = ctx.gw.master.get_bucket(&ctx.bucket).await?;
            let mine = if b.owner.is_empty() {
                matches!(ctx.principal, access::Principal::Root(_))
            } else {
                b.owner == owner.id
            };
            if mine && legacy {
                return Ok(());
            }
            if mine {
                return Err(e.into());
            }
            Err(S3Error::new(
                S3ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            ))
        }
        Err(e) => Err(e.into()),
    }
}
