//! `strata admin …`: the operator's commands, run against the cluster's masters.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use std::collections::HashMap;
use strata_common::config::Config;
use strata_common::ids;
use strata_common::io_mode::{WRITE_TYPES, WriteType};

use strata_common::api::{LoadResult, MasterApi, ReadRequest, UfsLocation, WorkerApi};
use strata_common::master_client::GrpcMaster;
use strata_common::proto::{Bucket, ClusterReport, ListObjectsRequest, Mount, ObjectMeta, TtlRule, WorkerInfo};
use strata_common::worker_client::HttpWorker;

use crate::{cluster_secret, master_client};

fn fmt_bytes(n: u64) -> String {
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
            fmt_bytes(w.used_bytes),
            fmt_bytes(w.capacity_bytes)
        );
        if !w.s3_address.is_empty() {
            out += &format!("         serves S3 at {}\n", w.s3_address);
        }
        for t in &w.tiers {
            out += &format!(
                "         {:<4} used {} of {}\n",
                t.medium,
                fmt_bytes(t.used_bytes),
                fmt_bytes(t.capacity_bytes)
            );
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
    write_type: &str,
) -> Result<()> {
    let Ok(write_type) = write_type.parse::<WriteType>() else {
        anyhow::bail!("--write-type {write_type}: use {WRITE_TYPES}");
    };
    let mut opts = std::collections::HashMap::new();
    for o in options {
        let (k, v) = o.split_once('=').with_context(|| format!("--option {o:?}: give KEY=VALUE"))?;
        opts.insert(k.trim().to_string(), v.to_string());
    }
    let interval = parse_interval(sync_interval)?;
    let m = Mount {
        uri: uri.to_string(),
        options: opts,
        read_only,
        sync_interval_ms: (interval >= 0).then_some(interval),
        write_type: write_type.as_str().to_string(),
    };
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
        "{:<24} {}{}  sync: {sync}  writes: {}{}",
        b.name,
        m.uri,
        if m.read_only { "  (read-only)" } else { "" },
        if m.write_type.is_empty() { WriteType::default().as_str() } else { m.write_type.as_str() },
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

/// `strata admin sync`: the sync of a mount's range, with progress.
pub async fn sync(cfg: &Config, target: &str) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    let (bucket, prefix) = split_target(target);
    let mut stream = master
        .sync_mount(bucket, prefix)
        .await
        .with_context(|| format!("cannot sync {target} with its under store"))?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} syncing {prefix}: {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(target.to_string());
    let mut last = None;
    while let Some(p) = stream.next().await {
        let p = p.map_err(strata_common::Error::from).with_context(|| format!("the sync of {target} failed"))?;
        let rate = p.listed as f64 / (p.elapsed_ms.max(1) as f64 / 1000.0);
        bar.set_message(if p.waiting {
            "waiting for a turn: the master lists a few under stores at once, the others wait".to_string()
        } else {
            format!("{} keys listed, {} recorded or changed ({rate:.0} keys/s)", p.listed, p.changes)
        });
        bar.tick();
        last = Some(p);
    }
    bar.finish_and_clear();
    match last {
        Some(p) if p.done => {
            println!(
                "synced {target}: {} keys listed, {} recorded, changed or removed, in {:.1}s",
                p.listed,
                p.changes,
                p.elapsed_ms as f64 / 1000.0
            );
            Ok(())
        }
        _ => anyhow::bail!("the sync of {target} ended without an answer (the master went away?): run it again"),
    }
}

/// `BUCKET` or `BUCKET/PREFIX`.
fn split_target(target: &str) -> (&str, &str) {
    target.split_once('/').unwrap_or((target, ""))
}

/// Every object under a prefix, paging through the master's listing.
async fn objects_under(master: &GrpcMaster, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let mut all = Vec::new();
    let mut after = String::new();
    let mut told = false;
    loop {
        let req = ListObjectsRequest {
            bucket: bucket.into(),
            prefix: prefix.into(),
            start_after: after.clone(),
            max_keys: 1000,
            ..Default::default()
        };
        let page = match master.list_objects(req).await {
            // The first sync of a large mount: the listing is answered once it ends.
            Err(e) if e.is(strata_common::ErrorKind::Syncing) => {
                if !told {
                    eprintln!("waiting: {}", e.message);
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
            page => page.with_context(|| format!("cannot list {bucket}/{prefix}"))?,
        };
        let last = page.objects.last().map(|o| o.key.clone());
        all.extend(page.objects);
        match last {
            Some(k) if page.truncated => after = k,
            _ => return Ok(all),
        }
    }
}

pub async fn pin(cfg: &Config, target: &str, pinned: bool) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    let (bucket, prefix) = split_target(target);
    let n = master.pin(bucket, prefix, pinned).await.with_context(|| format!("cannot change the pins of {target}"))?;
    let what = if pinned { "pinned (never evicted)" } else { "unpinned" };
    println!("{n} objects under {target} {what}; workers follow within a heartbeat");
    Ok(())
}

/// Where a worker's data API is: the in-process worker of `strata local` on its admin port.
fn worker_url(cfg: &Config, w: &WorkerInfo) -> String {
    if w.address == strata_common::api::IN_PROCESS {
        crate::masters(cfg).into_iter().next().unwrap_or_default()
    } else {
        w.address.clone()
    }
}

/// Warms the cache: every block of every object under the prefix is read into the worker that
/// owns it, four at a time, with a progress bar.
pub async fn load(cfg: &Config, target: &str) -> Result<()> {
    let secret = cluster_secret(cfg, "admin")?;
    let master = master_client(cfg, &secret)?;
    let (bucket, prefix) = split_target(target);
    let objects = objects_under(&master, bucket, prefix).await?;
    let live = master.list_workers().await.context("cannot list the workers")?;
    if live.is_empty() {
        anyhow::bail!("no worker is alive to load into");
    }
    let http = HttpWorker::client();
    let handles: HashMap<u64, HttpWorker> =
        live.iter().map(|w| (w.id, HttpWorker::new(&worker_url(cfg, w), &secret, http.clone()))).collect();
    let jobs = block_loads(&objects, bucket, &live, cfg.block_size);
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "loading {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let results: Vec<Result<LoadResult, String>> = futures::stream::iter(jobs)
        .map(|(owner, req)| {
            let (handles, bar) = (&handles, &bar);
            async move {
                let what = format!("{}/{}", req.loc.bucket, req.loc.key);
                let w = handles.get(&owner).ok_or_else(|| format!("{what}: no worker"))?;
                let r = w.load(req).await.map_err(|e| format!("{what}: {e}"))?;
                bar.inc(r.bytes);
                Ok(r)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    bar.finish_and_clear();
    let (mut bytes, mut from_ufs, mut failed) = (0u64, 0u64, Vec::new());
    for r in results {
        match r {
            Ok(r) => {
                bytes += r.bytes;
                from_ufs += r.from_ufs;
            }
            Err(e) => failed.push(e),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {} objects, {} in {secs:.1}s ({}/s): {} read from the under store, {} were cached already",
        objects.len(),
        fmt_bytes(bytes),
        fmt_bytes((bytes as f64 / secs.max(0.001)) as u64),
        fmt_bytes(from_ufs),
        fmt_bytes(bytes - from_ufs.min(bytes))
    );
    if !failed.is_empty() {
        for e in failed.iter().take(5) {
            eprintln!("  failed: {e}");
        }
        anyhow::bail!("{} blocks could not be loaded", failed.len());
    }
    Ok(())
}

/// One load request a block, each with the worker that owns the block (the journal's worker for
/// journaled objects).
fn block_loads(objects: &[ObjectMeta], bucket: &str, live: &[WorkerInfo], block_size: u64) -> Vec<(u64, ReadRequest)> {
    let mut jobs = Vec::new();
    for o in objects {
        let bs = if o.block_size == 0 { block_size } else { o.block_size };
        for block in 0..o.size.div_ceil(bs).max(1) {
            let offset = block * bs;
            let req = ReadRequest {
                loc: UfsLocation::object(bucket, &o.key),
                version: o.version,
                object_size: o.size,
                ufs_etag: o.ufs_etag.clone(),
                offset,
                len: (o.size - offset).min(bs),
                cache: true,
                promote: false,
                journal: o.journal_worker != 0,
            };
            let owner = match o.journal_worker {
                0 => strata_common::placement::rank(live, o.version, block).first().map(|w| w.id).unwrap_or(0),
                w => w,
            };
            jobs.push((owner, req));
        }
    }
    jobs
}

/// Drops the objects under the prefix from every worker's cache (the under store keeps them;
/// pinned objects stay).
pub async fn free(cfg: &Config, target: &str) -> Result<()> {
    let secret = cluster_secret(cfg, "admin")?;
    let master = master_client(cfg, &secret)?;
    let (bucket, prefix) = split_target(target);
    let versions: Vec<u64> = objects_under(&master, bucket, prefix).await?.iter().map(|o| o.version).collect();
    let http = HttpWorker::client();
    let mut freed = 0;
    for w in master.list_workers().await.context("cannot list the workers")? {
        let h = HttpWorker::new(&worker_url(cfg, &w), &secret, http.clone());
        freed += h.free(versions.clone()).await.with_context(|| format!("worker {} at {}", w.id, w.address))?;
    }
    println!("freed {} of {} objects under {target} from the cache", fmt_bytes(freed), versions.len());
    Ok(())
}

/// Sets a TTL rule (`off` removes it).
pub async fn ttl(cfg: &Config, target: &str, ttl: &str, action: &str) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    let (bucket, prefix) = split_target(target);
    let ttl_ms = if ttl == "off" { 0 } else { parse_interval(ttl)? };
    if ttl != "off" && ttl_ms <= 0 {
        anyhow::bail!("a TTL must be positive (or `off`)");
    }
    let rule = TtlRule { bucket: bucket.into(), prefix: prefix.into(), ttl_ms, action: action.to_ascii_uppercase() };
    master.set_ttl(rule).await.with_context(|| format!("cannot set the TTL of {target}"))?;
    if ttl_ms > 0 {
        println!(
            "objects under {target} older than {ttl} will be {}",
            if action.eq_ignore_ascii_case("delete") {
                "deleted (from the under store too)"
            } else {
                "freed from the cache"
            }
        );
    } else {
        println!("TTL of {target} removed");
    }
    Ok(())
}

pub async fn ttls(cfg: &Config) -> Result<()> {
    let master = master_client(cfg, &cluster_secret(cfg, "admin")?)?;
    for r in master.ttls().await.context("cannot list the TTL rules")? {
        println!("{}/{}  {}s  {}", r.bucket, r.prefix, r.ttl_ms as f64 / 1000.0, r.action);
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
            bar.set_message(format!("{keys} keys, {}", fmt_bytes(written)));
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
    println!("backup written: {} ({checked} keys, {})", output.display(), fmt_bytes(written));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_workers_serving_s3() {
        let w = |id, s3: &str| WorkerInfo {
            id,
            address: format!("http://10.0.0.{id}:9200"),
            s3_address: s3.into(),
            last_heartbeat_ms: 1000,
            ..Default::default()
        };
        let r = ClusterReport {
            now_ms: 1500,
            worker_timeout_ms: 10_000,
            workers: vec![w(1, "http://10.0.0.1:9002"), w(2, "")],
            ..Default::default()
        };
        let text = format_report(&r);
        assert!(text.contains("#1    http://10.0.0.1:9200"), "{text}");
        assert_eq!(text.matches("serves S3 at").count(), 1, "{text}");
        assert!(text.contains("serves S3 at http://10.0.0.1:9002\n"), "{text}");
    }
}
