//! Least recently used: a full tier gives up the page read (or cached) longest ago.

use super::PageId;
use super::policy::{Heat, Policy, TierView};
use super::ranked::{Rank, Ranked};

#[derive(Default)]
pub struct Lru {
    ranked: Ranked,
}

fn rank(heat: Heat) -> Rank {
    (heat.last as i64, heat.last)
}

impl Policy for Lru {
    fn on_insert(&mut self, tier: usize, id: PageId, now: u64, from: Option<Heat>) -> Heat {
        let heat = from.unwrap_or(Heat { last: now, score: 1.0 });
        self.ranked.insert(tier, rank(heat), id);
        heat
    }

    fn on_access(&mut self, tier: usize, id: PageId, now: u64, heat: Heat) -> Heat {
        let new = Heat { last: now, score: 1.0 };
        self.ranked.remove(tier, rank(heat));
        self.ranked.insert(tier, rank(new), id);
        new
    }

    fn on_remove(&mut self, tier: usize, _id: PageId, heat: Heat) {
        self.ranked.remove(tier, rank(heat));
    }

    fn choose_victims(&mut self, tier: usize, view: &dyn TierView) -> Vec<PageId> {
        self.ranked.take_coldest(tier, view)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ranked::FakeTier;
    use super::*;

    fn id(i: u64) -> PageId {
        PageId { version: 1, index: i }
    }

    /// Pages 0..n inserted into tier 0 at clock 1..=n.
    fn filled(n: u64) -> (Lru, Vec<Heat>) {
        let mut p = Lru::default();
        let heats = (0..n).map(|i| p.on_insert(0, id(i), i + 1, None)).collect();
        (p, heats)
    }

    fn full(n: u64, quota_pages: u64) -> FakeTier {
        FakeTier { pages: (0..n).map(id).collect(), page_len: 1, quota: quota_pages, kept: vec![] }
    }

    #[test]
    fn the_oldest_insert_goes_first() {
        let (mut p, _) = filled(4);
        assert_eq!(p.choose_victims(0, &full(4, 2)), vec![id(0), id(1)]);
        assert_eq!(p.ranked.order(0), vec![id(2), id(3)]);
    }

    #[test]
    fn a_read_makes_a_page_the_newest_however_often_others_were_read() {
        let (mut p, mut heats) = filled(3);
        for now in 10..30 {
            heats[0] = p.on_access(0, id(0), now, heats[0]);
        }
        heats[1] = p.on_access(0, id(1), 40, heats[1]);
        assert_eq!(heats[1], Heat { last: 40, score: 1.0 });
        assert_eq!(p.choose_victims(0, &full(3, 1)), vec![id(2), id(0)], "page 0's twenty reads count as one");
    }

    #[test]
    fn a_moved_page_keeps_its_age() {
        let (mut p, heats) = filled(2);
        // Page 0 comes into tier 1 from above after page 1, but it is older.
        p.on_remove(0, id(0), heats[0]);
        let kept = p.on_insert(1, id(0), 9, Some(heats[0]));
        assert_eq!(kept, heats[0]);
        p.on_insert(1, id(5), 10, None);
        let tier1 = FakeTier { pages: vec![id(0), id(5)], page_len: 1, quota: 1, kept: vec![] };
        assert_eq!(p.choose_victims(1, &tier1), vec![id(0)]);
        assert_eq!(p.ranked.order(0), vec![id(1)], "it left tier 0");
    }

    #[test]
    fn removed_pages_are_no_longer_victims() {
        let (mut p, heats) = filled(3);
        p.on_remove(0, id(0), heats[0]);
        assert_eq!(p.choose_victims(0, &full(3, 1)), vec![id(1), id(2)]);
    }
}
