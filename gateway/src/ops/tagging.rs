use std::collections::HashMap;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use percent_encoding::percent_decode_str;
use strata_common::proto::SetTagsRequest;

use crate::error::{S3Error, S3Result};
use crate::http::{Ctx, small_body};
use crate::xml::{self, NS};

const MAX_OBJECT_TAGS: usize = 10;
const MAX_BUCKET_TAGS: usize = 50;

fn invalid(msg: &str) -> S3Error {
    S3Error::new("InvalidTag", msg.to_string())
}

/// S3's limits: at most 10 tags on an object (50 on a bucket), keys of 1 to 128 characters,
/// values of at most 256, no key twice.
fn check(pairs: Vec<(String, String)>, max: usize) -> S3Result<HashMap<String, String>> {
    if pairs.len() > max {
        return Err(S3Error::new("BadRequest", format!("Object tags cannot be greater than {max}")));
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

pub async fn get(ctx: &Ctx, bucket_level: bool) -> S3Result<Response> {
    let tags = if bucket_level {
        let tags = ctx.gw.master.get_bucket(&ctx.bucket).await?.tags;
        if tags.is_empty() {
            return Err(S3Error::new("NoSuchTagSet", "The TagSet does not exist"));
        }
        tags
    } else {
        ctx.gw.master.lookup(&ctx.bucket, &ctx.key).await?.tags
    };
    let mut list: Vec<xml::Tag> = tags.into_iter().map(|(key, value)| xml::Tag { key, value }).collect();
    list.sort_by(|a, b| a.key.cmp(&b.key));
    xml::response("Tagging", &xml::Tagging { xmlns: NS, tag_set: xml::TagSet { tags: list } })
}

pub async fn put(ctx: &Ctx, bucket_level: bool, body: Body) -> S3Result<Response> {
    let raw = small_body(body, 64 << 10).await?;
    let t: xml::Tagging = xml::parse(&raw)?;
    let max = if bucket_level { MAX_BUCKET_TAGS } else { MAX_OBJECT_TAGS };
    let tags = check(t.tag_set.tags.into_iter().map(|t| (t.key, t.value)).collect(), max)?;
    set(ctx, bucket_level, tags).await?;
    Ok(super::empty(if bucket_level { StatusCode::NO_CONTENT } else { StatusCode::OK }))
}

pub async fn delete(ctx: &Ctx, bucket_level: bool) -> S3Result<Response> {
    set(ctx, bucket_level, HashMap::new()).await?;
    Ok(super::empty(StatusCode::NO_CONTENT))
}

async fn set(ctx: &Ctx, bucket_level: bool, tags: HashMap<String, String>) -> S3Result<()> {
    let key = if bucket_level { String::new() } else { ctx.key.clone() };
    ctx.gw.master.set_tags(SetTagsRequest { bucket: ctx.bucket.clone(), key, tags }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tags() {
        let t = from_header(Some("a=1&b=two+words&c%2Bd=%F0%9F%98%80")).unwrap();
        assert_eq!(t.get("b").map(String::as_str), Some("two words"));
        assert_eq!(t.get("c+d").map(String::as_str), Some("😀"));
        assert_eq!(from_header(Some("a=1&a=2")).unwrap_err().code, "InvalidTag");
        let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(from_header(Some(&many.join("&"))).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(from_header(Some(&format!("{}=v", "k".repeat(129)))).unwrap_err().code, "InvalidTag");
    }
}
