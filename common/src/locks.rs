//! Async locks by key (a page being filled, an object key being committed), created on first
//! use and dropped when nobody holds or waits for them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Lock = Arc<tokio::sync::Mutex<()>>;

pub struct KeyedLocks<K>(Mutex<HashMap<K, Lock>>);

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        KeyedLocks(Mutex::new(HashMap::new()))
    }
}

pub struct KeyedGuard<'a, K: Eq + Hash> {
    locks: &'a KeyedLocks<K>,
    key: Option<K>,
    lock: Lock,
    guard: Option<OwnedMutexGuard<()>>,
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    pub async fn lock(&self, key: K) -> KeyedGuard<'_, K> {
        let lock = self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        KeyedGuard { locks: self, key: Some(key), lock, guard: Some(guard) }
    }

    /// The lock of `key` if nobody holds it now.
    pub fn try_lock(&self, key: K) -> Option<KeyedGuard<'_, K>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let lock = map.entry(key.clone()).or_default().clone();
        // Under the map's mutex, so that a holder letting go meanwhile still sees its count.
        let guard = lock.clone().try_lock_owned().ok()?;
        drop(map);
        Some(KeyedGuard { locks: self, key: Some(key), lock, guard: Some(guard) })
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash> Drop for KeyedGuard<'_, K> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        // The map and this guard: nobody else holds or waits for it. Others only clone it
        // under the map's mutex, which is held here.
        if Arc::strong_count(&self.lock) <= 2
            && let Some(k) = self.key.take()
        {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn try_lock_takes_only_a_free_key_and_leaves_nothing_behind() {
        let locks = KeyedLocks::<u32>::default();
        let held = locks.lock(1).await;
        assert!(locks.try_lock(1).is_none());
        let other = locks.try_lock(2).expect("a free key");
        drop(held);
        let again = locks.try_lock(1).expect("let go");
        drop((again, other));
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn one_holder_per_key_and_no_leak() {
        let locks = Arc::new(KeyedLocks::<u32>::default());
        let inside = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock(7).await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.is_empty());
    }
}
