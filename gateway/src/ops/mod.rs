//! One module per family of S3 operations, and the one `match` from an [`Endpoint`] to them.
//! An operation module uses the pipelines (`read`, `write`) and helpers below it, never
//! another operation module.

mod acl;
mod attributes;
mod bucket;
pub mod config;
pub(crate) mod copy;
pub mod cors;
mod delete;
mod get;
mod list;
pub(crate) mod multipart;
mod policy;
mod put;
mod tagging;

use axum::body::Body;
use axum::response::Response;

use crate::error::S3Result;
use crate::request::Ctx;
use crate::router::Endpoint;

pub async fn dispatch(ctx: Ctx, endpoint: Endpoint, body: Body) -> S3Result<Response> {
    crate::access::authorize(&ctx, &endpoint).await?;
    match endpoint {
        Endpoint::ListBuckets => bucket::list_buckets(&ctx).await,
        Endpoint::CreateBucket => bucket::create_bucket(&ctx, body).await,
        Endpoint::DeleteBucket => bucket::delete_bucket(&ctx).await,
        Endpoint::HeadBucket => bucket::head_bucket(&ctx).await,
        Endpoint::GetBucketLocation => bucket::get_bucket_location(&ctx).await,
        Endpoint::GetBucketVersioning => bucket::get_bucket_versioning(&ctx).await,
        Endpoint::ListObjects => list::list_objects(&ctx, false).await,
        Endpoint::ListObjectsV2 => list::list_objects(&ctx, true).await,
        Endpoint::ListMultipartUploads => multipart::list_uploads(&ctx).await,
        Endpoint::DeleteObjects => delete::delete_objects(&ctx, body).await,
        Endpoint::GetObject => get::get_object(&ctx, true).await,
        Endpoint::HeadObject => get::get_object(&ctx, false).await,
        Endpoint::PutObject => put::put_object(&ctx, body).await,
        Endpoint::DeleteObject => delete::delete_object(&ctx).await,
        Endpoint::CreateMultipartUpload => multipart::create(&ctx).await,
        Endpoint::UploadPart { part_number, upload_id } => {
            multipart::upload_part(&ctx, part_number, &upload_id, body).await
        }
        Endpoint::CompleteMultipartUpload { upload_id } => multipart::complete(&ctx, &upload_id, body).await,
        Endpoint::AbortMultipartUpload { upload_id } => multipart::abort(&ctx, &upload_id).await,
        Endpoint::ListParts { upload_id } => multipart::list_parts(&ctx, &upload_id).await,
        Endpoint::CopyObject => copy::copy_object(&ctx).await,
        Endpoint::UploadPartCopy { part_number, upload_id } => {
            copy::upload_part_copy(&ctx, part_number, &upload_id).await
        }
        Endpoint::GetObjectTagging => tagging::get(&ctx, false).await,
        Endpoint::PutObjectTagging => tagging::put(&ctx, false, body).await,
        Endpoint::DeleteObjectTagging => tagging::delete(&ctx, false).await,
        Endpoint::GetBucketTagging => tagging::get(&ctx, true).await,
        Endpoint::PutBucketTagging => tagging::put(&ctx, true, body).await,
        Endpoint::DeleteBucketTagging => tagging::delete(&ctx, true).await,
        Endpoint::GetBucketConfig(c) => config::get_bucket_config(&ctx, c).await,
        Endpoint::GetObjectAcl => acl::get_object_acl(&ctx).await,
        Endpoint::PutObjectAcl => acl::put_object_acl(&ctx, body).await,
        Endpoint::GetBucketAcl => acl::get_bucket_acl(&ctx).await,
        Endpoint::PutBucketAcl => acl::put_bucket_acl(&ctx, body).await,
        Endpoint::GetPublicAccessBlock => acl::get_public_access_block(&ctx).await,
        Endpoint::PutPublicAccessBlock => acl::put_public_access_block(&ctx, body).await,
        Endpoint::DeletePublicAccessBlock => acl::delete_public_access_block(&ctx).await,
        Endpoint::GetBucketPolicy => policy::get(&ctx).await,
        Endpoint::PutBucketPolicy => policy::put(&ctx, body).await,
        Endpoint::DeleteBucketPolicy => policy::delete(&ctx).await,
        Endpoint::GetBucketPolicyStatus => policy::status(&ctx).await,
        Endpoint::GetObjectAttributes => attributes::get_object_attributes(&ctx).await,
        Endpoint::PutBucketCors => cors::put(&ctx, body).await,
        Endpoint::GetBucketCors => cors::get(&ctx).await,
        Endpoint::DeleteBucketCors => cors::delete(&ctx).await,
        Endpoint::CorsPreflight => cors::preflight(&ctx.gw, &ctx.bucket, &ctx.headers).await,
    }
}
