//! The data server: gateways read and write object bytes here over plain HTTP, with streaming
//! bodies; `/healthz`, `/readyz`, `/metrics` beside it.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::{StreamExt, TryStreamExt};
use strata_common::api::*;
use strata_common::master_client::SECRET_HEADER;
use strata_common::ops::{Readiness, ops_router};
use strata_common::worker_client::{REQUEST_HEADER, WireError, decode_request};
use strata_common::{Error, ErrorKind, ids};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Worker;

struct ApiError(Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.kind {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::AccessDenied => StatusCode::FORBIDDEN,
            ErrorKind::NoSuchKey | ErrorKind::NoSuchBucket => StatusCode::NOT_FOUND,
            ErrorKind::UfsChanged => StatusCode::CONFLICT,
            ErrorKind::Unavailable | ErrorKind::StorageFull | ErrorKind::StorageReadOnly => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(WireError { kind: self.0.kind.as_str().into(), message: self.0.message })).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(e)
    }
}

fn request<T: serde::de::DeserializeOwned>(headers: &HeaderMap) -> Result<T, ApiError> {
    let h = headers
        .get(REQUEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::invalid(format!("missing {REQUEST_HEADER} header")))?;
    Ok(decode_request(h)?)
}

async fn read(State(w): State<Worker>, headers: HeaderMap) -> Result<Response, ApiError> {
    let req: ReadRequest = request(&headers)?;
    let len = req.len;
    let stream = w.read(req).await?;
    let body = Body::from_stream(stream.map_err(|e| std::io::Error::other(e.to_string())));
    Ok(([(axum::http::header::CONTENT_LENGTH, len.to_string())], body).into_response())
}

async fn write(State(w): State<Worker>, headers: HeaderMap, body: Body) -> Result<Json<WriteResult>, ApiError> {
    let req: WriteRequest = request(&headers)?;
    let stream =
        body.into_data_stream().map_err(|e| Error::unavailable(format!("the gateway's body broke off: {e}"))).boxed();
    Ok(Json(w.write(req, stream).await?))
}

async fn compose(State(w): State<Worker>, Json(req): Json<ComposeRequest>) -> Result<Json<WriteResult>, ApiError> {
    Ok(Json(w.compose(req).await?))
}

async fn delete(State(w): State<Worker>, Json(locs): Json<Vec<UfsLocation>>) -> Result<StatusCode, ApiError> {
    w.delete(locs).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn load(State(w): State<Worker>, Json(req): Json<ReadRequest>) -> Result<Json<LoadResult>, ApiError> {
    Ok(Json(w.load(req).await?))
}

async fn free(State(w): State<Worker>, Json(versions): Json<Vec<u64>>) -> Result<Json<u64>, ApiError> {
    Ok(Json(w.free(versions).await?))
}

async fn check_secret(State(secret): State<String>, req: Request, next: Next) -> Response {
    let given = req.headers().get(SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ids::secret_eq(given, &secret) {
        return ApiError(Error::new(ErrorKind::AccessDenied, "missing or wrong cluster secret")).into_response();
    }
    next.run(req).await
}

pub fn router(worker: Worker, secret: String, ready: Readiness) -> Router {
    api_router(worker, secret).merge(ops_router(ready))
}

/// The data API alone, behind the cluster secret (`strata local` serves it on its admin port,
/// for `strata admin load` and `free`).
pub fn api_router(worker: Worker, secret: String) -> Router {
    Router::new()
        .route("/v1/read", get(read))
        .route("/v1/write", put(write))
        .route("/v1/compose", post(compose))
        .route("/v1/delete", post(delete))
        .route("/v1/load", post(load))
        .route("/v1/free", post(free))
        .with_state(worker)
        .layer(middleware::from_fn_with_state(secret, check_secret))
}

pub async fn run(
    worker: Worker,
    secret: String,
    listener: TcpListener,
    tls: Option<strata_common::tls::ServerTls>,
    ready: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "worker serving");
    let limits = strata_common::server::Limits { tls, ..Default::default() };
    strata_common::server::serve_with(
        listener,
        router(worker, secret, ready),
        shutdown,
        Duration::from_secs(10),
        limits,
    )
    .await
}
