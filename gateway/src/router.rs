//! Turns method, path, query and headers into one [`Endpoint`] before any I/O.

use axum::http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode, S3Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    GetObject,
    HeadObject,
    PutObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart {
        part_number: u32,
        upload_id: String,
    },
    CompleteMultipartUpload {
        upload_id: String,
    },
    AbortMultipartUpload {
        upload_id: String,
    },
    ListParts {
        upload_id: String,
    },
    CopyObject,
    UploadPartCopy {
        part_number: u32,
        upload_id: String,
    },
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    /// A GET of a bucket configuration Strata does not keep (answered as "none set").
    GetBucketConfig(BucketConfig),
    GetObjectAcl,
    GetObjectAttributes,
    PutBucketCors,
    GetBucketCors,
    DeleteBucketCors,
    GetBucketAcl,
    PutBucketAcl,
    PutObjectAcl,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    /// A CORS preflight (`OPTIONS`), answered before authentication as browsers send none.
    CorsPreflight,
}

/// The bucket configurations whose GET is answered as AWS answers a bucket that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketConfig {
    Encryption,
    Lifecycle,
    Logging,
    RequestPayment,
    Website,
}

const BUCKET_CONFIGS: &[(&str, BucketConfig)] = &[
    ("encryption", BucketConfig::Encryption),
    ("lifecycle", BucketConfig::Lifecycle),
    ("logging", BucketConfig::Logging),
    ("requestPayment", BucketConfig::RequestPayment),
    ("website", BucketConfig::Website),
];

/// The ACL, PublicAccessBlock and bucket policy operations.
fn access_endpoint(method: &Method, bucket: Option<&str>, key: Option<&str>, q: &Query) -> Option<Endpoint> {
    bucket?;
    let e = match (key.is_some(), method.as_str()) {
        (true, "GET") if q.has("acl") => Endpoint::GetObjectAcl,
        (true, "PUT") if q.has("acl") => Endpoint::PutObjectAcl,
        (false, "GET") if q.has("acl") => Endpoint::GetBucketAcl,
        (false, "PUT") if q.has("acl") => Endpoint::PutBucketAcl,
        (false, "GET") if q.has("publicAccessBlock") => Endpoint::GetPublicAccessBlock,
        (false, "PUT") if q.has("publicAccessBlock") => Endpoint::PutPublicAccessBlock,
        (false, "DELETE") if q.has("publicAccessBlock") => Endpoint::DeletePublicAccessBlock,
        (false, "GET") if q.has("policy") => Endpoint::GetBucketPolicy,
        (false, "PUT") if q.has("policy") => Endpoint::PutBucketPolicy,
        (false, "DELETE") if q.has("policy") => Endpoint::DeleteBucketPolicy,
        (false, "GET") if q.has("policyStatus") => Endpoint::GetBucketPolicyStatus,
        _ => return None,
    };
    Some(e)
}

/// A GET of a configuration sub-resource of a bucket.
fn config_get(method: &Method, bucket: Option<&str>, key: Option<&str>, q: &Query) -> Option<Endpoint> {
    if *method != Method::GET || bucket.is_none() || key.is_some() {
        return None;
    }
    BUCKET_CONFIGS.iter().find(|(sub, _)| q.has(sub)).map(|(_, c)| Endpoint::GetBucketConfig(*c))
}

/// The query string, decoded: `+` stays `+` (S3 clients encode spaces as %20).
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> S3Result<Query> {
        let mut out = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| S3Error::new(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI."))
            };
            out.push((dec(k)?, dec(v)?));
        }
        Ok(Query(out))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Sub-resources Strata does not implement: asked for, they answer NotImplemented rather than
/// being mistaken for a plain bucket or object operation.
const UNSUPPORTED: &[&str] = &[
    "acl",
    "analytics",
    "accelerate",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "torrent",
    "versionId",
    "versions",
    "website",
];

pub fn route(
    method: &Method,
    bucket: Option<&str>,
    key: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
) -> S3Result<Endpoint> {
    if *method == Method::OPTIONS && bucket.is_some() {
        return Ok(Endpoint::CorsPreflight);
    }
    if let Some(e) = access_endpoint(method, bucket, key, q).or_else(|| config_get(method, bucket, key, q)) {
        return Ok(e);
    }
    if *method == Method::GET && key.is_some() && q.has("attributes") {
        return Ok(Endpoint::GetObjectAttributes);
    }
    if bucket.is_some() && key.is_none() && q.has("cors") {
        match *method {
            Method::PUT => return Ok(Endpoint::PutBucketCors),
            Method::GET => return Ok(Endpoint::GetBucketCors),
            Method::DELETE => return Ok(Endpoint::DeleteBucketCors),
            _ => {}
        }
    }
    if let Some(sub) = UNSUPPORTED.iter().find(|s| q.has(s)) {
        return Err(S3Error::not_implemented(&format!("the ?{sub} sub-resource")));
    }
    let upload_id = || q.get("uploadId").map(str::to_string);
    let endpoint = match (bucket, key) {
        (None, _) => match *method {
            Method::GET => Endpoint::ListBuckets,
            _ => return Err(method_not_allowed()),
        },
        (Some(_), None) => match *method {
            Method::GET if q.has("tagging") => Endpoint::GetBucketTagging,
            Method::PUT if q.has("tagging") => Endpoint::PutBucketTagging,
            Method::DELETE if q.has("tagging") => Endpoint::DeleteBucketTagging,
            Method::GET if q.has("location") => Endpoint::GetBucketLocation,
            Method::GET if q.has("versioning") => Endpoint::GetBucketVersioning,
            Method::GET if q.has("uploads") => Endpoint::ListMultipartUploads,
            Method::GET if q.get("list-type") == Some("2") => Endpoint::ListObjectsV2,
            Method::GET if q.get("list-type").is_some() => {
                return Err(S3Error::invalid_argument("list-type must be 2 when given"));
            }
            Method::GET => Endpoint::ListObjects,
            Method::HEAD => Endpoint::HeadBucket,
            Method::PUT if q.has("versioning") => return Err(S3Error::not_implemented("PutBucketVersioning")),
            Method::PUT => Endpoint::CreateBucket,
            Method::DELETE => Endpoint::DeleteBucket,
            Method::POST if q.has("delete") => Endpoint::DeleteObjects,
            _ => return Err(method_not_allowed()),
        },
        (Some(_), Some(_)) => match *method {
            Method::GET if q.has("tagging") => Endpoint::GetObjectTagging,
            Method::PUT if q.has("tagging") => Endpoint::PutObjectTagging,
            Method::DELETE if q.has("tagging") => Endpoint::DeleteObjectTagging,
            Method::GET if upload_id().is_some() => Endpoint::ListParts { upload_id: upload_id().unwrap_or_default() },
            Method::GET => Endpoint::GetObject,
            Method::HEAD => Endpoint::HeadObject,
            Method::PUT if q.has("partNumber") || q.has("uploadId") => {
                let upload_id = upload_id().ok_or_else(|| S3Error::invalid_argument("partNumber without uploadId"))?;
                let part_number = q
                    .get("partNumber")
                    .and_then(|p| p.parse::<u32>().ok())
                    .filter(|p| (1..=10_000).contains(p))
                    .ok_or_else(|| {
                        S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
                    })?;
                if headers.contains_key("x-amz-copy-source") {
                    Endpoint::UploadPartCopy { part_number, upload_id }
                } else {
                    Endpoint::UploadPart { part_number, upload_id }
                }
            }
            Method::PUT if headers.contains_key("x-amz-copy-source") => Endpoint::CopyObject,
            Method::PUT => Endpoint::PutObject,
            Method::DELETE => match upload_id() {
                Some(upload_id) => Endpoint::AbortMultipartUpload { upload_id },
                None => Endpoint::DeleteObject,
            },
            Method::POST if q.has("uploads") => Endpoint::CreateMultipartUpload,
            Method::POST => match upload_id() {
                Some(upload_id) => Endpoint::CompleteMultipartUpload { upload_id },
                None => return Err(S3Error::not_implemented("this POST on an object")),
            },
            _ => return Err(method_not_allowed()),
        },
    };
    Ok(endpoint)
}

fn method_not_allowed() -> S3Error {
    S3Error::new(S3ErrorCode::MethodNotAllowed, "The specified method is not allowed against this resource.")
}

/// The bucket of a virtual-hosted-style request: `BUCKET.<domain>[:port]` in Host.
pub fn host_bucket(host: Option<&str>, domain: Option<&str>) -> Option<String> {
    let (h, d) = (host?, domain?);
    let h = h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map(|(h, _)| h).unwrap_or(h);
    h.strip_suffix(d).and_then(|b| b.strip_suffix('.')).filter(|b| !b.is_empty()).map(str::to_string)
}

/// Splits the request target into bucket and key: path style (`/bucket/key`), or virtual-hosted
/// style (`bucket.<domain>` in Host, the whole path is the key). The key is percent-decoded.
pub fn split_target(
    raw_path: &str,
    host: Option<&str>,
    domain: Option<&str>,
) -> S3Result<(Option<String>, Option<String>)> {
    // Not UTF-8, or C1 control characters (U+0080..U+009F: what bytes of another encoding
    // become when read as Latin-1), as AWS refuses them.
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .ok()
            .filter(|c| !c.chars().any(|ch| ('\u{80}'..='\u{9f}').contains(&ch)))
            .map(|c| c.into_owned())
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI."))
    };
    let host_bucket = host_bucket(host, domain);
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host_bucket {
        let key = decode(path)?;
        return Ok((Some(bucket), (!key.is_empty()).then_some(key)));
    }
    if path.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (path, None),
    };
    let key = match key {
        Some(k) if !k.is_empty() => Some(decode(k)?),
        _ => None,
    };
    Ok((Some(decode(bucket)?), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, target: &str) -> S3Result<Endpoint> {
        with_headers(method, target, &[])
    }

    #[test]
    fn routes_the_documented_requests() {
        assert_eq!(r(Method::GET, "/"), Ok(Endpoint::ListBuckets));
        assert_eq!(r(Method::PUT, "/b"), Ok(Endpoint::CreateBucket));
        assert_eq!(r(Method::GET, "/b?list-type=2&prefix=a%2Fb&delimiter=%2F"), Ok(Endpoint::ListObjectsV2));
        assert_eq!(r(Method::GET, "/b/"), Ok(Endpoint::ListObjects));
        assert_eq!(r(Method::GET, "/b?location"), Ok(Endpoint::GetBucketLocation));
        assert_eq!(r(Method::POST, "/b?delete"), Ok(Endpoint::DeleteObjects));
        assert_eq!(r(Method::GET, "/b/k%20x"), Ok(Endpoint::GetObject));
        assert_eq!(r(Method::POST, "/b/k?uploads"), Ok(Endpoint::CreateMultipartUpload));
        assert_eq!(
            r(Method::PUT, "/b/k?partNumber=2&uploadId=u1"),
            Ok(Endpoint::UploadPart { part_number: 2, upload_id: "u1".into() })
        );
        assert_eq!(
            r(Method::POST, "/b/k?uploadId=u1"),
            Ok(Endpoint::CompleteMultipartUpload { upload_id: "u1".into() })
        );
        assert_eq!(
            r(Method::DELETE, "/b/k?uploadId=u1"),
            Ok(Endpoint::AbortMultipartUpload { upload_id: "u1".into() })
        );
        assert_eq!(r(Method::GET, "/b/k?uploadId=u1"), Ok(Endpoint::ListParts { upload_id: "u1".into() }));
        assert_eq!(r(Method::PUT, "/b/k?partNumber=0&uploadId=u").unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert_eq!(r(Method::GET, "/b?acl"), Ok(Endpoint::GetBucketAcl));
        assert_eq!(r(Method::PUT, "/b?acl"), Ok(Endpoint::PutBucketAcl));
        assert_eq!(r(Method::PUT, "/b/k?acl"), Ok(Endpoint::PutObjectAcl));
        assert_eq!(r(Method::POST, "/b?acl").unwrap_err().code, S3ErrorCode::NotImplemented);
        assert_eq!(r(Method::GET, "/b?publicAccessBlock"), Ok(Endpoint::GetPublicAccessBlock));
        assert_eq!(r(Method::PUT, "/b?publicAccessBlock"), Ok(Endpoint::PutPublicAccessBlock));
        assert_eq!(r(Method::DELETE, "/b?publicAccessBlock"), Ok(Endpoint::DeletePublicAccessBlock));
        assert_eq!(r(Method::PUT, "/b?policy"), Ok(Endpoint::PutBucketPolicy));
        assert_eq!(r(Method::GET, "/b?policy"), Ok(Endpoint::GetBucketPolicy));
        assert_eq!(r(Method::DELETE, "/b?policy"), Ok(Endpoint::DeleteBucketPolicy));
        assert_eq!(r(Method::GET, "/b?policyStatus"), Ok(Endpoint::GetBucketPolicyStatus));
        assert_eq!(r(Method::GET, "/b/k?tagging"), Ok(Endpoint::GetObjectTagging));
        assert_eq!(r(Method::PUT, "/b?tagging"), Ok(Endpoint::PutBucketTagging));
        assert_eq!(r(Method::PATCH, "/b/k").unwrap_err().code, S3ErrorCode::MethodNotAllowed);
    }

    fn with_headers(method: Method, target: &str, headers: &[(&'static str, &str)]) -> S3Result<Endpoint> {
        let (path, query) = target.split_once('?').map(|(p, q)| (p, Some(q))).unwrap_or((target, None));
        let (b, k) = split_target(path, None, None)?;
        let h: HeaderMap = headers
            .iter()
            .map(|(n, v)| (axum::http::HeaderName::from_static(n), axum::http::HeaderValue::from_str(v).unwrap()))
            .collect();
        route(&method, b.as_deref(), k.as_deref(), &Query::parse(query)?, &h)
    }

    #[test]
    fn bucket_endpoints() {
        assert_eq!(r(Method::DELETE, "/b"), Ok(Endpoint::DeleteBucket));
        assert_eq!(r(Method::HEAD, "/b"), Ok(Endpoint::HeadBucket));
        assert_eq!(r(Method::GET, "/b?versioning"), Ok(Endpoint::GetBucketVersioning));
        assert_eq!(r(Method::GET, "/b?uploads"), Ok(Endpoint::ListMultipartUploads));
        assert_eq!(r(Method::GET, "/b?tagging"), Ok(Endpoint::GetBucketTagging));
        assert_eq!(r(Method::DELETE, "/b?tagging"), Ok(Endpoint::DeleteBucketTagging));
        assert_eq!(r(Method::GET, "/b?prefix=x&marker=y"), Ok(Endpoint::ListObjects));
    }

    #[test]
    fn refused_bucket_requests() {
        assert_eq!(r(Method::GET, "/b?list-type=1").unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert_eq!(r(Method::PUT, "/b?versioning").unwrap_err().code, S3ErrorCode::NotImplemented);
        assert_eq!(r(Method::POST, "/b").unwrap_err().code, S3ErrorCode::MethodNotAllowed);
        assert_eq!(r(Method::PUT, "/").unwrap_err().code, S3ErrorCode::MethodNotAllowed);
        for sub in ["versions", "object-lock", "replication", "notification"] {
            assert_eq!(r(Method::GET, &format!("/b?{sub}")).unwrap_err().code, S3ErrorCode::NotImplemented, "{sub}");
        }
        for sub in ["lifecycle", "website", "encryption", "logging", "requestPayment"] {
            assert_eq!(r(Method::PUT, &format!("/b?{sub}")).unwrap_err().code, S3ErrorCode::NotImplemented, "{sub}");
            assert_eq!(r(Method::DELETE, &format!("/b?{sub}")).unwrap_err().code, S3ErrorCode::NotImplemented, "{sub}");
        }
    }

    #[test]
    fn configuration_gets_are_answered() {
        let cases = [
            ("encryption", BucketConfig::Encryption),
            ("lifecycle", BucketConfig::Lifecycle),
            ("logging", BucketConfig::Logging),
            ("requestPayment", BucketConfig::RequestPayment),
            ("website", BucketConfig::Website),
        ];
        for (sub, c) in cases {
            assert_eq!(r(Method::GET, &format!("/b?{sub}")), Ok(Endpoint::GetBucketConfig(c)), "{sub}");
        }
        assert_eq!(r(Method::GET, "/b/k?acl"), Ok(Endpoint::GetObjectAcl));
        assert_eq!(r(Method::GET, "/b/k?attributes"), Ok(Endpoint::GetObjectAttributes));
        assert_eq!(r(Method::PUT, "/b?cors"), Ok(Endpoint::PutBucketCors));
        assert_eq!(r(Method::GET, "/b?cors"), Ok(Endpoint::GetBucketCors));
        assert_eq!(r(Method::DELETE, "/b?cors"), Ok(Endpoint::DeleteBucketCors));
        assert_eq!(r(Method::OPTIONS, "/b/k?X-Amz-Expires=5"), Ok(Endpoint::CorsPreflight));
        assert_eq!(r(Method::OPTIONS, "/b"), Ok(Endpoint::CorsPreflight));
        assert_eq!(r(Method::OPTIONS, "/").unwrap_err().code, S3ErrorCode::MethodNotAllowed);
        assert_eq!(r(Method::GET, "/b/k?cors").unwrap_err().code, S3ErrorCode::NotImplemented);
    }

    #[test]
    fn object_endpoints() {
        assert_eq!(r(Method::HEAD, "/b/k"), Ok(Endpoint::HeadObject));
        assert_eq!(r(Method::PUT, "/b/k"), Ok(Endpoint::PutObject));
        assert_eq!(r(Method::DELETE, "/b/k"), Ok(Endpoint::DeleteObject));
        assert_eq!(r(Method::PUT, "/b/k?tagging"), Ok(Endpoint::PutObjectTagging));
        assert_eq!(r(Method::DELETE, "/b/k?tagging"), Ok(Endpoint::DeleteObjectTagging));
        assert_eq!(r(Method::GET, "/b/k?partNumber=3"), Ok(Endpoint::GetObject));
        assert_eq!(r(Method::POST, "/b/k").unwrap_err().code, S3ErrorCode::NotImplemented);
        assert_eq!(r(Method::GET, "/b/k?versionId=3").unwrap_err().code, S3ErrorCode::NotImplemented);
    }

    #[test]
    fn a_copy_source_header_makes_a_copy() {
        let src = [("x-amz-copy-source", "/src/key")];
        assert_eq!(with_headers(Method::PUT, "/b/k", &src), Ok(Endpoint::CopyObject));
        assert_eq!(
            with_headers(Method::PUT, "/b/k?partNumber=7&uploadId=u", &src),
            Ok(Endpoint::UploadPartCopy { part_number: 7, upload_id: "u".into() })
        );
        // On a GET the header means nothing.
        assert_eq!(with_headers(Method::GET, "/b/k", &src), Ok(Endpoint::GetObject));
    }

    #[test]
    fn part_numbers_must_be_1_to_10000_with_an_upload() {
        assert_eq!(
            r(Method::PUT, "/b/k?partNumber=10000&uploadId=u"),
            Ok(Endpoint::UploadPart { part_number: 10000, upload_id: "u".into() })
        );
        assert_eq!(r(Method::PUT, "/b/k?partNumber=10001&uploadId=u").unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert_eq!(r(Method::PUT, "/b/k?partNumber=x&uploadId=u").unwrap_err().code, S3ErrorCode::InvalidArgument);
        let e = r(Method::PUT, "/b/k?partNumber=1").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (S3ErrorCode::InvalidArgument, "partNumber without uploadId"));
        assert_eq!(r(Method::PUT, "/b/k?uploadId=u").unwrap_err().code, S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn bad_percent_encoding_is_an_invalid_uri() {
        assert_eq!(r(Method::GET, "/b/%FF").unwrap_err().code, S3ErrorCode::InvalidURI);
        assert_eq!(r(Method::GET, "/b/%C2%AE%C2%8A-").unwrap_err().code, S3ErrorCode::InvalidURI);
        assert_eq!(r(Method::GET, "/b/%C2%AE-%C3%A9"), Ok(Endpoint::GetObject));
        assert_eq!(Query::parse(Some("prefix=%C3")).unwrap_err().code, S3ErrorCode::InvalidURI);
    }

    #[test]
    fn virtual_hosted_buckets() {
        assert_eq!(host_bucket(Some("b.s3.local"), Some("s3.local")).as_deref(), Some("b"));
        assert_eq!(host_bucket(Some("b.s3.local:9000"), Some("s3.local")).as_deref(), Some("b"));
        assert_eq!(host_bucket(Some("s3.local"), Some("s3.local")), None);
        assert_eq!(host_bucket(Some("b.other"), Some("s3.local")), None);
        assert_eq!(host_bucket(Some("b.s3.local"), None), None);
        let (b, k) = split_target("/", Some("bkt.s3.local"), Some("s3.local")).unwrap();
        assert_eq!((b.as_deref(), k), (Some("bkt"), None));
    }

    #[test]
    fn queries_keep_order_flags_and_empty_values() {
        let q = Query::parse(Some("uploads&prefix=&max-keys=5&a=1&a=2")).unwrap();
        assert!(q.has("uploads") && q.has("prefix"));
        assert_eq!(q.get("prefix"), Some(""));
        assert_eq!(q.get("a"), Some("1"));
        assert!(!q.has("b"));
    }

    #[test]
    fn keys_are_decoded_and_kept_whole() {
        let (b, k) = split_target("/b/a%2Bb%20c/..%2F/%E2%9C%93", None, None).unwrap();
        assert_eq!((b.as_deref(), k.as_deref()), (Some("b"), Some("a+b c/..//✓")));
        let (b, k) = split_target("//lead", Some("bkt.s3.local:9000"), Some("s3.local")).unwrap();
        assert_eq!((b.as_deref(), k.as_deref()), (Some("bkt"), Some("/lead")));
        let (b, k) = split_target("/b//lead", None, None).unwrap();
        assert_eq!((b.as_deref(), k.as_deref()), (Some("b"), Some("/lead")));
        assert_eq!(Query::parse(Some("prefix=a+b%2Bc")).unwrap().get("prefix"), Some("a+b+c"));
    }
}
