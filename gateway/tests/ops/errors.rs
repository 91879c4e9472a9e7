//! Authentication failures, the shape of error answers, and faults of the master and the
//! worker (injected by the wrappers of `support::faults`).

use std::sync::Arc;

use strata_common::ErrorKind;
use strata_common::api::{MasterApi, WorkerApi};

use crate::support::faults::{Faults, FaultyMaster, FaultyWorker};
use crate::support::*;

#[tokio::test]
async fn a_wrong_secret_is_signature_does_not_match() {
    let env = Env::bucket().await;
    let r = env.req("GET", "/bkt?list-type=2").creds(AK, "not-the-secret").send().await;
    r.assert_error(403, "SignatureDoesNotMatch");
    let r = env.req("PUT", "/bkt/k").creds(AK, "not-the-secret").body("x").send().await;
    r.assert_error(403, "SignatureDoesNotMatch");
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn an_unknown_access_key() {
    let env = Env::bucket().await;
    let r = env.req("GET", "/bkt/k").creds("AKUNKNOWN", SK).send().await;
    r.assert_error(403, "InvalidAccessKeyId");
}

#[tokio::test]
async fn anonymous_requests_are_denied() {
    let env = Env::bucket().await;
    env.req("GET", "/bkt/k").payload(Payload::Anonymous).send().await.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn a_skewed_clock() {
    let env = Env::bucket().await;
    env.req("GET", "/bkt/k").late(3600).send().await.assert_error(403, "RequestTimeTooSkewed");
}

#[tokio::test]
async fn a_signed_header_changed_after_signing() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/k").header("x-amz-meta-a", "1").tamper("x-amz-meta-a", "2").body("x").send().await;
    r.assert_error(403, "SignatureDoesNotMatch");
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn a_body_changed_after_signing() {
    let env = Env::bucket().await;
    let sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b"signed body"))
    };
    let r = env.req("PUT", "/bkt/k").payload(Payload::Raw(sha)).body("other body!").send().await;
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn error_bodies_carry_code_message_resource_and_request_id() {
    let env = Env::bucket().await;
    let r = env.get("/bkt/no/such").await;
    r.assert_error(404, "NoSuchKey");
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let id = r.header("x-amz-request-id").unwrap().to_string();
    assert!(!id.is_empty());
    let x = r.text();
    assert_eq!(tag(&x, "RequestId"), Some(id));
    assert_eq!(tag(&x, "Resource").as_deref(), Some("/bkt/no/such"));
    assert!(tag(&x, "Message").is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn every_answer_has_a_request_id_and_server() {
    let env = Env::bucket().await;
    let ok = env.put("/bkt/k", "x").await;
    let err = env.get("/bkt/none").await;
    for r in [&ok, &err] {
        assert!(r.header("x-amz-request-id").is_some());
        assert_eq!(r.header("server"), Some("Strata"));
    }
    assert_ne!(ok.header("x-amz-request-id"), err.header("x-amz-request-id"));
}

#[tokio::test]
async fn unsupported_sub_resources_are_not_implemented() {
    let env = Env::bucket().await;
    for q in ["versions", "object-lock", "replication", "notification"] {
        env.get(&format!("/bkt?{q}")).await.assert_error(501, "NotImplemented");
    }
    for q in ["website", "lifecycle"] {
        env.req("PUT", &format!("/bkt?{q}")).body("<x/>").send().await.assert_error(501, "NotImplemented");
    }
}

#[tokio::test]
async fn a_method_without_an_operation() {
    let env = Env::bucket().await;
    env.req("DELETE", "/").send().await.assert_error(405, "MethodNotAllowed");
}

#[tokio::test]
async fn ops_endpoints_answer_unsigned() {
    let env = Env::new().await;
    let r = env.req("GET", "/healthz").payload(Payload::Anonymous).send().await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok\n"));
    let r = env.req("GET", "/readyz").payload(Payload::Anonymous).send().await;
    assert_eq!(r.status, 200);
}

/// An env whose gateway reaches the master through a fault-injecting wrapper.
async fn faulty_master() -> (Env, Faults) {
    let slot = Arc::new(std::sync::Mutex::new(None));
    let keep = slot.clone();
    let env = Env::with(
        Box::new(move |m: Arc<dyn MasterApi>| {
            let (fm, faults) = FaultyMaster::new(m);
            *keep.lock().unwrap() = Some(faults);
            fm as Arc<dyn MasterApi>
        }),
        Box::new(|w| w),
    )
    .await;
    env.ok(env.req("PUT", "/bkt")).await;
    let faults = slot.lock().unwrap().take().unwrap();
    (env, faults)
}

#[tokio::test]
async fn a_master_that_is_away_is_service_unavailable() {
    let (env, faults) = faulty_master().await;
    env.put("/bkt/k", "x").await;
    faults.lock().unwrap().insert("lookup", ErrorKind::Unavailable);
    env.get("/bkt/k").await.assert_error(503, "ServiceUnavailable");
    faults.lock().unwrap().clear();
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"x");
}

#[tokio::test]
async fn a_master_that_is_not_primary_is_service_unavailable() {
    let (env, faults) = faulty_master().await;
    faults.lock().unwrap().insert("allocate_version", ErrorKind::NotPrimary);
    env.req("PUT", "/bkt/k").body("x").send().await.assert_error(503, "ServiceUnavailable");
}

#[tokio::test]
async fn a_store_conflict_at_commit_is_service_unavailable_and_commits_nothing() {
    let (env, faults) = faulty_master().await;
    faults.lock().unwrap().insert("commit_object", ErrorKind::Conflict);
    env.req("PUT", "/bkt/k").body("x").send().await.assert_error(503, "ServiceUnavailable");
    faults.lock().unwrap().clear();
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
    assert!(!env.ufs().join("bkt/k").exists());
}

#[tokio::test]
async fn a_conditional_conflict_at_commit_is_409() {
    let (env, faults) = faulty_master().await;
    faults.lock().unwrap().insert("commit_object", ErrorKind::ConditionalRequestConflict);
    let r = env.req("PUT", "/bkt/k").header("if-none-match", "*").body("x").send().await;
    r.assert_error(409, "ConditionalRequestConflict");
}

#[tokio::test]
async fn credentials_that_cannot_be_looked_up() {
    let (env, faults) = faulty_master().await;
    faults.lock().unwrap().insert("get_credential", ErrorKind::Unavailable);
    // The secret of AK is trusted for a while once looked up: another key is asked for.
    let r = env.req("GET", "/bkt/k").creds("AKOTHER", "x").send().await;
    r.assert_error(503, "ServiceUnavailable");
}

#[tokio::test]
async fn no_worker_known_is_service_unavailable() {
    let (env, faults) = faulty_master().await;
    faults.lock().unwrap().insert("list_workers", ErrorKind::Unavailable);
    let r = env.req("PUT", "/bkt/k").body("x").send().await;
    r.assert_error(503, "ServiceUnavailable");
}

#[tokio::test]
async fn a_worker_failing_mid_write_leaves_nothing() {
    let env = Env::with(
        Box::new(|m| m),
        Box::new(|w: Arc<dyn WorkerApi>| {
            Arc::new(FaultyWorker { inner: w, fail_write_after: Some(5000) }) as Arc<dyn WorkerApi>
        }),
    )
    .await;
    env.ok(env.req("PUT", "/bkt")).await;
    let r = env.req("PUT", "/bkt/k").body(data(3 * BLOCK as usize)).send().await;
    r.assert_error(503, "ServiceUnavailable");
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
    assert_eq!(files(&env.ufs()), Vec::<String>::new());
    // A small write passes.
    env.put("/bkt/small", "ok").await;
    assert_eq!(env.get("/bkt/small").await.body.as_ref(), b"ok");
}

#[tokio::test]
#[ignore = "differs from AWS: a browser-form POST upload to a bucket (POST Object) is answered 405 MethodNotAllowed; S3 accepts it, and a gateway without it should say NotImplemented"]
async fn browser_post_upload() {
    let env = Env::bucket().await;
    env.req("POST", "/bkt").send().await.assert_error(501, "NotImplemented");
}
