//! Buckets (create, head, list, delete, not empty), DeleteObject and DeleteObjects, and
//! object and bucket tagging.

use crate::support::*;

#[tokio::test]
async fn create_and_list_buckets() {
    let env = Env::new().await;
    let r = env.ok(env.req("PUT", "/alpha")).await;
    assert_eq!(r.header("location"), Some("/alpha"));
    env.ok(env.req("PUT", "/beta")).await;
    let x = env.ok(env.req("GET", "/")).await.text();
    assert_eq!(tags(&x, "Name"), vec!["alpha", "beta"]);
    assert_eq!(tag(&x, "ID").as_deref(), Some(AK));
}

#[tokio::test]
async fn list_buckets_pages_and_filters() {
    let env = Env::new().await;
    for b in ["bkt-c", "bkt-a", "bkt-b", "other"] {
        env.ok(env.req("PUT", &format!("/{b}"))).await;
    }
    let x = env.ok(env.req("GET", "/?max-buckets=2")).await.text();
    assert_eq!(tags(&x, "Name"), vec!["bkt-a", "bkt-b"]);
    let token = tag(&x, "ContinuationToken").expect("a token when more buckets follow");
    let x = env.ok(env.req("GET", &format!("/?max-buckets=2&continuation-token={token}"))).await.text();
    assert_eq!(tags(&x, "Name"), vec!["bkt-c", "other"]);
    assert_eq!(tag(&x, "ContinuationToken"), None, "{x}");
    let x = env.ok(env.req("GET", "/?prefix=bkt-&max-buckets=3")).await.text();
    assert_eq!(tags(&x, "Name"), vec!["bkt-a", "bkt-b", "bkt-c"]);
    assert_eq!((tag(&x, "ContinuationToken"), tag(&x, "Prefix").as_deref()), (None, Some("bkt-")));
    let x = env.ok(env.req("GET", "/")).await.text();
    assert_eq!(tags(&x, "Name").len(), 4);
    for bad in ["0", "10001", "x"] {
        env.get(&format!("/?max-buckets={bad}")).await.assert_error(400, "InvalidArgument");
    }
}

#[tokio::test]
async fn create_with_a_location_constraint() {
    let env = Env::new().await;
    let conf =
        "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
    env.ok(env.req("PUT", "/alpha").body(conf)).await;
    env.req("PUT", "/beta").body("<oops").send().await.assert_error(400, "MalformedXML");
}

#[tokio::test]
async fn create_twice_is_already_owned() {
    let env = Env::bucket().await;
    env.req("PUT", "/bkt").send().await.assert_error(409, "BucketAlreadyOwnedByYou");
}

#[tokio::test]
async fn bad_bucket_names() {
    let env = Env::new().await;
    for name in ["ab", "UPPER", "a_b", "-abc"] {
        env.req("PUT", &format!("/{name}")).send().await.assert_error(400, "InvalidBucketName");
    }
}

#[tokio::test]
async fn head_bucket() {
    let env = Env::bucket().await;
    let r = env.ok(env.req("HEAD", "/bkt")).await;
    assert_eq!(r.header("x-amz-bucket-region"), Some("us-east-1"));
    let r = env.req("HEAD", "/nobkt").send().await;
    assert_eq!((r.status.as_u16(), r.body.len()), (404, 0));
}

#[tokio::test]
async fn location_and_versioning() {
    let env = Env::bucket().await;
    let x = env.ok(env.req("GET", "/bkt?location")).await.text();
    assert!(x.contains("LocationConstraint"), "{x}");
    // us-east-1 is an empty constraint.
    assert!(x.contains("></LocationConstraint>") || x.contains("/>"), "{x}");
    assert!(!x.contains("us-east-1"), "{x}");
    env.ok(env.req("GET", "/bkt?versioning")).await;
    env.req("PUT", "/bkt?versioning").send().await.assert_error(501, "NotImplemented");
}

#[tokio::test]
async fn delete_an_empty_bucket() {
    let env = Env::bucket().await;
    assert_eq!(env.req("DELETE", "/bkt").send().await.status, 204);
    assert_eq!(env.req("HEAD", "/bkt").send().await.status, 404);
    env.get("/bkt?list-type=2").await.assert_error(404, "NoSuchBucket");
    env.req("DELETE", "/bkt").send().await.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn a_bucket_with_objects_is_not_empty() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "x").await;
    env.req("DELETE", "/bkt").send().await.assert_error(409, "BucketNotEmpty");
    assert_eq!(env.req("DELETE", "/bkt/k").send().await.status, 204);
    assert_eq!(env.req("DELETE", "/bkt").send().await.status, 204);
}

#[tokio::test]
async fn delete_object() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "bytes").await;
    assert_eq!(env.req("DELETE", "/bkt/k").send().await.status, 204);
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
    assert!(!env.ufs().join("bkt/k").exists());
}

#[tokio::test]
async fn delete_a_missing_key_succeeds() {
    let env = Env::bucket().await;
    assert_eq!(env.req("DELETE", "/bkt/none").send().await.status, 204);
    env.req("DELETE", "/nobkt/k").send().await.assert_error(404, "NoSuchBucket");
}

fn delete_xml(keys: &[&str], quiet: bool) -> String {
    let objects: String = keys.iter().map(|k| format!("<Object><Key>{k}</Key></Object>")).collect();
    format!("<Delete><Quiet>{quiet}</Quiet>{objects}</Delete>")
}

#[tokio::test]
async fn delete_objects() {
    let env = Env::bucket().await;
    env.put("/bkt/a", "1").await;
    env.put("/bkt/b", "2").await;
    let body = delete_xml(&["a", "b", "missing"], false);
    let r = env.ok(env.req("POST", "/bkt?delete").header("content-md5", md5_b64(body.as_bytes())).body(body)).await;
    let deleted: Vec<String> = tags(&r.text(), "Deleted").iter().filter_map(|d| tag(d, "Key")).collect();
    assert_eq!(deleted, vec!["a", "b", "missing"]);
    env.get("/bkt/a").await.assert_error(404, "NoSuchKey");
    env.get("/bkt/b").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn delete_objects_quietly() {
    let env = Env::bucket().await;
    env.put("/bkt/a", "1").await;
    let body = delete_xml(&["a"], true);
    let r = env.ok(env.req("POST", "/bkt?delete").header("content-md5", md5_b64(body.as_bytes())).body(body)).await;
    assert!(tags(&r.text(), "Deleted").is_empty(), "{}", r.text());
    env.get("/bkt/a").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn delete_objects_refuses_bad_requests() {
    let env = Env::bucket().await;
    env.put("/bkt/a", "1").await;
    let body = delete_xml(&["a"], false);
    let r = env.req("POST", "/bkt?delete").header("content-md5", md5_b64(b"other")).body(body.clone()).send().await;
    r.assert_error(400, "BadDigest");
    // Neither Content-MD5 nor a checksum: AWS refuses the request.
    env.req("POST", "/bkt?delete").body(body.clone()).send().await.assert_error(400, "InvalidRequest");
    let with_md5 =
        |b: &'static str| env.req("POST", "/bkt?delete").header("content-md5", md5_b64(b.as_bytes())).body(b);
    with_md5("<Delete></Delete>").send().await.assert_error(400, "MalformedXML");
    with_md5("not xml").send().await.assert_error(400, "MalformedXML");
    assert_eq!(env.get("/bkt/a").await.status, 200);
    let r = env.req("POST", "/nobkt?delete").header("content-md5", md5_b64(body.as_bytes())).body(body).send().await;
    r.assert_error(404, "NoSuchBucket");
}

fn tagging_xml(pairs: &[(&str, &str)]) -> String {
    let tags: String = pairs.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect();
    format!("<Tagging><TagSet>{tags}</TagSet></Tagging>")
}

#[tokio::test]
async fn object_tagging_round_trip() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "x").await;
    env.ok(env.req("PUT", "/bkt/k?tagging").body(tagging_xml(&[("z", "last"), ("a", "first")]))).await;
    let x = env.ok(env.req("GET", "/bkt/k?tagging")).await.text();
    assert_eq!(
        (tags(&x, "Key"), tags(&x, "Value")),
        (vec!["a".into(), "z".into()], vec!["first".into(), "last".into()])
    );
    assert_eq!(env.get("/bkt/k").await.header("x-amz-tagging-count"), Some("2"));
    assert_eq!(env.req("DELETE", "/bkt/k?tagging").send().await.status, 204);
    let x = env.ok(env.req("GET", "/bkt/k?tagging")).await.text();
    assert!(tags(&x, "Key").is_empty(), "{x}");
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"x");
}

#[tokio::test]
async fn object_tagging_of_a_missing_key() {
    let env = Env::bucket().await;
    env.get("/bkt/none?tagging").await.assert_error(404, "NoSuchKey");
    let r = env.req("PUT", "/bkt/none?tagging").body(tagging_xml(&[("a", "1")])).send().await;
    r.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn too_many_object_tags() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "x").await;
    let pairs: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.req("PUT", "/bkt/k?tagging").body(tagging_xml(&refs)).send().await.assert_error(400, "BadRequest");
    let header = (0..11).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
    env.req("PUT", "/bkt/j").header("x-amz-tagging", header).body("x").send().await.assert_error(400, "BadRequest");
}

#[tokio::test]
async fn bucket_tagging_round_trip() {
    let env = Env::bucket().await;
    env.get("/bkt?tagging").await.assert_error(404, "NoSuchTagSet");
    env.ok(env.req("PUT", "/bkt?tagging").body(tagging_xml(&[("team", "storage")]))).await;
    let x = env.ok(env.req("GET", "/bkt?tagging")).await.text();
    assert_eq!(tags(&x, "Key"), vec!["team"]);
    assert_eq!(env.req("DELETE", "/bkt?tagging").send().await.status, 204);
    env.get("/bkt?tagging").await.assert_error(404, "NoSuchTagSet");
}
