//! Request authentication: SigV4 headers and presigned URLs (`sigv4`), SigV2 headers and
//! presigned URLs (`sigv2`), and aws-chunked streaming bodies with per-chunk signatures and
//! trailers (`chunked`).

pub mod chunked;
pub mod sigv2;
pub mod sigv4;

pub use sigv4::{Auth, Payload, authenticate};
