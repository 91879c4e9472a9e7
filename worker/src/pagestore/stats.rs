//! What each tier has done since the worker started: hits and the bytes they served, pages
//! demoted to the tier below and pages evicted (dropped from the last tier). Kept as atomics
//! beside the bookkeeping (never under its lock) and mirrored into Prometheus counters; the
//! worker's heartbeat carries them to the master's dashboard.

use std::sync::atomic::{AtomicU64, Ordering};

use strata_common::cache_types::Medium;

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    hit_bytes: AtomicU64,
    demotions: AtomicU64,
    evictions: AtomicU64,
}

/// One tier's counters as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierStats {
    pub pages: u64,
    pub hits: u64,
    pub hit_bytes: u64,
    pub demotions: u64,
    pub evictions: u64,
}

/// Misses of the whole cache, and the bytes they read from under stores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MissStats {
    pub misses: u64,
    pub fill_bytes: u64,
}

pub(super) struct Stats {
    misses: AtomicU64,
    fill_bytes: AtomicU64,
    /// The `tier` label of each tier: its position and medium (`0-MEM`), unique per worker.
    labels: Vec<String>,
    tiers: Vec<Counters>,
}

impl Stats {
    pub(super) fn new(media: &[Medium]) -> Stats {
        // Every counter exists from the start, at 0 (a rate over a missing series is empty).
        metrics::counter!("strata_worker_cache_hits_total").increment(0);
        metrics::counter!("strata_worker_cache_misses_total").increment(0);
        metrics::counter!("strata_worker_fill_waits_total").increment(0);
        for (i, m) in media.iter().enumerate() {
            let tier = tier_label(i, m.as_str());
            for name in [
                "strata_worker_cache_hits_by_tier_total",
                "strata_worker_cache_hit_bytes_total",
                "strata_worker_cache_evictions_total",
                "strata_worker_cache_demotions_total",
            ] {
                metrics::counter!(name, "tier" => tier.clone()).increment(0);
            }
        }
        Stats {
            misses: AtomicU64::new(0),
            fill_bytes: AtomicU64::new(0),
            labels: media.iter().enumerate().map(|(i, m)| tier_label(i, m.as_str())).collect(),
            tiers: media.iter().map(|_| Counters::default()).collect(),
        }
    }

    pub(super) fn hit(&self, t: usize, bytes: u64) {
        let c = &self.tiers[t];
        c.hits.fetch_add(1, Ordering::Relaxed);
        c.hit_bytes.fetch_add(bytes, Ordering::Relaxed);
        let tier = self.labels[t].clone();
        metrics::counter!("strata_worker_cache_hits_by_tier_total", "tier" => tier.clone()).increment(1);
        metrics::counter!("strata_worker_cache_hit_bytes_total", "tier" => tier).increment(bytes);
    }

    pub(super) fn miss(&self, filled: u64) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.fill_bytes.fetch_add(filled, Ordering::Relaxed);
    }

    pub(super) fn misses(&self) -> MissStats {
        MissStats { misses: self.misses.load(Ordering::Relaxed), fill_bytes: self.fill_bytes.load(Ordering::Relaxed) }
    }

    /// `n` pages left tier `t`: moved down, or dropped when `t` is the last tier.
    pub(super) fn left(&self, t: usize, n: u64) {
        if n == 0 {
            return;
        }
        let tier = self.labels[t].clone();
        if t + 1 < self.tiers.len() {
            self.tiers[t].demotions.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("strata_worker_cache_demotions_total", "tier" => tier).increment(n);
        } else {
            self.tiers[t].evictions.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("strata_worker_cache_evictions_total", "tier" => tier).increment(n);
        }
    }

    pub(super) fn read(&self, pages: &[u64]) -> Vec<TierStats> {
        self.tiers
            .iter()
            .zip(pages)
            .map(|(c, &pages)| TierStats {
                pages,
                hits: c.hits.load(Ordering::Relaxed),
                hit_bytes: c.hit_bytes.load(Ordering::Relaxed),
                demotions: c.demotions.load(Ordering::Relaxed),
                evictions: c.evictions.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The `tier` label of the `i`th tier.
pub fn tier_label(i: usize, medium: &str) -> String {
    format!("{i}-{medium}")
}
