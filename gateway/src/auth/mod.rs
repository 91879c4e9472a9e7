//! Request authentication: SigV4 headers and presigned URLs (`sigv4`), SigV2 headers and
//! presigned URLs (`sigv2`), and aws-chunked streaming bodies with per-chunk signatures and
//! trailers (`chunked`).

pub mod chunked;
pub mod sigv2;
pub mod sigv4;

use axum::http::{HeaderMap, Method};

pub use sigv4::{Auth, Payload};

use crate::error::S3Result;
use crate::router::Query;

/// A request that carries no signature at all (no Authorization header, no presigned
/// parameters): an anonymous one, allowed only where an ACL grants AllUsers.
pub fn is_anonymous(headers: &HeaderMap, q: &Query) -> bool {
    !sigv4::has_auth(headers, q) && !q.has("X-Amz-Credential") && !q.has("Signature")
}

impl Auth {
    /// An anonymous request's: no key, its body unsigned.
    pub fn anonymous() -> Auth {
        Auth {
            access_key: String::new(),
            payload: Payload::Unsigned,
            signing_key: Vec::new(),
            amz_date: String::new(),
            scope: String::new(),
            signature: String::new(),
        }
    }
}

/// Checks the request's signature, SigV2 or SigV4 by what it carries. `bucket_from_host`: the
/// bucket of a virtual-hosted-style request (SigV2 signs it); `secret_of` finds the secret key
/// of an access key.
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
    if sigv2::is_v2(headers, q) {
        sigv2::authenticate(method, path, bucket_from_host, q, headers, now, secret_of).await
    } else {
        sigv4::authenticate(method, path, q, headers, now, secret_of).await
    }
}
