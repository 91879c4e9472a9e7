//! HTML pieces: escaping, sizes, used/quota bars, line charts as inline SVG, and the layout.

use std::fmt::Write;

/// Text made safe inside HTML elements and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// 1536 → "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let (mut v, mut u) = (n as f64, 0);
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub fn percent(ratio: Option<f64>) -> String {
    ratio.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "–".into())
}

/// A used/quota bar for one tier.
pub fn bar(label: &str, used: u64, quota: u64) -> String {
    let pct = if quota == 0 { 0.0 } else { (used as f64 / quota as f64 * 100.0).min(100.0) };
    format!(
        r#"<div class="tier" data-tier="{l}" data-used="{used}" data-quota="{quota}"><span class="tname">{l}</span><span class="bar"><span class="fill" style="width:{pct:.1}%"></span></span><span class="tnum">{u} / {q}</span></div>"#,
        l = esc(label),
        u = bytes(used),
        q = bytes(quota),
    )
}

/// A line chart of `points` (x in ms, y in [0, max]) as inline SVG, with its title.
pub fn chart(id: &str, title: &str, points: &[(i64, f64)], max: f64, unit: impl Fn(f64) -> String) -> String {
    let (w, h) = (600.0, 120.0);
    let mut out = format!(r#"<figure class="chart" id="{}"><figcaption>{}</figcaption>"#, esc(id), esc(title));
    if points.len() < 2 {
        out.push_str(r#"<p class="muted">Collecting samples (one every 10 s)…</p></figure>"#);
        return out;
    }
    let (x0, x1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let span = (x1 - x0).max(1.0);
    let max = if max > 0.0 { max } else { 1.0 };
    let mut pts = String::new();
    for (x, y) in points {
        let px = (*x as f64 - x0) / span * w;
        let py = h - (y / max).clamp(0.0, 1.0) * h;
        let _ = write!(pts, "{px:.1},{py:.1} ");
    }
    let last = points[points.len() - 1].1;
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img"><line x1="0" y1="{h}" x2="{w}" y2="{h}" class="axis"/><polyline points="{pts}"/></svg><div class="legend"><span>max {}</span><span>now {}</span><span>last {}</span></div></figure>"#,
        esc(&unit(max)),
        esc(&unit(last)),
        if span < 120_000.0 { format!("{:.0} s", span / 1000.0) } else { format!("{:.0} min", span / 60_000.0) }
    );
    out
}

/// The page around `main`: navigation, the live-refresh script.
pub fn layout(title: &str, active: &str, main: &str) -> String {
    let nav: String = [
        ("/ui", "Overview"),
        ("/ui/workers", "Workers"),
        ("/ui/buckets", "Buckets"),
        ("/ui/jobs", "Jobs"),
        ("/ui/errors", "Errors"),
    ]
    .iter()
    .map(|(href, name)| {
        let class = if *name == active { r#" class="active""# } else { "" };
        format!(r#"<a href="{href}"{class}>{name}</a>"#)
    })
    .collect();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t} · Strata</title><link rel="stylesheet" href="/ui/assets/style.css"></head><body><header><span class="brand">Strata</span><nav>{nav}</nav><span id="live" class="muted">live</span></header><main id="main">{main}</main><script src="/ui/assets/app.js"></script></body></html>"#,
        t = esc(title)
    )
}

/// A small figure: a label over a big value.
pub fn stat(id: &str, label: &str, value: &str) -> String {
    format!(
        r#"<div class="stat" id="{}"><div class="label">{}</div><div class="value">{}</div></div>"#,
        esc(id),
        esc(label),
        esc(value)
    )
}
