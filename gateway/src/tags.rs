//! S3's tag rules, for the `x-amz-tagging` header of writes and the Tagging bodies of
//! Put{Object,Bucket}Tagging.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode, S3Result};

pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;

fn invalid(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidTag, msg.to_string())
}

/// S3's limits: at most 10 tags on an object (50 on a bucket), keys of 1 to 128 characters,
/// values of at most 256, no key twice.
pub fn check(pairs: Vec<(String, String)>, max: usize) -> S3Result<HashMap<String, String>> {
    if pairs.len() > max {
        let of = if max == MAX_BUCKET_TAGS { "Bucket" } else { "Object" };
        return Err(invalid(&format!("{of} tags cannot be greater than {max}")));
    }
    let mut tags = HashMap::new();
    for (k, v) in pairs {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags.insert(k, v).is_some() {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(tags)
}

/// The `x-amz-tagging` header of PutObject, CreateMultipartUpload and CopyObject: `k=v&k2=v2`.
pub fn from_header(header: Option<&str>) -> S3Result<HashMap<String, String>> {
    let Some(h) = header else { return Ok(HashMap::new()) };
    let dec = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let pairs = h
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect();
    check(pairs, MAX_OBJECT_TAGS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn header_tags() {
        let t = from_header(Some("a=1&b=two+words&c%2Bd=%F0%9F%98%80")).unwrap();
        assert_eq!(t.get("b").map(String::as_str), Some("two words"));
        assert_eq!(t.get("c+d").map(String::as_str), Some("😀"));
        assert_eq!(from_header(Some("a=1&a=2")).unwrap_err().code, S3ErrorCode::InvalidTag);
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(from_header(Some(&many.join("&"))).unwrap_err().status(), StatusCode::BAD_REQUEST);
        assert_eq!(from_header(Some(&format!("{}=v", "k".repeat(129)))).unwrap_err().code, S3ErrorCode::InvalidTag);
    }

    #[test]
    fn no_header_is_no_tags_and_a_bare_key_has_an_empty_value() {
        assert!(from_header(None).unwrap().is_empty());
        let t = from_header(Some("flag&&x=")).unwrap();
        assert_eq!((t["flag"].as_str(), t["x"].as_str()), ("", ""));
    }

    #[test]
    fn buckets_take_fifty_tags_and_values_are_capped() {
        let pairs = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect::<Vec<_>>();
        assert!(check(pairs(50), MAX_BUCKET_TAGS).is_ok());
        assert_eq!(check(pairs(51), MAX_BUCKET_TAGS).unwrap_err().code, S3ErrorCode::InvalidTag);
        assert_eq!(check(pairs(11), MAX_OBJECT_TAGS).unwrap_err().message, "Object tags cannot be greater than 10");
        let long = vec![("k".to_string(), "v".repeat(257))];
        assert_eq!(check(long, MAX_OBJECT_TAGS).unwrap_err().message, "The TagValue you have provided is invalid");
    }
}
