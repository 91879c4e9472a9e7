//! `strata admin …`: the operator's commands, run against the cluster's masters.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use strata_common::config::Config;
use strata_common::ids;
use strata_common::proto::ClusterReport;

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
