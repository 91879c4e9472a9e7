//! GETs of bucket configurations Strata does not keep answer "none set" as AWS does (CORS is
//! kept: PUT/GET/DELETE ?cors, preflights and the headers of requests with an Origin), and
//! the ACLs are the owner's FULL_CONTROL; their PUTs stay NotImplemented (but the policy's).

use crate::support::*;

#[tokio::test]
async fn unset_configurations_answer_as_aws_does() {
    let env = Env::bucket().await;
    let none = [
        ("policy", "NoSuchBucketPolicy"),
        ("lifecycle", "NoSuchLifecycleConfiguration"),
        ("encryption", "ServerSideEncryptionConfigurationNotFoundError"),
        ("website", "NoSuchWebsiteConfiguration"),
    ];
    for (sub, code) in none {
        env.get(&format!("/bkt?{sub}")).await.assert_error(404, code);
        env.get(&format!("/nobkt?{sub}")).await.assert_error(404, "NoSuchBucket");
        let put = env.req("PUT", &format!("/bkt?{sub}")).body("<x/>").send().await;
        if sub == "policy" {
            put.assert_error(400, "MalformedPolicy"); // policies are kept: this one is not JSON
        } else {
            put.assert_error(501, "NotImplemented");
        }
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

fn preflight<'a>(env: &'a Env, origin: &str, method: &str) -> Req<'a> {
    env.req("OPTIONS", "/bkt/k").header("origin", origin).header("access-control-request-method", method)
}

#[tokio::test]
async fn cors_configurations_are_kept_and_answer_preflights_and_requests() {
    let env = Env::bucket().await;
    env.get("/bkt?cors").await.assert_error(404, "NoSuchCORSConfiguration");
    let conf = "<CORSConfiguration><CORSRule><AllowedOrigin>https://*.example</AllowedOrigin>\
                <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
                <AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
                <MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>";
    env.ok(env.req("PUT", "/bkt?cors").body(conf)).await;
    let x = env.ok(env.req("GET", "/bkt?cors")).await.text();
    assert_eq!(tags(&x, "AllowedMethod"), ["GET", "PUT"], "{x}");
    assert_eq!(tag(&x, "MaxAgeSeconds").as_deref(), Some("60"), "{x}");

    let r = env
        .ok(preflight(&env, "https://app.example", "PUT").header("access-control-request-headers", "X-Amz-Date"))
        .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(r.header("access-control-allow-headers"), Some("X-Amz-Date"));
    assert_eq!(
        (r.header("access-control-expose-headers"), r.header("access-control-max-age")),
        (Some("ETag"), Some("60"))
    );
    preflight(&env, "https://evil.test", "GET").send().await.assert_error(403, "AccessForbidden");
    preflight(&env, "https://app.example", "DELETE").send().await.assert_error(403, "AccessForbidden");
    let r = preflight(&env, "https://app.example", "GET")
        .header("access-control-request-headers", "content-md5")
        .send()
        .await;
    r.assert_error(403, "AccessForbidden");

    // A request with an allowed Origin gets the headers, also when it fails; others do not.
    env.put("/bkt/k", "x").await;
    let r = env.ok(env.req("GET", "/bkt/k").header("origin", "https://app.example")).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    let r = env.req("GET", "/bkt/nokey").header("origin", "https://app.example").send().await;
    assert_eq!((r.status.as_u16(), r.header("access-control-allow-origin")), (404, Some("https://app.example")));
    let r = env.ok(env.req("GET", "/bkt/k").header("origin", "https://evil.test")).await;
    assert_eq!(r.header("access-control-allow-origin"), None);

    env.req("PUT", "/bkt?cors").body("<CORSConfiguration/>").send().await.assert_error(400, "MalformedXML");
    let bad = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>";
    env.req("PUT", "/bkt?cors").body(bad).send().await.assert_error(400, "InvalidRequest");
    assert_eq!(env.req("DELETE", "/bkt?cors").send().await.status, 204);
    env.get("/bkt?cors").await.assert_error(404, "NoSuchCORSConfiguration");
    preflight(&env, "https://app.example", "GET").send().await.assert_error(403, "AccessForbidden");
    env.req("PUT", "/nobkt?cors").body(conf).send().await.assert_error(404, "NoSuchBucket");
}
