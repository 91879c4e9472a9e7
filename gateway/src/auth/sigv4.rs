//! Signature Version 4: the `Authorization: AWS4-HMAC-SHA256` header and presigned URLs
//! (`X-Amz-Signature`), checked into an [`Auth`] that says what the body must prove.
//! Signature Version 2 is checked in `sigv2`; aws-chunked bodies in `chunked`.

use std::time::{Duration, SystemTime};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use axum::http::{HeaderMap, Method};
use chrono::{NaiveDate, NaiveDateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode, utf8_percent_encode};
use sha2::{Digest, Sha256};
use strata_common::ids::secret_eq;

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::Query;

pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const MAX_SKEW: i64 = 15 * 60;
const MAX_PRESIGNED_EXPIRY: i64 = 7 * 24 * 3600;

/// What the body of an authenticated request must prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Unsigned,
    /// The hex SHA-256 the body must hash to.
    Sha256(String),
    /// aws-chunked with a signature per chunk (and a signed trailer when `trailer`).
    StreamingSigned {
        trailer: bool,
    },
    /// aws-chunked, unsigned, with a trailer.
    StreamingUnsignedTrailer,
}

/// A verified request: who sent it, and what is needed to check its body.
#[derive(Clone)]
pub struct Auth {
    pub access_key: String,
    pub payload: Payload,
    pub signing_key: Vec<u8>,
    pub amz_date: String,
    pub scope: String,
    pub signature: String,
}

/// S3's URI encoding: everything but `A-Z a-z 0-9 - _ . ~` is %XX-encoded.
const URI: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, URI).to_string()
}

fn malformed(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::AuthorizationHeaderMalformed, msg.to_string())
}

struct Parsed {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    presigned: bool,
}

fn parse_credential(c: &str, err: fn(&str) -> S3Error) -> S3Result<(String, String, String, String)> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(err("the Credential is not ACCESS_KEY/DATE/REGION/SERVICE/aws4_request"));
    }
    Ok((parts[0].into(), parts[1].into(), parts[2].into(), parts[3].into()))
}

fn parse_header(auth: &str, headers: &HeaderMap) -> S3Result<Parsed> {
    // The algorithm alone (or with parts missing) is malformed; another algorithm unsupported.
    let rest = match auth.strip_prefix("AWS4-HMAC-SHA256") {
        Some(r) if r.is_empty() || r.starts_with(' ') => r.trim_start(),
        _ => {
            return Err(S3Error::invalid_argument(
                "Unsupported Authorization Type: only AWS4-HMAC-SHA256 is supported",
            ));
        }
    };
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for field in rest.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", v)) => cred = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => sig = Some(v),
            _ => {}
        }
    }
    let (cred, signed, sig) = match (cred, signed, sig) {
        (Some(c), Some(s), Some(g)) => (c, s, g),
        _ => return Err(malformed("the authorization header must hold Credential, SignedHeaders and Signature")),
    };
    let (access_key, date, region, service) = parse_credential(cred, malformed)?;
    let amz_date = match header(headers, "x-amz-date") {
        Some(d) => d.to_string(),
        None => header(headers, "date")
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
            .ok_or_else(|| {
                S3Error::new(S3ErrorCode::AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
            })?,
    };
    Ok(Parsed {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: sig.to_string(),
        amz_date,
        presigned: false,
    })
}

fn parse_query(q: &Query) -> S3Result<Parsed> {
    let err = |m: &str| S3Error::new(S3ErrorCode::AuthorizationQueryParametersError, m.to_string());
    if q.get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
        return Err(err("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    let need = |n: &str| q.get(n).ok_or_else(|| err(&format!("Query-string authentication requires {n}")));
    let (access_key, date, region, service) = parse_credential(need("X-Amz-Credential")?, |m| {
        S3Error::new(S3ErrorCode::AuthorizationQueryParametersError, m.to_string())
    })?;
    Ok(Parsed {
        access_key,
        date,
        region,
        service,
        signed_headers: need("X-Amz-SignedHeaders")?.split(';').map(str::to_string).collect(),
        signature: need("X-Amz-Signature")?.to_string(),
        amz_date: need("X-Amz-Date")?.to_string(),
        presigned: true,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn has_auth(headers: &HeaderMap, q: &Query) -> bool {
    headers.contains_key("authorization") || q.has("X-Amz-Signature") || q.has("AWSAccessKeyId")
}

/// The canonical request of SigV4 for S3 from the raw request path (never normalised).
pub fn canonical_request(
    method: &Method,
    path: &str,
    q: &Query,
    headers: &HeaderMap,
    signed: &[String],
    payload_hash: &str,
) -> String {
    // Whatever the client escaped or not, the canonical form escapes each segment exactly once.
    let segment = |s: &str| percent_encode(&percent_decode_str(s).collect::<Vec<u8>>(), URI).to_string();
    let uri =
        if path.is_empty() { "/".to_string() } else { path.split('/').map(segment).collect::<Vec<_>>().join("/") };
    let mut params: Vec<(String, String)> =
        q.0.iter().filter(|(k, _)| k != "X-Amz-Signature").map(|(k, v)| (uri_encode(k), uri_encode(v))).collect();
    params.sort();
    let query = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut canon_headers = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canon_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!("{method}\n{uri}\n{query}\n{canon_headers}\n{}\n{payload_hash}", signed.join(";"))
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> S3Result<Vec<u8>> {
    let day =
        NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| malformed("the Credential date is not YYYYMMDD"))?;
    let secs = day.and_hms_opt(12, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or(0);
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    Ok(generate_signing_key(secret, time, region, service).as_ref().to_vec())
}

/// The request's time: within 15 minutes of ours, or for a presigned URL not expired.
fn check_time(p: &Parsed, q: &Query, now: chrono::DateTime<Utc>) -> S3Result<()> {
    let when = NaiveDateTime::parse_from_str(&p.amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            S3Error::new(
                S3ErrorCode::AccessDenied,
                "X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z'",
            )
        })?
        .and_utc();
    if !p.amz_date.starts_with(&p.date) {
        return Err(malformed("the Credential date does not match X-Amz-Date"));
    }
    if p.presigned {
        let expires = presigned_expiry(q)?;
        if now.timestamp() > when.timestamp() + expires {
            return Err(S3Error::new(S3ErrorCode::AccessDenied, "Request has expired"));
        }
        if when.timestamp() - now.timestamp() > MAX_SKEW {
            return Err(S3Error::new(S3ErrorCode::AccessDenied, "Request is not valid yet"));
        }
    } else if (now.timestamp() - when.timestamp()).abs() > MAX_SKEW {
        return Err(S3Error::new(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the server's time is too large.",
        ));
    }
    Ok(())
}

/// A presigned URL's lifetime. A number out of 1..=604800 is refused as AWS refuses it, with
/// 403 AccessDenied (the URL can never be used, as an expired one); a missing or non-numeric
/// one is a malformed URL.
fn presigned_expiry(q: &Query) -> S3Result<i64> {
    let expires: i64 = q.get("X-Amz-Expires").and_then(|e| e.parse().ok()).ok_or_else(|| {
        S3Error::new(
            S3ErrorCode::AuthorizationQueryParametersError,
            "X-Amz-Expires must be a number of seconds from 1 to 604800",
        )
    })?;
    let denied = |m: &str| Err(S3Error::new(S3ErrorCode::AccessDenied, m));
    match expires {
        e if e < 0 => denied("X-Amz-Expires must be non-negative"),
        0 => denied("Request has expired: X-Amz-Expires is 0; presign with 1 to 604800 seconds"),
        e if e > MAX_PRESIGNED_EXPIRY => denied(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ),
        e => Ok(e),
    }
}

/// What `x-amz-content-sha256` says the body proves.
fn payload_of(payload_hash: &str) -> S3Result<Payload> {
    let payload = match payload_hash {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Payload::StreamingSigned { trailer: false },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Payload::StreamingSigned { trailer: true },
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::StreamingUnsignedTrailer,
        h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Payload::Sha256(h.to_ascii_lowercase()),
        _ => {
            return Err(S3Error::invalid_argument(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a SHA-256 in hex",
            ));
        }
    };
    Ok(payload)
}

/// The scope's service must be S3's.
fn check_scope_service(p: &Parsed) -> S3Result<()> {
    if p.service == "s3" {
        return Ok(());
    }
    let msg = format!(
        "The authorization header is malformed; incorrect service \"{}\". This endpoint belongs to \"s3\".",
        p.service
    );
    Err(if p.presigned { S3Error::new(S3ErrorCode::AuthorizationQueryParametersError, msg) } else { malformed(&msg) })
}

/// Every `x-amz-*` header of a request signed in its Authorization header must be signed: else
/// anyone on the way could add one (metadata, a copy source, a storage class).
fn check_amz_headers_signed(p: &Parsed, headers: &HeaderMap) -> S3Result<()> {
    if p.presigned {
        return Ok(());
    }
    let mut unsigned: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-") && !p.signed_headers.iter().any(|s| s == k))
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort_unstable();
    unsigned.dedup();
    Err(S3Error::new(
        S3ErrorCode::AccessDenied,
        format!("There were headers present in the request which were not signed: {}", unsigned.join(", ")),
    ))
}

/// The region of a verified SigV4 scope (`date/region/service/aws4_request`) must be the
/// gateway's; SigV2 has no scope.
pub fn check_scope_region(auth: &Auth, region: &str) -> S3Result<()> {
    match auth.scope.split('/').nth(1) {
        Some(r) if r != region => Err(malformed(&format!(
            "The authorization header is malformed; the region '{r}' is wrong; expecting '{region}'"
        ))),
        _ => Ok(()),
    }
}

/// Checks the request's SigV4 signature. `secret_of` finds the secret key of an access key.
pub async fn authenticate<F, Fut>(
    method: &Method,
    path: &str,
    q: &Query,
    headers: &HeaderMap,
    now: chrono::DateTime<Utc>,
    secret_of: F,
) -> S3Result<Auth>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = S3Result<String>>,
{
    let p = match header(headers, "authorization") {
        Some(a) => parse_header(a, headers)?,
        None if q.has("X-Amz-Signature") || q.has("X-Amz-Credential") => parse_query(q)?,
        None if q.has("AWSAccessKeyId") => {
            return Err(S3Error::invalid_argument(
                "a Signature Version 2 presigned URL needs both AWSAccessKeyId and Signature",
            ));
        }
        None => {
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "Access Denied: the request carries no signature (anonymous access is not allowed)",
            ));
        }
    };
    check_time(&p, q, now)?;
    if !p.signed_headers.iter().any(|h| h == "host") {
        return Err(malformed("the host header must be signed"));
    }
    check_scope_service(&p)?;
    let payload_hash = if p.presigned {
        header(headers, "x-amz-content-sha256").unwrap_or("UNSIGNED-PAYLOAD").to_string()
    } else {
        header(headers, "x-amz-content-sha256")
            .ok_or_else(|| S3Error::invalid_request("Missing required header for this request: x-amz-content-sha256"))?
            .to_string()
    };
    let payload = payload_of(&payload_hash)?;
    let secret = secret_of(p.access_key.clone()).await?;
    check_amz_headers_signed(&p, headers)?;
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let canonical = canonical_request(method, path, q, headers, &p.signed_headers, &payload_hash);
    let sts = string_to_sign(&p.amz_date, &scope, &canonical);
    let key = signing_key(&secret, &p.date, &p.region, &p.service)?;
    let expected = calculate_signature(&key, sts.as_bytes());
    if !secret_eq(&expected, &p.signature.to_ascii_lowercase()) {
        tracing::debug!(canonical = %canonical, "signature mismatch");
        return Err(S3Error::new(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(Auth { access_key: p.access_key, payload, signing_key: key, amz_date: p.amz_date, scope, signature: expected })
}

#[cfg(test)]
mod tests {
    //! The worked examples of AWS's "Signature Calculations for the Authorization Header" and
    //! "Authenticating Requests: Using Query Parameters" pages.
    use super::*;
    use axum::http::HeaderValue;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    async fn check(method: Method, path: &str, query: Option<&str>, h: HeaderMap, now: &str) -> S3Result<Auth> {
        let now = NaiveDateTime::parse_from_str(now, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
        let q = Query::parse(query).unwrap();
        authenticate(&method, path, &q, &h, now, |ak| async move {
            if ak == AK { Ok(SK.to_string()) } else { Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId, "unknown")) }
        })
        .await
    }

    fn auth(signed: &str, sig: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={sig}"
        )
    }

    #[tokio::test]
    async fn get_object_example() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                &auth(
                    "host;range;x-amz-content-sha256;x-amz-date",
                    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                ),
            ),
        ]);
        let a = check(Method::GET, "/test.txt", None, h.clone(), "20130524T000500Z").await.unwrap();
        assert_eq!(a.payload, Payload::Sha256(EMPTY_SHA256.into()));
        // Too late: the clock check runs before the signature.
        let e = check(Method::GET, "/test.txt", None, h, "20130524T003000Z").await.err().unwrap();
        assert_eq!(e.code, S3ErrorCode::RequestTimeTooSkewed);
    }

    #[tokio::test]
    async fn put_object_example() {
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
            (
                "authorization",
                &auth(
                    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                ),
            ),
        ]);
        check(Method::PUT, "/test%24file.text", None, h, "20130524T000000Z").await.unwrap();
    }

    #[tokio::test]
    async fn list_objects_example_and_tampering() {
        let sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("authorization", &auth("host;x-amz-content-sha256;x-amz-date", sig)),
        ]);
        check(Method::GET, "/", Some("max-keys=2&prefix=J"), h.clone(), "20130524T000000Z").await.unwrap();
        let e = check(Method::GET, "/", Some("max-keys=3&prefix=J"), h, "20130524T000000Z").await.err().unwrap();
        assert_eq!(e.code, S3ErrorCode::SignatureDoesNotMatch);
    }

    #[tokio::test]
    async fn presigned_example() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let a = check(Method::GET, "/test.txt", Some(q), h.clone(), "20130524T120000Z").await.unwrap();
        assert_eq!(a.payload, Payload::Unsigned);
        let e = check(Method::GET, "/test.txt", Some(q), h, "20130525T000001Z").await.err().unwrap();
        assert_eq!((e.code, e.message.as_str()), (S3ErrorCode::AccessDenied, "Request has expired"));
    }

    #[test]
    fn presigned_expiry_out_of_range_is_access_denied() {
        let q = |e: &str| Query::parse(Some(&format!("X-Amz-Expires={e}"))).unwrap();
        assert_eq!(presigned_expiry(&q("1")), Ok(1));
        assert_eq!(presigned_expiry(&q("604800")), Ok(604800));
        for e in ["0", "-7", "-1000", "604801", "609901"] {
            let err = presigned_expiry(&q(e)).unwrap_err();
            assert_eq!((err.code, err.status().as_u16()), (S3ErrorCode::AccessDenied, 403), "{e}");
        }
        let err = presigned_expiry(&q("soon")).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::AuthorizationQueryParametersError);
        assert_eq!(
            presigned_expiry(&Query::default()).unwrap_err().code,
            S3ErrorCode::AuthorizationQueryParametersError
        );
    }

    #[tokio::test]
    async fn unknown_key_and_no_auth() {
        let h = headers(&[
            ("host", "h"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("authorization", &auth("host;x-amz-date", "00").replace(AK, "NOPE")),
        ]);
        assert_eq!(
            check(Method::GET, "/", None, h, "20130524T000000Z").await.err().unwrap().code,
            S3ErrorCode::InvalidAccessKeyId
        );
        assert_eq!(
            check(Method::GET, "/", None, HeaderMap::new(), "20130524T000000Z").await.err().unwrap().code,
            S3ErrorCode::AccessDenied
        );
    }
}
