//! A small map whose entries are trusted for a fixed time after they were inserted: looked-up
//! secrets and mounts, asked of the master again once stale.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> TtlCache<K, V> {
        TtlCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The value, if it was inserted less than the ttl ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.get_at(key, Instant::now())
    }

    fn get_at<Q>(&self, key: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(_, at)| now.saturating_duration_since(*at) < self.ttl).map(|(v, _)| v.clone())
    }

    /// Inserts or replaces the value, trusted from now on.
    pub fn insert(&self, key: K, value: V) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (value, Instant::now()));
    }

    /// Forgets the value, so that the next lookup asks again.
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// The fresh value, or else the one `fetch` gives, which is kept (an error is not).
    pub async fn get_or_fetch<E, F>(&self, key: K, fetch: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let v = fetch.await?;
        self.insert(key, v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> TtlCache<String, u32> {
        TtlCache::new(Duration::from_secs(10))
    }

    #[test]
    fn a_fresh_value_is_returned() {
        let c = cache();
        assert_eq!(c.get("a"), None);
        c.insert("a".into(), 1);
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("b"), None);
    }

    #[test]
    fn a_value_older_than_the_ttl_is_not() {
        let c = cache();
        c.insert("a".into(), 1);
        let now = Instant::now();
        assert_eq!(c.get_at("a", now + Duration::from_secs(9)), Some(1));
        assert_eq!(c.get_at("a", now + Duration::from_secs(11)), None);
    }

    #[test]
    fn insert_replaces_and_restarts_the_clock() {
        let c = cache();
        c.insert("a".into(), 1);
        c.insert("a".into(), 2);
        assert_eq!(c.get("a"), Some(2));
    }

    #[test]
    fn invalidate_forgets_one_key() {
        let c = cache();
        c.insert("a".into(), 1);
        c.insert("b".into(), 2);
        c.invalidate("a");
        assert_eq!((c.get("a"), c.get("b")), (None, Some(2)));
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let c: TtlCache<&str, u32> = TtlCache::new(Duration::ZERO);
        c.insert("a", 1);
        assert_eq!(c.get("a"), None);
    }

    #[tokio::test]
    async fn get_or_fetch_fetches_once_and_keeps_no_error() {
        let c = cache();
        let v: Result<u32, &str> = c.get_or_fetch("a".into(), async { Err("down") }).await;
        assert_eq!(v, Err("down"));
        assert_eq!(c.get("a"), None);
        let v: Result<u32, &str> = c.get_or_fetch("a".into(), async { Ok(7) }).await;
        assert_eq!(v, Ok(7));
        let v: Result<u32, &str> = c.get_or_fetch("a".into(), async { Ok(8) }).await;
        assert_eq!(v, Ok(7), "the fresh value is kept, not fetched again");
    }
}
