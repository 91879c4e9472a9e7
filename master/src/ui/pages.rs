//! One function per dashboard page, each rendering what the master knows now.

use std::fmt::Write;

use strata_common::api::MasterApi;
use strata_common::proto::{Bucket, ClusterReport, ListObjectsRequest, SyncProgress, WorkerInfo};

use super::html::{bar, bytes, chart, esc, layout, percent, stat};
use super::{Dashboard, Sample};

/// Objects counted per bucket on the buckets page; past it the count shows as "N+".
const COUNT_LIMIT: usize = 10_000;

fn is_live(w: &WorkerInfo, r: &ClusterReport) -> bool {
    w.last_heartbeat_ms >= r.now_ms - r.worker_timeout_ms
}

fn ago(ms: i64, now_ms: i64) -> String {
    let s = (now_ms - ms).max(0) as f64 / 1000.0;
    if s < 120.0 { format!("{s:.1} s ago") } else { format!("{:.0} min ago", s / 60.0) }
}

/// The hit ratio over the last hour: from the oldest sample kept to now (or since start).
fn hour_ratio(history: &[Sample], now: &Sample) -> Option<f64> {
    let hour_ago = now.at_ms - 3_600_000;
    let from = history.iter().find(|s| s.at_ms >= hour_ago).copied().unwrap_or_default();
    now.hit_ratio_since(&from).or_else(|| now.hit_ratio_since(&Sample::default()))
}

pub(super) async fn overview(d: &Dashboard) -> String {
    let r = d.master.report().await;
    let live = r.workers.iter().filter(|w| is_live(w, &r)).count();
    let lost = r.workers.len() - live;
    let now = Sample::of(&r.workers, r.now_ms);
    let history = d.history();
    let (used, quota) = r.workers.iter().filter(|w| is_live(w, &r)).fold((0, 0), |(u, q), w| {
        (
            u + w.tiers.iter().map(|t| t.used_bytes).sum::<u64>(),
            q + w.tiers.iter().map(|t| t.capacity_bytes).sum::<u64>(),
        )
    });
    let (health, class) = match (r.primary.is_empty(), live, lost) {
        (true, _, _) => ("no primary", "bad"),
        (false, 0, _) => ("no live worker", "bad"),
        (false, _, 0) => ("healthy", "ok"),
        _ => ("degraded: a worker is lost", "warn"),
    };
    let standbys: Vec<String> = r.masters.iter().filter(|m| !m.primary).map(|m| esc(&m.address)).collect();
    let mut m = String::from("<h1>Overview</h1>");
    let _ = write!(
        m,
        r#"<p>Health: <span class="badge {class}" id="health">{health}</span> &nbsp; Primary: <code id="primary">{}</code> &nbsp; Standbys: {} &nbsp; Epoch: <b id="epoch">{}</b> &nbsp; Metadata store: <b id="store">{}</b></p>"#,
        esc(if r.primary.is_empty() { "none" } else { &r.primary }),
        if standbys.is_empty() { "none".to_string() } else { standbys.join(", ") },
        r.epoch,
        esc(&r.store),
    );
    m.push_str(r#"<div class="stats">"#);
    m.push_str(&stat("hit-ratio", "Hit ratio (last hour)", &percent(hour_ratio(&history, &now))));
    m.push_str(&stat("hits", "Page hits", &now.hits.to_string()));
    m.push_str(&stat("misses", "Page misses", &now.misses.to_string()));
    m.push_str(&stat("served-cache", "Served from cache", &bytes(now.hit_bytes)));
    m.push_str(&stat("filled-ufs", "Read from under stores", &bytes(now.fill_bytes)));
    m.push_str(&stat("workers", "Workers live / lost", &format!("{live} / {lost}")));
    m.push_str(&stat("cache-used", "Cache used", &format!("{} of {}", bytes(used), bytes(quota))));
    m.push_str("</div>");

    // Rates and ratios between consecutive samples, then up to now.
    let mut points: Vec<Sample> = history.clone();
    if points.last().is_none_or(|s| s.at_ms < now.at_ms) {
        points.push(now);
    }
    let mut ratio = Vec::new();
    let mut served = Vec::new();
    let mut filled = Vec::new();
    for w in points.windows(2) {
        let secs = ((w[1].at_ms - w[0].at_ms) as f64 / 1000.0).max(0.001);
        // An interval without reads keeps the last ratio (a flat line while idle).
        if let Some(x) = w[1].hit_ratio_since(&w[0]).or(ratio.last().map(|p: &(i64, f64)| p.1)) {
            ratio.push((w[1].at_ms, x));
        }
        served.push((w[1].at_ms, w[1].hit_bytes.saturating_sub(w[0].hit_bytes) as f64 / secs));
        filled.push((w[1].at_ms, w[1].fill_bytes.saturating_sub(w[0].fill_bytes) as f64 / secs));
    }
    let peak = served.iter().chain(&filled).map(|p| p.1).fold(0.0, f64::max);
    let rate = |v: f64| format!("{}/s", bytes(v as u64));
    m.push_str(r#"<div class="charts">"#);
    m.push_str(&chart("chart-hit-ratio", "Hit ratio", &ratio, 1.0, |v| format!("{:.0}%", v * 100.0)));
    m.push_str(&chart("chart-served", "Served from cache", &served, peak, rate));
    m.push_str(&chart("chart-filled", "Read from under stores", &filled, peak, rate));
    m.push_str("</div>");
    layout("Overview", "Overview", &m)
}

pub(super) async fn workers(d: &Dashboard) -> String {
    let r = d.master.report().await;
    let mut m = String::from("<h1>Workers</h1>");
    if r.workers.is_empty() {
        m.push_str(r#"<p class="muted">No worker has registered with this master.</p>"#);
        return layout("Workers", "Workers", &m);
    }
    m.push_str(r#"<table id="workers"><tr><th>Worker</th><th>State</th><th>Last heartbeat</th><th>Tiers (used / quota)</th><th class="num">Pages</th><th class="num">Hit ratio</th><th class="num">Evictions</th></tr>"#);
    for w in &r.workers {
        let state = if is_live(w, &r) { "live" } else { "lost" };
        let tiers: String = w.tiers.iter().map(|t| bar(&t.medium, t.used_bytes, t.capacity_bytes)).collect();
        let hits: u64 = w.tiers.iter().map(|t| t.hits).sum();
        let ratio = (hits + w.cache_misses > 0).then(|| hits as f64 / (hits + w.cache_misses) as f64);
        let s3 = match w.s3_address.as_str() {
            "" => String::new(),
            a => format!("<br>S3 <code>{}</code>", esc(a)),
        };
        let _ = write!(
            m,
            r#"<tr class="worker" data-id="{id}"><td>#{id}<br><code>{addr}</code>{s3}</td><td><span class="badge {state}">{state}</span></td><td>{hb}</td><td>{tiers}</td><td class="num">{pages}</td><td class="num">{ratio}</td><td class="num">{ev}</td></tr>"#,
            id = w.id,
            addr = esc(&w.address),
            hb = ago(w.last_heartbeat_ms, r.now_ms),
            pages = w.tiers.iter().map(|t| t.pages).sum::<u64>(),
            ratio = percent(ratio),
            ev = w.tiers.iter().map(|t| t.evictions).sum::<u64>(),
        );
    }
    m.push_str("</table>");
    layout("Workers", "Workers", &m)
}

/// Objects and bytes of a bucket, counted up to [`COUNT_LIMIT`] objects.
async fn usage(d: &Dashboard, bucket: &str) -> Result<(usize, u64, bool), String> {
    let (mut n, mut size, mut after) = (0usize, 0u64, String::new());
    loop {
        let req = ListObjectsRequest {
            bucket: bucket.to_string(),
            start_after: after.clone(),
            max_keys: 1000,
            ..Default::default()
        };
        let page = d.master.list_objects(req).await.map_err(|e| e.message)?;
        n += page.objects.len();
        size += page.objects.iter().map(|o| o.size).sum::<u64>();
        match page.objects.last() {
            Some(last) if page.truncated && n < COUNT_LIMIT => after = last.key.clone(),
            _ => return Ok((n, size, page.truncated)),
        }
    }
}

fn sync_interval(b: &Bucket) -> String {
    match b.mount.as_ref().and_then(|m| m.sync_interval_ms) {
        None => "never".into(),
        Some(0) => "on every miss".into(),
        Some(ms) => format!("every {:.1} s", ms as f64 / 1000.0),
    }
}

pub(super) async fn buckets(d: &Dashboard) -> String {
    let mut m = String::from("<h1>Buckets and mounts</h1>");
    let list = match d.master.list_mounts().await {
        Ok(l) => l,
        Err(e) => {
            let _ = write!(m, r#"<p class="badge bad">cannot list the buckets: {}</p>"#, esc(&e.message));
            return layout("Buckets", "Buckets", &m);
        }
    };
    let ttls = d.master.list_ttls().await.unwrap_or_default();
    m.push_str(r#"<table id="buckets"><tr><th>Bucket</th><th>Under store</th><th>Write type</th><th>Sync</th><th class="num">Objects</th><th class="num">Bytes</th><th>TTL rules</th></tr>"#);
    for b in &list {
        let mount = b.mount.clone().unwrap_or_default();
        let mut options: Vec<String> = mount.options.iter().map(|(k, v)| format!("{}={}", esc(k), esc(v))).collect();
        options.sort();
        let write_type = if mount.write_type.is_empty() { "CACHE_THROUGH" } else { &mount.write_type };
        let (objects, size) = match usage(d, &b.name).await {
            Ok((n, s, more)) => (format!("{n}{}", if more { "+" } else { "" }), bytes(s)),
            Err(e) => (format!(r#"<span title="{}">?</span>"#, esc(&e)), "?".into()),
        };
        let rules: Vec<String> = ttls
            .iter()
            .filter(|t| t.bucket == b.name)
            .map(|t| format!("{}* {} after {} s", esc(&t.prefix), esc(&t.action), t.ttl_ms / 1000))
            .collect();
        let _ = write!(
            m,
            r#"<tr class="bucket" data-bucket="{name}"><td><b>{name}</b>{ro}</td><td><code class="uri">{uri}</code><br><span class="muted">{opts}</span></td><td>{wt}</td><td>{sync}</td><td class="num objects">{objects}</td><td class="num">{size}</td><td>{rules}</td></tr>"#,
            name = esc(&b.name),
            ro = if mount.read_only { r#" <span class="badge warn">read-only</span>"# } else { "" },
            uri = esc(&mount.uri),
            opts = options.join(" "),
            wt = esc(write_type),
            sync = sync_interval(b),
            rules = if rules.is_empty() { "–".into() } else { rules.join("<br>") },
        );
    }
    m.push_str("</table>");
    if list.is_empty() {
        m.push_str(r#"<p class="muted">No bucket yet.</p>"#);
    }
    layout("Buckets", "Buckets", &m)
}

pub(super) async fn jobs(d: &Dashboard) -> String {
    let r = d.master.report().await;
    let mut m = String::from("<h1>Jobs</h1><h2>Async persist backlog</h2>");
    m.push_str(r#"<table id="persist"><tr><th>Worker</th><th class="num">Waiting to persist</th><th class="num">Cached only (MUST_CACHE)</th></tr>"#);
    for w in &r.workers {
        match d.master.journal(w.id).await {
            Ok(entries) => {
                let persist = entries.iter().filter(|e| e.persist).count();
                let _ = write!(
                    m,
                    r#"<tr><td>#{}</td><td class="num">{persist}</td><td class="num">{}</td></tr>"#,
                    w.id,
                    entries.len() - persist
                );
            }
            Err(e) => {
                let _ = write!(m, r#"<tr><td>#{}</td><td colspan="2">{}</td></tr>"#, w.id, esc(&e.message));
            }
        }
    }
    m.push_str("</table>");
    syncs(&mut m, &d.master.syncs_running());
    loads(&mut m, &r);
    ttl_passes(&mut m, d, r.now_ms);
    m.push_str("<h2>TTL rules</h2>");
    let ttls = d.master.list_ttls().await.unwrap_or_default();
    if ttls.is_empty() {
        m.push_str(r#"<p class="muted">No TTL rule.</p>"#);
    } else {
        m.push_str(
            r#"<table id="ttls"><tr><th>Bucket</th><th>Prefix</th><th>Action</th><th class="num">After</th></tr>"#,
        );
        for t in &ttls {
            let _ = write!(
                m,
                r#"<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class="num">{} s</td></tr>"#,
                esc(&t.bucket),
                esc(&t.prefix),
                esc(&t.action),
                t.ttl_ms / 1000
            );
        }
        m.push_str("</table>");
    }
    layout("Jobs", "Jobs", &m)
}

/// Syncs of mounts' listings with their under stores running now (`strata admin sync`).
pub(super) fn syncs(m: &mut String, running: &[(String, String, SyncProgress)]) {
    m.push_str("<h2>Syncs with under stores</h2>");
    if running.is_empty() {
        m.push_str(r#"<p class="muted" id="syncs">No sync running.</p>"#);
        return;
    }
    m.push_str(r#"<table id="syncs"><tr><th>Bucket</th><th>Prefix</th><th>State</th><th class="num">Keys listed</th><th class="num">Recorded or changed</th><th class="num">Running for</th></tr>"#);
    for (bucket, prefix, p) in running {
        let _ = write!(
            m,
            r#"<tr class="sync"><td>{}</td><td><code>{}</code></td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{} s</td></tr>"#,
            esc(bucket),
            esc(prefix),
            if p.waiting { r#"<span class="badge warn">waiting for a turn</span>"# } else { "listing" },
            p.listed,
            p.changes,
            p.elapsed_ms / 1000
        );
    }
    m.push_str("</table>");
}

/// Cache loads (`strata admin load`) per worker, as of its last heartbeat.
fn loads(m: &mut String, r: &ClusterReport) {
    m.push_str(r#"<h2>Cache loads</h2><table id="loads"><tr><th>Worker</th><th>State</th><th class="num">Blocks loading now</th><th class="num">Blocks loaded</th><th class="num">Bytes loaded</th></tr>"#);
    for w in &r.workers {
        let state = if w.loads_running > 0 { r#"<span class="badge warn">loading</span>"# } else { "idle" };
        let _ = write!(
            m,
            r#"<tr class="load" data-worker="{}"><td>#{}</td><td>{state}</td><td class="num running">{}</td><td class="num done">{}</td><td class="num">{}</td></tr>"#,
            w.id,
            w.id,
            w.loads_running,
            w.loads_done,
            bytes(w.load_bytes)
        );
    }
    m.push_str("</table>");
}

fn ttl_passes(m: &mut String, d: &Dashboard, now_ms: i64) {
    let p = d.master.ttl_passes();
    let last = if p.last_ms == 0 { "none yet".to_string() } else { ago(p.last_ms, now_ms) };
    m.push_str(r#"<h2>TTL passes</h2><div class="stats" id="ttl-passes">"#);
    m.push_str(&stat("ttl-pass-count", "Passes (failed)", &format!("{} ({})", p.passes, p.failed)));
    m.push_str(&stat("ttl-last", "Last pass", &last));
    m.push_str(&stat("ttl-last-did", "Last pass freed / deleted", &format!("{} / {}", p.last_freed, p.last_deleted)));
    m.push_str(&stat("ttl-total", "Freed / deleted since start", &format!("{} / {}", p.freed, p.deleted)));
    m.push_str("</div>");
    if let Some(e) = &p.last_error {
        let _ = write!(m, r#"<p class="badge bad">Last pass failed: {}</p>"#, esc(e));
    }
}

/// The recent error events of this process, newest first.
pub(super) async fn errors(_d: &Dashboard) -> String {
    let events = strata_common::recent_errors::recent();
    let mut m = String::from("<h1>Recent errors</h1>");
    let _ = write!(
        m,
        r#"<p class="muted">The last {} error events of this process: under-store errors, lost workers, requests answered 5xx (a gateway in another process keeps its own).</p>"#,
        strata_common::recent_errors::KEPT
    );
    if events.is_empty() {
        m.push_str(r#"<p id="no-errors">No error since this process started.</p>"#);
        return layout("Errors", "Errors", &m);
    }
    m.push_str(r#"<table id="errors"><tr><th>Time (UTC)</th><th>Kind</th><th>What</th></tr>"#);
    for e in &events {
        let at = chrono::DateTime::from_timestamp_millis(e.at_ms).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        let _ = write!(
            m,
            r#"<tr class="error" data-kind="{}"><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(e.kind),
            at.unwrap_or_default(),
            esc(e.kind),
            esc(&e.message)
        );
    }
    m.push_str("</table>");
    layout("Errors", "Errors", &m)
}
