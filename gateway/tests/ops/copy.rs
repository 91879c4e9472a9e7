//! CopyObject: metadata and tagging directives, copy-source conditions, copies onto
//! themselves, across buckets, and of checksums.

use crate::support::*;

async fn with_source() -> (Env, Vec<u8>, String) {
    let env = Env::bucket().await;
    let d = data(2 * BLOCK as usize + 99);
    let put = env
        .req("PUT", "/bkt/src")
        .header("x-amz-meta-color", "red")
        .header("content-type", "image/png")
        .header("x-amz-tagging", "t=1")
        .body(d.clone());
    let etag = env.ok(put).await.etag();
    (env, d, etag)
}

fn copy<'a>(env: &'a Env, to: &str, from: &str) -> Req<'a> {
    env.req("PUT", to).header("x-amz-copy-source", from)
}

#[tokio::test]
async fn copy_keeps_bytes_and_metadata_by_default() {
    let (env, d, etag) = with_source().await;
    let r = env.ok(copy(&env, "/bkt/dst", "/bkt/src")).await;
    assert_eq!(unquote(&tag(&r.text(), "ETag").unwrap()), etag);
    assert!(tag(&r.text(), "LastModified").is_some());
    let g = env.get("/bkt/dst").await;
    assert_eq!(g.body.as_ref(), d.as_slice());
    assert_eq!(g.header("x-amz-meta-color"), Some("red"));
    assert_eq!(g.header("content-type"), Some("image/png"));
    assert_eq!(g.header("x-amz-tagging-count"), Some("1"));
    assert_eq!(std::fs::read(env.ufs().join("bkt/dst")).unwrap(), d);
}

#[tokio::test]
async fn metadata_directive_replace() {
    let (env, d, _) = with_source().await;
    let req = copy(&env, "/bkt/dst", "bkt/src")
        .header("x-amz-metadata-directive", "REPLACE")
        .header("x-amz-meta-shape", "round")
        .header("content-type", "text/plain");
    env.ok(req).await;
    let g = env.get("/bkt/dst").await;
    assert_eq!(g.body.as_ref(), d.as_slice());
    assert_eq!(g.header("x-amz-meta-shape"), Some("round"));
    assert_eq!(g.header("x-amz-meta-color"), None);
    assert_eq!(g.header("content-type"), Some("text/plain"));
}

#[tokio::test]
async fn tagging_directive_replace() {
    let (env, _, _) = with_source().await;
    let req = copy(&env, "/bkt/dst", "/bkt/src")
        .header("x-amz-tagging-directive", "REPLACE")
        .header("x-amz-tagging", "a=1&b=2");
    env.ok(req).await;
    let t = env.get("/bkt/dst?tagging").await;
    assert_eq!(tags(&t.text(), "Key"), vec!["a", "b"]);
}

#[tokio::test]
async fn unknown_directive_is_refused() {
    let (env, _, _) = with_source().await;
    let r = copy(&env, "/bkt/dst", "/bkt/src").header("x-amz-metadata-directive", "MERGE").send().await;
    r.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn copy_onto_itself_without_a_change_is_refused() {
    let (env, _, _) = with_source().await;
    copy(&env, "/bkt/src", "/bkt/src").send().await.assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn copy_onto_itself_replacing_metadata() {
    let (env, d, etag) = with_source().await;
    let req =
        copy(&env, "/bkt/src", "/bkt/src").header("x-amz-metadata-directive", "REPLACE").header("x-amz-meta-v", "2");
    env.ok(req).await;
    let g = env.get("/bkt/src").await;
    assert_eq!(g.body.as_ref(), d.as_slice());
    assert_eq!(g.etag(), etag);
    assert_eq!((g.header("x-amz-meta-v"), g.header("x-amz-meta-color")), (Some("2"), None));
}

#[tokio::test]
async fn copy_source_if_match() {
    let (env, _, etag) = with_source().await;
    let ok = copy(&env, "/bkt/a", "/bkt/src").header("x-amz-copy-source-if-match", format!("\"{etag}\""));
    env.ok(ok).await;
    let r = copy(&env, "/bkt/b", "/bkt/src").header("x-amz-copy-source-if-match", "\"nope\"").send().await;
    r.assert_error(412, "PreconditionFailed");
    env.get("/bkt/b").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn copy_source_if_none_match() {
    let (env, _, etag) = with_source().await;
    let r =
        copy(&env, "/bkt/b", "/bkt/src").header("x-amz-copy-source-if-none-match", format!("\"{etag}\"")).send().await;
    r.assert_error(412, "PreconditionFailed");
    env.ok(copy(&env, "/bkt/b", "/bkt/src").header("x-amz-copy-source-if-none-match", "\"other\"")).await;
}

#[tokio::test]
async fn copy_source_if_modified_and_unmodified_since() {
    let (env, _, _) = with_source().await;
    let date = |off: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(off)).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    };
    let r = copy(&env, "/bkt/b", "/bkt/src").header("x-amz-copy-source-if-unmodified-since", date(-3600)).send().await;
    r.assert_error(412, "PreconditionFailed");
    let r = copy(&env, "/bkt/b", "/bkt/src").header("x-amz-copy-source-if-modified-since", date(3600)).send().await;
    r.assert_error(412, "PreconditionFailed");
    env.ok(copy(&env, "/bkt/b", "/bkt/src").header("x-amz-copy-source-if-modified-since", date(-3600))).await;
}

#[tokio::test]
async fn destination_if_none_match_star() {
    let (env, _, _) = with_source().await;
    env.put("/bkt/dst", "already").await;
    let r = copy(&env, "/bkt/dst", "/bkt/src").header("if-none-match", "*").send().await;
    r.assert_error(412, "PreconditionFailed");
    assert_eq!(env.get("/bkt/dst").await.body.as_ref(), b"already");
}

#[tokio::test]
async fn missing_source() {
    let (env, _, _) = with_source().await;
    copy(&env, "/bkt/dst", "/bkt/none").send().await.assert_error(404, "NoSuchKey");
    copy(&env, "/bkt/dst", "/nobkt/src").send().await.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn malformed_copy_source() {
    let (env, _, _) = with_source().await;
    for bad in ["bkt", "/bkt/", "/bkt/src?versionId=3"] {
        copy(&env, "/bkt/dst", bad).send().await.assert_error(400, "InvalidArgument");
    }
    env.ok(copy(&env, "/bkt/dst", "/bkt/src?versionId=null")).await;
}

#[tokio::test]
async fn encoded_source_key_and_another_bucket() {
    let env = Env::bucket().await;
    env.ok(env.req("PUT", "/other")).await;
    env.put("/bkt/a%20b%2Bc", "spaced").await;
    env.ok(copy(&env, "/other/x", "/bkt/a%20b%2Bc")).await;
    assert_eq!(env.get("/other/x").await.body.as_ref(), b"spaced");
    assert_eq!(std::fs::read(env.ufs().join("other/x")).unwrap(), b"spaced");
}

#[tokio::test]
async fn copy_keeps_the_full_object_checksum() {
    let env = Env::bucket().await;
    let sum = crate::put::crc32(b"summed");
    env.ok(env.req("PUT", "/bkt/src").header("x-amz-checksum-crc32", sum.clone()).body("summed")).await;
    let r = env.ok(copy(&env, "/bkt/dst", "/bkt/src")).await;
    assert_eq!(tag(&r.text(), "ChecksumCRC32"), Some(sum.clone()));
    let g = env.ok(env.req("HEAD", "/bkt/dst").header("x-amz-checksum-mode", "ENABLED")).await;
    assert_eq!(g.header("x-amz-checksum-crc32"), Some(sum.as_str()));
}

#[tokio::test]
async fn copy_of_a_dropped_cache_reads_the_under_store() {
    let (env, d, _) = with_source().await;
    env.drop_cache("bkt", "src").await;
    env.ok(copy(&env, "/bkt/dst", "/bkt/src")).await;
    assert_eq!(env.get("/bkt/dst").await.body.as_ref(), d.as_slice());
}
