//! The primary role: which master serves, under which epoch, and where the primary is for the
//! callers a standby turns away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strata_common::kv::{KvStore, decode_i64, transact};
use strata_common::proto::{MasterInfo, WorkerInfo};
use strata_common::{Error, ErrorKind, Result, codec, keys};

use crate::master::Master;
use crate::store::fenced::{FENCED_OFF, UNFENCED, take_epoch};

pub struct HaState {
    primary: AtomicBool,
    /// The epoch this master's writes must find in the store (see `store::fenced`).
    pub(crate) fence: Arc<AtomicU64>,
    /// This master's address, as others reach it.
    pub(crate) address: String,
    primary_address: Mutex<String>,
    /// Every master taking part in the election, as last seen (for reports).
    masters: Mutex<Vec<MasterInfo>>,
}

impl HaState {
    /// A single master: primary from the start, with no fencing.
    pub fn single(address: &str) -> HaState {
        HaState {
            primary: AtomicBool::new(true),
            fence: Arc::new(AtomicU64::new(UNFENCED)),
            address: address.to_string(),
            primary_address: Mutex::new(address.to_string()),
            masters: Mutex::new(Vec::new()),
        }
    }

    /// One of several masters: a standby until it wins the election.
    pub fn elected(address: &str) -> HaState {
        HaState {
            primary: AtomicBool::new(false),
            fence: Arc::new(AtomicU64::new(FENCED_OFF)),
            address: address.to_string(),
            primary_address: Mutex::new(String::new()),
            masters: Mutex::new(Vec::new()),
        }
    }

    pub fn is_primary(&self) -> bool {
        self.primary.load(Ordering::SeqCst)
    }

    pub fn epoch(&self) -> u64 {
        match self.fence.load(Ordering::SeqCst) {
            FENCED_OFF => 0,
            e => e,
        }
    }

    pub fn primary_address(&self) -> String {
        self.primary_address.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_primary_address(&self, address: &str) {
        *self.primary_address.lock().unwrap_or_else(|p| p.into_inner()) = address.to_string();
    }

    pub fn set_masters(&self, masters: Vec<MasterInfo>) {
        *self.masters.lock().unwrap_or_else(|p| p.into_inner()) = masters;
    }

    pub fn masters(&self) -> Vec<MasterInfo> {
        self.masters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Master {
    /// Fails with `NotPrimary` (naming the primary) unless this master serves.
    pub fn check_primary(&self) -> Result<()> {
        if self.ha.is_primary() {
            return Ok(());
        }
        let primary = self.ha.primary_address();
        Err(Error::new(
            ErrorKind::NotPrimary,
            if primary.is_empty() || primary == self.ha.address {
                "this master is a standby and no primary is elected yet; retry shortly".to_string()
            } else {
                format!("this master is a standby; the primary is {primary}")
            },
        ))
    }

    pub fn ha(&self) -> &HaState {
        &self.ha
    }

    /// Becomes the primary: takes a new epoch (fencing off every earlier primary), then reloads
    /// what the last primary knew of workers. Returns the epoch.
    pub async fn take_over(&self) -> Result<u64> {
        let epoch = take_epoch(self.raw_store.as_ref()).await?;
        self.ha.fence.store(epoch, Ordering::SeqCst);
        // Version ids come from blocks reserved under the new epoch.
        *self.versions.lock().await = (0, 0);
        let known = load_workers(self.raw_store.as_ref()).await?;
        self.membership.restore(known);
        self.ha.set_primary_address(&self.ha.address);
        self.ha.primary.store(true, Ordering::SeqCst);
        tracing::info!(epoch, address = %self.ha.address, "this master is now the primary");
        Ok(epoch)
    }

    /// Stops serving at once; any write still in flight fails its epoch check.
    pub fn step_down(&self, why: &str) {
        self.ha.fence.store(FENCED_OFF, Ordering::SeqCst);
        self.ha.set_primary_address("");
        if self.ha.primary.swap(false, Ordering::SeqCst) {
            tracing::warn!("this master stepped down from primary: {why}");
        }
    }
}

async fn load_workers(store: &dyn KvStore) -> Result<Vec<WorkerInfo>> {
    let rows = transact(store, |t| {
        Box::pin(async move {
            let (b, e) = keys::workers();
            t.get_range(&b, &e, 0, false).await
        })
    })
    .await?;
    rows.iter().map(|(_, v)| codec::decode(v)).collect()
}

/// The persisted epoch (0: no primary ever took one).
pub async fn stored_epoch(store: &dyn KvStore) -> Result<u64> {
    transact(store, |t| Box::pin(async move { Ok(t.get(&keys::epoch()).await?.map(|v| decode_i64(&v) as u64)) }))
        .await
        .map(|e| e.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use strata_common::ErrorKind;
    use strata_common::api::MasterApi;
    use strata_common::kv::{KvStore, transact};

    use super::*;
    use crate::master::MasterOptions;
    use crate::{RootCredentials, store};

    fn master(store: Arc<dyn KvStore>, dir: &std::path::Path, address: &str) -> Master {
        let opts = MasterOptions {
            root_ufs: format!("file://{}", dir.display()),
            credentials: RootCredentials { access_key: "a".into(), secret_key: "s".into() },
            worker_timeout: Duration::from_secs(5),
            address: address.into(),
            elected: true,
            block_size: 64 << 20,
        };
        Master::new(store, opts).unwrap()
    }

    async fn bucket_exists(s: &dyn KvStore, name: &str) -> bool {
        let name = name.to_string();
        transact(s, |t| {
            let name = name.clone();
            Box::pin(async move { t.get(&keys::bucket(&name)).await })
        })
        .await
        .unwrap()
        .is_some()
    }

    /// Two masters on one store: once the second takes an epoch, nothing the first writes lands.
    async fn an_old_primary_writes_nothing(shared: Arc<dyn KvStore>) {
        let dir = tempfile::tempdir().unwrap();
        let a = master(shared.clone(), dir.path(), "http://a");
        let b = master(shared.clone(), dir.path(), "http://b");
        assert!(a.check_primary().unwrap_err().is(ErrorKind::NotPrimary), "a standby until elected");
        let e1 = a.take_over().await.unwrap();
        a.create_bucket("one").await.unwrap();
        let e2 = b.take_over().await.unwrap();
        assert!(e2 > e1);
        // `a` still believes it is primary (it has not heard of the takeover), yet its writes fail.
        assert!(a.ha().is_primary());
        let e = a.create_bucket("two").await.unwrap_err();
        assert!(e.is(ErrorKind::NotPrimary), "{e}");
        let e = a.allocate_version().await.unwrap_err();
        assert!(e.is(ErrorKind::NotPrimary), "{e}");
        assert!(!bucket_exists(shared.as_ref(), "two").await, "the fenced write left nothing");
        // Reads still work for it, and the new primary writes.
        assert!(a.get_bucket("one").await.is_ok());
        b.create_bucket("three").await.unwrap();
        a.step_down("test");
        assert!(a.check_primary().unwrap_err().message.contains("standby"));
        assert_eq!(stored_epoch(shared.as_ref()).await.unwrap(), e2);
    }

    #[tokio::test]
    async fn fencing_on_memory_store() {
        an_old_primary_writes_nothing(store::open("memory://").await.unwrap()).await;
    }

    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn fencing_on_etcd() {
        let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else { return };
        let url = format!("etcd://{endpoint}/fence-{:x}", rand::random::<u64>());
        an_old_primary_writes_nothing(store::open(&url).await.unwrap()).await;
    }

    /// Workers registered with one primary are known to the next (placement does not move).
    #[tokio::test]
    async fn a_new_primary_knows_the_workers() {
        let dir = tempfile::tempdir().unwrap();
        let shared = store::open("memory://").await.unwrap();
        let a = master(shared.clone(), dir.path(), "http://a");
        a.take_over().await.unwrap();
        let w = a
            .register_worker(WorkerInfo { address: "http://w1".into(), capacity_bytes: 7, ..Default::default() })
            .await
            .unwrap();
        let b = master(shared, dir.path(), "http://b");
        b.take_over().await.unwrap();
        let live = b.list_workers().await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].id, live[0].address.as_str(), live[0].capacity_bytes), (w.id, "http://w1", 7));
    }

    /// Two masters campaign in a real etcd: one serves, the other names it; when the primary
    /// leaves, the standby takes over with a higher epoch.
    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn election_hands_over() {
        use crate::election::{ElectionOptions, run};
        use tokio_util::sync::CancellationToken;
        let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else { return };
        let tag = format!("{:x}", rand::random::<u64>());
        let shared = store::open(&format!("etcd://{endpoint}/elect-{tag}")).await.unwrap();
        let opts = ElectionOptions::parse(&format!("etcd://{endpoint}/cluster-{tag}"), Duration::from_secs(2)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(master(shared.clone(), dir.path(), "http://a"));
        let b = Arc::new(master(shared.clone(), dir.path(), "http://b"));
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let ja = tokio::spawn(run(a.clone(), opts.clone(), stop_a.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let jb = tokio::spawn(run(b.clone(), opts.clone(), stop_b.clone()));
        let mut waited = 0;
        while !(a.ha().is_primary() && b.ha().primary_address() == "http://a") {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
            assert!(waited < 200, "a did not become primary, or b does not name it");
        }
        assert!(!b.ha().is_primary());
        let e = b.check_primary().unwrap_err();
        assert!(e.message.contains("http://a"), "{e}");
        let first = a.ha().epoch();
        stop_a.cancel();
        ja.await.unwrap();
        assert!(!a.ha().is_primary());
        let mut waited = 0;
        while !b.ha().is_primary() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
            assert!(waited < 200, "b did not take over");
        }
        assert!(b.ha().epoch() > first);
        b.create_bucket("after").await.unwrap();
        assert!(a.create_bucket("never").await.unwrap_err().is(ErrorKind::NotPrimary));
        stop_b.cancel();
        jb.await.unwrap();
    }
}
