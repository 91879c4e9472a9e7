//! What every process serves besides its API: `/healthz`, `/readyz`, `/metrics`; and the
//! server loop with graceful shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::server::{Limits, serve_with};

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            const BUCKETS: [f64; 14] =
                [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
            // RPCs include `strata admin sync`, which lists a whole under store: minutes, not seconds.
            let rpc = [&BUCKETS[..], &[120.0, 600.0, 3600.0]].concat();
            let builder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Full("strata_master_rpc_seconds".into()), &rpc)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            let upkeep = handle.clone();
            // The histogram buffers must be drained now and then; without a runtime, skip it.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        upkeep.run_upkeep();
                    }
                });
            }
            Some(handle)
        })
        .clone()
}

/// Whether a process is ready to serve (e.g. a worker registered, a master opened its store).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release)
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Distinct bucket label values a process gives its metrics at most; later buckets are
/// counted under [`OTHER_BUCKETS`].
pub const BUCKET_LABELS: usize = 100;
pub const OTHER_BUCKETS: &str = "other";

/// The `bucket` label for `bucket`: its name while fewer than [`BUCKET_LABELS`] are in use,
/// else "other". `admit`: whether an unseen name may take a place (say, only once a request
/// on it succeeded, so that names of buckets that do not exist never do).
pub fn bucket_label(bucket: &str, admit: bool) -> String {
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.contains(bucket) {
        return bucket.to_string();
    }
    if admit && seen.len() < BUCKET_LABELS {
        seen.insert(bucket.to_string());
        return bucket.to_string();
    }
    OTHER_BUCKETS.to_string()
}

pub async fn metrics_text() -> String {
    metrics_handle().map(|h| h.render()).unwrap_or_default()
}

pub fn ops_router(ready: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.get() {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route("/metrics", get(metrics_text))
}

/// Serves `router` until `shutdown` fires, then drains open requests for up to `drain`, with
/// the default [`Limits`] (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, drain, Limits::default()).await
}

pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e} (is another process using it? choose another with --listen)"),
        )
    })
}

#[cfg(test)]
mod bucket_label_tests {
    use super::*;

    #[test]
    fn bucket_labels_are_capped() {
        assert_eq!(bucket_label("never-admitted-bucket", false), OTHER_BUCKETS);
        let names: Vec<String> = (0..BUCKET_LABELS + 10).map(|i| format!("cap-{i}")).collect();
        let labels: Vec<String> = names.iter().map(|n| bucket_label(n, true)).collect();
        assert!(labels.iter().filter(|l| *l != OTHER_BUCKETS).count() <= BUCKET_LABELS);
        assert_eq!(labels.last().map(String::as_str), Some(OTHER_BUCKETS));
        assert_eq!(bucket_label("cap-0", false), "cap-0", "an admitted name keeps its label");
    }
}
