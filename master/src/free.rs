//! Versions whose cached pages workers may drop, told with every heartbeat: those a TTL rule
//! expired, and those replaced or deleted (their pages would otherwise sit in the cache, and be
//! written down to the disk tiers, until evicted).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a replaced or deleted version's pages stay: a read that looked the version up just
/// before the change still finds them (a worker also keeps the pages of a read under way).
pub(crate) const REPLACED_GRACE: Duration = Duration::from_secs(2);

/// At most this many versions are told at once; beyond, replaced ones are left to eviction.
const MAX_TOLD: usize = 100_000;

/// Versions to free, each told to every worker for a while from when it is due.
#[derive(Default)]
pub(crate) struct ToFree(Mutex<HashMap<u64, Instant>>);

impl ToFree {
    /// Versions due now (expired by a TTL rule).
    pub(crate) fn add(&self, versions: impl IntoIterator<Item = u64>) {
        let now = Instant::now();
        let mut m = self.lock();
        for v in versions {
            m.entry(v).or_insert(now);
        }
    }

    /// A version replaced or deleted just now: due after [`REPLACED_GRACE`].
    pub(crate) fn replaced(&self, version: u64) {
        let mut m = self.lock();
        if version != 0 && m.len() < MAX_TOLD {
            m.entry(version).or_insert_with(|| Instant::now() + REPLACED_GRACE);
        }
    }

    /// What a heartbeat carries: versions due within the last `keep` (long enough for every
    /// live worker to heartbeat once).
    pub(crate) fn current(&self, keep: Duration) -> Vec<u64> {
        let now = Instant::now();
        let mut m = self.lock();
        m.retain(|_, due| now.saturating_duration_since(*due) < keep);
        m.iter().filter(|(_, due)| **due <= now).map(|(v, _)| *v).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_version_is_told_after_the_grace_and_for_keep() {
        let f = ToFree::default();
        f.add([1]);
        f.replaced(2);
        f.replaced(0);
        assert_eq!(f.current(Duration::from_secs(60)), vec![1]);
        std::thread::sleep(REPLACED_GRACE + Duration::from_millis(50));
        let mut now = f.current(Duration::from_secs(60));
        now.sort();
        assert_eq!(now, vec![1, 2]);
        assert!(f.current(Duration::from_millis(10)).is_empty(), "told past keep");
        assert!(f.lock().is_empty(), "forgotten past keep");
    }
}
