//! DeleteObject and DeleteObjects (a batch of up to 1000 keys).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::empty;
use crate::request::{Ctx, small_body};
use crate::xml::{self, NS};

pub async fn delete_object(ctx: &Ctx) -> S3Result<Response> {
    // Deleting a key that does not exist succeeds, as in S3.
    ctx.gw.master.delete_object(&ctx.bucket, &ctx.key).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

const MAX_KEYS: usize = 1000;

pub async fn delete_objects(ctx: &Ctx, body: Body) -> S3Result<Response> {
    let raw = small_body(body, 2 << 20).await?;
    let checksummed = crate::body::ALL_ALGOS.iter().any(|a| ctx.headers.contains_key(a.header()))
        || ctx.headers.contains_key("x-amz-sdk-checksum-algorithm");
    if ctx.header("content-md5").is_none() && !checksummed {
        return Err(S3Error::invalid_request("Missing required header for this request: Content-MD5"));
    }
    if let Some(md5) = ctx.header("content-md5") {
        use base64::Engine;
        use md5::{Digest, Md5};
        let given = base64::engine::general_purpose::STANDARD.decode(md5).unwrap_or_default();
        if given.as_slice() != Md5::digest(&raw).as_slice() {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let req: xml::Delete = xml::parse(&raw)?;
    if req.objects.is_empty() || req.objects.len() > MAX_KEYS {
        return Err(S3Error::malformed_xml());
    }
    ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let mut result = xml::DeleteResult { xmlns: NS, deleted: Vec::new(), errors: Vec::new() };
    for o in req.objects {
        match ctx.gw.master.delete_object(&ctx.bucket, &o.key).await {
            Ok(_) => {
                if !req.quiet {
                    result.deleted.push(xml::DeletedXml { key: o.key });
                }
            }
            Err(e) => {
                let e = S3Error::from(e);
                result.errors.push(xml::DeleteErrorXml {
                    key: o.key,
                    code: e.code.as_str().to_string(),
                    message: e.message,
                });
            }
        }
    }
    xml::response("DeleteResult", &result)
}
