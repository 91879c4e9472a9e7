//! Who may do what: the one place a request's principal (the root key, a user, or anonymous)
//! is checked against the bucket's and object's owners, ACL grants and PublicAccessBlock.
//!
//! Rules (AWS's ACL model): the root key may do everything; a bucket's owner everything in it;
//! an object's owner everything on it. Anyone else needs a grant: READ on a bucket lists it,
//! WRITE on a bucket writes and deletes its objects, READ on an object reads it, READ_ACP and
//! WRITE_ACP read and replace an ACL (FULL_CONTROL is all four). AllUsers grants count for
//! everyone, AuthenticatedUsers grants for every signed request, unless the bucket's
//! PublicAccessBlock has IgnorePublicAcls. Other bucket configuration is its owner's only. A
//! missing bucket is NoSuchBucket for everyone; a missing object NoSuchKey for whoever may list
//! the bucket, AccessDenied for the rest (as AWS, so that keys cannot be probed).

use strata_common::ErrorKind;
use strata_common::proto::{Bucket, CredentialResponse, Grant, ObjectMeta, PublicAccessBlock};

use crate::acl::{self, ALL_USERS, AUTHENTICATED_USERS, Owner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::request::Ctx;
use crate::router::Endpoint;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The bootstrap key of the master's credentials file; its id is its access key.
    Root(Owner),
    User(Owner),
    Anonymous,
}

impl Principal {
    pub fn of(c: &CredentialResponse) -> Principal {
        let o = Owner { id: c.user_id.clone(), display_name: c.display_name.clone() };
        if c.root { Principal::Root(o) } else { Principal::User(o) }
    }

    /// The owner of what this principal creates.
    pub fn owner(&self) -> Owner {
        match self {
            Principal::Root(o) | Principal::User(o) => o.clone(),
            Principal::Anonymous => Owner { id: "anonymous".into(), display_name: "anonymous".into() },
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Principal::Root(o) | Principal::User(o) => Some(&o.id),
            Principal::Anonymous => None,
        }
    }

    /// Whether `owner` ("" = the root key, for records older than owners) is this principal.
    pub fn is(&self, owner: &str) -> bool {
        match self {
            Principal::Root(_) => true,
            _ => self.id().is_some_and(|id| id == owner),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl Perm {
    fn name(self) -> &'static str {
        match self {
            Perm::Read => "READ",
            Perm::Write => "WRITE",
            Perm::ReadAcp => "READ_ACP",
            Perm::WriteAcp => "WRITE_ACP",
        }
    }
}

/// Whether one of `grants` gives `p` the permission `perm`.
pub fn granted(p: &Principal, grants: &[Grant], perm: Perm, pab: Option<&PublicAccessBlock>) -> bool {
    let ignore_public = pab.is_some_and(|b| b.ignore_public_acls);
    grants.iter().any(|g| {
        let applies = if g.uri == ALL_USERS {
            !ignore_public
        } else if g.uri == AUTHENTICATED_USERS {
            !ignore_public && p.id().is_some()
        } else {
            g.uri.is_empty() && p.id() == Some(g.id.as_str())
        };
        applies && (g.permission == "FULL_CONTROL" || g.permission == perm.name())
    })
}

/// The bucket's owner.
pub fn bucket_owner(b: &Bucket) -> Owner {
    let name = if b.owner_display_name.is_empty() { &b.owner } else { &b.owner_display_name };
    Owner { id: b.owner.clone(), display_name: name.clone() }
}

/// The object's owner: its writer, or the bucket's owner for objects older than owners.
pub fn object_owner(b: &Bucket, m: &ObjectMeta) -> Owner {
    if m.owner.is_empty() {
        return bucket_owner(b);
    }
    let name = if m.owner_display_name.is_empty() { &m.owner } else { &m.owner_display_name };
    Owner { id: m.owner.clone(), display_name: name.clone() }
}

/// May `p` do `perm` on the bucket?
pub fn bucket_allows(p: &Principal, b: &Bucket, perm: Perm) -> bool {
    p.is(&b.owner) || granted(p, &b.grants, perm, b.public_access_block.as_ref())
}

/// May `p` do `perm` on the object? Its bucket's owner may, as its owner may.
pub fn object_allows(p: &Principal, b: &Bucket, m: &ObjectMeta, perm: Perm) -> bool {
    p.is(&b.owner)
        || (!m.owner.is_empty() && p.is(&m.owner))
        || granted(p, &m.grants, perm, b.public_access_block.as_ref())
}

fn denied() -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied, "Access Denied")
}

/// What a request needs of its bucket and object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A signed request (ListBuckets, CreateBucket).
    Signed,
    BucketOwner,
    Bucket(Perm),
    Object(Perm),
}

fn need(e: &Endpoint) -> Need {
    use Endpoint as E;
    match e {
        E::ListBuckets | E::CreateBucket => Need::Signed,
        E::ListObjects | E::ListObjectsV2 | E::ListMultipartUploads | E::HeadBucket => Need::Bucket(Perm::Read),
        E::PutObject
        | E::DeleteObject
        | E::DeleteObjects
        | E::CreateMultipartUpload
        | E::UploadPart { .. }
        | E::CompleteMultipartUpload { .. }
        | E::AbortMultipartUpload { .. }
        | E::ListParts { .. }
        | E::CopyObject
        | E::UploadPartCopy { .. } => Need::Bucket(Perm::Write),
        E::GetBucketAcl => Need::Bucket(Perm::ReadAcp),
        E::PutBucketAcl => Need::Bucket(Perm::WriteAcp),
        E::GetObject | E::HeadObject | E::GetObjectAttributes => Need::Object(Perm::Read),
        E::GetObjectAcl => Need::Object(Perm::ReadAcp),
        E::PutObjectAcl => Need::Object(Perm::WriteAcp),
        _ => Need::BucketOwner,
    }
}

/// Endpoints that take a canned ACL in `x-amz-acl`.
fn takes_canned(e: &Endpoint) -> bool {
    matches!(
        e,
        Endpoint::CreateBucket
            | Endpoint::PutBucketAcl
            | Endpoint::PutObject
            | Endpoint::PutObjectAcl
            | Endpoint::CopyObject
            | Endpoint::CreateMultipartUpload
    )
}

/// The public canned ACLs, which BlockPublicAcls refuses.
fn public_canned(name: &str) -> bool {
    matches!(name, "public-read" | "public-read-write" | "authenticated-read")
}

/// Refuses a public ACL on a bucket whose PublicAccessBlock blocks them.
pub fn check_public_acl(b: &Bucket, grants: &[Grant]) -> S3Result<()> {
    if b.public_access_block.is_some_and(|p| p.block_public_acls) && grants.iter().any(acl::is_public) {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "Access Denied: the bucket's PublicAccessBlock (BlockPublicAcls) refuses public ACLs",
        ));
    }
    Ok(())
}

/// `x-amz-copy-source` as `(bucket, key)`; None when unreadable (the copy itself says why).
fn copy_source(ctx: &Ctx) -> Option<(String, String)> {
    let raw = ctx.header("x-amz-copy-source")?;
    let path = raw.split_once('?').map(|(p, _)| p).unwrap_or(raw);
    let path = percent_encoding::percent_decode_str(path.trim_start_matches('/')).decode_utf8().ok()?;
    path.split_once('/').map(|(b, k)| (b.to_string(), k.to_string()))
}

/// Checks that the request's principal may make it. The root key's requests cost nothing here
/// (but for a public canned ACL, which the bucket's PublicAccessBlock may refuse); anyone
/// else's read the bucket (and the object) from the master.
pub async fn authorize(ctx: &Ctx, endpoint: &Endpoint) -> S3Result<()> {
    let p = &ctx.principal;
    let canned = if takes_canned(endpoint) { ctx.header("x-amz-acl") } else { None };
    if let Some(c) = canned {
        acl::canned(c, &Owner::default(), Some(&Owner { id: "-".into(), ..Default::default() }))?;
    }
    let blockable = canned.is_some_and(public_canned) && *endpoint != Endpoint::CreateBucket;
    if matches!(p, Principal::Root(_)) && !blockable {
        return Ok(());
    }
    let n = need(endpoint);
    if n == Need::Signed {
        return if *p == Principal::Anonymous { Err(denied()) } else { Ok(()) };
    }
    let bucket = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    if blockable {
        check_public_acl(&bucket, &[Grant { uri: ALL_USERS.into(), ..Default::default() }])?;
    }
    let ok = match n {
        Need::Signed => true,
        Need::BucketOwner => p.is(&bucket.owner),
        Need::Bucket(perm) => bucket_allows(p, &bucket, perm),
        Need::Object(perm) => object_check(ctx, &bucket, &ctx.key, perm).await?,
    };
    if !ok {
        return Err(denied());
    }
    if matches!(endpoint, Endpoint::CopyObject | Endpoint::UploadPartCopy { .. })
        && let Some((sb, sk)) = copy_source(ctx)
    {
        let src = if sb == ctx.bucket { bucket } else { ctx.gw.master.get_bucket(&sb).await? };
        if !object_check(ctx, &src, &sk, Perm::Read).await? {
            return Err(denied());
        }
    }
    Ok(())
}

/// May the principal do `perm` on `key` of `bucket`? A missing object: yes for whoever may list
/// the bucket (the operation then answers NoSuchKey), no for the rest.
async fn object_check(ctx: &Ctx, bucket: &Bucket, key: &str, perm: Perm) -> S3Result<bool> {
    let p = &ctx.principal;
    if p.is(&bucket.owner) {
        return Ok(true);
    }
    match ctx.gw.master.lookup(&bucket.name, key).await {
        Ok(meta) => {
            let allowed = object_allows(p, bucket, &meta, perm);
            if bucket.name == ctx.bucket && key == ctx.key {
                // The operation reads the same object: no second lookup.
                let _ = ctx.looked_up.set(meta);
            }
            Ok(allowed)
        }
        Err(e) if e.is(ErrorKind::NoSuchKey) => Ok(bucket_allows(p, bucket, Perm::Read)),
        Err(e) => Err(e.into()),
    }
}

/// The grants a new object (or upload) gets from `x-amz-acl` (private by default) and its owner.
pub async fn new_object_acl(ctx: &Ctx) -> S3Result<(Owner, Vec<Grant>)> {
    let owner = ctx.principal.owner();
    let name = ctx.header("x-amz-acl").unwrap_or("private");
    let bucket_owner = if name.starts_with("bucket-owner") {
        bucket_owner(&ctx.gw.master.get_bucket(&ctx.bucket).await?)
    } else {
        Owner { id: "-".into(), ..Default::default() }
    };
    let grants = acl::canned(name, &owner, Some(&bucket_owner))?;
    Ok((owner, grants))
}

#[cfg(test)]
mod tests;
