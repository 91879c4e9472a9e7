//! Metadata store backends, chosen by URL: `memory://`, `embedded:///path/meta.redb`.

mod buffer;
mod redb_store;

use std::sync::Arc;

use strata_common::kv::KvStore;
use strata_common::{Error, Result};

pub use redb_store::RedbStore;

pub fn open(url: &str) -> Result<Arc<dyn KvStore>> {
    if url == "memory://" || url == "memory:" {
        return Ok(Arc::new(RedbStore::memory()?));
    }
    if let Some(path) = url.strip_prefix("embedded://") {
        return Ok(Arc::new(RedbStore::open(std::path::Path::new(path))?));
    }
    Err(Error::invalid(format!("unknown metadata store {url:?}: use embedded:///path/meta.redb or memory://")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_common::kv::conformance;

    #[tokio::test]
    async fn memory_backend_conforms() {
        conformance::run_all(|| open("memory://").unwrap()).await;
    }

    #[tokio::test]
    async fn embedded_backend_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        conformance::run_all(|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            open(&format!("embedded://{}/m{i}.redb", dir.path().display())).unwrap()
        })
        .await;
    }

    #[tokio::test]
    async fn embedded_backend_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("embedded://{}/meta.redb", dir.path().display());
        {
            let s = open(&url).unwrap();
            strata_common::kv::transact(s.as_ref(), |t| {
                Box::pin(async move {
                    t.set(b"k", b"v");
                    Ok(())
                })
            })
            .await
            .unwrap();
        }
        let s = open(&url).unwrap();
        let v = strata_common::kv::transact(s.as_ref(), |t| Box::pin(async move { t.get(b"k").await })).await.unwrap();
        assert_eq!(v.as_deref(), Some(&b"v"[..]));
    }
}
