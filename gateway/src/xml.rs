//! S3's XML bodies, as serde types (quick-xml), and the helpers to send them.

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::error::{S3Error, S3Result};

pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// `<root xmlns=...>` + `value` as a 200 response.
pub fn response<T: Serialize>(root: &str, value: &T) -> S3Result<Response> {
    let body = quick_xml::se::to_string_with_root(root, value).map_err(S3Error::internal)?;
    let mut resp = Response::new(Body::from(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")));
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    Ok(resp)
}

pub fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> S3Result<T> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::malformed_xml())?;
    quick_xml::de::from_str(text).map_err(|_| S3Error::malformed_xml())
}

/// ISO 8601 with milliseconds, as S3 writes times in XML.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `Checksum<ALGO>` elements of a result, from the stored checksums.
#[derive(Serialize, Default)]
pub struct ChecksumsXml {
    #[serde(rename = "ChecksumCRC32", skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1", skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256", skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl ChecksumsXml {
    pub fn of(checksums: &[strata_common::proto::Checksum]) -> ChecksumsXml {
        let find = |name: &str| checksums.iter().find(|c| c.algorithm == name).map(|c| c.value.clone());
        ChecksumsXml {
            crc32: find("CRC32"),
            crc32c: find("CRC32C"),
            crc64nvme: find("CRC64NVME"),
            sha1: find("SHA1"),
            sha256: find("SHA256"),
        }
    }
}

#[derive(Serialize)]
pub struct Owner {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "DisplayName")]
    pub display_name: String,
}

#[derive(Serialize)]
pub struct ListAllMyBucketsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Owner")]
    pub owner: Owner,
    #[serde(rename = "Buckets")]
    pub buckets: BucketsXml,
    #[serde(rename = "ContinuationToken", skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    #[serde(rename = "Prefix", skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Serialize)]
pub struct BucketsXml {
    #[serde(rename = "Bucket")]
    pub bucket: Vec<BucketXml>,
}

#[derive(Serialize)]
pub struct BucketXml {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CreationDate")]
    pub creation_date: String,
}

#[derive(Serialize)]
pub struct ObjectXml {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "LastModified")]
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "StorageClass")]
    pub storage_class: &'static str,
    #[serde(rename = "Owner", skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

#[derive(Serialize)]
pub struct PrefixXml {
    #[serde(rename = "Prefix")]
    pub prefix: String,
}

#[derive(Serialize, Default)]
pub struct ListBucketResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Prefix")]
    pub prefix: String,
    #[serde(rename = "Marker", skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    #[serde(rename = "NextMarker", skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    #[serde(rename = "ContinuationToken", skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    #[serde(rename = "NextContinuationToken", skip_serializing_if = "Option::is_none")]
    pub next_continuation_token: Option<String>,
    #[serde(rename = "StartAfter", skip_serializing_if = "Option::is_none")]
    pub start_after: Option<String>,
    #[serde(rename = "KeyCount", skip_serializing_if = "Option::is_none")]
    pub key_count: Option<usize>,
    #[serde(rename = "MaxKeys")]
    pub max_keys: u32,
    #[serde(rename = "Delimiter", skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    #[serde(rename = "IsTruncated")]
    pub is_truncated: bool,
    #[serde(rename = "Contents")]
    pub contents: Vec<ObjectXml>,
    #[serde(rename = "CommonPrefixes")]
    pub common_prefixes: Vec<PrefixXml>,
}

#[derive(Serialize)]
pub struct InitiateMultipartUploadResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Bucket")]
    pub bucket: String,
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "UploadId")]
    pub upload_id: String,
}

#[derive(Serialize)]
pub struct CompleteMultipartUploadResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Location")]
    pub location: String,
    #[serde(rename = "Bucket")]
    pub bucket: String,
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(flatten)]
    pub checksums: ChecksumsXml,
    #[serde(rename = "ChecksumType", skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct CompleteMultipartUpload {
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletedPart>,
}

#[derive(Deserialize, Debug)]
pub struct CompletedPart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
}

#[derive(Serialize)]
pub struct PartXml {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "LastModified")]
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(flatten)]
    pub checksums: ChecksumsXml,
}

#[derive(Serialize)]
pub struct ListPartsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Bucket")]
    pub bucket: String,
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    #[serde(rename = "PartNumberMarker")]
    pub part_number_marker: u32,
    #[serde(rename = "NextPartNumberMarker")]
    pub next_part_number_marker: u32,
    #[serde(rename = "MaxParts")]
    pub max_parts: u32,
    #[serde(rename = "IsTruncated")]
    pub is_truncated: bool,
    #[serde(rename = "StorageClass")]
    pub storage_class: &'static str,
    #[serde(rename = "ChecksumAlgorithm", skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    #[serde(rename = "Part")]
    pub parts: Vec<PartXml>,
}

#[derive(Serialize)]
pub struct UploadXml {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "UploadId")]
    pub upload_id: String,
    #[serde(rename = "Initiated")]
    pub initiated: String,
    #[serde(rename = "StorageClass")]
    pub storage_class: &'static str,
}

#[derive(Serialize)]
pub struct ListMultipartUploadsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Bucket")]
    pub bucket: String,
    #[serde(rename = "KeyMarker")]
    pub key_marker: String,
    #[serde(rename = "UploadIdMarker")]
    pub upload_id_marker: String,
    #[serde(rename = "NextKeyMarker")]
    pub next_key_marker: String,
    #[serde(rename = "NextUploadIdMarker")]
    pub next_upload_id_marker: String,
    #[serde(rename = "Prefix")]
    pub prefix: String,
    #[serde(rename = "MaxUploads")]
    pub max_uploads: u32,
    #[serde(rename = "IsTruncated")]
    pub is_truncated: bool,
    #[serde(rename = "Delimiter", skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(rename = "Upload")]
    pub uploads: Vec<UploadXml>,
    #[serde(rename = "CommonPrefixes")]
    pub common_prefixes: Vec<PrefixXml>,
}

#[derive(Deserialize, Debug)]
pub struct Delete {
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObject>,
    #[serde(rename = "Quiet", default)]
    pub quiet: bool,
}

#[derive(Deserialize, Debug)]
pub struct DeleteObject {
    #[serde(rename = "Key")]
    pub key: String,
}

#[derive(Serialize)]
pub struct DeletedXml {
    #[serde(rename = "Key")]
    pub key: String,
}

#[derive(Serialize)]
pub struct DeleteErrorXml {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Message")]
    pub message: String,
}

#[derive(Serialize)]
pub struct DeleteResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Deleted")]
    pub deleted: Vec<DeletedXml>,
    #[serde(rename = "Error")]
    pub errors: Vec<DeleteErrorXml>,
}

#[derive(Deserialize, Debug, Default)]
pub struct CreateBucketConfiguration {
    #[serde(rename = "LocationConstraint", default)]
    pub location_constraint: Option<String>,
}

#[derive(Serialize)]
pub struct LocationConstraint {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "$text")]
    pub region: String,
}

#[derive(Serialize)]
pub struct VersioningConfiguration {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Tagging {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(rename = "TagSet")]
    pub tag_set: TagSet,
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub struct TagSet {
    #[serde(rename = "Tag", default)]
    pub tags: Vec<Tag>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[derive(Serialize)]
pub struct CopyResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "LastModified")]
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(flatten)]
    pub checksums: ChecksumsXml,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lists_and_parses_requests() {
        let r = ListBucketResult {
            xmlns: NS,
            name: "b".into(),
            max_keys: 1000,
            contents: vec![ObjectXml {
                key: "a&b".into(),
                last_modified: time(0),
                etag: "\"e\"".into(),
                size: 3,
                storage_class: "STANDARD",
                owner: None,
            }],
            common_prefixes: vec![PrefixXml { prefix: "d/".into() }],
            ..Default::default()
        };
        let text = quick_xml::se::to_string_with_root("ListBucketResult", &r).unwrap();
        assert!(text.starts_with("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"), "{text}");
        assert!(
            text.contains("<Contents><Key>a&amp;b</Key><LastModified>1970-01-01T00:00:00.000Z</LastModified>"),
            "{text}"
        );
        assert!(text.contains("<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>"), "{text}");
        let c: CompleteMultipartUpload = parse(
            b"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>\"x\"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAA</ChecksumCRC32></Part></CompleteMultipartUpload>",
        )
        .unwrap();
        assert_eq!((c.parts[0].part_number, c.parts[0].etag.as_str()), (1, "\"x\""));
        let d: Delete =
            parse(b"<Delete><Object><Key>k1</Key></Object><Object><Key>k2</Key></Object><Quiet>true</Quiet></Delete>")
                .unwrap();
        assert_eq!((d.objects.len(), d.quiet), (2, true));
        assert!(parse::<Delete>(b"<Delete><Object>").is_err());
        let c = strata_common::proto::Checksum { algorithm: "CRC32".into(), value: "NhCmhg==".into() };
        let copy =
            CopyResult { xmlns: NS, last_modified: time(0), etag: "\"e\"".into(), checksums: ChecksumsXml::of(&[c]) };
        let text = quick_xml::se::to_string_with_root("CopyObjectResult", &copy).unwrap();
        assert!(
            text.ends_with("<ETag>\"e\"</ETag><ChecksumCRC32>NhCmhg==</ChecksumCRC32></CopyObjectResult>"),
            "{text}"
        );
    }
}
