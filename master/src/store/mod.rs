//! Metadata store backends, chosen by URL: `memory://`, `embedded:///path/meta.redb`,
//! `etcd://host:port[,host:port]/prefix`, `fdb:///path/to/fdb.cluster`.

mod buffer;
#[cfg(feature = "etcd")]
mod etcd_store;
#[cfg(feature = "fdb")]
mod fdb_store;
pub mod fenced;
mod redb_store;
pub mod watch;

use std::sync::Arc;

use strata_common::kv::KvStore;
use strata_common::{Error, Result};

#[cfg(feature = "etcd")]
pub use etcd_store::EtcdStore;
#[cfg(feature = "fdb")]
pub use fdb_store::FdbStore;
pub use redb_store::RedbStore;

pub async fn open(url: &str) -> Result<Arc<dyn KvStore>> {
    if url.starts_with("etcd://") {
        #[cfg(feature = "etcd")]
        return Ok(Arc::new(EtcdStore::connect(url).await?));
        #[cfg(not(feature = "etcd"))]
        return Err(Error::invalid("this build has no etcd support: build it with `cargo build --features etcd`"));
    }
    if url.starts_with("fdb://") {
        #[cfg(feature = "fdb")]
        return Ok(Arc::new(FdbStore::connect(url)?));
        #[cfg(not(feature = "fdb"))]
        return Err(Error::invalid(
            "this build has no FoundationDB support: build it with `cargo build --features fdb` where libfdb_c is installed",
        ));
    }
    if url == "memory://" || url == "memory:" {
        return Ok(Arc::new(RedbStore::memory()?));
    }
    if let Some(path) = url.strip_prefix("embedded://") {
        return Ok(Arc::new(RedbStore::open(std::path::Path::new(path))?));
    }
    Err(Error::invalid(format!(
        "unknown metadata store {url:?}: use embedded:///path/meta.redb, etcd://host:port/prefix, \
         fdb:///path/to/fdb.cluster or memory://"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_common::kv::{conformance, transact};

    #[tokio::test]
    async fn memory_backend_conforms() {
        conformance::run_all(|| async { open("memory://").await.unwrap() }).await;
    }

    #[tokio::test]
    async fn embedded_backend_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        let (dir, n) = (&dir, &n);
        conformance::run_all(|| async move {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            open(&format!("embedded://{}/m{i}.redb", dir.path().display())).await.unwrap()
        })
        .await;
    }

    /// Against a real etcd server: `make test` starts one and sets STRATA_TEST_ETCD=host:port.
    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn etcd_backend_conforms() {
        let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else {
            eprintln!(
                "etcd_backend_conforms: STRATA_TEST_ETCD is not set, no etcd to test against (make test sets it)"
            );
            return;
        };
        let endpoint = &endpoint;
        conformance::run_all(|| async move {
            let prefix = format!("conformance-{:016x}", rand::random::<u64>());
            open(&format!("etcd://{endpoint}/{prefix}")).await.unwrap()
        })
        .await;
    }

    /// Against a real FoundationDB: set FDB_CLUSTER_FILE (see README) and test with `--features fdb`.
    #[cfg(feature = "fdb")]
    #[tokio::test]
    async fn fdb_backend_conforms() {
        let Ok(file) = std::env::var("FDB_CLUSTER_FILE") else {
            eprintln!("fdb_backend_conforms: FDB_CLUSTER_FILE is not set, no FoundationDB to test against");
            return;
        };
        let file = &file;
        conformance::run_all(|| async move {
            let prefix = format!("conformance-{:016x}", rand::random::<u64>());
            open(&format!("fdb://{file}?prefix={prefix}")).await.unwrap()
        })
        .await;
    }

    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn etcd_refuses_a_transaction_larger_than_it_takes() {
        let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else { return };
        let s = open(&format!("etcd://{endpoint}/big-{:x}?max_txn_ops=128", rand::random::<u64>())).await.unwrap();
        let e = transact(s.as_ref(), |t| {
            Box::pin(async move {
                for i in 0..200u32 {
                    t.set(&i.to_be_bytes(), b"v");
                }
                Ok(())
            })
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind, strata_common::ErrorKind::InvalidArgument);
        assert!(e.message.contains("not split"), "{e}");
        let none =
            transact(s.as_ref(), |t| Box::pin(async move { t.get_range(b"", b"\xff", 0, false).await })).await.unwrap();
        assert!(none.is_empty(), "nothing of it was written");
    }

    #[tokio::test]
    async fn embedded_backend_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("embedded://{}/meta.redb", dir.path().display());
        {
            let s = open(&url).await.unwrap();
            transact(s.as_ref(), |t| {
                Box::pin(async move {
                    t.set(b"k", b"v");
                    Ok(())
                })
            })
            .await
            .unwrap();
        }
        let s = open(&url).await.unwrap();
        let v = transact(s.as_ref(), |t| Box::pin(async move { t.get(b"k").await })).await.unwrap();
        assert_eq!(v.as_deref(), Some(&b"v"[..]));
    }
}
