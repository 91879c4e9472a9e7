//! The worker's page cache: pages of object versions in tiers (memory, then SSD and HDD
//! folders), each with a quota, kept by [`PageStore`]. Which page of a full tier leaves first
//! is an eviction policy; disk pages are files in the format of `page_file.rs`, which
//! survive restarts and are checked on every read.
//!
//! - `store.rs`: `PageStore`, the bookkeeping (tiers, quotas, pins, demotion, promotion, reload)
//! - `policy.rs`: the `Policy` trait over a read-only `TierView`, and `build` from the config
//! - `lru.rs`, `lrfu.rs`: the two policies, over the ranking they share in `ranked.rs`
//! - `page_file.rs`: file names, CRC32C framing, write, read and scan of disk pages

mod lrfu;
mod lru;
mod page_file;
mod policy;
mod ranked;
mod stats;
mod store;
#[cfg(test)]
mod tests;

pub use stats::{MissStats, TierStats, tier_label};
pub use store::{MoveUp, PageStore, TierSpec, TierUsage};

/// A page: the `index`th `page_size` bytes of object version `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId {
    pub version: u64,
    pub index: u64,
}
