//! Get, Put and DeleteObjectTagging and their bucket twins.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use strata_common::proto::SetTagsRequest;

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::empty;
use crate::request::{Ctx, small_body};
use crate::tags::{MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, check};
use crate::xml::{self, NS};

pub async fn get(ctx: &Ctx, bucket_level: bool) -> S3Result<Response> {
    let tags = if bucket_level {
        let tags = ctx.gw.master.get_bucket(&ctx.bucket).await?.tags;
        if tags.is_empty() {
            return Err(S3Error::new(S3ErrorCode::NoSuchTagSet, "The TagSet does not exist"));
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
    Ok(empty(if bucket_level { StatusCode::NO_CONTENT } else { StatusCode::OK }))
}

pub async fn delete(ctx: &Ctx, bucket_level: bool) -> S3Result<Response> {
    set(ctx, bucket_level, HashMap::new()).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn set(ctx: &Ctx, bucket_level: bool, tags: HashMap<String, String>) -> S3Result<()> {
    let key = if bucket_level { String::new() } else { ctx.key.clone() };
    ctx.gw.master.set_tags(SetTagsRequest { bucket: ctx.bucket.clone(), key, tags }).await?;
    Ok(())
}
