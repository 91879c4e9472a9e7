//! Object headers: those stored with a write and sent back on reads, user metadata
//! (`x-amz-meta-*`), checksums, and small helpers to build responses.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use strata_common::proto::{Checksum, ObjectMeta};

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// Headers stored as sent with a write and returned on reads.
pub const STORED_HEADERS: [&str; 6] =
    ["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"];

const MAX_USER_METADATA: usize = 2048;

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Sets a header; a name or value that is not valid in HTTP is left out.
pub fn set(h: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        h.insert(n, v);
    }
}

/// The HTTP date of a time in ms.
pub fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `x-amz-checksum-<algo>` for each checksum.
pub fn set_checksums(h: &mut HeaderMap, checksums: &[Checksum]) {
    for c in checksums {
        set(h, &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()), &c.value);
    }
}

/// A whole-object checksum's type: composite checksums of multipart objects end in `-N`.
pub fn checksum_type(c: &Checksum) -> &'static str {
    if c.value.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" }
}

/// A user metadata value as stored: the header's bytes as UTF-8 (else one char per byte).
fn meta_value_in(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// The bytes of a stored user metadata value: ISO-8859-1 when every char fits it (HTTP/1.1
/// clients such as Python's and Java's read header bytes so: botocore sends "\u{e9}" as UTF-8
/// and reads it back from the byte E9), else UTF-8.
fn meta_value_out(v: &str) -> Vec<u8> {
    v.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| v.as_bytes().to_vec())
}

/// The `x-amz-meta-*` headers, without the prefix; S3 allows 2 KiB of them.
pub fn user_metadata(h: &HeaderMap) -> S3Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut size = 0;
    for (name, value) in h {
        if let Some(k) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = meta_value_in(value.as_bytes());
            size += k.len() + v.len();
            out.insert(k.to_string(), v);
        }
    }
    if size > MAX_USER_METADATA {
        return Err(S3Error::new(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size (2 KiB).",
        ));
    }
    Ok(out)
}

/// The [`STORED_HEADERS`] of a request. `aws-chunked` is the framing of the request body, not
/// an encoding of the object: AWS drops it from the stored Content-Encoding (and the header
/// when nothing else is left).
pub fn stored_headers(h: &HeaderMap) -> HashMap<String, String> {
    STORED_HEADERS
        .iter()
        .filter_map(|n| h.get(*n).and_then(|v| v.to_str().ok()).map(|v| (*n, v)))
        .filter_map(|(n, v)| {
            if n != "content-encoding" {
                return Some((n.to_string(), v.to_string()));
            }
            let kept: Vec<&str> =
                v.split(',').map(str::trim).filter(|e| !e.is_empty() && *e != "aws-chunked").collect();
            (!kept.is_empty()).then(|| (n.to_string(), kept.join(", ")))
        })
        .collect()
}

/// The headers of an object on GET and HEAD.
pub fn object_headers(h: &mut HeaderMap, meta: &ObjectMeta) {
    set(h, "etag", &format!("\"{}\"", meta.etag));
    set(h, "last-modified", &http_date(meta.last_modified_ms));
    set(h, "accept-ranges", "bytes");
    set(h, "content-type", "binary/octet-stream");
    for name in STORED_HEADERS {
        if let Some(v) = meta.headers.get(name) {
            set(h, name, v);
        }
    }
    for (k, v) in &meta.user_metadata {
        if let (Ok(n), Ok(v)) =
            (HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()), HeaderValue::from_bytes(&meta_value_out(v)))
        {
            h.insert(n, v);
        }
    }
    if !meta.tags.is_empty() {
        set(h, "x-amz-tagging-count", &meta.tags.len().to_string());
    }
    if !meta.parts.is_empty() {
        set(h, "x-amz-mp-parts-count", &meta.parts.len().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn user_metadata_drops_the_prefix_and_caps_the_size() {
        let h = headers(&[("x-amz-meta-color", "blue"), ("content-type", "text/plain")]);
        let m = user_metadata(&h).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["color"], "blue");
        let big = "v".repeat(2048);
        let e = user_metadata(&headers(&[("x-amz-meta-k", &big)])).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::MetadataTooLarge);
    }

    #[test]
    fn non_ascii_metadata_goes_back_as_http_clients_read_it() {
        // (bytes sent, bytes answered): botocore's "Hello World\u{e9}", ISO-8859-1, wide UTF-8, ASCII.
        let cases: [(&[u8], &[u8]); 4] = [
            ("Hello World\u{e9}".as_bytes(), b"Hello World\xe9"),
            (b"caf\xe9", b"caf\xe9"),
            ("caf\u{e9} \u{1f600}".as_bytes(), "caf\u{e9} \u{1f600}".as_bytes()),
            (b"plain", b"plain"),
        ];
        for (sent, answered) in cases {
            let mut h = HeaderMap::new();
            h.insert("x-amz-meta-m", HeaderValue::from_bytes(sent).unwrap());
            let meta = ObjectMeta { user_metadata: user_metadata(&h).unwrap(), ..Default::default() };
            let mut out = HeaderMap::new();
            object_headers(&mut out, &meta);
            assert_eq!(out.get("x-amz-meta-m").map(|v| v.as_bytes()), Some(answered));
        }
    }

    #[test]
    fn only_the_stored_headers_are_kept() {
        let h = headers(&[("content-type", "text/plain"), ("cache-control", "no-cache"), ("x-other", "1")]);
        let s = stored_headers(&h);
        assert_eq!(s.len(), 2);
        assert_eq!(s["cache-control"], "no-cache");
    }

    #[test]
    fn aws_chunked_is_dropped_from_the_stored_content_encoding() {
        let enc = |v: &str| stored_headers(&headers(&[("content-encoding", v)])).get("content-encoding").cloned();
        assert_eq!(enc("gzip").as_deref(), Some("gzip"));
        assert_eq!(enc("deflate, gzip").as_deref(), Some("deflate, gzip"));
        assert_eq!(enc("gzip, aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(enc("aws-chunked,gzip").as_deref(), Some("gzip"));
        assert_eq!(enc("aws-chunked"), None);
        assert_eq!(enc("aws-chunked, aws-chunked"), None);
    }

    #[test]
    fn object_headers_default_the_type_and_count_tags_and_parts() {
        let mut meta = ObjectMeta { etag: "abc".into(), last_modified_ms: 0, ..Default::default() };
        meta.tags.insert("t".into(), "1".into());
        let mut h = HeaderMap::new();
        object_headers(&mut h, &meta);
        assert_eq!(h["etag"], "\"abc\"");
        assert_eq!(h["content-type"], "binary/octet-stream");
        assert_eq!(h["last-modified"], "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(h["x-amz-tagging-count"], "1");
        assert!(!h.contains_key("x-amz-mp-parts-count"));
        meta.headers.insert("content-type".into(), "text/csv".into());
        object_headers(&mut h, &meta);
        assert_eq!(h["content-type"], "text/csv");
    }

    #[test]
    fn checksums_become_lower_case_headers() {
        let mut h = HeaderMap::new();
        set_checksums(&mut h, &[Checksum { algorithm: "CRC32C".into(), value: "AAAA".into() }]);
        assert_eq!(h["x-amz-checksum-crc32c"], "AAAA");
    }
}
