//! The gateway's fuzz targets (see `strata_common::fuzzing`): what the gateway parses of a
//! request before any I/O. Each takes arbitrary bytes, never panics, answers hostile input
//! with a client error (never InternalError) whose XML body is well-formed, and checks what
//! it can about what it accepted.

use std::collections::HashMap;

use crate::acl::{self, Owner, PublicAccessBlockXml};
use crate::auth::{Auth, Payload, chunked, sigv2, sigv4};
use crate::body::Trailers;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::ops::{cors, multipart};
use crate::router::{Endpoint, Query, host_bucket, route, split_target};
use crate::{read, tags, xml};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use strata_common::fuzzing::capped;

/// The virtual-hosted-style domain the request targets are routed with.
const DOMAIN: &str = "s3.strata.test";
/// The access key and secret of AWS's SigV4/SigV2 examples, and their instant.
const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const NOW: i64 = 1_369_353_600; // 2013-05-24T00:00:00Z

/// An error answered to hostile input: a client error (or NotImplemented), and a well-formed
/// S3 error body naming `resource`.
fn check_error(e: &S3Error, resource: &str) {
    assert_ne!(e.code, S3ErrorCode::InternalError, "hostile input answered InternalError: {}", e.message);
    let status = e.status().as_u16();
    assert!((400..500).contains(&status) || status == 501, "{:?} answered {status}", e.code);
    let body = e.body(resource, "REQ");
    let mut r = quick_xml::Reader::from_str(&body);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(err) => panic!("error body is not well-formed XML ({err}): {body}"),
        }
    }
}

/// A request from `METHOD TARGET\n` then `name: value` lines; None for what hyper refuses
/// before the gateway sees it (a bad method, target, header name or value).
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

fn request(data: &[u8]) -> Option<Req> {
    let mut lines = data.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let sp = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..sp]).ok()?;
    let uri = Uri::try_from(&first[sp + 1..]).ok()?;
    uri.path().starts_with('/').then_some(())?;
    let mut headers = HeaderMap::new();
    for l in lines {
        let Some(c) = l.iter().position(|&b| b == b':') else { continue };
        let value = l[c + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(&l[..c]), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    Some(Req { method, uri, headers })
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

/// Target `router`: target, query and headers to an endpoint, or an S3 error.
pub fn router(data: &[u8]) {
    let Some(r) = request(capped(data)) else { return };
    let path = r.uri.path();
    let host = r.headers.get("host").and_then(|h| h.to_str().ok());
    let routed = split_target(path, host, Some(DOMAIN)).and_then(|(bucket, key)| {
        let q = Query::parse(r.uri.query())?;
        let e = route(&r.method, bucket.as_deref(), key.as_deref(), &q, &r.headers)?;
        Ok((bucket, key, e))
    });
    let (bucket, key, e) = match routed {
        Ok(x) => x,
        Err(e) => return check_error(&e, path),
    };
    // A name the master accepts for a bucket is one safe path segment of the under store.
    if let Some(b) = bucket.as_deref().filter(|b| strata_common::names::check_bucket_name(b).is_ok()) {
        assert!(!b.contains(['/', '\\', '\0']) && b != "." && b != "..", "bucket name {b:?} accepted");
    }
    for s in bucket.iter().chain(&key) {
        assert!(!s.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)), "C1 control character in {s:?}");
    }
    assert!(key.as_ref().is_none_or(|k| !k.is_empty()), "an empty key is no key");
    match e {
        Endpoint::ListBuckets => assert!(bucket.is_none()),
        Endpoint::CreateBucket | Endpoint::DeleteBucket | Endpoint::HeadBucket | Endpoint::ListObjects => {
            assert!(bucket.is_some() && key.is_none())
        }
        Endpoint::GetObject | Endpoint::PutObject | Endpoint::HeadObject | Endpoint::DeleteObject => {
            assert!(bucket.is_some() && key.is_some())
        }
        Endpoint::UploadPart { part_number, .. } | Endpoint::UploadPartCopy { part_number, .. } => {
            assert!((1..=10_000).contains(&part_number) && key.is_some())
        }
        _ => {}
    }
}

async fn secret_of(ak: String) -> S3Result<String> {
    if ak == AK {
        Ok(SK.to_string())
    } else {
        Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist"))
    }
}

async fn wrong_secret(_: String) -> S3Result<String> {
    Ok("not-the-secret".to_string())
}

/// Target `sigv4`: Authorization headers and presigned queries, checked at AWS's example
/// instant with its example key. Accepted with the secret, a request fails with another.
pub fn sigv4(data: &[u8]) {
    let Some(r) = request(capped(data)) else { return };
    let path = r.uri.path();
    let q = match Query::parse(r.uri.query()) {
        Ok(q) => q,
        Err(e) => return check_error(&e, path),
    };
    let now = chrono::DateTime::from_timestamp(NOW, 0).unwrap_or_default();
    match block_on(sigv4::authenticate(&r.method, path, &q, &r.headers, now, secret_of)) {
        Ok(a) => {
            assert_eq!(a.access_key, AK);
            if let Err(e) = sigv4::check_scope_region(&a, "us-east-1") {
                check_error(&e, path);
            }
            let other = block_on(sigv4::authenticate(&r.method, path, &q, &r.headers, now, wrong_secret));
            assert!(other.is_err(), "a SigV4 signature verified under two secrets");
        }
        Err(e) => check_error(&e, path),
    }
}

/// Target `sigv2`: `Authorization: AWS key:sig` and `?AWSAccessKeyId&Signature&Expires`.
pub fn sigv2(data: &[u8]) {
    let Some(r) = request(capped(data)) else { return };
    let path = r.uri.path();
    let q = match Query::parse(r.uri.query()) {
        Ok(q) => q,
        Err(e) => return check_error(&e, path),
    };
    let host = r.headers.get("host").and_then(|h| h.to_str().ok());
    let vhost = host_bucket(host, Some(DOMAIN));
    let now = chrono::DateTime::from_timestamp(NOW, 0).unwrap_or_default();
    let sts = sigv2::string_to_sign(&r.method, path, vhost.as_deref(), &q, &r.headers, "");
    assert!(!sigv2::sign(SK, &sts).is_empty());
    let is_v2 = sigv2::is_v2(&r.headers, &q);
    match block_on(sigv2::authenticate(&r.method, path, vhost.as_deref(), &q, &r.headers, now, secret_of)) {
        Ok(a) => {
            assert!(is_v2, "SigV2 accepted a request is_v2 does not recognise");
            assert_eq!(a.access_key, AK);
            let other =
                block_on(sigv2::authenticate(&r.method, path, vhost.as_deref(), &q, &r.headers, now, wrong_secret));
            assert!(other.is_err(), "a SigV2 signature verified under two secrets");
        }
        Err(e) => check_error(&e, path),
    }
}

/// The signing context of AWS's chunked-upload example.
fn example_auth() -> Auth {
    Auth {
        access_key: AK.into(),
        payload: Payload::StreamingSigned { trailer: true },
        signing_key: sigv4::signing_key(SK, "20130524", "us-east-1", "s3").unwrap_or_default(),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    }
}

type Decoded = Result<(Vec<u8>, HashMap<String, String>), S3ErrorCode>;

fn decode_chunked(body: &[u8], piece: usize, auth: Option<&Auth>) -> Decoded {
    let pieces: Vec<S3Result<Bytes>> = body.chunks(piece.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let trailers = Trailers::default();
    let out: S3Result<Vec<Bytes>> =
        block_on(chunked::decode(futures::stream::iter(pieces).boxed(), auth, trailers.clone()).try_collect());
    let out = out.map_err(|e| {
        check_error(&e, "/b/k");
        e.code
    })?;
    let t = trailers.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((out.concat(), t))
}

/// Target `aws_chunked`: byte 0 picks the piece size the body arrives in, byte 1 whether
/// chunk signatures are checked. Whatever the pieces, the same data, trailers or error; the
/// data never exceeds the body.
pub fn aws_chunked(data: &[u8]) {
    let data = capped(data);
    let (piece, signed, body) = match data {
        [p, s, body @ ..] => (1 + *p as usize, s & 1 == 1, body),
        _ => return,
    };
    let auth = example_auth();
    let auth = signed.then_some(&auth);
    let whole = decode_chunked(body, body.len(), auth);
    if let Ok((out, _)) = &whole {
        assert!(out.len() <= body.len(), "decoded {} bytes out of a {}-byte body", out.len(), body.len());
    }
    assert_eq!(decode_chunked(body, piece, auth), whole, "piece size {piece} changed the outcome");
}

/// Target `range`: bytes 0..8 the object size (big-endian; byte 0 below 0x80 makes it small),
/// the rest the `Range` (and `x-amz-copy-source-range`) header.
pub fn range(data: &[u8]) {
    let data = capped(data);
    if data.len() < 8 {
        return;
    }
    let mut size = u64::from_be_bytes(data[..8].try_into().unwrap_or_default());
    if data[0] < 0x80 {
        size %= 1 << 16;
    }
    let header = String::from_utf8_lossy(&data[8..]);
    match read::parse_range(&header, size) {
        Ok(Some((start, len))) => {
            assert!(len >= 1 && start < size, "range ({start}, {len}) of a {size}-byte object");
            assert!(start.checked_add(len).is_some_and(|end| end <= size), "range ({start}, {len}) past {size}");
        }
        Ok(None) => {}
        Err(e) => {
            assert_eq!(e.code, S3ErrorCode::InvalidRange);
            assert!(e.headers.iter().any(|(n, v)| *n == "content-range" && *v == format!("bytes */{size}")));
            check_error(&e, "/b/k");
        }
    }
    match crate::ops::copy::copy_range(Some(&*header), size) {
        Ok((start, len)) => {
            assert!(len >= 1 && start.checked_add(len).is_some_and(|end| end <= size), "copy range past {size}")
        }
        Err(e) => check_error(&e, "/b/k"),
    }
}

/// Target `xml`: the body run through every XML parser of the gateway; what is accepted
/// renders back (where the gateway renders it) to what was accepted.
pub fn xml(data: &[u8]) {
    let body = capped(data);
    let fail = |e: S3Error| check_error(&e, "/b");
    if let Err(e) = complete(body) {
        fail(e)
    }
    match xml::parse::<xml::Delete>(body) {
        Ok(d) => assert!(d.objects.len() < body.len()),
        Err(e) => fail(e),
    }
    if let Err(e) = tagging(body) {
        fail(e)
    }
    if let Err(e) = policy(body) {
        fail(e)
    }
    match PublicAccessBlockXml::parse(body) {
        Ok(p) => {
            let text = to_xml("PublicAccessBlockConfiguration", &PublicAccessBlockXml::of(&p));
            assert_eq!(PublicAccessBlockXml::parse(text.as_bytes()).ok(), Some(p));
        }
        Err(e) => fail(e),
    }
    match cors::parse_rules(body) {
        Ok(rules) => {
            assert!(!rules.is_empty() && rules.iter().all(|r| !r.allowed_origins.is_empty()));
            let text = to_xml("CORSConfiguration", &cors::to_xml(rules.clone()));
            assert_eq!(cors::parse_rules(text.as_bytes()).ok(), Some(rules), "CORS rules changed through {text}");
        }
        Err(e) => fail(e),
    }
    if let Err(e) = xml::parse::<xml::CreateBucketConfiguration>(body) {
        fail(e)
    }
}

fn to_xml<T: serde::Serialize>(root: &str, v: &T) -> String {
    quick_xml::se::to_string_with_root(root, v).unwrap_or_else(|e| panic!("{root} does not render: {e}"))
}

fn complete(body: &[u8]) -> S3Result<()> {
    let mut req: xml::CompleteMultipartUpload = xml::parse(body)?;
    multipart::check_order(&mut req.parts)?;
    assert!(!req.parts.is_empty());
    assert!(req.parts.windows(2).all(|w| w[0].part_number < w[1].part_number), "parts left unordered or twice");
    Ok(())
}

fn tagging(body: &[u8]) -> S3Result<()> {
    let t: xml::Tagging = xml::parse(body)?;
    let tags = tags::check(t.tag_set.tags.into_iter().map(|t| (t.key, t.value)).collect(), tags::MAX_BUCKET_TAGS)?;
    let list = tags.iter().map(|(k, v)| xml::Tag { key: k.clone(), value: v.clone() }).collect();
    let text = to_xml("Tagging", &xml::Tagging { xmlns: xml::NS, tag_set: xml::TagSet { tags: list } });
    let again: xml::Tagging = xml::parse(text.as_bytes()).unwrap_or_else(|_| panic!("tags do not read back: {text}"));
    let again: HashMap<String, String> = again.tag_set.tags.into_iter().map(|t| (t.key, t.value)).collect();
    assert_eq!(again, tags, "tags changed through {text}");
    Ok(())
}

fn policy(body: &[u8]) -> S3Result<()> {
    let grants = acl::parse_policy(body)?;
    let owner = Owner { id: "owner-id".into(), display_name: "owner".into() };
    let text = acl::policy_xml(&owner, &grants);
    let again =
        acl::parse_policy(text.as_bytes()).unwrap_or_else(|e| panic!("policy does not read back ({e:?}): {text}"));
    let who = |g: &[strata_common::proto::Grant]| {
        g.iter().map(|g| (g.id.clone(), g.uri.clone(), g.permission.clone())).collect::<Vec<_>>()
    };
    assert_eq!(who(&again), who(&grants), "grants changed through {text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The kept corpus, the regressions and a few thousand seeded mutations of them, through
    //! each target; coverage-guided fuzzing is `make fuzz`.
    use strata_common::fuzzing::replay;

    const MUTATIONS: usize = 3000;

    #[test]
    fn fuzz_corpus_replays_router() {
        replay("router", MUTATIONS, super::router);
    }
    #[test]
    fn fuzz_corpus_replays_sigv4() {
        replay("sigv4", MUTATIONS, super::sigv4);
    }
    #[test]
    fn fuzz_corpus_replays_sigv2() {
        replay("sigv2", MUTATIONS, super::sigv2);
    }
    #[test]
    fn fuzz_corpus_replays_aws_chunked() {
        replay("aws_chunked", MUTATIONS, super::aws_chunked);
    }
    #[test]
    fn fuzz_corpus_replays_range() {
        replay("range", MUTATIONS, super::range);
    }
    #[test]
    fn fuzz_corpus_replays_xml() {
        replay("xml", MUTATIONS, super::xml);
    }
}
