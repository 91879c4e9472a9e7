//! SigV4 signing of test requests with aws-sigv4 (the signer of AWS's SDKs), and aws-chunked
//! bodies: signed chunks chained on the request's signature, or unsigned with a trailer.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign as sigv4_sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest, Sha256};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const REGION: &str = "us-east-1";

/// How the body is signed.
#[derive(Clone)]
pub enum Payload {
    /// `x-amz-content-sha256` is the body's SHA-256.
    Signed,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// `x-amz-content-sha256` set to this value; the body sent as it is.
    Raw(String),
    /// aws-chunked, each `chunk` bytes signed; `tamper` breaks the second chunk's signature.
    ChunkedSigned { chunk: usize, tamper: bool },
    /// aws-chunked without signatures, ending in the trailer `name:value`.
    ChunkedUnsignedTrailer { chunk: usize, name: String, value: String },
    /// Not signed at all.
    Anonymous,
}

/// The headers to send (signature included) and the body as it goes on the wire.
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    payload: &Payload,
    (ak, sk): (&str, &str),
    now: SystemTime,
) -> (HeaderMap, Bytes) {
    if let Payload::Anonymous = payload {
        let mut out = HeaderMap::new();
        for (k, v) in headers {
            out.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        return (out, body);
    }
    let mut headers = headers.to_vec();
    let decoded_len = body.len().to_string();
    let content_sha = match payload {
        Payload::Signed | Payload::Anonymous => None,
        Payload::Unsigned => Some("UNSIGNED-PAYLOAD".to_string()),
        Payload::Raw(v) => Some(v.clone()),
        Payload::ChunkedSigned { .. } => {
            headers.push(("content-encoding".into(), "aws-chunked".into()));
            headers.push(("x-amz-decoded-content-length".into(), decoded_len));
            Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string())
        }
        Payload::ChunkedUnsignedTrailer { name, .. } => {
            headers.push(("content-encoding".into(), "aws-chunked".into()));
            headers.push(("x-amz-decoded-content-length".into(), decoded_len));
            headers.push(("x-amz-trailer".into(), name.clone()));
            Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_string())
        }
    };
    let identity = Credentials::new(ak, sk, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable_body = match &content_sha {
        None => SignableBody::Bytes(&body),
        Some(h) => SignableBody::Precomputed(h.clone()),
    };
    let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let signable = SignableRequest::new(method, url, pairs, signable_body).unwrap();
    let (instructions, signature) = sigv4_sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let mut req = req.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let mut out = req.headers().clone();
    let wire = match payload {
        Payload::ChunkedSigned { chunk, tamper } => {
            let amz_date = out.get("x-amz-date").unwrap().to_str().unwrap().to_string();
            let key = v4::generate_signing_key(sk, now, REGION, "s3");
            let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
            signed_chunks(&body, *chunk, key.as_ref(), &amz_date, &scope, &signature, *tamper)
        }
        Payload::ChunkedUnsignedTrailer { chunk, name, value } => unsigned_chunks(&body, *chunk, name, value),
        _ => body,
    };
    if matches!(payload, Payload::ChunkedSigned { .. } | Payload::ChunkedUnsignedTrailer { .. }) {
        out.insert("content-length", wire.len().to_string().parse().unwrap());
    }
    (out, wire)
}

fn signed_chunks(body: &[u8], chunk: usize, key: &[u8], date: &str, scope: &str, seed: &str, tamper: bool) -> Bytes {
    let mut out = Vec::new();
    let mut prev = seed.to_string();
    let mut pieces: Vec<&[u8]> = body.chunks(chunk.max(1)).collect();
    pieces.push(&[]);
    for (i, piece) in pieces.into_iter().enumerate() {
        let hash = hex::encode(Sha256::digest(piece));
        let sts = format!("AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{hash}");
        let mut sig = v4::calculate_signature(key, sts.as_bytes());
        prev = sig.clone();
        if tamper && i == 1 {
            sig = "0".repeat(64);
        }
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.into()
}

fn unsigned_chunks(body: &[u8], chunk: usize, name: &str, value: &str) -> Bytes {
    let mut out = Vec::new();
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0\r\n{name}:{value}\r\n\r\n").as_bytes());
    out.into()
}
