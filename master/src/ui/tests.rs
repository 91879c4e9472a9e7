use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use strata_common::api::MasterApi;
use strata_common::proto::{HeartbeatRequest, TierUsage, WorkerInfo};
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
        .register_worker(WorkerInfo { address: "http://127.0.0.1:1".into(), tiers: tiers(), ..Default::default() })
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
    let root = RootCredentials { access_key: "a".into(), secret_key: "s".into() };
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
    for path in ["/ui", "/ui/workers", "/ui/buckets", "/ui/jobs"] {
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
    let (_, _, buckets) = get(&d, "/ui/buckets", basic("a", "s")).await;
    assert!(buckets.contains(r#"data-bucket="data""#) && buckets.contains("CACHE_THROUGH"), "{buckets}");
}

#[test]
fn html_is_escaped() {
    assert_eq!(html::esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    assert_eq!(html::bytes(1536), "1.5 KiB");
}
