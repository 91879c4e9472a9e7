//! GETs of bucket configurations Strata does not keep answer "none set" as AWS does, and
//! the ACLs are the owner's FULL_CONTROL; their PUTs stay NotImplemented.

use crate::support::*;

#[tokio::test]
async fn unset_configurations_answer_as_aws_does() {
    let env = Env::bucket().await;
    let none = [
        ("policy", "NoSuchBucketPolicy"),
        ("cors", "NoSuchCORSConfiguration"),
        ("lifecycle", "NoSuchLifecycleConfiguration"),
        ("encryption", "ServerSideEncryptionConfigurationNotFoundError"),
        ("website", "NoSuchWebsiteConfiguration"),
    ];
    for (sub, code) in none {
        env.get(&format!("/bkt?{sub}")).await.assert_error(404, code);
        env.get(&format!("/nobkt?{sub}")).await.assert_error(404, "NoSuchBucket");
        env.req("PUT", &format!("/bkt?{sub}")).body("<x/>").send().await.assert_error(501, "NotImplemented");
    }
    let x = env.ok(env.req("GET", "/bkt?requestPayment")).await.text();
    assert_eq!(tag(&x, "Payer").as_deref(), Some("BucketOwner"), "{x}");
    let x = env.ok(env.req("GET", "/bkt?logging")).await.text();
    assert!(x.contains("<BucketLoggingStatus") && !x.contains("LoggingEnabled"), "{x}");
    env.get("/nobkt?logging").await.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn acls_are_the_owners_full_control() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "x").await;
    let owner = tag(&env.ok(env.req("GET", "/")).await.text(), "ID");
    for path in ["/bkt?acl", "/bkt/k?acl"] {
        let x = env.ok(env.req("GET", path)).await.text();
        assert!(x.starts_with("<?xml") && x.contains("<AccessControlPolicy"), "{x}");
        assert_eq!(tags(&x, "ID"), vec![owner.clone().unwrap_or_default(); 2], "{x}");
        assert_eq!(tags(&x, "Permission"), vec!["FULL_CONTROL"], "{x}");
        assert!(x.contains("xsi:type=\"CanonicalUser\""), "{x}");
    }
    env.get("/bkt/nokey?acl").await.assert_error(404, "NoSuchKey");
    env.get("/nobkt?acl").await.assert_error(404, "NoSuchBucket");
    env.req("PUT", "/bkt?acl").send().await.assert_error(400, "MissingSecurityHeader");
}

#[tokio::test]
async fn a_cors_preflight_is_refused_as_without_a_cors_configuration() {
    let env = Env::bucket().await;
    env.req("OPTIONS", "/bkt/k").send().await.assert_error(400, "BadRequest");
    let r = env.req("OPTIONS", "/bkt/k").header("origin", "https://app.example").send().await;
    r.assert_error(400, "BadRequest");
    let r = env
        .req("OPTIONS", "/bkt/k")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await;
    r.assert_error(403, "AccessForbidden");
}
