//! Multipart uploads: create, upload part, list parts, complete (and its InvalidPart,
//! InvalidPartOrder, EntityTooSmall), abort, UploadPartCopy, reading parts back.

use crate::support::*;

async fn create(env: &Env, key: &str) -> String {
    let r = env.ok(env.req("POST", &format!("/bkt/{key}?uploads")).header("x-amz-meta-from", "create")).await;
    tag(&r.text(), "UploadId").unwrap()
}

async fn part(env: &Env, key: &str, id: &str, n: u32, body: Vec<u8>) -> String {
    env.put(&format!("/bkt/{key}?partNumber={n}&uploadId={id}"), body).await.etag()
}

fn complete_xml(parts: &[(u32, &str)]) -> String {
    let parts: String =
        parts.iter().map(|(n, e)| format!("<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>")).collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

async fn complete(env: &Env, key: &str, id: &str, parts: &[(u32, &str)]) -> Resp {
    env.req("POST", &format!("/bkt/{key}?uploadId={id}")).body(complete_xml(parts)).send().await
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::{Digest, Md5};
    let mut all = Md5::new();
    for p in parts {
        all.update(Md5::digest(p));
    }
    format!("{}-{}", hex::encode(all.finalize()), parts.len())
}

/// An upload of a 5 MiB part and a small last part.
async fn two_parts(env: &Env) -> (String, Vec<u8>, Vec<u8>, String, String) {
    let id = create(env, "mp").await;
    let (p1, p2) = (data(5 * MIB), b"the tail".to_vec());
    let e1 = part(env, "mp", &id, 1, p1.clone()).await;
    let e2 = part(env, "mp", &id, 2, p2.clone()).await;
    (id, p1, p2, e1, e2)
}

#[tokio::test]
async fn create_answers_an_upload_id() {
    let env = Env::bucket().await;
    let r = env.ok(env.req("POST", "/bkt/mp?uploads")).await;
    assert_eq!(tag(&r.text(), "Key").as_deref(), Some("mp"));
    assert_eq!(tag(&r.text(), "Bucket").as_deref(), Some("bkt"));
    assert!(!tag(&r.text(), "UploadId").unwrap().is_empty());
}

#[tokio::test]
async fn upload_part_answers_its_md5() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    assert_eq!(part(&env, "mp", &id, 1, b"part one".to_vec()).await, md5_hex(b"part one"));
}

#[tokio::test]
async fn complete_joins_the_parts() {
    let env = Env::bucket().await;
    let (id, p1, p2, e1, e2) = two_parts(&env).await;
    let r = complete(&env, "mp", &id, &[(1, &e1), (2, &e2)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let want = multipart_etag(&[&p1, &p2]);
    assert_eq!(unquote(&tag(&r.text(), "ETag").unwrap()), want);
    let g = env.get("/bkt/mp").await;
    let whole = [p1.as_slice(), p2.as_slice()].concat();
    assert!(g.body.as_ref() == whole.as_slice());
    assert_eq!(g.etag(), want);
    assert_eq!(g.header("x-amz-mp-parts-count"), Some("2"));
    assert_eq!(g.header("x-amz-meta-from"), Some("create"));
    assert!(std::fs::read(env.ufs().join("bkt/mp")).unwrap() == whole);
}

#[tokio::test]
async fn a_retried_complete_answers_the_same_and_leaves_the_object() {
    let env = Env::bucket().await;
    let (id, p1, p2, e1, e2) = two_parts(&env).await;
    let first = complete(&env, "mp", &id, &[(1, &e1), (2, &e2)]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    // The client lost that answer and sends the same request again.
    let again = complete(&env, "mp", &id, &[(1, &e1), (2, &e2)]).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(tag(&again.text(), "ETag"), tag(&first.text(), "ETag"));
    assert_eq!(tag(&again.text(), "Key").as_deref(), Some("mp"));
    let g = env.get("/bkt/mp").await;
    assert!(g.body.as_ref() == [p1.as_slice(), p2.as_slice()].concat().as_slice());
    assert_eq!(g.etag(), multipart_etag(&[&p1, &p2]));
    // Other parts than it completed with: InvalidPart; the upload stays gone otherwise.
    complete(&env, "mp", &id, &[(1, &e1)]).await.assert_error(400, "InvalidPart");
    env.get(&format!("/bkt/mp?uploadId={id}")).await.assert_error(404, "NoSuchUpload");
    let r = env.req("PUT", &format!("/bkt/mp?partNumber=3&uploadId={id}")).body("late").send().await;
    r.assert_error(404, "NoSuchUpload");
    // Overwritten since: the retry still answers what the completion made.
    env.put("/bkt/mp", "newer").await;
    let late = complete(&env, "mp", &id, &[(1, &e1), (2, &e2)]).await;
    assert_eq!((late.status.as_u16(), tag(&late.text(), "ETag")), (200, tag(&first.text(), "ETag")));
    assert_eq!(env.get("/bkt/mp").await.body.as_ref(), b"newer");
}

#[tokio::test]
async fn two_completes_at_once_both_succeed_with_one_etag() {
    let env = Env::bucket().await;
    let (id, _, _, e1, e2) = two_parts(&env).await;
    let parts = [(1, e1.as_str()), (2, e2.as_str())];
    let (a, b) = tokio::join!(complete(&env, "mp", &id, &parts), complete(&env, "mp", &id, &parts));
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200), "{} {}", a.text(), b.text());
    assert_eq!(tag(&a.text(), "ETag"), tag(&b.text(), "ETag"));
    assert_eq!(env.get("/bkt/mp").await.etag(), unquote(&tag(&a.text(), "ETag").unwrap()));
}

#[tokio::test]
async fn a_retried_complete_with_if_none_match_star_is_not_refused_by_its_own_object() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    let e = part(&env, "mp", &id, 1, b"new".to_vec()).await;
    for _ in 0..2 {
        let path = format!("/bkt/mp?uploadId={id}");
        let r = env.req("POST", &path).header("if-none-match", "*").body(complete_xml(&[(1, &e)])).send().await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[tokio::test]
async fn part_number_reads_one_part_of_a_multipart_object() {
    let env = Env::bucket().await;
    let (id, p1, p2, e1, e2) = two_parts(&env).await;
    assert_eq!(complete(&env, "mp", &id, &[(1, &e1), (2, &e2)]).await.status, 200);
    let r = env.get("/bkt/mp?partNumber=2").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), p2.as_slice());
    let start = p1.len();
    let range = format!("bytes {start}-{}/{}", start + p2.len() - 1, start + p2.len());
    assert_eq!(r.header("content-range"), Some(range.as_str()));
    env.get("/bkt/mp?partNumber=3").await.assert_error(400, "InvalidPart");
}

#[tokio::test]
async fn complete_with_a_wrong_etag_is_invalid_part() {
    let env = Env::bucket().await;
    let (id, _, _, e1, _) = two_parts(&env).await;
    complete(&env, "mp", &id, &[(1, &e1), (2, &md5_hex(b"x"))]).await.assert_error(400, "InvalidPart");
    complete(&env, "mp", &id, &[(1, &e1), (3, &e1)]).await.assert_error(400, "InvalidPart");
    env.get("/bkt/mp").await.assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn complete_out_of_order_is_invalid_part_order() {
    let env = Env::bucket().await;
    let (id, _, _, e1, e2) = two_parts(&env).await;
    complete(&env, "mp", &id, &[(2, &e2), (1, &e1)]).await.assert_error(400, "InvalidPartOrder");
}

#[tokio::test]
async fn a_part_named_twice_is_its_last_sending() {
    // Part 1 sent as B, and again as A (which finished last): the client names both.
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    let eb = part(&env, "mp", &id, 1, b"BBBBBBBB".to_vec()).await;
    let ea = part(&env, "mp", &id, 1, b"AAAAAAAA".to_vec()).await;
    let r = complete(&env, "mp", &id, &[(1, &eb), (1, &ea)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(env.get("/bkt/mp").await.body.as_ref(), b"AAAAAAAA");
}

#[tokio::test]
async fn a_small_part_before_the_last_is_entity_too_small() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    let e1 = part(&env, "mp", &id, 1, data(1000)).await;
    let e2 = part(&env, "mp", &id, 2, data(1000)).await;
    complete(&env, "mp", &id, &[(1, &e1), (2, &e2)]).await.assert_error(400, "EntityTooSmall");
}

#[tokio::test]
async fn a_single_small_part_is_fine() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    let e1 = part(&env, "mp", &id, 1, b"tiny".to_vec()).await;
    assert_eq!(complete(&env, "mp", &id, &[(1, &e1)]).await.status, 200);
    assert_eq!(env.get("/bkt/mp").await.body.as_ref(), b"tiny");
}

#[tokio::test]
async fn complete_without_parts_is_malformed() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    complete(&env, "mp", &id, &[]).await.assert_error(400, "MalformedXML");
    let r = env.req("POST", &format!("/bkt/mp?uploadId={id}")).body("<not xml").send().await;
    r.assert_error(400, "MalformedXML");
}

#[tokio::test]
async fn a_part_uploaded_again_replaces_the_first() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    part(&env, "mp", &id, 1, b"first".to_vec()).await;
    let e = part(&env, "mp", &id, 1, b"second".to_vec()).await;
    let l = env.get(&format!("/bkt/mp?uploadId={id}")).await;
    assert_eq!(tags(&l.text(), "PartNumber"), vec!["1"]);
    assert_eq!(complete(&env, "mp", &id, &[(1, &e)]).await.status, 200);
    assert_eq!(env.get("/bkt/mp").await.body.as_ref(), b"second");
}

#[tokio::test]
async fn list_parts() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    for n in 1..=3 {
        part(&env, "mp", &id, n, vec![b'x'; n as usize * 10]).await;
    }
    let r = env.ok(env.req("GET", &format!("/bkt/mp?uploadId={id}"))).await;
    let t = r.text();
    assert_eq!(tags(&t, "PartNumber"), vec!["1", "2", "3"]);
    assert_eq!(tags(&t, "Size"), vec!["10", "20", "30"]);
    assert_eq!(tag(&t, "IsTruncated").as_deref(), Some("false"));
    let page = env.ok(env.req("GET", &format!("/bkt/mp?uploadId={id}&max-parts=2"))).await.text();
    assert_eq!(tags(&page, "PartNumber"), vec!["1", "2"]);
    assert_eq!(tag(&page, "IsTruncated").as_deref(), Some("true"));
    assert_eq!(tag(&page, "NextPartNumberMarker").as_deref(), Some("2"));
    let rest = env.ok(env.req("GET", &format!("/bkt/mp?uploadId={id}&part-number-marker=2"))).await.text();
    assert_eq!(tags(&rest, "PartNumber"), vec!["3"]);
}

#[tokio::test]
async fn list_uploads() {
    let env = Env::bucket().await;
    let a = create(&env, "dir/a").await;
    let b = create(&env, "dir/b").await;
    create(&env, "other").await;
    let r = env.ok(env.req("GET", "/bkt?uploads&prefix=dir/")).await.text();
    assert_eq!(tags(&r, "Key"), vec!["dir/a", "dir/b"]);
    let ids = tags(&r, "UploadId");
    assert!(ids.contains(&a) && ids.contains(&b), "{r}");
}

#[tokio::test]
async fn abort_forgets_the_upload() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    part(&env, "mp", &id, 1, b"bytes".to_vec()).await;
    let r = env.req("DELETE", &format!("/bkt/mp?uploadId={id}")).send().await;
    assert_eq!(r.status, 204);
    env.get(&format!("/bkt/mp?uploadId={id}")).await.assert_error(404, "NoSuchUpload");
    let r = env.req("PUT", &format!("/bkt/mp?partNumber=2&uploadId={id}")).body("late").send().await;
    r.assert_error(404, "NoSuchUpload");
    complete(&env, "mp", &id, &[(1, &md5_hex(b"bytes"))]).await.assert_error(404, "NoSuchUpload");
}

#[tokio::test]
async fn unknown_upload() {
    let env = Env::bucket().await;
    let r = env.req("PUT", "/bkt/mp?partNumber=1&uploadId=nope").body("x").send().await;
    r.assert_error(404, "NoSuchUpload");
    env.req("DELETE", "/bkt/mp?uploadId=nope").send().await.assert_error(404, "NoSuchUpload");
}

#[tokio::test]
async fn part_number_out_of_bounds() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    for n in ["0", "10001", "x"] {
        let r = env.req("PUT", &format!("/bkt/mp?partNumber={n}&uploadId={id}")).body("x").send().await;
        r.assert_error(400, "InvalidArgument");
    }
}

#[tokio::test]
async fn a_part_with_a_bad_md5_is_not_recorded() {
    let env = Env::bucket().await;
    let id = create(&env, "mp").await;
    let r = env
        .req("PUT", &format!("/bkt/mp?partNumber=1&uploadId={id}"))
        .header("content-md5", md5_b64(b"other"))
        .body("part")
        .send()
        .await;
    r.assert_error(400, "BadDigest");
    let l = env.get(&format!("/bkt/mp?uploadId={id}")).await.text();
    assert_eq!(tags(&l, "PartNumber"), Vec::<String>::new());
}

#[tokio::test]
async fn upload_part_copy_with_a_range() {
    let env = Env::bucket().await;
    let src = data(40_000);
    env.put("/bkt/src", src.clone()).await;
    let id = create(&env, "mp").await;
    let r = env
        .req("PUT", &format!("/bkt/mp?partNumber=1&uploadId={id}"))
        .header("x-amz-copy-source", "/bkt/src")
        .header("x-amz-copy-source-range", "bytes=100-20099")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = unquote(&tag(&r.text(), "ETag").unwrap());
    assert_eq!(etag, md5_hex(&src[100..20100]));
    assert_eq!(complete(&env, "mp", &id, &[(1, &etag)]).await.status, 200);
    assert_eq!(env.get("/bkt/mp").await.body.as_ref(), &src[100..20100]);
}

#[tokio::test]
async fn upload_part_copy_range_outside_the_source() {
    let env = Env::bucket().await;
    env.put("/bkt/src", data(1000)).await;
    let id = create(&env, "mp").await;
    for (range, status, code) in [
        ("bytes=0-1000", 416, "InvalidRange"),
        ("bytes=990-1021", 416, "InvalidRange"),
        ("bytes=10-5", 400, "InvalidArgument"),
        ("10-20", 400, "InvalidArgument"),
    ] {
        let r = env
            .req("PUT", &format!("/bkt/mp?partNumber=1&uploadId={id}"))
            .header("x-amz-copy-source", "/bkt/src")
            .header("x-amz-copy-source-range", range)
            .send()
            .await;
        r.assert_error(status, code);
    }
}

#[tokio::test]
async fn complete_if_none_match_star_on_an_existing_key() {
    let env = Env::bucket().await;
    env.put("/bkt/mp", "there").await;
    let id = create(&env, "mp").await;
    let e = part(&env, "mp", &id, 1, b"new".to_vec()).await;
    let r = env
        .req("POST", &format!("/bkt/mp?uploadId={id}"))
        .header("if-none-match", "*")
        .body(complete_xml(&[(1, &e)]))
        .send()
        .await;
    r.assert_error(412, "PreconditionFailed");
    assert_eq!(env.get("/bkt/mp").await.body.as_ref(), b"there");
}

#[tokio::test]
async fn a_checksummed_upload_completes_with_a_composite_checksum() {
    use base64::Engine;
    let env = Env::bucket().await;
    let r = env.ok(env.req("POST", "/bkt/mp?uploads").header("x-amz-checksum-algorithm", "CRC32")).await;
    assert_eq!(r.header("x-amz-checksum-algorithm"), Some("CRC32"));
    let id = tag(&r.text(), "UploadId").unwrap();
    let (p1, p2) = (data(5 * MIB), b"tail".to_vec());
    let (c1, c2) = (crate::put::crc32(&p1), crate::put::crc32(&p2));
    let mut etags = Vec::new();
    for (n, (p, c)) in [(&p1, &c1), (&p2, &c2)].into_iter().enumerate() {
        let path = format!("/bkt/mp?partNumber={}&uploadId={id}", n + 1);
        let r = env.ok(env.req("PUT", &path).header("x-amz-checksum-crc32", c.clone()).body(p.clone())).await;
        assert_eq!(r.header("x-amz-checksum-crc32"), Some(c.as_str()));
        etags.push(r.etag());
    }
    let r = complete(&env, "mp", &id, &[(1, &etags[0]), (2, &etags[1])]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = [b64.decode(&c1).unwrap(), b64.decode(&c2).unwrap()].concat();
    let want = format!("{}-2", crate::put::crc32(&raw));
    assert_eq!(tag(&r.text(), "ChecksumCRC32"), Some(want.clone()));
    assert_eq!(tag(&r.text(), "ChecksumType").as_deref(), Some("COMPOSITE"));
    let again = complete(&env, "mp", &id, &[(1, &etags[0]), (2, &etags[1])]).await;
    assert_eq!(tag(&again.text(), "ChecksumCRC32"), Some(want.clone()), "a retry answers the same checksum");
    assert_eq!(tag(&again.text(), "ChecksumType").as_deref(), Some("COMPOSITE"));
    let h = env.ok(env.req("HEAD", "/bkt/mp").header("x-amz-checksum-mode", "ENABLED")).await;
    assert_eq!(
        (h.header("x-amz-checksum-crc32"), h.header("x-amz-checksum-type")),
        (Some(want.as_str()), Some("COMPOSITE"))
    );
}

/// An upload with a checksum algorithm and type, of a 5 MiB part and a small last one, each
/// sent with its CRC; returns the completion's answer and the whole object.
async fn crc_upload(env: &Env, algo: &str, kind: Option<&str>, crc: fn(&[u8]) -> String) -> (Resp, Vec<u8>) {
    let mut create = env.req("POST", "/bkt/mp?uploads").header("x-amz-checksum-algorithm", algo);
    if let Some(k) = kind {
        create = create.header("x-amz-checksum-type", k);
    }
    let r = env.ok(create).await;
    let id = tag(&r.text(), "UploadId").unwrap();
    let (p1, p2) = (data(5 * MIB), b"the tail".to_vec());
    let header = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
    let mut etags = Vec::new();
    for (n, p) in [&p1, &p2].into_iter().enumerate() {
        let path = format!("/bkt/mp?partNumber={}&uploadId={id}", n + 1);
        etags.push(env.ok(env.req("PUT", &path).header(&header, crc(p)).body(p.clone())).await.etag());
    }
    let r = complete(env, "mp", &id, &[(1, &etags[0]), (2, &etags[1])]).await;
    (r, [p1, p2].concat())
}

#[tokio::test]
async fn a_full_object_crc_upload_completes_with_the_crc_of_the_whole() {
    let env = Env::bucket().await;
    let (r, whole) = crc_upload(&env, "CRC32C", Some("FULL_OBJECT"), crate::put::crc32c).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let want = crate::put::crc32c(&whole);
    assert_eq!(tag(&r.text(), "ChecksumCRC32C"), Some(want.clone()));
    assert_eq!(tag(&r.text(), "ChecksumType").as_deref(), Some("FULL_OBJECT"));
    let h = env.ok(env.req("HEAD", "/bkt/mp").header("x-amz-checksum-mode", "ENABLED")).await;
    assert_eq!(
        (h.header("x-amz-checksum-crc32c"), h.header("x-amz-checksum-type")),
        (Some(want.as_str()), Some("FULL_OBJECT"))
    );
    // A part read by number carries its own CRC and the object's checksum type.
    let p = env.ok(env.req("GET", "/bkt/mp?partNumber=2").header("x-amz-checksum-mode", "ENABLED")).await;
    let tail = crate::put::crc32c(b"the tail");
    assert_eq!(
        (p.header("x-amz-checksum-crc32c"), p.header("x-amz-checksum-type")),
        (Some(tail.as_str()), Some("FULL_OBJECT"))
    );
}

#[tokio::test]
async fn full_object_is_only_for_crcs_and_crc64nvme_only_full_object() {
    let env = Env::bucket().await;
    for (algo, kind) in [("SHA256", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"), ("CRC32", "WHOLE")] {
        let r = env
            .req("POST", "/bkt/mp?uploads")
            .header("x-amz-checksum-algorithm", algo)
            .header("x-amz-checksum-type", kind)
            .send()
            .await;
        r.assert_error(400, "InvalidRequest");
    }
    let r = env.ok(env.req("POST", "/bkt/mp?uploads").header("x-amz-checksum-algorithm", "CRC64NVME")).await;
    assert_eq!(r.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
}

#[tokio::test]
async fn a_complete_whose_checksum_header_differs_is_bad_digest() {
    let env = Env::bucket().await;
    let r = env.ok(env.req("POST", "/bkt/mp?uploads").header("x-amz-checksum-algorithm", "CRC32")).await;
    let id = tag(&r.text(), "UploadId").unwrap();
    let p = b"only part".to_vec();
    let path = format!("/bkt/mp?partNumber=1&uploadId={id}");
    let e = env.ok(env.req("PUT", &path).header("x-amz-checksum-crc32", crate::put::crc32(&p)).body(p)).await.etag();
    let r = env
        .req("POST", &format!("/bkt/mp?uploadId={id}"))
        .header("x-amz-checksum-crc32", "AAAAAA==")
        .body(complete_xml(&[(1, &e)]))
        .send()
        .await;
    r.assert_error(400, "BadDigest");
    env.get("/bkt/mp").await.assert_error(404, "NoSuchKey");
    // The upload is still there: completing it without the wrong checksum works.
    assert_eq!(complete(&env, "mp", &id, &[(1, &e)]).await.status, 200);
}

#[tokio::test]
async fn object_attributes_of_a_multipart_object_page_its_parts() {
    let env = Env::bucket().await;
    let (done, _) = crc_upload(&env, "CRC32", None, crate::put::crc32).await;
    let etag = unquote(&tag(&done.text(), "ETag").unwrap());
    let attrs = |marker: &str, max: &str| {
        env.req("GET", "/bkt/mp?attributes")
            .header("x-amz-object-attributes", "ETag,Checksum,ObjectParts,StorageClass,ObjectSize")
            .header("x-amz-part-number-marker", marker)
            .header("x-amz-max-parts", max)
    };
    let r = env.ok(attrs("0", "1")).await;
    let x = r.text();
    assert_eq!(tag(&x, "ETag"), Some(etag));
    assert_eq!(tag(&x, "ObjectSize"), Some((5 * MIB + 8).to_string()));
    assert_eq!(tag(&x, "StorageClass").as_deref(), Some("STANDARD"));
    assert_eq!(tag(&x, "ChecksumType").as_deref(), Some("COMPOSITE"));
    assert_eq!(tag(&x, "PartsCount").as_deref(), Some("2"));
    assert_eq!(tag(&x, "IsTruncated").as_deref(), Some("true"));
    assert_eq!(tag(&x, "NextPartNumberMarker").as_deref(), Some("1"));
    assert_eq!(tags(&x, "PartNumber"), ["1"]);
    let r = env.ok(attrs("1", "10")).await;
    let x = r.text();
    assert_eq!(tags(&x, "PartNumber"), ["2"]);
    assert_eq!(tags(&x, "Size"), ["8"]);
    assert_eq!(tag(&x, "IsTruncated").as_deref(), Some("false"));
    assert_eq!(tags(&x, "ChecksumCRC32").last().cloned(), Some(crate::put::crc32(b"the tail")));
}

/// Uploads `parts` (number, bytes) in the order given, completes them in number order, and
/// checks the object, its under-store file, and that the upload's folder is gone.
async fn upload_in_order(env: &Env, key: &str, parts: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let id = create(env, key).await;
    let mut etags = Vec::new();
    for (n, body) in parts {
        etags.push((*n, part(env, key, &id, *n, body.clone()).await));
    }
    etags.sort();
    let named: Vec<(u32, &str)> = etags.iter().map(|(n, e)| (*n, e.as_str())).collect();
    let r = complete(env, key, &id, &named).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut last: std::collections::BTreeMap<u32, &Vec<u8>> = Default::default();
    for (n, body) in parts {
        last.insert(*n, body);
    }
    let whole: Vec<u8> = last.values().flat_map(|b| b.iter().copied()).collect();
    let g = env.get(&format!("/bkt/{key}")).await;
    assert!(g.body.as_ref() == whole.as_slice(), "GET differs");
    let file = env.ufs().join("bkt").join(key);
    assert!(std::fs::read(&file).unwrap() == whole, "the under store's file differs");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 1, "a plain file, linked once");
    assert!(!env.ufs().join("bkt/%strata/uploads").join(&id).exists(), "the upload's folder stays");
    whole
}

#[tokio::test]
async fn parts_sent_out_of_order_complete_in_place() {
    let env = Env::bucket().await;
    let (a, b, tail) = (data(5 * MIB), vec![7u8; 5 * MIB], b"tail".to_vec());
    upload_in_order(&env, "ooo", &[(2, b), (3, tail), (1, a)]).await;
}

#[tokio::test]
async fn non_uniform_parts_are_joined_by_a_copy() {
    let env = Env::bucket().await;
    let parts = [(1, data(6 * MIB)), (2, vec![1u8; 5 * MIB]), (3, vec![2u8; 7 * MIB]), (4, b"end".to_vec())];
    upload_in_order(&env, "uneven", &parts).await;
}

#[tokio::test]
async fn a_part_re_sent_replaces_the_one_in_place() {
    let env = Env::bucket().await;
    let id = create(&env, "again").await;
    let (first, second, tail) = (data(5 * MIB), vec![9u8; 5 * MIB], b"tail".to_vec());
    let old = part(&env, "again", &id, 1, first).await;
    let e2 = part(&env, "again", &id, 2, tail.clone()).await;
    let new = part(&env, "again", &id, 1, second.clone()).await;
    complete(&env, "again", &id, &[(1, &old), (2, &e2)]).await.assert_error(400, "InvalidPart");
    let r = complete(&env, "again", &id, &[(1, &new), (2, &e2)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let whole = [second, tail].concat();
    assert!(env.get("/bkt/again").await.body.as_ref() == whole.as_slice());
    assert!(std::fs::read(env.ufs().join("bkt/again")).unwrap() == whole);
}

#[tokio::test]
async fn abort_leaves_no_part_behind() {
    let env = Env::bucket().await;
    let id = create(&env, "gone").await;
    part(&env, "gone", &id, 1, data(5 * MIB)).await;
    part(&env, "gone", &id, 2, data(6 * MIB)).await; // its own file
    assert!(env.ufs().join("bkt/%strata/uploads").join(&id).exists(), "part 1 is in place");
    let r = env.req("DELETE", &format!("/bkt/gone?uploadId={id}")).send().await;
    assert_eq!(r.status, 204);
    assert!(!env.ufs().join("bkt/%strata/uploads").join(&id).exists());
    assert!(!env.ufs().join("%strata/uploads").join(&id).exists());
    env.get("/bkt/gone").await.assert_error(404, "NoSuchKey");
}
