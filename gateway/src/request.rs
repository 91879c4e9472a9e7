//! One authenticated S3 request as the operations see it ([`Ctx`]), and reading its small
//! (XML) bodies whole.

use axum::body::Body;
use axum::http::HeaderMap;

use crate::access::Principal;
use crate::auth::Auth;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::Query;
use crate::state::Gateway;
use crate::xml;

/// One authenticated S3 request.
pub struct Ctx {
    pub gw: Gateway,
    pub bucket: String,
    pub key: String,
    pub query: Query,
    pub headers: HeaderMap,
    pub auth: Auth,
    pub principal: Principal,
    /// The client's address (None in tests that call the router directly).
    pub peer: Option<std::net::IpAddr>,
    /// The request came over TLS (`aws:SecureTransport`).
    pub secure: bool,
    /// The request's own object, when the access check looked it up already.
    pub looked_up: std::sync::OnceLock<strata_common::proto::ObjectMeta>,
}

impl Ctx {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request's object: the one the access check looked up, else the master's.
    pub async fn object(&self) -> strata_common::Result<strata_common::proto::ObjectMeta> {
        match self.looked_up.get() {
            Some(m) => Ok(m.clone()),
            None => self.gw.master.lookup(&self.bucket, &self.key).await,
        }
    }

    /// The owner shown in listings: the requester.
    pub fn owner(&self) -> xml::Owner {
        let o = self.principal.owner();
        xml::Owner { id: o.id, display_name: o.display_name }
    }
}

/// A request body that failed: its client stalled (RequestTimeout) or hung up (IncompleteBody).
pub fn body_error(e: &axum::Error) -> S3Error {
    if strata_common::server::is_body_timeout(e) {
        return S3Error::new(
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        );
    }
    S3Error::new(S3ErrorCode::IncompleteBody, format!("The request body was cut off: {e}"))
}

/// Reads a small request body (XML) whole, up to `limit` bytes.
pub async fn small_body(body: Body, limit: usize) -> S3Result<bytes::Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if strata_common::server::is_body_timeout(&e) {
            return body_error(&e);
        }
        S3Error::new(
            S3ErrorCode::MaxMessageLengthExceeded,
            format!("Your request was too big (at most {limit} bytes here)"),
        )
    })
}
