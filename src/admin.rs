//! `strata admin …`: the operator's commands, run against the cluster's masters.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use strata_common::config::Config;
use strata_common::ids;
use strata_common::proto::{Bucket, ClusterReport, Mount};

use crate::{cluster_secret, master_client};

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// The report as text, one master or worker a line.
pub fn format_report(r: &ClusterReport) -> String {
    let mut out = String::new();
    let primary = if r.primary.is_empty() { "(none elected)" } else { r.primary.as_str() };
    out += &format!("primary: {primary}  epoch: {}  metadata store: {}\n", r.epoch, r.store);
    out += "masters:\n";
    for m in &r.masters {
        out += &format!("  {:<32} {}\n", m.address, if m.primary { "primary" } else { "standby" });
    }
    out += &format!("workers: {}\n", r.workers.len());
    for w in &r.workers {
        let age = r.now_ms - w.last_heartbeat_ms;
        let state = if age <= r.worker_timeout_ms { "live" } else { "lost" };
        out += &format!(
            "  #{:<4} {:<28} {state:<4}  last heartbeat {:.1}s ago  used {} of {}\n",
            w.id,
            w.address,
            age as f64 / 1000.0,
            bytes(w.used_bytes),
            bytes(w.capacity_bytes)
        );
        for t in &w.tiers {
            out += &format!("         {:<4} used {} of {}\n", t.medium, bytes(t.used_bytes), bytes(t.capacity_bytes));
        }
    }
    out
}

/// `0`, `-1`, or a number with `ms`, `s`, `m`, `h`, `d` (bare: seconds) → milliseconds.
pub fn parse_interval(s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "-1" || s == "0" {
        return Ok(s.parse()?);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().with_context(|| format!("{s:?} is not an interval (use 0, -1, 30s, 5m, 1h)"))?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("{s:?} is not an interval (use 0, -1, 30s, 5m, 1h)"),
    };
    Ok(n * ms)
}

pub async fn mount(
    cfg: &Config,
    bucket: &str,
    uri: &str,
    options: &[String],
    read_only: bool,
    sync_interval: &str,
) -> Result<()> {
    let mut opts = std::collections::HashMap::new();
    for o in options {
        let (k, v) = o.split_once('=').with_context(|| format!("--option {o:?}: give KEY=VALUE"))?;
        opts.insert(k.trim().to_string(), v.to_string());
    }
    let interval = parse_interval(sync_interval)?;
    let m =
        Mount { uri: uri.to_string(), options: opts, read_only, sync_interval_ms: (interval >= 0).then_some(interval) };
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    let b = master.mount(bucket, m).await.with_context(|| format!("cannot mount {uri} as {bucket}"))?;
    println!("mounted {}", describe(&b));
    Ok(())
}

pub async fn unmount(cfg: &Config, bucket: &str) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    master.unmount(bucket).await.with_context(|| format!("cannot unmount {bucket}"))?;
    println!("unmounted {bucket}: its metadata is gone, the under store keeps its data");
    Ok(())
}

fn describe(b: &Bucket) -> String {
    let Some(m) = &b.mount else { return b.name.clone() };
    let sync = match m.sync_interval_ms {
        None => "never".to_string(),
        Some(0) => "every listing".to_string(),
        Some(ms) => format!("every {}s", ms as f64 / 1000.0),
    };
    let mut opts: Vec<String> = m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    opts.sort();
    format!(
        "{:<24} {}{}  sync: {sync}{}",
        b.name,
        m.uri,
        if m.read_only { "  (read-only)" } else { "" },
        if opts.is_empty() { String::new() } else { format!("  options: {}", opts.join(" ")) }
    )
}

pub async fn mounts(cfg: &Config) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    for b in master.mounts().await.context("cannot list the mounts")? {
        println!("{}", describe(&b));
    }
    Ok(())
}

pub async fn report(cfg: &Config) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    let r = master.report().await.with_context(|| format!("cannot reach a master at {}", master.address()))?;
    print!("{}", format_report(&r));
    Ok(())
}

/// Writes a consistent snapshot of the metadata to `output` (through a temporary file, so a
/// failed backup leaves no partial file under that name).
pub async fn backup(cfg: &Config, output: &Path) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    let mut stream = master.backup().await.with_context(|| format!("cannot reach a master at {}", master.address()))?;
    let tmp = output.with_extension(format!("partial-{}", ids::now_ms()));
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} backup: {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let (mut keys, mut written) = (0u64, 0u64);
    let result: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(strata_common::Error::from).context("the backup stopped")?;
            file.write_all(&chunk.data)?;
            written += chunk.data.len() as u64;
            keys = chunk.keys;
            bar.set_message(format!("{keys} keys, {}", bytes(written)));
            bar.tick();
        }
        file.sync_all()?;
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Check what was written before it takes the name.
    let checked = strata_master::backup::verify(&tmp).await?;
    std::fs::rename(&tmp, output).with_context(|| format!("cannot name the backup {}", output.display()))?;
    println!("backup written: {} ({checked} keys, {})", output.display(), bytes(written));
    Ok(())
}
