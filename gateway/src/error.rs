//! S3 errors: each code's HTTP status in one `match`, the mapping from Strata's internal
//! errors, and S3's error XML.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use strata_common::{Error, ErrorKind};

/// Each S3 error code the gateway answers, with its status. The code's string is its name.
macro_rules! codes {
    ($($code:ident => $status:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum S3ErrorCode { $($code),* }

        impl S3ErrorCode {
            #[cfg(test)]
            pub const ALL: &[S3ErrorCode] = &[$(S3ErrorCode::$code),*];

            pub fn as_str(self) -> &'static str {
                match self { $(S3ErrorCode::$code => stringify!($code)),* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(S3ErrorCode::$code => StatusCode::$status),* }
            }
        }
    };
}

codes! {
    AccessDenied => FORBIDDEN,
    AccessForbidden => FORBIDDEN,
    InvalidAccessKeyId => FORBIDDEN,
    SignatureDoesNotMatch => FORBIDDEN,
    RequestTimeTooSkewed => FORBIDDEN,
    InvalidChunkSizeError => FORBIDDEN,
    NoSuchBucket => NOT_FOUND,
    NoSuchKey => NOT_FOUND,
    NoSuchUpload => NOT_FOUND,
    NoSuchTagSet => NOT_FOUND,
    NoSuchBucketPolicy => NOT_FOUND,
    NoSuchCORSConfiguration => NOT_FOUND,
    NoSuchLifecycleConfiguration => NOT_FOUND,
    NoSuchWebsiteConfiguration => NOT_FOUND,
    ServerSideEncryptionConfigurationNotFoundError => NOT_FOUND,
    BucketAlreadyOwnedByYou => CONFLICT,
    BucketAlreadyExists => CONFLICT,
    NoSuchPublicAccessBlockConfiguration => NOT_FOUND,
    UnexpectedContent => BAD_REQUEST,
    MalformedPolicy => BAD_REQUEST,
    MissingSecurityHeader => BAD_REQUEST,
    BucketNotEmpty => CONFLICT,
    ConditionalRequestConflict => CONFLICT,
    PreconditionFailed => PRECONDITION_FAILED,
    InvalidRange => RANGE_NOT_SATISFIABLE,
    MethodNotAllowed => METHOD_NOT_ALLOWED,
    MissingContentLength => LENGTH_REQUIRED,
    EntityTooLarge => BAD_REQUEST,
    EntityTooSmall => BAD_REQUEST,
    BadDigest => BAD_REQUEST,
    InvalidArgument => BAD_REQUEST,
    InvalidRequest => BAD_REQUEST,
    InvalidDigest => BAD_REQUEST,
    InvalidBucketName => BAD_REQUEST,
    InvalidPart => BAD_REQUEST,
    InvalidPartOrder => BAD_REQUEST,
    MalformedXML => BAD_REQUEST,
    MetadataTooLarge => BAD_REQUEST,
    KeyTooLongError => BAD_REQUEST,
    IncompleteBody => BAD_REQUEST,
    XAmzContentSHA256Mismatch => BAD_REQUEST,
    InvalidURI => BAD_REQUEST,
    AuthorizationHeaderMalformed => BAD_REQUEST,
    AuthorizationQueryParametersError => BAD_REQUEST,
    InvalidTag => BAD_REQUEST,
    MaxMessageLengthExceeded => BAD_REQUEST,
    InvalidStorageClass => BAD_REQUEST,
    BadRequest => BAD_REQUEST,
    RequestTimeout => BAD_REQUEST,
    RequestHeaderSectionTooLarge => BAD_REQUEST,
    NotImplemented => NOT_IMPLEMENTED,
    ServiceUnavailable => SERVICE_UNAVAILABLE,
    InternalError => INTERNAL_SERVER_ERROR,
}

impl std::fmt::Display for S3ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Extra headers, e.g. `Content-Range: bytes */size` on InvalidRange.
    pub headers: Vec<(&'static str, String)>,
}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error { code, message: message.into(), headers: Vec::new() }
    }
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
    pub fn with_header(mut self, name: &'static str, value: String) -> S3Error {
        self.headers.push((name, value));
        self
    }
    pub fn internal(e: impl std::fmt::Display) -> S3Error {
        tracing::error!("internal error: {e}");
        S3Error::new(S3ErrorCode::InternalError, "We encountered an internal error. Please try again.")
    }
    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(S3ErrorCode::InvalidArgument, message)
    }
    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(S3ErrorCode::InvalidRequest, message)
    }
    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }
    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(S3ErrorCode::NotImplemented, format!("{what} is not implemented by Strata"))
    }
    pub fn precondition_failed() -> S3Error {
        S3Error::new(S3ErrorCode::PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
    }
    pub fn entity_too_large() -> S3Error {
        S3Error::new(S3ErrorCode::EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.")
    }

    /// S3's error XML body, with the request's path as the resource.
    pub fn body(&self, resource: &str, request_id: &str) -> String {
        let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            self.code,
            esc(&self.message),
            esc(resource),
            request_id
        )
    }

    pub fn to_response(&self, resource: &str, request_id: &str) -> Response {
        let mut resp = Response::new(Body::from(self.body(resource, request_id)));
        *resp.status_mut() = self.status();
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

impl From<Error> for S3Error {
    fn from(e: Error) -> S3Error {
        use S3ErrorCode as C;
        let code = match e.kind {
            ErrorKind::NoSuchBucket => C::NoSuchBucket,
            ErrorKind::BucketAlreadyOwnedByYou => C::BucketAlreadyOwnedByYou,
            ErrorKind::BucketNotEmpty => C::BucketNotEmpty,
            ErrorKind::InvalidBucketName => C::InvalidBucketName,
            ErrorKind::NoSuchKey => C::NoSuchKey,
            ErrorKind::NoSuchUpload => C::NoSuchUpload,
            ErrorKind::InvalidPart => C::InvalidPart,
            ErrorKind::InvalidPartOrder => C::InvalidPartOrder,
            ErrorKind::EntityTooSmall => C::EntityTooSmall,
            ErrorKind::PreconditionFailed => C::PreconditionFailed,
            ErrorKind::ConditionalRequestConflict => C::ConditionalRequestConflict,
            ErrorKind::InvalidArgument => C::InvalidArgument,
            ErrorKind::AccessDenied => C::AccessDenied,
            ErrorKind::InvalidAccessKeyId => C::InvalidAccessKeyId,
            ErrorKind::Unavailable | ErrorKind::Conflict | ErrorKind::NotPrimary => {
                tracing::warn!("service unavailable: {e}");
                return S3Error::new(C::ServiceUnavailable, "Please reduce your request rate or try again later.")
                    .with_header("retry-after", "1".into());
            }
            ErrorKind::Syncing => {
                return S3Error::new(C::ServiceUnavailable, e.message).with_header("retry-after", "5".into());
            }
            ErrorKind::StorageFull | ErrorKind::StorageReadOnly => {
                tracing::warn!("storage full or read-only: {e}");
                return S3Error::new(C::ServiceUnavailable, e.message).with_header("retry-after", "5".into());
            }
            ErrorKind::UfsChanged | ErrorKind::Internal => return S3Error::internal(e),
        };
        S3Error::new(code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status table as it was when codes were strings: every code keeps its status.
    fn status_before(code: &str) -> StatusCode {
        match code {
            "AccessDenied"
            | "AccessForbidden"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "RequestTimeTooSkewed"
            | "InvalidChunkSizeError" => StatusCode::FORBIDDEN,
            "NoSuchBucket"
            | "NoSuchKey"
            | "NoSuchUpload"
            | "NoSuchTagSet"
            | "NoSuchBucketPolicy"
            | "NoSuchCORSConfiguration"
            | "NoSuchLifecycleConfiguration"
            | "NoSuchWebsiteConfiguration"
            | "ServerSideEncryptionConfigurationNotFoundError"
            | "NoSuchPublicAccessBlockConfiguration" => StatusCode::NOT_FOUND,
            "BucketAlreadyOwnedByYou" | "BucketAlreadyExists" | "BucketNotEmpty" | "ConditionalRequestConflict" => {
                StatusCode::CONFLICT
            }
            "PreconditionFailed" => StatusCode::PRECONDITION_FAILED,
            "InvalidRange" => StatusCode::RANGE_NOT_SATISFIABLE,
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
            | "InvalidTag"
            | "MaxMessageLengthExceeded"
            | "InvalidStorageClass"
            | "BadRequest"
            | "UnexpectedContent"
            | "MalformedPolicy"
            | "MissingSecurityHeader"
            | "RequestTimeout"
            | "RequestHeaderSectionTooLarge" => StatusCode::BAD_REQUEST,
            "NotImplemented" => StatusCode::NOT_IMPLEMENTED,
            "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    #[test]
    fn every_code_keeps_its_status() {
        for c in S3ErrorCode::ALL {
            assert_eq!(c.status(), status_before(c.as_str()), "{c}");
        }
        assert_eq!(S3ErrorCode::ALL.len(), 53);
    }

    #[test]
    fn a_few_statuses_spelled_out() {
        assert_eq!(S3ErrorCode::NoSuchKey.status(), StatusCode::NOT_FOUND);
        assert_eq!(S3ErrorCode::InvalidRange.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(S3ErrorCode::SignatureDoesNotMatch.status(), StatusCode::FORBIDDEN);
        assert_eq!(S3ErrorCode::MissingContentLength.status(), StatusCode::LENGTH_REQUIRED);
        assert_eq!(S3ErrorCode::InternalError.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn codes_are_spelled_as_s3_spells_them() {
        assert_eq!(S3ErrorCode::XAmzContentSHA256Mismatch.as_str(), "XAmzContentSHA256Mismatch");
        assert_eq!(S3ErrorCode::MalformedXML.to_string(), "MalformedXML");
        let mut names: Vec<&str> = S3ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), S3ErrorCode::ALL.len());
    }

    #[test]
    fn the_xml_body_escapes_message_and_resource() {
        let e = S3Error::new(S3ErrorCode::NoSuchKey, "no <key> & \"quotes\"");
        let body = e.body("/b/a&b<c>", "REQ123");
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
             <Message>no &lt;key&gt; &amp; &quot;quotes&quot;</Message>\
             <Resource>/b/a&amp;b&lt;c&gt;</Resource><RequestId>REQ123</RequestId></Error>"
        );
    }

    #[test]
    fn the_response_has_status_type_and_extra_headers() {
        let e = S3Error::new(S3ErrorCode::InvalidRange, "no").with_header("content-range", "bytes */10".into());
        let r = e.to_response("/b/k", "R");
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()["content-type"], "application/xml");
        assert_eq!(r.headers()["content-range"], "bytes */10");
    }

    #[test]
    fn domain_errors_keep_their_code_and_message() {
        let cases = [
            (ErrorKind::NoSuchBucket, S3ErrorCode::NoSuchBucket),
            (ErrorKind::BucketAlreadyOwnedByYou, S3ErrorCode::BucketAlreadyOwnedByYou),
            (ErrorKind::BucketNotEmpty, S3ErrorCode::BucketNotEmpty),
            (ErrorKind::InvalidBucketName, S3ErrorCode::InvalidBucketName),
            (ErrorKind::NoSuchKey, S3ErrorCode::NoSuchKey),
            (ErrorKind::NoSuchUpload, S3ErrorCode::NoSuchUpload),
            (ErrorKind::InvalidPart, S3ErrorCode::InvalidPart),
            (ErrorKind::InvalidPartOrder, S3ErrorCode::InvalidPartOrder),
            (ErrorKind::EntityTooSmall, S3ErrorCode::EntityTooSmall),
            (ErrorKind::PreconditionFailed, S3ErrorCode::PreconditionFailed),
            (ErrorKind::ConditionalRequestConflict, S3ErrorCode::ConditionalRequestConflict),
            (ErrorKind::InvalidArgument, S3ErrorCode::InvalidArgument),
            (ErrorKind::AccessDenied, S3ErrorCode::AccessDenied),
            (ErrorKind::InvalidAccessKeyId, S3ErrorCode::InvalidAccessKeyId),
        ];
        for (kind, code) in cases {
            let e = S3Error::from(Error::new(kind, "what happened"));
            assert_eq!((e.code, e.message.as_str()), (code, "what happened"), "{kind:?}");
        }
    }

    #[test]
    fn passing_troubles_are_503_and_internal_ones_500_without_details() {
        for kind in [ErrorKind::Unavailable, ErrorKind::Conflict, ErrorKind::NotPrimary] {
            let e = S3Error::from(Error::new(kind, "master at 10.0.0.1 is down"));
            assert_eq!(e.code, S3ErrorCode::ServiceUnavailable);
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(!e.message.contains("10.0.0.1"));
            assert!(e.headers.contains(&("retry-after", "1".into())), "{:?}", e.headers);
        }
        for kind in [ErrorKind::Internal, ErrorKind::UfsChanged] {
            let e = S3Error::from(Error::new(kind, "secret detail"));
            assert_eq!(e.code, S3ErrorCode::InternalError);
            assert_eq!(e.message, "We encountered an internal error. Please try again.");
        }
    }

    #[test]
    fn a_listing_whose_sync_goes_on_is_503_saying_how_far() {
        let e = S3Error::from(Error::new(ErrorKind::Syncing, "bucket lake: ... (1200 keys listed ...): retry it"));
        assert_eq!((e.code, e.status()), (S3ErrorCode::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE));
        assert!(e.message.contains("1200 keys listed"), "{}", e.message);
        assert!(e.headers.contains(&("retry-after", "5".into())), "{:?}", e.headers);
    }

    #[test]
    fn a_full_disk_is_503_saying_so() {
        let e = S3Error::from(Error::new(ErrorKind::StorageFull, "writing b/k: the under store's disk is full"));
        assert_eq!((e.code, e.status()), (S3ErrorCode::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE));
        assert!(e.message.contains("disk is full"), "{}", e.message);
        assert!(e.headers.iter().any(|(h, _)| *h == "retry-after"), "{:?}", e.headers);
        let e =
            S3Error::from(Error::new(ErrorKind::StorageReadOnly, "writing b/k: the under store's disk is read-only"));
        assert_eq!((e.code, e.status()), (S3ErrorCode::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE));
        assert!(e.message.contains("read-only"), "{}", e.message);
    }
}
