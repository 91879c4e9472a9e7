//! The error every internal call (master, worker, metadata store) returns. It crosses process
//! boundaries by its kind's name, so the gateway can map it to the right S3 error.

use std::fmt;

macro_rules! kinds {
    ($($name:ident => $grpc:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind { $($name),* }
        impl ErrorKind {
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorKind::$name => stringify!($name)),* }
            }
            pub fn parse(s: &str) -> Option<ErrorKind> {
                match s { $(stringify!($name) => Some(ErrorKind::$name),)* _ => None }
            }
            fn grpc_code(self) -> tonic::Code {
                match self { $(ErrorKind::$name => tonic::Code::$grpc),* }
            }
        }
    };
}

kinds! {
    NoSuchBucket => NotFound,
    BucketAlreadyOwnedByYou => AlreadyExists,
    BucketNotEmpty => FailedPrecondition,
    InvalidBucketName => InvalidArgument,
    NoSuchKey => NotFound,
    NoSuchUpload => NotFound,
    InvalidPart => InvalidArgument,
    InvalidPartOrder => InvalidArgument,
    EntityTooSmall => InvalidArgument,
    PreconditionFailed => FailedPrecondition,
    ConditionalRequestConflict => Aborted,
    InvalidArgument => InvalidArgument,
    AccessDenied => PermissionDenied,
    InvalidAccessKeyId => Unauthenticated,
    // UfsChanged: the under store copy no longer matches the metadata (changed behind our back).
    UfsChanged => FailedPrecondition,
    // Conflict: a transaction lost to a concurrent one; `transact` retries it.
    Conflict => Aborted,
    Unavailable => Unavailable,
    // StorageFull: a disk Strata writes to (a local-folder under store, a journal) has no room.
    StorageFull => ResourceExhausted,
    // StorageReadOnly: a disk Strata writes to is read-only (EROFS: remounted so after errors).
    StorageReadOnly => Unavailable,
    // NotPrimary: a standby master (or one that lost its lease) answers so; the client follows
    // the primary's address given with it. Nothing was done.
    NotPrimary => Unavailable,
    // Syncing: a listing waited its time for the sync of its mount's under store, which goes on.
    Syncing => Unavailable,
    Internal => Internal,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }
    pub fn internal(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Internal, message.to_string())
    }
    pub fn unavailable(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Unavailable, message.to_string())
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

const KIND_HEADER: &str = "strata-error-kind";

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        let mut status = tonic::Status::new(e.kind.grpc_code(), e.message);
        if let Ok(v) = e.kind.as_str().parse() {
            status.metadata_mut().insert(KIND_HEADER, v);
        }
        status
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        let kind = s.metadata().get(KIND_HEADER).and_then(|v| v.to_str().ok()).and_then(ErrorKind::parse).unwrap_or(
            match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                    ErrorKind::Unavailable
                }
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => ErrorKind::AccessDenied,
                // Made here from a failed connection (a master restarting, a reset stream): no
                // master answered it, which it would have with a kind.
                _ if std::error::Error::source(&s).is_some() => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        );
        Error::new(kind, s.message().to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::internal(format!("I/O error: {e}"))
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn a_broken_connection_to_a_master_is_unavailable() {
        let broken = tonic::Status::from_error(Box::new(std::io::Error::other("transport error")));
        assert_eq!(Error::from(broken).kind, ErrorKind::Unavailable);
        let sent = tonic::Status::unknown("a master said so");
        assert_eq!(Error::from(sent).kind, ErrorKind::Internal);
        let kinded: tonic::Status = Error::new(ErrorKind::NoSuchKey, "k").into();
        assert_eq!(Error::from(kinded).kind, ErrorKind::NoSuchKey);
    }
}
