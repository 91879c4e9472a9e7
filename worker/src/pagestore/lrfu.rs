//! Least recently/frequently used: each read adds 1 to a page's score, and scores halve every
//! `1 / step` ticks of the store's clock; a full tier gives up the page of lowest score, so a
//! page read often outlives one read once lately.

use super::PageId;
use super::policy::{Heat, Policy, TierView};
use super::ranked::{Rank, Ranked};

pub struct Lrfu {
    step: f64,
    ranked: Ranked,
}

impl Lrfu {
    pub fn new(step: f64) -> Lrfu {
        Lrfu { step, ranked: Ranked::default() }
    }

    /// score·2^(-step·(now-last)) ranks the same for every `now` as log2(score) + step·last.
    fn rank(&self, heat: Heat) -> Rank {
        (((heat.score.log2() + self.step * heat.last as f64) * 1048576.0) as i64, heat.last)
    }
}

impl Policy for Lrfu {
    fn on_insert(&mut self, tier: usize, id: PageId, now: u64, from: Option<Heat>) -> Heat {
        let heat = from.unwrap_or(Heat { last: now, score: 1.0 });
        self.ranked.insert(tier, self.rank(heat), id);
        heat
    }

    fn on_access(&mut self, tier: usize, id: PageId, now: u64, heat: Heat) -> Heat {
        let decayed = heat.score * (-(self.step * now.saturating_sub(heat.last) as f64)).exp2();
        let new = Heat { last: now, score: 1.0 + decayed };
        self.ranked.remove(tier, self.rank(heat));
        self.ranked.insert(tier, self.rank(new), id);
        new
    }

    fn on_remove(&mut self, tier: usize, _id: PageId, heat: Heat) {
        self.ranked.remove(tier, self.rank(heat));
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

    fn tier(n: u64, quota: u64) -> FakeTier {
        FakeTier { pages: (0..n).map(id).collect(), page_len: 1, quota, kept: vec![] }
    }

    #[test]
    fn scores_add_one_per_read_and_halve_every_one_over_step_ticks() {
        let mut p = Lrfu::new(0.5);
        let h = p.on_insert(0, id(0), 1, None);
        assert_eq!(h, Heat { last: 1, score: 1.0 });
        let h = p.on_access(0, id(0), 3, h); // two ticks later: 1 halved once, plus 1
        assert_eq!(h, Heat { last: 3, score: 1.5 });
        let h = p.on_access(0, id(0), 3, h); // no time passed
        assert_eq!(h.score, 2.5);
    }

    #[test]
    fn a_frequently_read_page_outlives_newer_pages_read_once() {
        let mut p = Lrfu::new(0.01);
        let mut hot = p.on_insert(0, id(0), 1, None);
        for now in 2..22 {
            hot = p.on_access(0, id(0), now, hot);
        }
        for i in 1..4 {
            p.on_insert(0, id(i), 21 + i, None);
        }
        assert_eq!(p.choose_victims(0, &tier(4, 3)), vec![id(1)], "the oldest of the read-once pages goes");
    }

    #[test]
    fn with_a_large_step_it_forgets_fast_and_acts_like_lru() {
        let mut p = Lrfu::new(1.0);
        let mut hot = p.on_insert(0, id(0), 1, None);
        for now in 2..22 {
            hot = p.on_access(0, id(0), now, hot);
        }
        for i in 1..4 {
            p.on_insert(0, id(i), 100 + i, None); // long after: page 0's reads have decayed
        }
        assert_eq!(p.choose_victims(0, &tier(4, 3)), vec![id(0)]);
    }

    #[test]
    fn a_moved_page_keeps_its_score() {
        let mut p = Lrfu::new(0.01);
        let mut hot = p.on_insert(0, id(0), 1, None);
        for now in 2..12 {
            hot = p.on_access(0, id(0), now, hot);
        }
        p.on_remove(0, id(0), hot);
        assert_eq!(p.on_insert(1, id(0), 12, Some(hot)), hot);
        p.on_insert(1, id(1), 13, None);
        let tier1 = FakeTier { pages: vec![id(0), id(1)], page_len: 1, quota: 1, kept: vec![] };
        assert_eq!(p.choose_victims(1, &tier1), vec![id(1)], "the demoted page is still the hotter");
        assert!(p.ranked.order(0).is_empty());
    }

    #[test]
    fn kept_pages_are_passed_over() {
        let mut p = Lrfu::new(0.01);
        for i in 0..3 {
            p.on_insert(0, id(i), i + 1, None);
        }
        let view = FakeTier { kept: vec![id(0)], ..tier(3, 2) };
        assert_eq!(p.choose_victims(0, &view), vec![id(1)]);
    }
}
