//! The HTTP front: one handler that parses, authenticates and dispatches every S3 request,
//! stamps the request id, and counts requests, bytes and latency.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use strata_common::ops::{Readiness, metrics_text, serve_with};
use strata_common::{ids, read_source};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::access::Principal;
use crate::access_log::Record;
use crate::auth;
use crate::error::{S3Error, S3Result};
use crate::ops::{self, config, cors};
use crate::request::Ctx;
use crate::router::{Endpoint, Query, host_bucket, route, split_target};
use crate::state::Gateway;

/// Routes and authenticates one S3 request, then runs its operation; `rec` gets the
/// operation's name, bucket, key and access key as soon as each is known.
async fn serve_s3(
    gw: &Gateway,
    parts: &Parts,
    query: S3Result<Query>,
    body: Body,
    rec: &mut Record,
) -> S3Result<Response> {
    header_section_fits(&parts.headers)?;
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok());
    let (bucket, key) = split_target(parts.uri.path(), host, gw.opts.domain.as_deref())?;
    (rec.bucket, rec.key) = (bucket.clone().unwrap_or_default(), key.clone().unwrap_or_default());
    let query = query?;
    let endpoint = route(&parts.method, bucket.as_deref(), key.as_deref(), &query, &parts.headers)?;
    rec.op = op_name(&endpoint);
    if endpoint == Endpoint::CorsPreflight {
        return cors::preflight(gw, bucket.as_deref().unwrap_or_default(), &parts.headers).await;
    }
    let g = gw.clone();
    let secret_of = |ak| async move { g.secret_of(ak).await };
    let (method, path, headers, now) = (&parts.method, parts.uri.path(), &parts.headers, chrono::Utc::now());
    let vhost = host_bucket(host, gw.opts.domain.as_deref());
    let (auth, principal) = if auth::is_anonymous(headers, &query) {
        (auth::Auth::anonymous(), Principal::Anonymous)
    } else {
        let auth = auth::authenticate(method, path, vhost.as_deref(), &query, headers, now, secret_of).await?;
        auth::sigv4::check_scope_region(&auth, &gw.opts.region)?;
        rec.access_key = Some(auth.access_key.clone());
        let principal = gw.principal_of(&auth.access_key).await?;
        (auth, principal)
    };
    let ctx = Ctx {
        gw: gw.clone(),
        bucket: bucket.unwrap_or_default(),
        key: key.unwrap_or_default(),
        query,
        headers: parts.headers.clone(),
        auth,
        principal,
        peer: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        secure: parts.extensions.get::<strata_common::server::SecureTransport>().is_some(),
        looked_up: Default::default(),
    };
    ops::dispatch(ctx, endpoint, body).await
}

/// AWS's limit on a request's header block ("name: value\r\n" each).
const MAX_HEADER_SECTION: usize = 8 << 10;

fn header_section_fits(headers: &axum::http::HeaderMap) -> S3Result<()> {
    let size: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if size > MAX_HEADER_SECTION {
        return Err(S3Error::new(
            crate::error::S3ErrorCode::RequestHeaderSectionTooLarge,
            format!("Your request header section exceeds the maximum allowed size ({MAX_HEADER_SECTION} bytes)."),
        ));
    }
    Ok(())
}

/// The unsigned GETs of the ops endpoints; a signed GET of /metrics lists bucket "metrics".
async fn ops_endpoint(parts: &Parts, query: &S3Result<Query>, ready: &Readiness) -> Option<Response> {
    let signed = query.as_ref().map(|q| auth::sigv4::has_auth(&parts.headers, q)).unwrap_or(true);
    if parts.method != Method::GET || signed {
        return None;
    }
    match parts.uri.path() {
        "/healthz" => Some("ok\n".into_response()),
        "/readyz" if ready.get() => Some("ready\n".into_response()),
        "/readyz" => Some((axum::http::StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()),
        "/metrics" => Some(metrics_text().await.into_response()),
        _ => None,
    }
}

/// An error as S3's XML, logged.
fn error_response(e: S3Error, parts: &Parts, span: &tracing::Span, request_id: &str) -> Response {
    if e.status().is_server_error() {
        tracing::warn!(parent: span, code = e.code.as_str(), "{}", e.message);
    } else {
        tracing::debug!(parent: span, code = e.code.as_str(), "{}", e.message);
    }
    let mut r = e.to_response(parts.uri.path(), request_id);
    if parts.method == Method::HEAD {
        *r.body_mut() = Body::empty();
    }
    r
}

/// Whether the connection closes after this answer. A failed request may have left its body
/// unread (maybe after `Expect: 100-continue` kept the client from sending it), which would be
/// taken for the next request. And `Expect: 100-continue` on an empty body gets no `100
/// Continue` (there is nothing to read): botocore (aws cli, boto3) then misreads the next answer
/// on that connection and waits out its 60 s read timeout.
fn must_close(headers: &axum::http::HeaderMap, failed: bool) -> bool {
    let length = headers.get("content-length").and_then(|v| v.to_str().ok()).map(str::trim);
    let has_body = headers.contains_key("transfer-encoding") || length.is_some_and(|v| v != "0");
    let expect = headers.get("expect").and_then(|v| v.to_str().ok());
    let expects_continue = expect.is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    (failed && has_body) || (expects_continue && length == Some("0"))
}

/// Without an access log, a request that takes this long is logged at INFO; the others at DEBUG
/// (`RUST_LOG=strata_gateway=debug` logs every request): a line per request cost a third of a
/// small GET. With one, requests are logged there only.
const SLOW: Duration = Duration::from_secs(1);

async fn handle(State((gw, ready)): State<(Gateway, Readiness)>, req: Request) -> Response {
    let request_id = ids::request_id();
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    if let Some(r) = ops_endpoint(&parts, &query, &ready).await {
        return r;
    }
    let span = tracing::info_span!("s3", request_id = %request_id, method = %parts.method, path = %parts.uri.path());
    let mut rec = Record::new(&request_id, gw.opts.access_log.clone());
    let body = rec.count_in(body);
    let source = rec.source.clone();
    let serving = serve_s3(&gw, &parts, query, body, &mut rec).instrument(span.clone());
    let result = read_source::scope(source, serving).await;
    let op = rec.op;
    let (mut resp, failed) = match result {
        Ok(r) => (r, false),
        Err(e) => (error_response(e, &parts, &span, &request_id), true),
    };
    if parts.headers.contains_key("origin") && parts.method != Method::OPTIONS {
        let host = parts.headers.get("host").and_then(|h| h.to_str().ok());
        if let Ok((Some(bucket), _)) = split_target(parts.uri.path(), host, gw.opts.domain.as_deref()) {
            cors::decorate(&gw, &bucket, &parts.method, &parts.headers, &mut resp).await;
        }
    }
    if must_close(&parts.headers, failed) {
        resp.headers_mut().insert("connection", HeaderValue::from_static("close"));
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    h.insert("server", HeaderValue::from_static("Strata"));
    let status = resp.status().as_u16().to_string();
    metrics::counter!("strata_gateway_requests_total", "op" => op, "status" => status).increment(1);
    metrics::histogram!("strata_gateway_request_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    let (code, ms) = (resp.status().as_u16(), started.elapsed().as_millis() as u64);
    if code >= 500 {
        let what = format!("{op} {} answered {code} (request id {request_id})", parts.uri.path());
        strata_common::recent_errors::record("request", what);
    }
    if rec.log.is_none() {
        if started.elapsed() >= SLOW {
            tracing::info!(parent: &span, op, status = code, ms, "done (slow)");
        } else {
            tracing::debug!(parent: &span, op, status = code, ms, "done");
        }
    }
    rec.status = code;
    rec.count_out(resp)
}

fn op_name(e: &Endpoint) -> &'static str {
    match e {
        Endpoint::ListBuckets => "ListBuckets",
        Endpoint::CreateBucket => "CreateBucket",
        Endpoint::DeleteBucket => "DeleteBucket",
        Endpoint::HeadBucket => "HeadBucket",
        Endpoint::GetBucketLocation => "GetBucketLocation",
        Endpoint::GetBucketVersioning => "GetBucketVersioning",
        Endpoint::ListObjects => "ListObjects",
        Endpoint::ListObjectsV2 => "ListObjectsV2",
        Endpoint::ListMultipartUploads => "ListMultipartUploads",
        Endpoint::DeleteObjects => "DeleteObjects",
        Endpoint::GetObject => "GetObject",
        Endpoint::HeadObject => "HeadObject",
        Endpoint::PutObject => "PutObject",
        Endpoint::DeleteObject => "DeleteObject",
        Endpoint::CreateMultipartUpload => "CreateMultipartUpload",
        Endpoint::UploadPart { .. } => "UploadPart",
        Endpoint::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
        Endpoint::AbortMultipartUpload { .. } => "AbortMultipartUpload",
        Endpoint::ListParts { .. } => "ListParts",
        Endpoint::CopyObject => "CopyObject",
        Endpoint::UploadPartCopy { .. } => "UploadPartCopy",
        Endpoint::GetObjectTagging => "GetObjectTagging",
        Endpoint::PutObjectTagging => "PutObjectTagging",
        Endpoint::DeleteObjectTagging => "DeleteObjectTagging",
        Endpoint::GetBucketTagging => "GetBucketTagging",
        Endpoint::PutBucketTagging => "PutBucketTagging",
        Endpoint::DeleteBucketTagging => "DeleteBucketTagging",
        Endpoint::GetBucketConfig(c) => config::op_name(*c),
        Endpoint::GetObjectAcl => "GetObjectAcl",
        Endpoint::GetObjectAttributes => "GetObjectAttributes",
        Endpoint::PutBucketCors => "PutBucketCors",
        Endpoint::GetBucketCors => "GetBucketCors",
        Endpoint::DeleteBucketCors => "DeleteBucketCors",
        Endpoint::PutObjectAcl => "PutObjectAcl",
        Endpoint::GetBucketAcl => "GetBucketAcl",
        Endpoint::PutBucketAcl => "PutBucketAcl",
        Endpoint::GetPublicAccessBlock => "GetPublicAccessBlock",
        Endpoint::PutPublicAccessBlock => "PutPublicAccessBlock",
        Endpoint::DeletePublicAccessBlock => "DeletePublicAccessBlock",
        Endpoint::GetBucketPolicy => "GetBucketPolicy",
        Endpoint::PutBucketPolicy => "PutBucketPolicy",
        Endpoint::DeleteBucketPolicy => "DeleteBucketPolicy",
        Endpoint::GetBucketPolicyStatus => "GetBucketPolicyStatus",
        Endpoint::CorsPreflight => "CorsPreflight",
    }
}

pub fn router(gw: Gateway, ready: Readiness) -> Router {
    Router::new().fallback(handle).with_state((gw, ready))
}

/// Serves S3 on `listener` until `shutdown`, then drains open requests.
pub async fn run(gw: Gateway, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let ready = Readiness::default();
    ready.set(true);
    tracing::info!(addr = %listener.local_addr()?, "gateway serving S3");
    let limits = gw.opts.limits.clone();
    serve_with(listener, router(gw, ready), shutdown, Duration::from_secs(30), limits).await
}
