//! Who may do what: the root key, a second user ("alt") and anonymous requests against canned
//! ACLs, grants to a user, and the PublicAccessBlock.

use strata_common::proto::User;

use crate::support::{Env, Payload};

/// A user "alt" with a key: (access key, secret).
async fn alt(env: &Env) -> (String, String) {
    let user = User { id: "alt-id".into(), display_name: "Alt".into(), ..Default::default() };
    env.master.create_user(user).await.unwrap();
    let k = env.master.create_key("alt-id").await.unwrap();
    (k.access_key, k.secret_key)
}

#[tokio::test]
async fn another_user_is_denied_until_an_acl_lets_them_in() {
    let env = Env::bucket().await;
    let (ak, sk) = alt(&env).await;
    env.put("/bkt/k", "data").await;
    let as_alt = |m: &'static str, p: &'static str| env.req(m, p).creds(&ak, &sk);
    as_alt("GET", "/bkt/k").send().await.assert_error(403, "AccessDenied");
    as_alt("GET", "/bkt").send().await.assert_error(403, "AccessDenied");
    as_alt("PUT", "/bkt/new").body("x").send().await.assert_error(403, "AccessDenied");
    as_alt("GET", "/bkt?acl").send().await.assert_error(403, "AccessDenied");
    // A missing bucket is NoSuchBucket whoever asks.
    as_alt("GET", "/nobkt/k").send().await.assert_error(404, "NoSuchBucket");

    env.ok(env.req("PUT", "/bkt?acl").header("x-amz-acl", "public-read-write")).await;
    env.ok(as_alt("GET", "/bkt")).await;
    env.ok(as_alt("PUT", "/bkt/new").body("x")).await;
    // The bucket's ACL is not the object's: k stays private.
    as_alt("GET", "/bkt/k").send().await.assert_error(403, "AccessDenied");
    // What alt wrote is alt's, and the bucket's owner reaches it too.
    assert_eq!(env.ok(as_alt("GET", "/bkt/new")).await.text(), "x");
    assert_eq!(env.ok(env.req("GET", "/bkt/new")).await.text(), "x");
    let acl = env.ok(as_alt("GET", "/bkt/new?acl")).await.text();
    assert!(acl.contains("<ID>alt-id</ID><DisplayName>Alt</DisplayName>"), "{acl}");
}

#[tokio::test]
async fn a_grant_to_a_canonical_user_in_an_acl_body() {
    let env = Env::bucket().await;
    let (ak, sk) = alt(&env).await;
    env.put("/bkt/k", "data").await;
    let owner_acl = env.ok(env.req("GET", "/bkt/k?acl")).await.text();
    let grant = "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">\
        <ID>alt-id</ID></Grantee><Permission>READ</Permission></Grant></AccessControlList>";
    let body = owner_acl.replace("</AccessControlList>", grant);
    env.ok(env.req("PUT", "/bkt/k?acl").body(body)).await;
    assert_eq!(env.ok(env.req("GET", "/bkt/k").creds(&ak, &sk)).await.text(), "data");
    let acl = env.ok(env.req("GET", "/bkt/k?acl")).await.text();
    assert!(acl.contains("<ID>alt-id</ID>") && acl.contains("<Permission>READ</Permission>"), "{acl}");
    // READ is not READ_ACP, nor WRITE on the bucket.
    env.req("GET", "/bkt/k?acl").creds(&ak, &sk).send().await.assert_error(403, "AccessDenied");
    env.req("PUT", "/bkt/k").creds(&ak, &sk).body("y").send().await.assert_error(403, "AccessDenied");
    // Copying it into a bucket alt may not write is denied; into alt's own, allowed.
    env.ok(env.req("PUT", "/altbkt").creds(&ak, &sk)).await;
    let copy = env.req("PUT", "/altbkt/c").creds(&ak, &sk).header("x-amz-copy-source", "/bkt/k");
    env.ok(copy).await;
    env.put("/bkt/secret", "s").await;
    let copy = env.req("PUT", "/altbkt/c2").creds(&ak, &sk).header("x-amz-copy-source", "/bkt/secret");
    copy.send().await.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn anonymous_reads_only_what_all_users_are_granted() {
    let env = Env::bucket().await;
    env.ok(env.req("PUT", "/bkt/pub").header("x-amz-acl", "public-read").body("open")).await;
    env.put("/bkt/priv", "closed").await;
    let anon = |p: &'static str| env.req("GET", p).payload(Payload::Anonymous);
    assert_eq!(env.ok(anon("/bkt/pub")).await.text(), "open");
    anon("/bkt/priv").send().await.assert_error(403, "AccessDenied");
    anon("/bkt/missing").send().await.assert_error(403, "AccessDenied");
    anon("/bkt").send().await.assert_error(403, "AccessDenied");
    anon("/nobkt/pub").send().await.assert_error(404, "NoSuchBucket");
    anon("/").send().await.assert_error(403, "AccessDenied");
    env.req("DELETE", "/bkt/pub").payload(Payload::Anonymous).send().await.assert_error(403, "AccessDenied");
    // A bucket readable by all: a missing key is NoSuchKey, the listing is open.
    env.ok(env.req("PUT", "/bkt?acl").header("x-amz-acl", "public-read")).await;
    anon("/bkt/missing").send().await.assert_error(404, "NoSuchKey");
    env.ok(anon("/bkt")).await;
    // authenticated-read is not for anonymous requests.
    env.ok(env.req("PUT", "/bkt/pub?acl").header("x-amz-acl", "authenticated-read")).await;
    anon("/bkt/pub").send().await.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn the_public_access_block_refuses_and_ignores_public_acls() {
    let env = Env::bucket().await;
    let (ak, sk) = alt(&env).await;
    env.get("/bkt?publicAccessBlock").await.assert_error(404, "NoSuchPublicAccessBlockConfiguration");
    env.ok(env.req("PUT", "/bkt?acl").header("x-amz-acl", "public-read")).await;
    env.ok(env.req("PUT", "/bkt/k").header("x-amz-acl", "public-read").body("x")).await;
    env.ok(env.req("GET", "/bkt/k").creds(&ak, &sk)).await;

    let conf = |block: bool, ignore: bool| {
        format!(
            "<PublicAccessBlockConfiguration><BlockPublicAcls>{block}</BlockPublicAcls>\
             <IgnorePublicAcls>{ignore}</IgnorePublicAcls></PublicAccessBlockConfiguration>"
        )
    };
    env.ok(env.req("PUT", "/bkt?publicAccessBlock").body(conf(false, true))).await;
    env.req("GET", "/bkt/k").creds(&ak, &sk).send().await.assert_error(403, "AccessDenied");
    env.req("GET", "/bkt").creds(&ak, &sk).send().await.assert_error(403, "AccessDenied");
    env.ok(env.req("GET", "/bkt/k")).await;

    env.ok(env.req("PUT", "/bkt?publicAccessBlock").body(conf(true, false))).await;
    let got = env.ok(env.req("GET", "/bkt?publicAccessBlock")).await.text();
    assert!(got.contains("<BlockPublicAcls>true</BlockPublicAcls>"), "{got}");
    for acl in ["public-read", "public-read-write", "authenticated-read"] {
        let r = env.req("PUT", "/bkt?acl").header("x-amz-acl", acl).send().await;
        r.assert_error(403, "AccessDenied");
        let r = env.req("PUT", "/bkt/k2").header("x-amz-acl", acl).body("").send().await;
        r.assert_error(403, "AccessDenied");
    }
    env.ok(env.req("PUT", "/bkt/k2").header("x-amz-acl", "private").body("")).await;
    // Alt may not change the configuration of a bucket it does not own.
    let r = env.req("DELETE", "/bkt?publicAccessBlock").creds(&ak, &sk).send().await;
    r.assert_error(403, "AccessDenied");
    let r = env.ok(env.req("DELETE", "/bkt?publicAccessBlock")).await;
    assert_eq!(r.status.as_u16(), 204);
    env.get("/bkt?publicAccessBlock").await.assert_error(404, "NoSuchPublicAccessBlockConfiguration");
}

#[tokio::test]
async fn users_see_and_own_their_buckets() {
    let env = Env::bucket().await;
    let (ak, sk) = alt(&env).await;
    env.ok(env.req("PUT", "/altb").creds(&ak, &sk)).await;
    let mine = env.ok(env.req("GET", "/").creds(&ak, &sk)).await.text();
    assert!(mine.contains("<Name>altb</Name>") && !mine.contains("<Name>bkt</Name>"), "{mine}");
    assert!(mine.contains("<ID>alt-id</ID>"), "{mine}");
    env.req("PUT", "/bkt").creds(&ak, &sk).send().await.assert_error(409, "BucketAlreadyExists");
    // One's own bucket again: 200 under us-east-1's legacy rule, and it stays the same bucket.
    env.ok(env.req("PUT", "/altb").creds(&ak, &sk)).await;
    let acl = env.ok(env.req("GET", "/altb?acl").creds(&ak, &sk)).await.text();
    assert!(acl.contains("<Owner><ID>alt-id</ID><DisplayName>Alt</DisplayName></Owner>"), "{acl}");
    // The root key reaches every bucket.
    env.ok(env.req("PUT", "/altb/r").body("r")).await;
    env.req("PUT", "/bkt?acl").header("x-amz-acl", "nonsense").send().await.assert_error(400, "InvalidArgument");
}
