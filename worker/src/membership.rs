//! Registration with the master and heartbeats. The worker keeps its id in its data folder so
//! that after a restart it owns the same blocks (and its disk cache still serves them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_common::api::MasterApi;
use strata_common::ops::Readiness;
use strata_common::proto::{HeartbeatRequest, TierUsage, WorkerInfo};
use tokio_util::sync::CancellationToken;

use crate::Worker;

pub struct WorkerIdentity {
    /// Where the data server is reached (`in-process` inside `strata local`).
    pub address: String,
    /// Where it serves S3 too (`s3_listen`); empty: it does not.
    pub s3_address: String,
    /// File that keeps the id across restarts.
    pub id_file: PathBuf,
}

/// How often the journal is persisted and cleaned.
const JOURNAL_EVERY: Duration = Duration::from_secs(1);

fn tiers(worker: &Worker) -> Vec<TierUsage> {
    let stats = worker.cache.tier_stats();
    worker
        .cache
        .usage()
        .iter()
        .zip(stats)
        .map(|(u, s)| TierUsage {
            medium: u.medium.as_str().into(),
            capacity_bytes: u.quota,
            used_bytes: u.used,
            pages: s.pages,
            hits: s.hits,
            hit_bytes: s.hit_bytes,
            demotions: s.demotions,
            evictions: s.evictions,
        })
        .collect()
}

/// The cache's size per tier and its pinned bytes as gauges, refreshed each heartbeat.
fn cache_gauges(worker: &Worker, tiers: &[TierUsage]) {
    metrics::gauge!("strata_worker_cache_pinned_bytes").set(worker.cache.pinned_bytes() as f64);
    metrics::gauge!("strata_worker_page_buffers_in_flight_bytes").set(worker.cache.in_flight() as f64);
    for (i, t) in tiers.iter().enumerate() {
        let tier = crate::pagestore::tier_label(i, &t.medium);
        metrics::gauge!("strata_worker_cache_bytes", "tier" => tier.clone()).set(t.used_bytes as f64);
        metrics::gauge!("strata_worker_cache_quota_bytes", "tier" => tier.clone()).set(t.capacity_bytes as f64);
        metrics::gauge!("strata_worker_cache_pages", "tier" => tier).set(t.pages as f64);
    }
}

fn load_id(f: &PathBuf) -> u64 {
    std::fs::read_to_string(f).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

async fn register(
    worker: &Worker,
    master: &dyn MasterApi,
    me: &WorkerIdentity,
    shutdown: &CancellationToken,
) -> Option<u64> {
    let mut delay = Duration::from_millis(100);
    loop {
        let info = WorkerInfo {
            id: load_id(&me.id_file),
            address: me.address.clone(),
            s3_address: me.s3_address.clone(),
            capacity_bytes: worker.cache.capacity(),
            used_bytes: worker.cache.used(),
            tiers: tiers(worker),
            ..Default::default()
        };
        match master.register_worker(info).await {
            Ok(info) => {
                if let Err(e) = std::fs::write(&me.id_file, info.id.to_string()) {
                    tracing::warn!("cannot keep the worker id in {}: {e}", me.id_file.display());
                }
                return Some(info.id);
            }
            Err(e) => tracing::warn!("cannot register with the master (will retry in {delay:?}): {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Registers, then heartbeats every `interval` until `shutdown`; registers again when the
/// master has forgotten this worker (it restarted).
pub async fn register_and_heartbeat(
    worker: Worker,
    master: Arc<dyn MasterApi>,
    me: WorkerIdentity,
    interval: Duration,
    ready: Readiness,
    shutdown: CancellationToken,
) {
    let Some(mut id) = register(&worker, master.as_ref(), &me, &shutdown).await else { return };
    ready.set(true);
    tracing::info!(worker = id, address = %me.address, "registered with the master");
    let current = Arc::new(std::sync::atomic::AtomicU64::new(id));
    let (mut freed, mut kept) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    // The journal's persists may take long: they run beside the heartbeats, never in their way.
    tokio::spawn({
        let (worker, current, shutdown) = (worker.clone(), current.clone(), shutdown.clone());
        async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(JOURNAL_EVERY) => {}
                }
                if let Err(e) = worker.journal_pass(current.load(std::sync::atomic::Ordering::Relaxed)).await {
                    tracing::warn!("journal: {e}");
                }
            }
        }
    });
    cache_gauges(&worker, &tiers(&worker));
    // Beats at a fixed rate: a slow answer (the master busy, this process loaded) delays
    // neither the next beat's start nor, past one interval, the beat after it.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let tiers = tiers(&worker);
        cache_gauges(&worker, &tiers);
        let misses = worker.cache.miss_stats();
        let hb = HeartbeatRequest {
            worker_id: id,
            capacity_bytes: worker.cache.capacity(),
            used_bytes: tiers.iter().map(|t| t.used_bytes).sum(),
            tiers,
            cache_misses: misses.misses,
            fill_bytes: misses.fill_bytes,
            loads_running: worker.loads.running.load(std::sync::atomic::Ordering::Relaxed),
            loads_done: worker.loads.done.load(std::sync::atomic::Ordering::Relaxed),
            load_bytes: worker.loads.bytes.load(std::sync::atomic::Ordering::Relaxed),
        };
        let answer = tokio::time::timeout(interval.max(Duration::from_secs(1)), master.heartbeat(hb)).await;
        let answer = answer.unwrap_or_else(|_| Err(strata_common::Error::unavailable("no answer within one interval")));
        match answer {
            Ok(r) if r.reregister => {
                tracing::info!("the master does not know this worker (it restarted?); registering again");
                match register(&worker, master.as_ref(), &me, &shutdown).await {
                    Some(new_id) => {
                        id = new_id;
                        current.store(id, std::sync::atomic::Ordering::Relaxed);
                    }
                    None => return,
                }
            }
            Ok(r) => {
                worker.cache.set_pinned(&r.pinned);
                // The master repeats each version for a while: free it once. Those kept for a
                // read are tried again at the next beats (or left to eviction past a bound).
                if freed.len() > 200_000 {
                    freed.clear();
                }
                let told = r.free.into_iter().filter(|v| !freed.contains(v));
                let (now, still) = worker.free_versions(told.chain(kept.drain()));
                kept = if still.len() > 100_000 { Default::default() } else { still };
                freed.extend(now);
            }
            Err(e) => tracing::warn!("heartbeat to the master failed: {e}"),
        }
    }
}
