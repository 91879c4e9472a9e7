//! Who may do what: the one place a request's principal (the root key, a user, or anonymous)
//! is checked against the bucket's policy, owners, ACL grants, the grants of `strata admin
//! grant` and PublicAccessBlock.
//!
//! Order (AWS's): an explicit Deny of the bucket policy refuses, whoever asks (the root key
//! too), but for the bucket's owner reading or replacing the policy; then the root key may do
//! everything; then an Allow of the policy, ownership, an ACL grant or an admin grant lets in;
//! else AccessDenied. RestrictPublicBuckets takes the public statements' Allow away.
//!
//! Rules (AWS's ACL model): the root key may do everything; a bucket's owner everything in it;
//! an object's owner everything on it. Anyone else needs a grant: READ on a bucket lists it,
//! WRITE on a bucket writes and deletes its objects, READ on an object reads it, READ_ACP and
//! WRITE_ACP read and replace an ACL (FULL_CONTROL is all four). AllUsers grants count for
//! everyone, AuthenticatedUsers grants for every signed request, unless the bucket's
//! PublicAccessBlock has IgnorePublicAcls. Other bucket configuration is its owner's only. A
//! missing bucket is NoSuchBucket for everyone; a missing object NoSuchKey for whoever may list
//! the bucket, AccessDenied for the rest (as AWS, so that keys cannot be probed).

use std::collections::BTreeMap;
use strata_common::ErrorKind;

use strata_common::proto::{Bucket, CredentialResponse, Grant, ObjectMeta, PublicAccessBlock, UserBucketGrant};

use crate::acl::{self, ALL_USERS, AUTHENTICATED_USERS, Owner};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::policy::{Context, Decision};
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

/// The grant `strata admin grant` gave `p` on the bucket.
fn admin_grant<'a>(p: &Principal, b: &'a Bucket) -> Option<&'a UserBucketGrant> {
    let Principal::User(o) = p else { return None };
    b.user_grants.iter().find(|g| g.user_id == o.id)
}

/// Whether an admin grant gives `perm`: read lists and reads, write writes, owner the ACLs.
fn admin_granted(p: &Principal, b: &Bucket, perm: Perm) -> bool {
    admin_grant(p, b).is_some_and(|g| match perm {
        Perm::Read => g.read,
        Perm::Write => g.write,
        Perm::ReadAcp | Perm::WriteAcp => g.owner,
    })
}

/// Whether ListBuckets shows the bucket to `p`: its owner, or a user with an admin grant on it.
pub fn lists_bucket(p: &Principal, b: &Bucket) -> bool {
    p.is(&b.owner) || admin_grant(p, b).is_some()
}

/// May `p` do `perm` on the bucket?
pub fn bucket_allows(p: &Principal, b: &Bucket, perm: Perm) -> bool {
    p.is(&b.owner) || granted(p, &b.grants, perm, b.public_access_block.as_ref()) || admin_granted(p, b, perm)
}

/// May `p` do `perm` on the object? Its bucket's owner may, as its owner may.
pub fn object_allows(p: &Principal, b: &Bucket, m: &ObjectMeta, perm: Perm) -> bool {
    p.is(&b.owner)
        || (!m.owner.is_empty() && p.is(&m.owner))
        || granted(p, &m.grants, perm, b.public_access_block.as_ref())
        || admin_granted(p, b, perm)
}

/// Whether the bucket's policy lets anyone in.
pub fn policy_is_public(gw: &crate::state::Gateway, b: &Bucket) -> bool {
    gw.policy_of(b).is_some_and(|p| p.is_public())
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

/// The policy action of an operation, as AWS names it.
fn action(e: &Endpoint) -> &'static str {
    use Endpoint as E;
    match e {
        E::ListBuckets => "s3:ListAllMyBuckets",
        E::CreateBucket => "s3:CreateBucket",
        E::DeleteBucket => "s3:DeleteBucket",
        E::HeadBucket | E::ListObjects | E::ListObjectsV2 => "s3:ListBucket",
        E::GetBucketLocation => "s3:GetBucketLocation",
        E::GetBucketVersioning => "s3:GetBucketVersioning",
        E::ListMultipartUploads => "s3:ListBucketMultipartUploads",
        E::DeleteObjects | E::DeleteObject => "s3:DeleteObject",
        E::GetObject | E::HeadObject => "s3:GetObject",
        E::GetObjectAttributes => "s3:GetObjectAttributes",
        E::PutObject
        | E::CopyObject
        | E::CreateMultipartUpload
        | E::UploadPart { .. }
        | E::UploadPartCopy { .. }
        | E::CompleteMultipartUpload { .. } => "s3:PutObject",
        E::AbortMultipartUpload { .. } => "s3:AbortMultipartUpload",
        E::ListParts { .. } => "s3:ListMultipartUploadParts",
        E::GetObjectTagging => "s3:GetObjectTagging",
        E::PutObjectTagging => "s3:PutObjectTagging",
        E::DeleteObjectTagging => "s3:DeleteObjectTagging",
        E::GetBucketTagging => "s3:GetBucketTagging",
        E::PutBucketTagging | E::DeleteBucketTagging => "s3:PutBucketTagging",
        E::GetBucketConfig(c) => match c {
            crate::router::BucketConfig::Encryption => "s3:GetEncryptionConfiguration",
            crate::router::BucketConfig::Lifecycle => "s3:GetLifecycleConfiguration",
            crate::router::BucketConfig::Logging => "s3:GetBucketLogging",
            crate::router::BucketConfig::RequestPayment => "s3:GetBucketRequestPayment",
            crate::router::BucketConfig::Website => "s3:GetBucketWebsite",
        },
        E::GetObjectAcl => "s3:GetObjectAcl",
        E::PutObjectAcl => "s3:PutObjectAcl",
        E::GetBucketAcl => "s3:GetBucketAcl",
        E::PutBucketAcl => "s3:PutBucketAcl",
        E::GetBucketCors => "s3:GetBucketCORS",
        E::PutBucketCors | E::DeleteBucketCors => "s3:PutBucketCORS",
        E::GetPublicAccessBlock => "s3:GetBucketPublicAccessBlock",
        E::PutPublicAccessBlock | E::DeletePublicAccessBlock => "s3:PutBucketPublicAccessBlock",
        E::GetBucketPolicy => "s3:GetBucketPolicy",
        E::PutBucketPolicy => "s3:PutBucketPolicy",
        E::DeleteBucketPolicy => "s3:DeleteBucketPolicy",
        E::GetBucketPolicyStatus => "s3:GetBucketPolicyStatus",
        E::CorsPreflight => "s3:GetBucketCORS",
    }
}

/// Whether the operation's policy resource is an object (`bucket/key`) rather than the bucket.
fn on_object(e: &Endpoint) -> bool {
    use Endpoint as E;
    matches!(
        e,
        E::GetObject
            | E::HeadObject
            | E::GetObjectAttributes
            | E::PutObject
            | E::DeleteObject
            | E::CopyObject
            | E::CreateMultipartUpload
            | E::UploadPart { .. }
            | E::UploadPartCopy { .. }
            | E::CompleteMultipartUpload { .. }
            | E::AbortMultipartUpload { .. }
            | E::ListParts { .. }
            | E::GetObjectTagging
            | E::PutObjectTagging
            | E::DeleteObjectTagging
            | E::GetObjectAcl
            | E::PutObjectAcl
    )
}

/// The condition keys a request gives a policy: the client's address and name, its `x-amz-*`
/// headers as `s3:x-amz-*`, the tags of `x-amz-tagging` as `s3:requestobjecttag/<key>`, and a
/// listing's prefix, delimiter and max-keys.
fn condition_keys(ctx: &Ctx, list: bool) -> BTreeMap<String, String> {
    let mut k = BTreeMap::new();
    if let Some(ip) = ctx.peer {
        k.insert("aws:sourceip".into(), ip.to_string());
    }
    k.insert("aws:securetransport".into(), ctx.secure.to_string());
    if let Principal::Root(o) | Principal::User(o) = &ctx.principal {
        k.insert("aws:username".into(), o.id.clone());
        k.insert("aws:userid".into(), o.id.clone());
    }
    for (h, key) in [("referer", "aws:referer"), ("user-agent", "aws:useragent")] {
        if let Some(v) = ctx.header(h) {
            k.insert(key.into(), v.to_string());
        }
    }
    for (name, v) in &ctx.headers {
        if name.as_str().starts_with("x-amz-")
            && let Ok(v) = v.to_str()
        {
            k.insert(format!("s3:{name}"), v.to_string());
        }
    }
    if let Some(tagging) = ctx.header("x-amz-tagging") {
        for (t, v) in url_pairs(tagging) {
            k.insert(format!("s3:requestobjecttag/{}", t.to_ascii_lowercase()), v);
        }
    }
    if list {
        for (q, key) in [("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")] {
            if let Some(v) = ctx.query.get(q) {
                k.insert(key.into(), v.to_string());
            }
        }
    }
    k
}

/// `a=b&c=d`, decoded; what does not decode is left out (the operation says why).
fn url_pairs(s: &str) -> Vec<(String, String)> {
    let dec =
        |x: &str| percent_encoding::percent_decode_str(&x.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned());
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (a, b) = p.split_once('=').unwrap_or((p, ""));
            Some((dec(a)?, dec(b)?))
        })
        .collect()
}

/// Adds `s3:existingobjecttag/<key>` of the object, when the bucket's policy asks for them.
async fn add_object_tags(ctx: &Ctx, b: &Bucket, key: &str, keys: &mut BTreeMap<String, String>) -> S3Result<()> {
    if !ctx.gw.policy_of(b).is_some_and(|p| p.mentions("s3:existingobjecttag/")) {
        return Ok(());
    }
    match ctx.gw.master.lookup(&b.name, key).await {
        Ok(m) => {
            for (t, v) in m.tags {
                keys.insert(format!("s3:existingobjecttag/{}", t.to_ascii_lowercase()), v);
            }
            Ok(())
        }
        Err(e) if e.is(ErrorKind::NoSuchKey) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What the bucket's policy says of `action` on `key` ("" = the bucket) for this request.
fn policy_decision(ctx: &Ctx, b: &Bucket, action: &str, key: Option<&str>, keys: BTreeMap<String, String>) -> Decision {
    let Some(policy) = ctx.gw.policy_of(b) else { return Decision::None };
    let resource = match key {
        Some(k) => format!("arn:aws:s3:::{}/{k}", b.name),
        None => format!("arn:aws:s3:::{}", b.name),
    };
    let user = match &ctx.principal {
        Principal::Root(o) | Principal::User(o) => Some(o.id.as_str()),
        Principal::Anonymous => None,
    };
    let restrict = b.public_access_block.is_some_and(|p| p.restrict_public_buckets);
    policy.evaluate(&Context { user, action, resource, keys }, restrict)
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
    let n = need(endpoint);
    if n == Need::Signed {
        return if *p == Principal::Anonymous { Err(denied()) } else { Ok(()) };
    }
    let bucket = if matches!(p, Principal::Root(_)) {
        ctx.gw.bucket_for_root(&ctx.bucket).await?
    } else {
        ctx.gw.master.get_bucket(&ctx.bucket).await?
    };
    if blockable {
        check_public_acl(&bucket, &[Grant { uri: ALL_USERS.into(), ..Default::default() }])?;
    }
    let list = matches!(endpoint, Endpoint::ListObjects | Endpoint::ListObjectsV2);
    let key = on_object(endpoint).then_some(ctx.key.as_str());
    let mut keys = condition_keys(ctx, list);
    if let Some(k) = key {
        add_object_tags(ctx, &bucket, k, &mut keys).await?;
    }
    let decision = policy_decision(ctx, &bucket, action(endpoint), key, keys);
    let policy_op =
        matches!(endpoint, Endpoint::GetBucketPolicy | Endpoint::PutBucketPolicy | Endpoint::DeleteBucketPolicy);
    if decision == Decision::Deny && !(policy_op && p.is(&bucket.owner)) {
        return Err(denied());
    }
    // A policy gives no one else the policy itself (AWS: the owner's account only).
    let ok = matches!(p, Principal::Root(_))
        || (decision == Decision::Allow && !policy_op)
        || match n {
            Need::Signed => true,
            Need::BucketOwner => p.is(&bucket.owner) || admin_grant(p, &bucket).is_some_and(|g| g.owner),
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
        let decision = policy_decision(ctx, &src, "s3:GetObject", Some(&sk), condition_keys(ctx, false));
        let ok = decision != Decision::Deny
            && (matches!(p, Principal::Root(_))
                || decision == Decision::Allow
                || object_check(ctx, &src, &sk, Perm::Read).await?);
        if !ok {
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
        Err(e) if e.is(ErrorKind::NoSuchKey) => Ok(may_list(ctx, bucket, key)),
        Err(e) => Err(e.into()),
    }
}

/// Whether the principal may list `key` in the bucket (so learn that it is missing): by ACL or
/// grant, or by the policy's s3:ListBucket with `key` as s3:prefix.
fn may_list(ctx: &Ctx, bucket: &Bucket, key: &str) -> bool {
    let mut keys = condition_keys(ctx, false);
    keys.insert("s3:prefix".into(), key.to_string());
    match policy_decision(ctx, bucket, "s3:ListBucket", None, keys) {
        Decision::Deny => false,
        Decision::Allow => true,
        Decision::None => bucket_allows(&ctx.principal, bucket, Perm::Read),
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
