use super::*;

fn owner(id: &str) -> Owner {
    Owner { id: id.into(), display_name: id.into() }
}
fn user(id: &str) -> Principal {
    Principal::User(owner(id))
}
fn bucket(owner_id: &str, canned_acl: &str) -> Bucket {
    Bucket {
        name: "b".into(),
        owner: owner_id.into(),
        grants: acl::canned(canned_acl, &owner(owner_id), None).unwrap(),
        ..Default::default()
    }
}
fn object(owner_id: &str, canned_acl: &str) -> ObjectMeta {
    ObjectMeta {
        owner: owner_id.into(),
        grants: acl::canned(canned_acl, &owner(owner_id), Some(&owner("o"))).unwrap(),
        ..Default::default()
    }
}

#[test]
fn root_and_owners_may_do_everything() {
    let b = bucket("o", "private");
    let root = Principal::Root(owner("ROOTKEY"));
    for perm in [Perm::Read, Perm::Write, Perm::ReadAcp, Perm::WriteAcp] {
        assert!(bucket_allows(&root, &b, perm));
        assert!(bucket_allows(&user("o"), &b, perm));
        assert!(!bucket_allows(&user("alt"), &b, perm));
        assert!(!bucket_allows(&Principal::Anonymous, &b, perm));
        // The bucket's owner reaches an object another user wrote; its writer does too.
        assert!(object_allows(&user("o"), &b, &object("alt", "private"), perm));
        assert!(object_allows(&user("alt"), &b, &object("alt", "private"), perm));
    }
    // An old bucket without an owner is the root key's.
    assert!(bucket_allows(&root, &bucket("", "private"), Perm::Write));
    assert!(!bucket_allows(&user("alt"), &bucket("", "private"), Perm::Read));
}

#[test]
fn canned_acls_grant_what_they_name() {
    let alt = user("alt");
    let anon = Principal::Anonymous;
    let pr = bucket("o", "public-read");
    assert!(bucket_allows(&alt, &pr, Perm::Read) && bucket_allows(&anon, &pr, Perm::Read));
    assert!(!bucket_allows(&alt, &pr, Perm::Write) && !bucket_allows(&anon, &pr, Perm::ReadAcp));
    let prw = bucket("o", "public-read-write");
    assert!(bucket_allows(&anon, &prw, Perm::Write));
    let ar = bucket("o", "authenticated-read");
    assert!(bucket_allows(&alt, &ar, Perm::Read) && !bucket_allows(&anon, &ar, Perm::Read));
    // An object's ACL is its own: a public bucket does not make its objects readable.
    let b = bucket("o", "public-read-write");
    assert!(!object_allows(&alt, &b, &object("o", "private"), Perm::Read));
    assert!(object_allows(&anon, &b, &object("o", "public-read"), Perm::Read));
    assert!(!object_allows(&anon, &b, &object("o", "public-read"), Perm::WriteAcp));
    let bor = object("alt", "bucket-owner-read");
    assert!(object_allows(&user("o"), &b, &bor, Perm::Read));
}

#[test]
fn a_grant_to_a_canonical_user_is_for_that_user_only() {
    let mut b = bucket("o", "private");
    b.grants.push(Grant { id: "alt".into(), permission: "FULL_CONTROL".into(), ..Default::default() });
    assert!(bucket_allows(&user("alt"), &b, Perm::WriteAcp));
    assert!(!bucket_allows(&user("other"), &b, Perm::Read));
    b.grants.push(Grant { id: "r".into(), permission: "READ".into(), ..Default::default() });
    assert!(bucket_allows(&user("r"), &b, Perm::Read) && !bucket_allows(&user("r"), &b, Perm::Write));
}

#[test]
fn ignore_public_acls_takes_public_grants_away_and_block_refuses_them() {
    let mut b = bucket("o", "public-read");
    let m = object("o", "public-read");
    b.public_access_block = Some(PublicAccessBlock { ignore_public_acls: true, ..Default::default() });
    assert!(!bucket_allows(&Principal::Anonymous, &b, Perm::Read));
    assert!(!object_allows(&user("alt"), &b, &m, Perm::Read));
    assert!(bucket_allows(&user("o"), &b, Perm::Read));
    assert!(check_public_acl(&b, &b.grants).is_ok(), "only BlockPublicAcls refuses");
    b.public_access_block = Some(PublicAccessBlock { block_public_acls: true, ..Default::default() });
    assert_eq!(check_public_acl(&b, &b.grants).unwrap_err().code, S3ErrorCode::AccessDenied);
    assert!(check_public_acl(&b, &bucket("o", "private").grants).is_ok());
}

#[test]
fn every_operation_needs_something() {
    assert_eq!(need(&Endpoint::GetObject), Need::Object(Perm::Read));
    assert_eq!(need(&Endpoint::PutObject), Need::Bucket(Perm::Write));
    assert_eq!(need(&Endpoint::ListObjectsV2), Need::Bucket(Perm::Read));
    assert_eq!(need(&Endpoint::PutBucketAcl), Need::Bucket(Perm::WriteAcp));
    assert_eq!(need(&Endpoint::DeleteBucket), Need::BucketOwner);
    assert_eq!(need(&Endpoint::PutPublicAccessBlock), Need::BucketOwner);
    assert_eq!(need(&Endpoint::CreateBucket), Need::Signed);
}

#[test]
fn admin_grants_give_what_they_name_to_their_user_only() {
    let mut b = bucket("o", "private");
    b.user_grants.push(UserBucketGrant { user_id: "ro".into(), read: true, ..Default::default() });
    b.user_grants.push(UserBucketGrant { user_id: "rw".into(), read: true, write: true, ..Default::default() });
    let m = object("o", "private");
    assert!(bucket_allows(&user("ro"), &b, Perm::Read) && object_allows(&user("ro"), &b, &m, Perm::Read));
    assert!(!bucket_allows(&user("ro"), &b, Perm::Write), "a read-only grant cannot write");
    assert!(!object_allows(&user("ro"), &b, &m, Perm::WriteAcp));
    assert!(bucket_allows(&user("rw"), &b, Perm::Write) && !bucket_allows(&user("rw"), &b, Perm::WriteAcp));
    assert!(!bucket_allows(&user("other"), &b, Perm::Read) && !lists_bucket(&user("other"), &b));
    assert!(lists_bucket(&user("ro"), &b) && lists_bucket(&user("o"), &b));
    assert!(!bucket_allows(&Principal::Anonymous, &b, Perm::Read));
}

#[test]
fn every_operation_has_a_policy_action() {
    assert_eq!(action(&Endpoint::ListObjectsV2), "s3:ListBucket");
    assert_eq!(action(&Endpoint::CompleteMultipartUpload { upload_id: "u".into() }), "s3:PutObject");
    assert_eq!(action(&Endpoint::DeletePublicAccessBlock), "s3:PutBucketPublicAccessBlock");
    assert!(on_object(&Endpoint::GetObject) && !on_object(&Endpoint::ListObjects));
    assert_eq!(
        url_pairs("security=public&a%20b=c+d"),
        [("security".into(), "public".into()), ("a b".into(), "c d".into())]
    );
}
