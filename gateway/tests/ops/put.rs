//! PutObject: plain, digests and checksums, aws-chunked bodies, conditional writes,
//! metadata, and where the bytes land in the under store.

use crate::support::*;

fn crc(algo: crc_fast::CrcAlgorithm, d: &[u8]) -> String {
    let mut h = crc_fast::Digest::new(algo);
    h.update(d);
    b64(&h.finalize().to_be_bytes()[4..])
}

pub fn crc32(d: &[u8]) -> String {
    crc(crc_fast::CrcAlgorithm::Crc32IsoHdlc, d)
}

pub fn crc32c(d: &[u8]) -> String {
    crc(crc_fast::CrcAlgorithm::Crc32Iscsi, d)
}

fn sha256_b64(d: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    b64(&Sha256::digest(d))
}

/// Asserts that `/bkt/k` does not exist and the bucket's folder holds no file.
async fn assert_nothing_stored(env: &Env) {
    env.get("/bkt/k").await.assert_error(404, "NoSuchKey");
    assert_eq!(files(&env.ufs().join("bkt")), Vec::<String>::new());
}

#[tokio::test]
async fn plain_put_then_get() {
    let env = Env::bucket().await;
    let d = data(10_000);
    let r = env.put("/bkt/k", d.clone()).await;
    assert_eq!(r.etag(), md5_hex(&d));
    let g = env.get("/bkt/k").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body.as_ref(), d.as_slice());
    assert_eq!(g.header("content-length"), Some("10000"));
    assert_eq!(g.etag(), md5_hex(&d));
}

#[tokio::test]
async fn under_store_holds_a_plain_file_with_the_bytes() {
    let env = Env::bucket().await;
    let d = data(3 * BLOCK as usize + 17);
    env.put("/bkt/dir/sub/k.bin", d.clone()).await;
    assert_eq!(files(&env.ufs().join("bkt")), vec!["dir/sub/k.bin".to_string()]);
    assert_eq!(std::fs::read(env.ufs().join("bkt/dir/sub/k.bin")).unwrap(), d);
}

#[tokio::test]
async fn overwrite_replaces_the_bytes_everywhere() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "first version").await;
    env.put("/bkt/k", "second").await;
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"second");
    assert_eq!(std::fs::read(env.ufs().join("bkt/k")).unwrap(), b"second");
    assert_eq!(files(&env.ufs().join("bkt")), vec!["k".to_string()]);
}

#[tokio::test]
async fn empty_object() {
    let env = Env::bucket().await;
    let r = env.put("/bkt/k", "").await;
    assert_eq!(r.etag(), "d41d8cd98f00b204e9800998ecf8427e");
    let g = env.get("/bkt/k").await;
    assert_eq!((g.status.as_u16(), g.body.len()), (200, 0));
    assert_eq!(g.header("content-length"), Some("0"));
}

#[tokio::test]
async fn content_md5_good() {
    let env = Env::bucket().await;
    let r = env.ok(env.req("PUT", "/bkt/k").header("content-md5", md5_b64(b"hello")).body("hello")).await;
    assert_eq!(r.etag(), md5_hex(b"hello"));
}

#[tokio::test]
async fn content_md5_mismatch_is_bad_digest_and_stores_nothing() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/k").header("content-md5", md5_b64(b"other")).body("hello").send().await;
    r.assert_error(400, "BadDigest");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn content_md5_not_a_digest_is_invalid_digest() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/k").header("content-md5", "bm90LWEtZGlnZXN0").body("hello").send().await;
    r.assert_error(400, "InvalidDigest");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn checksum_good_is_stored_and_echoed() {
    let env = Env::bucket().await;
    let d = data(5000);
    let cases = [("crc32", crc32(&d)), ("crc32c", crc32c(&d)), ("sha256", sha256_b64(&d))];
    for (algo, value) in cases {
        let path = format!("/bkt/{algo}");
        let header = format!("x-amz-checksum-{algo}");
        let r = env.ok(env.req("PUT", &path).header(&header, value.clone()).body(d.clone())).await;
        assert_eq!(r.header(&header), Some(value.as_str()), "{algo}");
        let g = env.ok(env.req("GET", &path).header("x-amz-checksum-mode", "ENABLED")).await;
        assert_eq!(g.header(&header), Some(value.as_str()), "{algo}");
        assert_eq!(g.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    }
}

#[tokio::test]
async fn checksum_mismatch_is_bad_digest_and_stores_nothing() {
    for (algo, wrong) in [("crc32", crc32(b"x")), ("crc32c", crc32c(b"x")), ("sha256", sha256_b64(b"x"))] {
        let env = Env::bucket().await;
        let header = format!("x-amz-checksum-{algo}");
        let r = env.req("PUT", "/bkt/k").header(&header, wrong).body(data(5000)).send().await;
        r.assert_error(400, "BadDigest");
        assert_nothing_stored(&env).await;
    }
}

#[tokio::test]
async fn checksum_only_on_request_when_not_asked() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "abc").await;
    let g = env.ok(env.req("GET", "/bkt/k").header("x-amz-checksum-mode", "ENABLED")).await;
    assert_eq!(g.header("x-amz-checksum-crc32"), None);
}

#[tokio::test]
async fn two_checksum_headers_are_refused() {
    let env = Env::bucket().await;
    let r = env
        .req("PUT", "/bkt/k")
        .header("x-amz-checksum-crc32", crc32(b"abc"))
        .header("x-amz-checksum-crc32c", crc32c(b"abc"))
        .body("abc")
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
}

#[tokio::test]
async fn content_sha256_mismatch() {
    let env = Env::bucket().await;
    let wrong = "a".repeat(64);
    let r = env.req("PUT", "/bkt/k").payload(Payload::Raw(wrong)).body("hello").send().await;
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn unsigned_payload_is_taken() {
    let env = Env::bucket().await;
    env.ok(env.req("PUT", "/bkt/k").payload(Payload::Unsigned).body("free")).await;
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"free");
}

#[tokio::test]
async fn aws_chunked_signed_body_is_decoded() {
    let env = Env::bucket().await;
    let d = data(20_000);
    let r = env
        .ok(env.req("PUT", "/bkt/k").payload(Payload::ChunkedSigned { chunk: 8192, tamper: false }).body(d.clone()))
        .await;
    assert_eq!(r.etag(), md5_hex(&d));
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), d.as_slice());
    assert_eq!(std::fs::read(env.ufs().join("bkt/k")).unwrap(), d);
}

#[tokio::test]
async fn aws_chunked_bad_chunk_signature_stores_nothing() {
    let env = Env::bucket().await;
    let r = env
        .req("PUT", "/bkt/k")
        .payload(Payload::ChunkedSigned { chunk: 8192, tamper: true })
        .body(data(20_000))
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn aws_chunked_unsigned_trailer_checksum_good() {
    let env = Env::bucket().await;
    let d = data(9000);
    let p = Payload::ChunkedUnsignedTrailer { chunk: 4000, name: "x-amz-checksum-crc32".into(), value: crc32(&d) };
    let r = env.ok(env.req("PUT", "/bkt/k").payload(p).body(d.clone())).await;
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc32(&d).as_str()));
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), d.as_slice());
}

#[tokio::test]
async fn aws_chunked_unsigned_trailer_checksum_bad() {
    let env = Env::bucket().await;
    let p = Payload::ChunkedUnsignedTrailer { chunk: 4000, name: "x-amz-checksum-crc32".into(), value: crc32(b"no") };
    let r = env.req("PUT", "/bkt/k").payload(p).body(data(9000)).send().await;
    r.assert_error(400, "BadDigest");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn aws_chunked_without_its_decoded_length() {
    let env = Env::bucket().await;
    let r = env
        .req("PUT", "/bkt/k")
        .payload(Payload::Raw("STREAMING-UNSIGNED-PAYLOAD-TRAILER".into()))
        .header("content-encoding", "aws-chunked")
        .body("5\r\nhello\r\n0\r\n\r\n")
        .send()
        .await;
    r.assert_error(411, "MissingContentLength");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn aws_chunked_named_beside_a_plain_body() {
    let env = Env::bucket().await;
    let cases = [("gzip, aws-chunked", Some("gzip")), ("aws-chunked, gzip", Some("gzip")), ("aws-chunked", None)];
    for (sent, stored) in cases {
        env.ok(env.req("PUT", "/bkt/k").header("content-encoding", sent).body("plain")).await;
        let r = env.ok(env.req("GET", "/bkt/k")).await;
        assert_eq!((r.body.as_ref(), r.header("content-encoding")), (b"plain".as_slice(), stored), "{sent}");
    }
}

#[tokio::test]
async fn a_trailer_announced_but_not_sent() {
    let env = Env::bucket().await;
    let r = env
        .req("PUT", "/bkt/k")
        .payload(Payload::Raw("STREAMING-UNSIGNED-PAYLOAD-TRAILER".into()))
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", "5")
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .body("5\r\nhello\r\n0\r\n\r\n")
        .send()
        .await;
    r.assert_error(400, "InvalidRequest");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn if_none_match_star_twice_is_412() {
    let env = Env::bucket().await;
    env.ok(env.req("PUT", "/bkt/k").header("if-none-match", "*").body("one")).await;
    let r = env.req("PUT", "/bkt/k").header("if-none-match", "*").body("two").send().await;
    r.assert_error(412, "PreconditionFailed");
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"one");
}

#[tokio::test]
async fn if_match_current_etag_replaces() {
    let env = Env::bucket().await;
    let etag = env.put("/bkt/k", "one").await.etag();
    env.ok(env.req("PUT", "/bkt/k").header("if-match", format!("\"{etag}\"")).body("two")).await;
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"two");
}

#[tokio::test]
async fn if_match_other_etag_is_412() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "one").await;
    let r = env.req("PUT", "/bkt/k").header("if-match", format!("\"{}\"", md5_hex(b"x"))).body("two").send().await;
    r.assert_error(412, "PreconditionFailed");
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"one");
}

#[tokio::test]
async fn if_match_on_a_missing_key_is_no_such_key() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/k").header("if-match", "\"abc\"").body("two").send().await;
    r.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn if_none_match_with_an_etag_refuses_only_that_object() {
    let env = Env::bucket().await;
    // No object: any ETag is "none match".
    env.ok(env.req("PUT", "/bkt/k").header("if-none-match", "\"abc\"").body("one")).await;
    let one = md5_hex(b"one");
    let r = env.req("PUT", "/bkt/k").header("if-none-match", format!("\"{one}\"")).body("two").send().await;
    r.assert_error(412, "PreconditionFailed");
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"one");
    env.ok(env.req("PUT", "/bkt/k").header("if-none-match", "\"abc\"").body("two")).await;
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"two");
}

#[tokio::test]
async fn metadata_and_stored_headers_round_trip() {
    let env = Env::bucket().await;
    let put = env
        .req("PUT", "/bkt/k")
        .header("x-amz-meta-color", "blue")
        .header("x-amz-meta-Owner", "ann")
        .header("content-type", "text/plain")
        .header("cache-control", "max-age=60")
        .header("content-disposition", "attachment; filename=\"k.txt\"")
        .header("content-language", "fr")
        .header("x-amz-tagging", "a=1&b=2")
        .body("hello");
    env.ok(put).await;
    for method in ["GET", "HEAD"] {
        let r = env.ok(env.req(method, "/bkt/k")).await;
        assert_eq!(r.header("x-amz-meta-color"), Some("blue"), "{method}");
        assert_eq!(r.header("x-amz-meta-owner"), Some("ann"), "{method}");
        assert_eq!(r.header("content-type"), Some("text/plain"), "{method}");
        assert_eq!(r.header("cache-control"), Some("max-age=60"), "{method}");
        assert_eq!(r.header("content-disposition"), Some("attachment; filename=\"k.txt\""), "{method}");
        assert_eq!(r.header("content-language"), Some("fr"), "{method}");
        assert_eq!(r.header("x-amz-tagging-count"), Some("2"), "{method}");
    }
}

#[tokio::test]
async fn default_content_type() {
    let env = Env::bucket().await;
    env.put("/bkt/k", "x").await;
    assert_eq!(env.get("/bkt/k").await.header("content-type"), Some("binary/octet-stream"));
}

#[tokio::test]
async fn metadata_over_2k_is_refused() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/k").header("x-amz-meta-big", "v".repeat(2100)).body("x").send().await;
    r.assert_error(400, "MetadataTooLarge");
}

#[tokio::test]
async fn dot_dot_keys_stay_inside_the_bucket_folder() {
    let env = Env::bucket().await;
    for (i, key) in ["../../escape", "a/../../x", "./.././y"].iter().enumerate() {
        let body = format!("body {i}");
        env.put(&format!("/bkt/{key}"), body.clone()).await;
        assert_eq!(env.get(&format!("/bkt/{key}")).await.body.as_ref(), body.as_bytes(), "{key}");
    }
    let all = files(&env.ufs());
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|f| f.starts_with("bkt/")), "{all:?}");
    assert!(!env.dir.path().join("escape").exists() && !env.ufs().join("escape").exists());
}

#[tokio::test]
async fn key_too_long() {
    let env = Env::bucket().await;
    let r = env.req("PUT", &format!("/bkt/{}", "k".repeat(1025))).body("x").send().await;
    r.assert_error(400, "KeyTooLongError");
}

#[tokio::test]
async fn into_a_missing_bucket() {
    let env = Env::new().await;
    env.req("PUT", "/nobucket/k").body("x").send().await.assert_error(404, "NoSuchBucket");
}

#[tokio::test]
async fn unknown_write_type_is_refused() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/k").header("x-strata-write-type", "SOMETIMES").body("x").send().await;
    r.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn must_cache_keeps_the_bytes_out_of_the_under_store() {
    let env = Env::bucket().await;
    env.ok(env.req("PUT", "/bkt/k").header("x-strata-write-type", "MUST_CACHE").body("cached only")).await;
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"cached only");
    assert_eq!(files(&env.ufs().join("bkt")), Vec::<String>::new());
}

#[tokio::test]
async fn through_writes_the_under_store() {
    let env = Env::bucket().await;
    env.ok(env.req("PUT", "/bkt/k").header("x-strata-write-type", "THROUGH").body("to disk")).await;
    assert_eq!(std::fs::read(env.ufs().join("bkt/k")).unwrap(), b"to disk");
    assert_eq!(env.get("/bkt/k").await.body.as_ref(), b"to disk");
}

#[tokio::test]
async fn a_body_that_breaks_is_incomplete_and_stores_nothing() {
    let env = Env::bucket().await;
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
        vec![Ok(bytes::Bytes::from(data(5000))), Err(std::io::Error::other("connection reset"))];
    let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
    let r = env.req("PUT", "/bkt/k").header("content-length", "10000").stream(body).send().await;
    r.assert_error(400, "IncompleteBody");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn a_body_shorter_than_its_length_is_incomplete() {
    let env = Env::bucket().await;
    let body = axum::body::Body::from(data(100));
    let r = env.req("PUT", "/bkt/k").header("content-length", "200").stream(body).send().await;
    r.assert_error(400, "IncompleteBody");
    assert_nothing_stored(&env).await;
}

#[tokio::test]
async fn a_put_with_no_length_and_no_chunking_is_411() {
    let env = Env::bucket().await;
    env.req("PUT", "/bkt/k").unframed().send().await.assert_error(411, "MissingContentLength");
    assert_nothing_stored(&env).await;
    // An empty body with Content-Length: 0 is an empty object.
    env.ok(env.req("PUT", "/bkt/k")).await;
    assert_eq!(env.get("/bkt/k").await.body.len(), 0);
}

#[tokio::test]
async fn non_ascii_metadata_round_trips_as_sent() {
    let env = Env::bucket().await;
    // Text with chars beyond ISO-8859-1 goes back as the UTF-8 sent (botocore's é: test_s3_exact.py).
    let r = env.req("PUT", "/bkt/k").header("x-amz-meta-m", "caf\u{e9} \u{1f600}").body("x").send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let g = env.get("/bkt/k").await;
    assert_eq!(g.headers.get("x-amz-meta-m").map(|v| v.as_bytes()), Some("caf\u{e9} \u{1f600}".as_bytes()));
}
