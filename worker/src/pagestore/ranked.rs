//! Pages ranked by a key per tier, lowest (coldest) first: the bookkeeping LRU and LRFU share.
//! A policy of this kind only says how a page's heat becomes its rank.

use std::collections::BTreeMap;

use super::PageId;
use super::policy::TierView;

/// Lower goes first. The second half is the page's last access, unique per page, so no two
/// pages share a rank.
pub(crate) type Rank = (i64, u64);

#[derive(Default)]
pub(crate) struct Ranked {
    tiers: Vec<BTreeMap<Rank, PageId>>,
}

impl Ranked {
    fn tier(&mut self, t: usize) -> &mut BTreeMap<Rank, PageId> {
        if self.tiers.len() <= t {
            self.tiers.resize_with(t + 1, BTreeMap::new);
        }
        &mut self.tiers[t]
    }

    pub(crate) fn insert(&mut self, t: usize, rank: Rank, id: PageId) {
        self.tier(t).insert(rank, id);
    }

    pub(crate) fn remove(&mut self, t: usize, rank: Rank) {
        self.tier(t).remove(&rank);
    }

    /// Pops the lowest ranked pages of tier `t` until the rest fit its quota; the pages that
    /// must stay keep their rank.
    pub(crate) fn take_coldest(&mut self, t: usize, view: &dyn TierView) -> Vec<PageId> {
        let ranks = self.tier(t);
        let (mut used, mut out, mut skipped) = (view.used(), Vec::new(), Vec::new());
        while used > view.quota() {
            let Some((rank, id)) = ranks.pop_first() else { break };
            if !view.evictable(id) {
                skipped.push((rank, id));
                continue;
            }
            let Some(len) = view.len(id) else { continue };
            used -= len;
            out.push(id);
        }
        ranks.extend(skipped);
        out
    }

    /// Tier `t`'s pages, lowest rank first.
    #[cfg(test)]
    pub(crate) fn order(&self, t: usize) -> Vec<PageId> {
        self.tiers.get(t).map(|r| r.values().copied().collect()).unwrap_or_default()
    }
}

/// A tier for policy tests: pages of one size, some of them kept.
#[cfg(test)]
pub(crate) struct FakeTier {
    pub pages: Vec<PageId>,
    pub page_len: u64,
    pub quota: u64,
    pub kept: Vec<PageId>,
}

#[cfg(test)]
impl TierView for FakeTier {
    fn used(&self) -> u64 {
        self.pages.len() as u64 * self.page_len
    }
    fn quota(&self) -> u64 {
        self.quota
    }
    fn len(&self, id: PageId) -> Option<u64> {
        self.pages.contains(&id).then_some(self.page_len)
    }
    fn evictable(&self, id: PageId) -> bool {
        !self.kept.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> PageId {
        PageId { version: 1, index: i }
    }

    fn ranked(n: u64) -> Ranked {
        let mut r = Ranked::default();
        for i in 0..n {
            r.insert(0, (10 - i as i64, i), id(i)); // the later, the colder
        }
        r
    }

    #[test]
    fn takes_the_lowest_ranks_until_the_tier_fits() {
        let mut r = ranked(4);
        let view = FakeTier { pages: (0..4).map(id).collect(), page_len: 10, quota: 25, kept: vec![] };
        assert_eq!(r.take_coldest(0, &view), vec![id(3), id(2)]);
        assert_eq!(r.order(0), vec![id(1), id(0)]);
    }

    #[test]
    fn kept_pages_stay_with_their_rank_and_others_go_instead() {
        let mut r = ranked(4);
        let view = FakeTier { pages: (0..4).map(id).collect(), page_len: 10, quota: 30, kept: vec![id(3)] };
        assert_eq!(r.take_coldest(0, &view), vec![id(2)]);
        assert_eq!(r.order(0), vec![id(3), id(1), id(0)], "the kept page is still the coldest");
    }

    #[test]
    fn a_tier_within_its_quota_gives_nothing_and_all_kept_gives_nothing() {
        let mut r = ranked(2);
        let fits = FakeTier { pages: vec![id(0), id(1)], page_len: 10, quota: 20, kept: vec![] };
        assert!(r.take_coldest(0, &fits).is_empty());
        let kept = FakeTier { pages: vec![id(0), id(1)], page_len: 10, quota: 0, kept: vec![id(0), id(1)] };
        assert!(r.take_coldest(0, &kept).is_empty());
        assert_eq!(r.order(0).len(), 2);
        assert!(r.take_coldest(5, &kept).is_empty(), "an unknown tier is empty");
    }
}
