//! Signature Version 2 (`Authorization: AWS key:signature` and `?AWSAccessKeyId=&Signature=&Expires=`),
//! still what the aws cli 1.x puts in `aws s3 presign` URLs by default. Payloads are unsigned.

use axum::http::{HeaderMap, Method};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use strata_common::ids::secret_eq;

use super::sigv4::{Auth, Payload};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::Query;

/// Query parameters that are part of the signed resource.
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

const MAX_SKEW: i64 = 15 * 60;

pub fn is_v2(headers: &HeaderMap, q: &Query) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("AWS "))
        || (q.has("AWSAccessKeyId") && q.has("Signature"))
}

/// The string to sign: verb, Content-MD5, Content-Type, date (or Expires), `x-amz-*` headers,
/// then the resource: `/bucket` (virtual-hosted) + the path as sent + signed sub-resources.
pub fn string_to_sign(
    method: &Method,
    path: &str,
    bucket_from_host: Option<&str>,
    q: &Query,
    h: &HeaderMap,
    date: &str,
) -> String {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
    let mut amz: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-amz-"))
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).trim().to_string()))
        .collect();
    amz.sort();
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in amz {
        match merged.last_mut() {
            Some((lk, vs)) if *lk == k => vs.push(v),
            _ => merged.push((k, vec![v])),
        }
    }
    let amz_lines: String = merged.iter().map(|(k, vs)| format!("{k}:{}\n", vs.join(","))).collect();
    let mut resource = bucket_from_host.map(|b| format!("/{b}")).unwrap_or_default();
    resource.push_str(if path.is_empty() { "/" } else { path });
    let mut subs: Vec<&(String, String)> = q.0.iter().filter(|(k, _)| SUB_RESOURCES.contains(&k.as_str())).collect();
    subs.sort();
    for (i, (k, v)) in subs.iter().enumerate() {
        resource.push(if i == 0 { '?' } else { '&' });
        resource.push_str(k);
        if !v.is_empty() {
            resource.push('=');
            resource.push_str(v);
        }
    }
    format!("{method}\n{}\n{}\n{date}\n{amz_lines}{resource}", get("content-md5"), get("content-type"))
}

pub fn sign(secret: &str, sts: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(sts.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

pub async fn authenticate<F, Fut>(
    method: &Method,
    path: &str,
    bucket_from_host: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
    secret_of: F,
) -> S3Result<Auth>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = S3Result<String>>,
{
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let (access_key, signature, date) = match header.and_then(|a| a.strip_prefix("AWS ")) {
        Some(creds) => {
            let (ak, sig) = creds.rsplit_once(':').ok_or_else(|| {
                S3Error::invalid_argument("Authorization header is invalid -- one and only one ' ' (space) required")
            })?;
            let has_amz_date = headers.contains_key("x-amz-date");
            let when = headers
                .get(if has_amz_date { "x-amz-date" } else { "date" })
                .and_then(|v| v.to_str().ok())
                .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::AccessDenied,
                        "AWS authentication requires a valid Date or x-amz-date header",
                    )
                })?;
            if (now.timestamp() - when.timestamp()).abs() > MAX_SKEW {
                return Err(S3Error::new(
                    S3ErrorCode::RequestTimeTooSkewed,
                    "The difference between the request time and the server's time is too large.",
                ));
            }
            // With x-amz-date, it is signed among the x-amz-* headers and the date line is empty.
            let date = if has_amz_date {
                String::new()
            } else {
                headers.get("date").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
            };
            (ak.to_string(), sig.to_string(), date)
        }
        None => {
            let expires = q.get("Expires").unwrap_or("");
            let at: i64 = expires.parse().map_err(|_| {
                S3Error::new(S3ErrorCode::AccessDenied, "Query-string authentication requires a numeric Expires")
            })?;
            if now.timestamp() > at {
                return Err(S3Error::new(S3ErrorCode::AccessDenied, "Request has expired"));
            }
            (
                q.get("AWSAccessKeyId").unwrap_or("").to_string(),
                q.get("Signature").unwrap_or("").to_string(),
                expires.to_string(),
            )
        }
    };
    let secret = secret_of(access_key.clone()).await?;
    let sts = string_to_sign(method, path, bucket_from_host, q, headers, &date);
    if !secret_eq(&sign(&secret, &sts), &signature) {
        return Err(S3Error::new(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(Auth {
        access_key,
        payload: Payload::Unsigned,
        signing_key: Vec::new(),
        amz_date: String::new(),
        scope: String::new(),
        signature,
    })
}

#[cfg(test)]
mod tests {
    //! The examples of AWS's "Signing and Authenticating REST Requests" (Signature Version 2).
    use super::*;
    use axum::http::HeaderValue;

    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn object_get_example() {
        let mut h = HeaderMap::new();
        h.insert("date", HeaderValue::from_static("Tue, 27 Mar 2007 19:36:42 +0000"));
        let sts = string_to_sign(
            &Method::GET,
            "/photos/puppy.jpg",
            Some("johnsmith"),
            &Query::default(),
            &h,
            "Tue, 27 Mar 2007 19:36:42 +0000",
        );
        assert_eq!(sts, "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
        assert_eq!(sign(SK, &sts), "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
    }

    #[test]
    fn query_string_example() {
        let q = Query::parse(Some(
            "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D",
        ))
        .unwrap();
        let sts =
            string_to_sign(&Method::GET, "/photos/puppy.jpg", Some("johnsmith"), &q, &HeaderMap::new(), "1175139620");
        assert_eq!(sign(SK, &sts), "NpgCjnDzrM+WFzoENXmpNDUsSn8=");
    }
}
