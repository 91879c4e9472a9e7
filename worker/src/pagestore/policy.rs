//! The eviction policy's interface: the page store tells a policy what enters a tier and what
//! is read, and asks it which pages leave a tier that is over its quota. A policy sees a tier
//! only through [`TierView`] (read-only); the store moves the bytes and keeps the quotas.
//!
//! Adding a policy: one file beside `lru.rs` implementing [`Policy`], a variant of
//! `strata_common::cache_types::EvictionPolicy` (with its config name), and its arm in [`build`].

use strata_common::cache_types::EvictionPolicy;

use super::PageId;

/// What a policy remembers of a page's accesses. It is kept with the page by the store and
/// follows it when the page moves to another tier, so a demoted page keeps its history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heat {
    /// The store's clock at the page's last access (or when it was first cached).
    pub last: u64,
    /// A policy's own measure of how often the page is read (LRFU's score).
    pub score: f64,
}

/// What a policy may see of one tier.
pub trait TierView {
    /// Bytes booked in the tier now.
    fn used(&self) -> u64;
    fn quota(&self) -> u64;
    /// The page's size, if the tier holds it.
    fn len(&self, id: PageId) -> Option<u64>;
    /// False for a page that must stay (a pinned version's page in the last tier).
    fn evictable(&self, id: PageId) -> bool;
}

/// An eviction order over every tier of a store. `now` is the store's clock, which ticks at
/// each insert and each read, hit or miss.
pub trait Policy: Send {
    /// Page `id` enters `tier`: new (`from: None`), or moved with the heat it had. Returns the
    /// heat the store keeps with it.
    fn on_insert(&mut self, tier: usize, id: PageId, now: u64, from: Option<Heat>) -> Heat;
    /// Page `id`, in `tier` with `heat`, is read. Returns its new heat.
    fn on_access(&mut self, tier: usize, id: PageId, now: u64, heat: Heat) -> Heat;
    /// Page `id` leaves `tier` other than as a victim (removed, promoted, found corrupt).
    fn on_remove(&mut self, tier: usize, id: PageId, heat: Heat);
    /// The pages to take out of `tier` so that it fits its quota, in eviction order; the
    /// policy forgets them (no `on_remove` follows). Pages that are not evictable stay.
    fn choose_victims(&mut self, tier: usize, view: &dyn TierView) -> Vec<PageId>;
}

/// The policy the configuration names.
pub fn build(policy: EvictionPolicy) -> Box<dyn Policy> {
    match policy {
        EvictionPolicy::Lru => Box::new(super::lru::Lru::default()),
        EvictionPolicy::Lrfu { step } => Box::new(super::lrfu::Lrfu::new(step)),
    }
}
