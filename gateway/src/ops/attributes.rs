//! GetObjectAttributes (`GET /bucket/key?attributes`): the attributes named in
//! `x-amz-object-attributes`, and a multipart object's parts paged by `x-amz-max-parts` and
//! `x-amz-part-number-marker`.

use axum::response::Response;
use serde::Serialize;
use strata_common::proto::ObjectMeta;

use crate::error::{S3Error, S3Result};
use crate::headers::{checksum_type, http_date, set};
use crate::request::Ctx;
use crate::xml::{self, ChecksumsXml, NS};

const ATTRIBUTES: [&str; 5] = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"];

#[derive(Serialize)]
struct GetObjectAttributesResponse {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "ETag", skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(rename = "Checksum", skip_serializing_if = "Option::is_none")]
    checksum: Option<ChecksumXml>,
    #[serde(rename = "ObjectParts", skip_serializing_if = "Option::is_none")]
    object_parts: Option<ObjectPartsXml>,
    #[serde(rename = "StorageClass", skip_serializing_if = "Option::is_none")]
    storage_class: Option<&'static str>,
    #[serde(rename = "ObjectSize", skip_serializing_if = "Option::is_none")]
    object_size: Option<u64>,
}

#[derive(Serialize)]
struct ChecksumXml {
    #[serde(flatten)]
    values: ChecksumsXml,
    #[serde(rename = "ChecksumType")]
    checksum_type: &'static str,
}

#[derive(Serialize)]
struct ObjectPartsXml {
    #[serde(rename = "PartsCount")]
    parts_count: usize,
    #[serde(rename = "PartNumberMarker")]
    part_number_marker: u32,
    #[serde(rename = "NextPartNumberMarker")]
    next_part_number_marker: u32,
    #[serde(rename = "MaxParts")]
    max_parts: u32,
    #[serde(rename = "IsTruncated")]
    is_truncated: bool,
    #[serde(rename = "Part")]
    parts: Vec<PartXml>,
}

#[derive(Serialize)]
struct PartXml {
    #[serde(flatten)]
    checksums: ChecksumsXml,
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "Size")]
    size: u64,
}

/// The attributes asked for: a comma-separated list of known names, at least one.
fn wanted(header: Option<&str>) -> S3Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for name in header.unwrap_or("").split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let known = ATTRIBUTES.iter().find(|a| a.eq_ignore_ascii_case(name)).ok_or_else(|| {
            S3Error::invalid_argument(format!(
                "Invalid attribute name specified: {name}; use {}",
                ATTRIBUTES.join(", ")
            ))
        })?;
        out.push(*known);
    }
    if out.is_empty() {
        return Err(S3Error::invalid_argument(format!(
            "x-amz-object-attributes must name at least one of {}",
            ATTRIBUTES.join(", ")
        )));
    }
    Ok(out)
}

fn number_header(ctx: &Ctx, name: &str, default: u32) -> S3Result<u32> {
    match ctx.header(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| S3Error::invalid_argument(format!("{name} must be a number"))),
    }
}

fn object_parts(ctx: &Ctx, meta: &ObjectMeta) -> S3Result<Option<ObjectPartsXml>> {
    if meta.parts.is_empty() {
        return Ok(None);
    }
    let max = number_header(ctx, "x-amz-max-parts", 1000)?.min(1000);
    let marker = number_header(ctx, "x-amz-part-number-marker", 0)?;
    let after: Vec<_> = meta.parts.iter().filter(|p| p.number > marker).collect();
    let page = &after[..after.len().min(max as usize)];
    Ok(Some(ObjectPartsXml {
        parts_count: meta.parts.len(),
        part_number_marker: marker,
        next_part_number_marker: page.last().map(|p| p.number).unwrap_or(marker),
        max_parts: max,
        is_truncated: after.len() > page.len(),
        parts: page
            .iter()
            .map(|p| PartXml { checksums: ChecksumsXml::of(&p.checksums), part_number: p.number, size: p.size })
            .collect(),
    }))
}

pub async fn get_object_attributes(ctx: &Ctx) -> S3Result<Response> {
    let wanted = wanted(ctx.header("x-amz-object-attributes"))?;
    let meta = ctx.object().await?;
    let has = |a: &str| wanted.contains(&a);
    let checksum = meta
        .checksums
        .first()
        .filter(|_| has("Checksum"))
        .map(|c| ChecksumXml { values: ChecksumsXml::of(std::slice::from_ref(c)), checksum_type: checksum_type(c) });
    let body = GetObjectAttributesResponse {
        xmlns: NS,
        etag: has("ETag").then(|| meta.etag.clone()),
        checksum,
        object_parts: if has("ObjectParts") { object_parts(ctx, &meta)? } else { None },
        storage_class: has("StorageClass").then_some("STANDARD"),
        object_size: has("ObjectSize").then_some(meta.size),
    };
    let mut resp = xml::response("GetObjectAttributesResponse", &body)?;
    set(resp.headers_mut(), "last-modified", &http_date(meta.last_modified_ms));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_are_checked() {
        assert_eq!(wanted(Some("ETag, ObjectSize")).unwrap(), vec!["ETag", "ObjectSize"]);
        assert_eq!(wanted(Some("etag")).unwrap(), vec!["ETag"]);
        for bad in [None, Some(""), Some("ETag,Colour")] {
            assert_eq!(wanted(bad).unwrap_err().code, crate::error::S3ErrorCode::InvalidArgument, "{bad:?}");
        }
    }
}
