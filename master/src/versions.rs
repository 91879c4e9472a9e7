//! Version ids: handed out from a block reserved in the store, so that allocating one costs no
//! transaction; a restart (or a new primary) skips the rest of the block, so ids are never
//! reused.

use std::sync::Arc;

use strata_common::Result;
use strata_common::kv::{KvStore, transact};
use tokio::sync::Mutex;

use crate::schema::Schema;

const VERSION_BLOCK: u64 = 1024;

pub(crate) struct Versions {
    store: Arc<dyn KvStore>,
    /// `[next, end)` of the block in hand.
    range: Mutex<(u64, u64)>,
}

impl Versions {
    pub(crate) fn new(store: Arc<dyn KvStore>) -> Versions {
        Versions { store, range: Mutex::new((0, 0)) }
    }

    pub(crate) async fn next(&self) -> Result<u64> {
        let mut range = self.range.lock().await;
        if range.0 >= range.1 {
            let end =
                transact(self.store.as_ref(), |t| Box::pin(async move { t.reserve_versions(VERSION_BLOCK).await }))
                    .await?;
            *range = (end - VERSION_BLOCK + 1, end + 1);
        }
        let v = range.0;
        range.0 += 1;
        Ok(v)
    }

    /// Drops the block in hand: the next id comes from a block reserved from now on.
    pub(crate) async fn reset(&self) {
        *self.range.lock().await = (0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_grow_and_a_reset_skips_the_rest_of_the_block() {
        let store = crate::store::open("memory://").await.unwrap();
        let v = Versions::new(store.clone());
        let (a, b) = (v.next().await.unwrap(), v.next().await.unwrap());
        assert_eq!((a, b), (1, 2));
        v.reset().await;
        assert_eq!(v.next().await.unwrap(), VERSION_BLOCK + 1);
        // Another allocator on the same store never hands out an id already given.
        let other = Versions::new(store);
        assert_eq!(other.next().await.unwrap(), 2 * VERSION_BLOCK + 1);
    }
}
