//! ListObjects (v1) and ListObjectsV2: prefix, delimiter, max-keys, markers and
//! continuation tokens, encoding.

use crate::support::*;

const KEYS: [&str; 6] = ["a/1", "a/2", "b/1", "c", "d/e/f", "x y"];

async fn with_keys() -> Env {
    let env = Env::bucket().await;
    for k in KEYS {
        env.put(&format!("/bkt/{}", k.replace(' ', "%20")), k.to_string()).await;
    }
    env
}

async fn list(env: &Env, query: &str) -> String {
    env.ok(env.req("GET", &format!("/bkt?{query}"))).await.text()
}

fn keys(xml: &str) -> Vec<String> {
    tags(xml, "Contents").iter().filter_map(|c| tag(c, "Key")).collect()
}

fn prefixes(xml: &str) -> Vec<String> {
    tags(xml, "CommonPrefixes").iter().filter_map(|c| tag(c, "Prefix")).collect()
}

#[tokio::test]
async fn v2_lists_every_key_in_order() {
    let env = with_keys().await;
    let x = list(&env, "list-type=2").await;
    assert_eq!(keys(&x), KEYS.to_vec());
    assert_eq!(tag(&x, "KeyCount").as_deref(), Some("6"));
    assert_eq!(tag(&x, "IsTruncated").as_deref(), Some("false"));
    assert_eq!(tag(&x, "Name").as_deref(), Some("bkt"));
    let sizes = tags(&x, "Size");
    assert_eq!(sizes[0], "3");
}

#[tokio::test]
async fn v2_prefix() {
    let env = with_keys().await;
    assert_eq!(keys(&list(&env, "list-type=2&prefix=a/").await), vec!["a/1", "a/2"]);
    assert_eq!(keys(&list(&env, "list-type=2&prefix=zz").await), Vec::<String>::new());
}

#[tokio::test]
async fn v2_delimiter() {
    let env = with_keys().await;
    let x = list(&env, "list-type=2&delimiter=/").await;
    assert_eq!(keys(&x), vec!["c", "x y"]);
    assert_eq!(prefixes(&x), vec!["a/", "b/", "d/"]);
    assert_eq!(tag(&x, "KeyCount").as_deref(), Some("5"));
    let x = list(&env, "list-type=2&delimiter=/&prefix=d/").await;
    assert_eq!(prefixes(&x), vec!["d/e/"]);
}

#[tokio::test]
async fn v2_continuation_pages_through_everything() {
    let env = with_keys().await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let q = match &token {
            Some(t) => {
                format!("list-type=2&max-keys=2&continuation-token={}", t.replace('=', "%3D").replace('+', "%2B"))
            }
            None => "list-type=2&max-keys=2".to_string(),
        };
        let x = list(&env, &q).await;
        let page = keys(&x);
        assert!(page.len() <= 2);
        seen.extend(page);
        match tag(&x, "NextContinuationToken") {
            Some(t) => {
                assert_eq!(tag(&x, "IsTruncated").as_deref(), Some("true"));
                token = Some(t);
            }
            None => break,
        }
    }
    assert_eq!(seen, KEYS.to_vec());
}

#[tokio::test]
async fn v2_start_after() {
    let env = with_keys().await;
    let x = list(&env, "list-type=2&start-after=b/1").await;
    assert_eq!(keys(&x), vec!["c", "d/e/f", "x y"]);
    assert_eq!(tag(&x, "StartAfter").as_deref(), Some("b/1"));
}

#[tokio::test]
async fn v2_max_keys_zero() {
    let env = with_keys().await;
    let x = list(&env, "list-type=2&max-keys=0").await;
    assert_eq!(keys(&x), Vec::<String>::new());
    assert_eq!(tag(&x, "MaxKeys").as_deref(), Some("0"));
}

#[tokio::test]
async fn v1_marker_and_next_marker() {
    let env = with_keys().await;
    let x = list(&env, "marker=b/1").await;
    assert_eq!(keys(&x), vec!["c", "d/e/f", "x y"]);
    assert_eq!(tag(&x, "Marker").as_deref(), Some("b/1"));
    let x = list(&env, "max-keys=2").await;
    assert_eq!((tag(&x, "IsTruncated").as_deref(), tag(&x, "NextMarker")), (Some("true"), None));
    let x = list(&env, "max-keys=2&delimiter=/").await;
    assert_eq!(tag(&x, "IsTruncated").as_deref(), Some("true"));
    assert!(tag(&x, "NextMarker").is_some());
}

#[tokio::test]
async fn v1_has_owners_and_v2_only_when_asked() {
    let env = with_keys().await;
    assert!(tag(&list(&env, "").await, "Owner").is_some());
    assert!(tag(&list(&env, "list-type=2").await, "Owner").is_none());
    assert!(tag(&list(&env, "list-type=2&fetch-owner=true").await, "Owner").is_some());
}

#[tokio::test]
async fn url_encoding() {
    let env = with_keys().await;
    let x = list(&env, "list-type=2&encoding-type=url&prefix=x").await;
    assert_eq!(keys(&x), vec!["x%20y"]);
    assert_eq!(tag(&x, "EncodingType").as_deref(), Some("url"));
    env.get("/bkt?encoding-type=base64").await.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn bad_parameters() {
    let env = with_keys().await;
    env.get("/bkt?list-type=2&max-keys=-1").await.assert_error(400, "InvalidArgument");
    env.get("/bkt?list-type=2&max-keys=many").await.assert_error(400, "InvalidArgument");
    env.get("/bkt?list-type=2&continuation-token=%21%21").await.assert_error(400, "InvalidArgument");
    env.get("/bkt?list-type=3").await.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn listing_a_missing_bucket() {
    let env = Env::new().await;
    env.get("/nobkt?list-type=2").await.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn an_empty_bucket() {
    let env = Env::bucket().await;
    let x = list(&env, "list-type=2").await;
    assert_eq!((keys(&x), tag(&x, "KeyCount").as_deref()), (Vec::<String>::new(), Some("0")));
}
