use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use strata_common::api::MasterApi;
use strata_common::proto::{HeartbeatRequest, SyncProgress, TierUsage, WorkerInfo};
use tower::ServiceExt;

use super::*;

fn tiers() -> Vec<TierUsage> {
    vec![
        TierUsage {
            medium: "MEM".into(),
            capacity_bytes: 4 << 20,
            used_bytes: 1 << 20,
            pages: 1,
            hits: 3,
            hit_bytes: 3 << 20,
            ..Default::default()
        },
        TierUsage { medium: "SSD".into(), capacity_bytes: 8 << 20, used_bytes: 0, ..Default::default() },
    ]
}

async fn dashboard(dir: &std::path::Path) -> Arc<Dashboard> {
    let master = Arc::new(crate::master::test_master(dir));
    let w = master
        .register_worker(WorkerInfo {
            address: "http://127.0.0.1:1".into(),
            s3_address: "http://127.0.0.1:2".into(),
            tiers: tiers(),
            ..Default::default()
        })
        .await
        .unwrap();
    let hb = HeartbeatRequest {
        worker_id: w.id,
        tiers: tiers(),
        cache_misses: 1,
        fill_bytes: 1 << 20,
        ..Default::default()
    };
    master.heartbeat(hb).await.unwrap();
    master.create_bucket("data").await.unwrap();
    let root = RootCredentials::new("a".into(), "s".into());
    Dashboard::new(master, root, Some("tok".into()))
}

async fn get(d: &Arc<Dashboard>, path: &str, auth: Option<(&str, String)>) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::get(path);
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    let resp = router(d.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn basic(user: &str, pass: &str) -> Option<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    Some(("authorization", format!("Basic {b64}")))
}

#[tokio::test]
async fn pages_need_the_root_keys_or_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dashboard(dir.path()).await;
    for path in ["/ui", "/ui/workers", "/ui/buckets", "/ui/jobs", "/ui/errors"] {
        let (status, headers, _) = get(&d, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(headers.get(header::WWW_AUTHENTICATE).is_some());
        assert_eq!(get(&d, path, basic("a", "wrong")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(get(&d, path, basic("a", "s")).await.0, StatusCode::OK, "{path}");
        assert_eq!(get(&d, path, Some(("authorization", "Bearer tok".into()))).await.0, StatusCode::OK);
        assert_eq!(get(&d, path, Some(("authorization", "Bearer nope".into()))).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(get(&d, "/ui?token=nope", None).await.0, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = get(&d, "/ui/jobs?token=tok", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/jobs");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_eq!(get(&d, "/ui/jobs", Some(("cookie", cookie))).await.0, StatusCode::OK);
    // Without a configured token, a token is no way in.
    let open = Dashboard::new(d.master.clone(), d.root.clone(), None);
    assert_eq!(get(&open, "/ui", Some(("authorization", "Bearer ".into()))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&open, "/ui", Some(("cookie", "strata_dashboard=".into()))).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_show_tiers_hit_ratio_and_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dashboard(dir.path()).await;
    let (_, _, overview) = get(&d, "/ui", basic("a", "s")).await;
    assert!(overview.contains(r#"id="health">healthy"#), "{overview}");
    // 3 hits, 1 miss.
    assert!(overview.contains("75.0%"), "{overview}");
    let (_, _, workers) = get(&d, "/ui/workers", basic("a", "s")).await;
    assert!(workers.contains(r#"data-tier="MEM" data-used="1048576" data-quota="4194304""#), "{workers}");
    assert!(workers.contains(r#"<span class="badge live">live</span>"#));
    assert!(workers.contains("<br>S3 <code>http://127.0.0.1:2</code>"), "kept through the heartbeat: {workers}");
    let (_, _, buckets) = get(&d, "/ui/buckets", basic("a", "s")).await;
    assert!(buckets.contains(r#"data-bucket="data""#) && buckets.contains("CACHE_THROUGH"), "{buckets}");
}

#[test]
fn running_syncs_show_their_progress() {
    let p = SyncProgress { listed: 120_000, changes: 118_000, elapsed_ms: 42_500, done: false, waiting: false };
    let queued = SyncProgress { elapsed_ms: 3_000, waiting: true, ..Default::default() };
    let mut m = String::new();
    super::pages::syncs(&mut m, &[("lake".into(), "<2026>/".into(), p), ("sea".into(), "".into(), queued)]);
    assert!(m.contains(r#"<td>lake</td><td><code>&lt;2026&gt;/</code></td><td>listing</td><td class="num">120000</td><td class="num">118000</td><td class="num">42 s</td>"#), "{m}");
    assert!(
        m.contains(r#"<td>sea</td><td><code></code></td><td><span class="badge warn">waiting for a turn</span></td>"#),
        "{m}"
    );
}

#[test]
fn html_is_escaped() {
    assert_eq!(html::esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    assert_eq!(html::bytes(1536), "1.5 KiB");
}

#[test]
fn charts_draw_a_line_once_there_are_two_points() {
    let pct = |v: f64| format!("{v}");
    assert!(html::chart("c", "t", &[(0, 0.5)], 1.0, pct).contains("Collecting samples"));
    let svg = html::chart("c", "t", &[(0, 0.0), (60_000, 1.0), (120_000, 0.5)], 1.0, pct);
    assert!(svg.contains(r#"<polyline points="0.0,120.0 300.0,0.0 600.0,60.0 "/>"#), "{svg}");
    assert!(svg.contains("last 2 min"), "{svg}");
}

#[test]
fn the_hit_ratio_counts_only_what_happened_between_samples() {
    let a = Sample { at_ms: 0, hits: 10, misses: 10, ..Default::default() };
    let b = Sample { at_ms: 10_000, hits: 19, misses: 11, ..Default::default() };
    assert_eq!(b.hit_ratio_since(&a), Some(0.9));
    assert_eq!(a.hit_ratio_since(&a), None);
    // A restarted worker's counters start again: no negative deltas.
    assert_eq!(a.hit_ratio_since(&b), None);
}

#[tokio::test]
async fn mount_secrets_are_masked_on_the_buckets_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dashboard(dir.path()).await;
    let mut mount = strata_common::proto::Mount { uri: "memory:///lake".into(), ..Default::default() };
    mount.options.insert("secret_access_key".into(), "supersecretvalue1234".into());
    mount.options.insert("region".into(), "eu-west-1".into());
    mount.sync_interval_ms = Some(30_000);
    d.master.mount("lake", mount).await.unwrap();
    let (_, _, page) = get(&d, "/ui/buckets", basic("a", "s")).await;
    assert!(!page.contains("supersecretvalue"), "{page}");
    assert!(page.contains("secret_access_key=****1234") && page.contains("region=eu-west-1"), "{page}");
    assert!(page.contains("every 30.0 s"), "{page}");
}

#[tokio::test]
async fn in_front_of_s3_the_dashboard_leaves_virtual_hosted_keys_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dashboard(dir.path()).await;
    let s3 = Router::new().fallback(|| async { "s3" });
    let both = in_front_of(d, s3, Some("s3.Example.com".into()));
    let call = |host: &str, path: &str| {
        let req = Request::get(path).header("host", host).body(Body::empty()).unwrap();
        let both = both.clone();
        async move {
            let resp = both.oneshot(req).await.unwrap();
            let status = resp.status();
            (
                status,
                String::from_utf8_lossy(&axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()).into_owned(),
            )
        }
    };
    assert_eq!(call("127.0.0.1:9000", "/ui").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call("s3.example.com", "/ui/workers").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call("bucket.s3.example.com:9000", "/ui").await.1, "s3");
    assert_eq!(call("127.0.0.1:9000", "/uix").await.1, "s3");
    assert_eq!(call("127.0.0.1:9000", "/bucket/ui").await.1, "s3");
}

#[tokio::test]
async fn a_lost_worker_is_one_error_event_and_loads_show_on_the_jobs_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dashboard(dir.path()).await;
    let lost = WorkerInfo { id: 41, address: "http://10.9.8.7:1".into(), last_heartbeat_ms: 1, ..Default::default() };
    d.note_lost(std::slice::from_ref(&lost), 1000);
    d.note_lost(std::slice::from_ref(&lost), 1000);
    let events = strata_common::recent_errors::recent();
    assert_eq!(events.iter().filter(|e| e.message.contains("10.9.8.7")).count(), 1, "{events:?}");
    let (_, _, errors) = get(&d, "/ui/errors", basic("a", "s")).await;
    assert!(errors.contains(r#"data-kind="worker_lost""#) && errors.contains("worker #41 at http://10.9.8.7:1 lost"));

    let w = d.master.report().await.workers[0].id;
    let hb =
        HeartbeatRequest { worker_id: w, loads_running: 2, loads_done: 5, load_bytes: 3 << 20, ..Default::default() };
    d.master.heartbeat(hb).await.unwrap();
    let (_, _, jobs) = get(&d, "/ui/jobs", basic("a", "s")).await;
    assert!(
        jobs.contains(r#"<td class="num running">2</td><td class="num done">5</td><td class="num">3.0 MiB</td>"#),
        "{jobs}"
    );
    assert!(jobs.contains(r#"id="ttl-passes""#) && jobs.contains("none yet"), "{jobs}");
    assert!(jobs.contains("No sync running."), "{jobs}");
}
