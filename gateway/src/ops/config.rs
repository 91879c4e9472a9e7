//! GETs of the bucket configurations Strata does not keep (lifecycle, encryption,
//! website, logging, request payment), answered as AWS answers for a bucket that has none, so
//! that clients which ask (`s3cmd info`, SDK helpers, Terraform) see "none set" rather than
//! NotImplemented. ACLs are kept (`ops::acl`), and so are CORS (`ops::cors`) and policies
//! (`ops::policy`).

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::request::Ctx;
use crate::router::BucketConfig;
use crate::xml::NS;

/// The operation's name, for metrics and logs.
pub fn op_name(c: BucketConfig) -> &'static str {
    match c {
        BucketConfig::Encryption => "GetBucketEncryption",
        BucketConfig::Lifecycle => "GetBucketLifecycleConfiguration",
        BucketConfig::Logging => "GetBucketLogging",
        BucketConfig::RequestPayment => "GetBucketRequestPayment",
        BucketConfig::Website => "GetBucketWebsite",
    }
}

pub async fn get_bucket_config(ctx: &Ctx, c: BucketConfig) -> S3Result<Response> {
    ctx.gw.master.get_bucket(&ctx.bucket).await?;
    let none = |code, message: &str| Err(S3Error::new(code, message));
    match c {
        BucketConfig::Encryption => none(
            S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
            "The server side encryption configuration was not found",
        ),
        BucketConfig::Lifecycle => {
            none(S3ErrorCode::NoSuchLifecycleConfiguration, "The lifecycle configuration does not exist")
        }
        BucketConfig::Logging => Ok(xml_body(
            "<BucketLoggingStatus xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\"></BucketLoggingStatus>".into(),
        )),
        BucketConfig::RequestPayment => Ok(xml_body(format!(
            "<RequestPaymentConfiguration xmlns=\"{NS}\"><Payer>BucketOwner</Payer></RequestPaymentConfiguration>"
        ))),
        BucketConfig::Website => {
            none(S3ErrorCode::NoSuchWebsiteConfiguration, "The specified bucket does not have a website configuration")
        }
    }
}

fn xml_body(doc: String) -> Response {
    let mut r = Response::new(Body::from(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{doc}")));
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    r
}
