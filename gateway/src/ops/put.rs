//! PutObject: the write's type, conditions and description, the body through the write
//! pipeline (into a worker's journal, or staged in the under store), then the commit.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use strata_common::api::UfsLocation;
use strata_common::io_mode::WriteType;

use crate::error::S3Result;
use crate::headers::{empty, set, set_checksums, stored_headers, user_metadata};
use crate::request::Ctx;
use crate::tags;
use crate::write::{Described, check_key, commit_written, write_body, write_conditions, write_journaled, write_type};

pub async fn put_object(ctx: &Ctx, body: Body) -> S3Result<Response> {
    check_key(&ctx.key)?;
    crate::write::check_storage_class(ctx)?;
    let user_metadata = user_metadata(&ctx.headers)?;
    let tags = tags::from_header(ctx.header("x-amz-tagging"))?;
    let conditions = write_conditions(ctx).await?;
    let mode = write_type(ctx).await?;
    let version = ctx.gw.master.allocate_version().await?;
    let acl = crate::access::new_object_acl(ctx).await?;
    let described = Described { headers: stored_headers(&ctx.headers), user_metadata, tags, acl };
    let meta = if mode.journaled() {
        let (worker_id, written) = write_journaled(ctx, body, version).await?;
        let journal = (worker_id, mode == WriteType::AsyncThrough);
        commit_written(ctx, described, (version, String::new()), written, &conditions, journal).await?
    } else {
        let staging = strata_common::ufs::staged_name(version);
        let loc = UfsLocation::staging(&ctx.bucket, &staging);
        let written = write_body(ctx, body, loc, version, mode == WriteType::CacheThrough).await?;
        commit_written(ctx, described, (version, staging), written, &conditions, (0, false)).await?
    };
    let mut r = empty(StatusCode::OK);
    set(r.headers_mut(), "etag", &format!("\"{}\"", meta.etag));
    set_checksums(r.headers_mut(), &meta.checksums);
    Ok(r)
}
