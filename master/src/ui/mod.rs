//! The web dashboard at `/ui`: read-only pages about the cluster (overview, workers, buckets
//! and mounts, jobs, recent errors), rendered on the server from what the master knows, with a little
//! JavaScript that refreshes them. Behind the root S3 keys (HTTP basic auth) or a dashboard
//! token; never open. Assets are compiled into the binary.
//!
//! - `mod.rs`: the router, authentication, the history sampler (and the master's gauges)
//! - `pages.rs`: one function per page; `html.rs`: escaping, bars, charts, the layout

mod html;
mod pages;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use strata_common::api::MasterApi;
use strata_common::ids;
use strata_common::proto::WorkerInfo;
use tokio_util::sync::CancellationToken;

use crate::credentials::RootCredentials;
use crate::master::Master;

/// The cookie a dashboard token is kept in after `?token=`.
const COOKIE: &str = "strata_dashboard";
/// How often the sampler records the cluster's cache counters (and sets the master's gauges).
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: one hour.
const SAMPLES: usize = 360;

/// The cache counters of every worker the master knows, summed, at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    pub at_ms: i64,
    pub hits: u64,
    pub misses: u64,
    pub hit_bytes: u64,
    pub fill_bytes: u64,
}

impl Sample {
    pub(crate) fn of(workers: &[WorkerInfo], at_ms: i64) -> Sample {
        let mut s = Sample { at_ms, ..Default::default() };
        for w in workers {
            s.misses += w.cache_misses;
            s.fill_bytes += w.fill_bytes;
            for t in &w.tiers {
                s.hits += t.hits;
                s.hit_bytes += t.hit_bytes;
            }
        }
        s
    }

    /// Hits over lookups between `earlier` and this sample (counters of a restarted worker
    /// start again from zero: never negative).
    pub(crate) fn hit_ratio_since(&self, earlier: &Sample) -> Option<f64> {
        let hits = self.hits.saturating_sub(earlier.hits);
        let all = hits + self.misses.saturating_sub(earlier.misses);
        (all > 0).then(|| hits as f64 / all as f64)
    }
}

pub struct Dashboard {
    master: Arc<Master>,
    root: RootCredentials,
    token: Option<String>,
    history: Mutex<VecDeque<Sample>>,
    /// Workers seen lost, so that each loss is one error event.
    lost: Mutex<std::collections::HashSet<u64>>,
}

impl Dashboard {
    /// `token`: a dashboard token accepted besides the root keys (none: the root keys only).
    pub fn new(master: Arc<Master>, root: RootCredentials, token: Option<String>) -> Arc<Dashboard> {
        let token = token.filter(|t| !t.is_empty());
        Arc::new(Dashboard { master, root, token, history: Mutex::new(VecDeque::new()), lost: Default::default() })
    }

    pub(crate) fn history(&self) -> Vec<Sample> {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        if let Some(b64) = auth.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap_or_default();
            let text = String::from_utf8_lossy(&decoded);
            if let Some((user, pass)) = text.split_once(':') {
                return ids::secret_eq(user, &self.root.access_key) & ids::secret_eq(pass, &self.root.secret_key);
            }
            return false;
        }
        let Some(token) = &self.token else { return false };
        if let Some(t) = auth.strip_prefix("Bearer ") {
            return ids::secret_eq(t.trim(), token);
        }
        cookie(headers, COOKIE).is_some_and(|c| ids::secret_eq(&c, token))
    }

    /// Records a sample every [`SAMPLE_EVERY`] and sets the master's gauges, until `shutdown`.
    pub async fn sample_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            self.sample().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
        }
    }

    async fn sample(&self) {
        let report = self.master.report().await;
        let cutoff = report.now_ms - report.worker_timeout_ms;
        let live = report.workers.iter().filter(|w| w.last_heartbeat_ms >= cutoff).count();
        let primary = self.master.ha().is_primary();
        metrics::gauge!("strata_master_is_primary").set(if primary { 1.0 } else { 0.0 });
        metrics::gauge!("strata_master_epoch").set(report.epoch as f64);
        metrics::gauge!("strata_master_workers", "state" => "live").set(live as f64);
        metrics::gauge!("strata_master_workers", "state" => "lost").set((report.workers.len() - live) as f64);
        self.note_lost(&report.workers, cutoff);
        if primary {
            // ASYNC_THROUGH writes acknowledged but not yet in their under store.
            let mut backlog = 0;
            for w in &report.workers {
                backlog += self.master.journal(w.id).await.map(|e| e.iter().filter(|e| e.persist).count()).unwrap_or(0);
            }
            metrics::gauge!("strata_master_persist_backlog").set(backlog as f64);
        }
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.push_back(Sample::of(&report.workers, report.now_ms));
        while h.len() > SAMPLES {
            h.pop_front();
        }
    }
}

impl Dashboard {
    /// A worker that went silent since the last sample is an error event (once per loss).
    fn note_lost(&self, workers: &[WorkerInfo], cutoff: i64) {
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        for w in workers {
            if w.last_heartbeat_ms >= cutoff || w.address == strata_common::api::IN_PROCESS {
                lost.remove(&w.id);
            } else if lost.insert(w.id) {
                let silent = (ids::now_ms() - w.last_heartbeat_ms) as f64 / 1000.0;
                let what = format!("worker #{} at {} lost: no heartbeat for {silent:.0} s", w.id, w.address);
                strata_common::recent_errors::record("worker_lost", what);
            }
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn unauthorized() -> Response {
    let body = "<!doctype html><title>Strata</title><p>The Strata dashboard needs the cluster's root S3 keys \
                (access key as user name, secret key as password) or its dashboard token (<code>/ui?token=...</code>).";
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic realm=\"Strata dashboard\", charset=\"UTF-8\""),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        body,
    )
        .into_response()
}

#[derive(Clone, Copy)]
enum Page {
    Overview,
    Workers,
    Buckets,
    Jobs,
    Errors,
}

type Params = Query<std::collections::HashMap<String, String>>;

/// Checks the caller, then renders `page`; a right `?token=` becomes a cookie.
async fn serve(d: Arc<Dashboard>, page: Page, path: &'static str, headers: HeaderMap, q: Params) -> Response {
    if let (Some(given), Some(token)) = (q.get("token"), &d.token) {
        if !ids::secret_eq(given, token) {
            return unauthorized();
        }
        let set = format!("{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict");
        return (StatusCode::SEE_OTHER, [(header::LOCATION, path.to_string()), (header::SET_COOKIE, set)])
            .into_response();
    }
    if !d.authorized(&headers) {
        return unauthorized();
    }
    let body = match page {
        Page::Overview => pages::overview(&d).await,
        Page::Workers => pages::workers(&d).await,
        Page::Buckets => pages::buckets(&d).await,
        Page::Jobs => pages::jobs(&d).await,
        Page::Errors => pages::errors(&d).await,
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

macro_rules! page {
    ($page:expr, $path:expr) => {
        get(|State(d): State<Arc<Dashboard>>, headers: HeaderMap, q: Params| serve(d, $page, $path, headers, q))
    };
}

/// The dashboard's routes, all under `/ui`.
pub fn router(d: Arc<Dashboard>) -> Router {
    let asset = |body: &'static str, kind: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=300")], body) })
    };
    Router::new()
        .route("/ui", page!(Page::Overview, "/ui"))
        .route("/ui/", page!(Page::Overview, "/ui"))
        .route("/ui/workers", page!(Page::Workers, "/ui/workers"))
        .route("/ui/buckets", page!(Page::Buckets, "/ui/buckets"))
        .route("/ui/jobs", page!(Page::Jobs, "/ui/jobs"))
        .route("/ui/errors", page!(Page::Errors, "/ui/errors"))
        .route("/ui/assets/app.js", asset(include_str!("app.js"), "text/javascript; charset=utf-8"))
        .route("/ui/assets/style.css", asset(include_str!("style.css"), "text/css; charset=utf-8"))
        .with_state(d)
}

/// The dashboard in front of `s3` on one port (`strata local`): `/ui...` is the dashboard, unless
/// the request is to a virtual-hosted bucket (`BUCKET.<domain>`), where `/ui` is a key.
pub fn in_front_of(d: Arc<Dashboard>, s3: Router, domain: Option<String>) -> Router {
    use tower::ServiceExt;
    let ui = router(d);
    let suffix = domain.map(|d| format!(".{}", d.to_ascii_lowercase()));
    Router::new().fallback_service(tower::service_fn(move |req: axum::extract::Request| {
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_ascii_lowercase();
        let vhost = suffix.as_ref().is_some_and(|s| host.ends_with(s.as_str()));
        let path = req.uri().path();
        let to_ui = !vhost && (path == "/ui" || path.starts_with("/ui/"));
        let target = if to_ui { ui.clone() } else { s3.clone() };
        target.oneshot(req)
    }))
}

#[cfg(test)]
mod tests;
