//! GetObject and HeadObject: ranges, conditional reads, partNumber, response overrides,
//! and reads that must fail rather than serve other bytes.

use crate::support::*;

const SIZE: usize = 3 * BLOCK as usize + 1000;

async fn with_object() -> (Env, Vec<u8>, String) {
    let env = Env::bucket().await;
    let d = data(SIZE);
    let etag = env.put("/bkt/k", d.clone()).await.etag();
    (env, d, etag)
}

async fn ranged(env: &Env, range: &str) -> Resp {
    env.req("GET", "/bkt/k").header("range", range).send().await
}

fn http_date(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs)).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test]
async fn range_inside_one_block() {
    let (env, d, _) = with_object().await;
    let r = ranged(&env, "bytes=10-19").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), &d[10..20]);
    assert_eq!(r.header("content-range"), Some(format!("bytes 10-19/{SIZE}").as_str()));
    assert_eq!(r.header("content-length"), Some("10"));
}

#[tokio::test]
async fn range_across_blocks() {
    let (env, d, _) = with_object().await;
    let (a, b) = (BLOCK as usize - 5, 2 * BLOCK as usize + 7);
    let r = ranged(&env, &format!("bytes={a}-{b}")).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), &d[a..=b]);
}

#[tokio::test]
async fn suffix_range() {
    let (env, d, _) = with_object().await;
    let r = ranged(&env, "bytes=-100").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), &d[SIZE - 100..]);
    assert_eq!(r.header("content-range"), Some(format!("bytes {}-{}/{SIZE}", SIZE - 100, SIZE - 1).as_str()));
}

#[tokio::test]
async fn suffix_longer_than_the_object_is_all_of_it() {
    let (env, d, _) = with_object().await;
    let r = ranged(&env, &format!("bytes=-{}", SIZE * 2)).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), d.as_slice());
}

#[tokio::test]
async fn open_range() {
    let (env, d, _) = with_object().await;
    let r = ranged(&env, "bytes=40000-").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), &d[40000..]);
}

#[tokio::test]
async fn range_end_past_the_object_is_cut_at_its_end() {
    let (env, d, _) = with_object().await;
    let r = ranged(&env, &format!("bytes={}-{}", SIZE - 3, SIZE + 50)).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), &d[SIZE - 3..]);
}

#[tokio::test]
async fn unsatisfiable_range_is_416_with_content_range() {
    let (env, _, _) = with_object().await;
    for range in [format!("bytes={SIZE}-"), format!("bytes={}-{}", SIZE + 1, SIZE + 9), "bytes=-0".to_string()] {
        let r = ranged(&env, &range).await;
        r.assert_error(416, "InvalidRange");
        assert_eq!(r.header("content-range"), Some(format!("bytes */{SIZE}").as_str()), "{range}");
    }
}

#[tokio::test]
async fn a_range_s3_ignores_gives_the_whole_object() {
    let (env, d, _) = with_object().await;
    for range in ["bytes=9-1", "items=0-1", "bytes=0-1,5-6"] {
        let r = ranged(&env, range).await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.body.len(), d.len(), "{range}");
    }
}

#[tokio::test]
async fn if_match() {
    let (env, _, etag) = with_object().await;
    let r = env.req("GET", "/bkt/k").header("if-match", format!("\"{etag}\"")).send().await;
    assert_eq!(r.status, 200);
    let r = env.req("GET", "/bkt/k").header("if-match", "\"0123\"").send().await;
    r.assert_error(412, "PreconditionFailed");
    let r = env.req("GET", "/bkt/k").header("if-match", "*").send().await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn if_none_match() {
    let (env, _, etag) = with_object().await;
    let r = env.req("GET", "/bkt/k").header("if-none-match", format!("\"x\", \"{etag}\"")).send().await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.etag(), etag);
    let r = env.req("GET", "/bkt/k").header("if-none-match", "\"other\"").send().await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn if_modified_since() {
    let (env, _, _) = with_object().await;
    let r = env.req("GET", "/bkt/k").header("if-modified-since", http_date(3600)).send().await;
    assert_eq!(r.status, 304);
    let r = env.req("GET", "/bkt/k").header("if-modified-since", http_date(-3600)).send().await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn if_unmodified_since() {
    let (env, _, _) = with_object().await;
    let r = env.req("GET", "/bkt/k").header("if-unmodified-since", http_date(-3600)).send().await;
    r.assert_error(412, "PreconditionFailed");
    let r = env.req("GET", "/bkt/k").header("if-unmodified-since", http_date(3600)).send().await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn if_match_wins_over_if_unmodified_since() {
    let (env, _, etag) = with_object().await;
    let r = env
        .req("GET", "/bkt/k")
        .header("if-match", format!("\"{etag}\""))
        .header("if-unmodified-since", http_date(-3600))
        .send()
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn if_none_match_wins_over_if_modified_since() {
    let (env, _, _) = with_object().await;
    let r = env
        .req("GET", "/bkt/k")
        .header("if-none-match", "\"other\"")
        .header("if-modified-since", http_date(3600))
        .send()
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn part_number_of_a_plain_object() {
    let (env, d, _) = with_object().await;
    let r = env.get("/bkt/k?partNumber=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), d.len());
    env.get("/bkt/k?partNumber=2").await.assert_error(400, "InvalidPart");
    env.get("/bkt/k?partNumber=0").await.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn part_number_and_range_together_are_refused() {
    let (env, _, _) = with_object().await;
    let r = env.req("GET", "/bkt/k?partNumber=1").header("range", "bytes=0-1").send().await;
    r.assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn response_overrides() {
    let (env, _, _) = with_object().await;
    let q = "response-content-type=text%2Fcsv&response-content-disposition=inline&response-cache-control=no-store\
             &response-content-language=de&response-expires=Thu%2C%2001%20Jan%202099%2000%3A00%3A00%20GMT\
             &response-content-encoding=identity";
    let r = env.ok(env.req("GET", &format!("/bkt/k?{q}"))).await;
    assert_eq!(r.header("content-type"), Some("text/csv"));
    assert_eq!(r.header("content-disposition"), Some("inline"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-language"), Some("de"));
    assert_eq!(r.header("expires"), Some("Thu, 01 Jan 2099 00:00:00 GMT"));
    assert_eq!(r.header("content-encoding"), Some("identity"));
}

#[tokio::test]
async fn head_has_the_headers_and_no_body() {
    let (env, _, etag) = with_object().await;
    let r = env.ok(env.req("HEAD", "/bkt/k")).await;
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some(SIZE.to_string().as_str()));
    assert_eq!(r.etag(), etag);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("last-modified").is_some_and(|d| d.ends_with(" GMT")));
}

#[tokio::test]
async fn head_of_a_missing_key_is_404_without_body() {
    let env = Env::bucket().await;
    let r = env.req("HEAD", "/bkt/none").send().await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    assert!(r.header("x-amz-request-id").is_some());
}

#[tokio::test]
async fn missing_key_and_missing_bucket() {
    let env = Env::bucket().await;
    env.get("/bkt/none").await.assert_error(404, "NoSuchKey");
    env.get("/nobkt/k").await.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn read_types() {
    let (env, d, _) = with_object().await;
    for t in ["NO_CACHE", "CACHE", "CACHE_PROMOTE"] {
        let r = env.ok(env.req("GET", "/bkt/k").header("x-strata-read-type", t)).await;
        assert_eq!(r.body.as_ref(), d.as_slice(), "{t}");
    }
    let r = env.req("GET", "/bkt/k").header("x-strata-read-type", "SOMETIMES").send().await;
    r.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn a_read_after_the_cache_is_dropped_comes_from_the_under_store() {
    let (env, d, _) = with_object().await;
    assert_eq!(env.drop_cache("bkt", "k").await, SIZE as u64);
    let r = env.get("/bkt/k").await;
    assert_eq!(r.body.as_ref(), d.as_slice());
}

#[tokio::test]
async fn a_changed_under_store_file_is_not_served() {
    let (env, d, _) = with_object().await;
    let other: Vec<u8> = d.iter().map(|b| b.wrapping_add(1)).collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(env.ufs().join("bkt/k"), &other).unwrap();
    env.drop_cache("bkt", "k").await;
    let r = env.get("/bkt/k").await;
    // Found before the first byte is sent: an S3 error, not a 200 whose body breaks off.
    r.assert_error(500, "InternalError");
    assert!(r.header("x-amz-request-id").is_some());
    assert_ne!(r.body.as_ref(), other.as_slice());
}

#[tokio::test]
async fn object_attributes_answer_what_is_asked() {
    let env = Env::bucket().await;
    let etag = env.put("/bkt/k", "hello").await.etag();
    let asked = |attrs: &str| env.req("GET", "/bkt/k?attributes").header("x-amz-object-attributes", attrs);
    let r = env.ok(asked("ETag,ObjectSize,StorageClass,ObjectParts")).await;
    let x = r.text();
    assert_eq!(tag(&x, "ETag"), Some(etag));
    assert_eq!(tag(&x, "ObjectSize").as_deref(), Some("5"));
    assert_eq!(tag(&x, "StorageClass").as_deref(), Some("STANDARD"));
    assert_eq!(tag(&x, "ObjectParts"), None, "a plain object has no parts");
    assert!(r.header("last-modified").is_some());
    let r = env.ok(asked("ObjectSize")).await;
    assert_eq!(tag(&r.text(), "ETag"), None);
    env.req("GET", "/bkt/k?attributes").send().await.assert_error(400, "InvalidArgument");
    asked("ETag,Colour").send().await.assert_error(400, "InvalidArgument");
    env.req("GET", "/bkt/nope?attributes")
        .header("x-amz-object-attributes", "ETag")
        .send()
        .await
        .assert_error(404, "NoSuchKey");
}
