//! S3 errors: each one's code and HTTP status in one place, rendered as S3's error XML.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use strata_common::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Extra headers, e.g. `Content-Range: bytes */size` on InvalidRange.
    pub headers: Vec<(&'static str, String)>,
}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error { code, status: status_of(code), message: message.into(), headers: Vec::new() }
    }
    pub fn with_header(mut self, name: &'static str, value: String) -> S3Error {
        self.headers.push((name, value));
        self
    }
    pub fn internal(e: impl std::fmt::Display) -> S3Error {
        tracing::error!("internal error: {e}");
        S3Error::new("InternalError", "We encountered an internal error. Please try again.")
    }
    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new("InvalidArgument", message)
    }
    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new("InvalidRequest", message)
    }
    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }
    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new("NotImplemented", format!("{what} is not implemented by Strata"))
    }

    pub fn to_response(&self, resource: &str, request_id: &str) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            self.code,
            crate::xml::escape(&self.message),
            crate::xml::escape(resource),
            request_id
        );
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(*name, v);
            }
        }
        resp
    }
}

/// The HTTP status of each S3 error code.
fn status_of(code: &str) -> StatusCode {
    match code {
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "RequestTimeTooSkewed"
        | "InvalidObjectState" => StatusCode::FORBIDDEN,
        "NoSuchBucket" | "NoSuchKey" | "NoSuchUpload" | "NoSuchTagSet" => StatusCode::NOT_FOUND,
        "BucketAlreadyExists"
        | "BucketAlreadyOwnedByYou"
        | "BucketNotEmpty"
        | "OperationAborted"
        | "ConditionalRequestConflict" => StatusCode::CONFLICT,
        "PreconditionFailed" => StatusCode::PRECONDITION_FAILED,
        "NotModified" => StatusCode::NOT_MODIFIED,
        "InvalidRange" | "InvalidPartNumber" => StatusCode::RANGE_NOT_SATISFIABLE,
        "MethodNotAllowed" => StatusCode::METHOD_NOT_ALLOWED,
        "MissingContentLength" => StatusCode::LENGTH_REQUIRED,
        "EntityTooLarge"
        | "EntityTooSmall"
        | "BadDigest"
        | "InvalidArgument"
        | "InvalidRequest"
        | "InvalidDigest"
        | "InvalidBucketName"
        | "InvalidPart"
        | "InvalidPartOrder"
        | "MalformedXML"
        | "MetadataTooLarge"
        | "KeyTooLongError"
        | "IncompleteBody"
        | "XAmzContentSHA256Mismatch"
        | "InvalidURI"
        | "AuthorizationHeaderMalformed"
        | "AuthorizationQueryParametersError"
        | "InvalidEncodingMethod"
        | "InvalidTag"
        | "InvalidLocationConstraint"
        | "IllegalLocationConstraintException"
        | "UnexpectedContent"
        | "MissingSecurityHeader"
        | "InvalidStorageClass"
        | "MaxMessageLengthExceeded"
        | "BadRequest" => StatusCode::BAD_REQUEST,
        "NotImplemented" => StatusCode::NOT_IMPLEMENTED,
        "ServiceUnavailable" | "SlowDown" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for S3Error {
    fn from(e: Error) -> S3Error {
        let code = match e.kind {
            ErrorKind::NoSuchBucket => "NoSuchBucket",
            ErrorKind::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            ErrorKind::BucketNotEmpty => "BucketNotEmpty",
            ErrorKind::InvalidBucketName => "InvalidBucketName",
            ErrorKind::NoSuchKey => "NoSuchKey",
            ErrorKind::NoSuchUpload => "NoSuchUpload",
            ErrorKind::InvalidPart => "InvalidPart",
            ErrorKind::InvalidPartOrder => "InvalidPartOrder",
            ErrorKind::EntityTooSmall => "EntityTooSmall",
            ErrorKind::PreconditionFailed => "PreconditionFailed",
            ErrorKind::ConditionalRequestConflict => "ConditionalRequestConflict",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::InvalidAccessKeyId => "InvalidAccessKeyId",
            ErrorKind::Unavailable | ErrorKind::Conflict | ErrorKind::NotPrimary => {
                tracing::warn!("service unavailable: {e}");
                return S3Error::new("ServiceUnavailable", "Please reduce your request rate or try again later.");
            }
            ErrorKind::UfsChanged | ErrorKind::Internal => return S3Error::internal(e),
        };
        S3Error::new(code, e.message)
    }
}
