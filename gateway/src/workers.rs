//! Which worker serves a block: rendezvous hashing over the live workers, whose list the
//! gateway refreshes from the master every few seconds (no master round trip per read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use strata_common::api::{MasterApi, WorkerApi};
use strata_common::placement::rank;
use strata_common::proto::WorkerInfo;
use strata_common::worker_client::HttpWorker;

use crate::error::{S3Error, S3ErrorCode, S3Result};

const REFRESH: Duration = Duration::from_secs(2);
/// The address an in-process worker registers under (`strata local`).
pub const IN_PROCESS: &str = strata_common::api::IN_PROCESS;

#[derive(Default)]
struct State {
    workers: Vec<WorkerInfo>,
    handles: HashMap<u64, Arc<dyn WorkerApi>>,
    /// The same handles by address: a worker back under its id at another address (a pod's
    /// new IP) gets a client for that address.
    by_address: HashMap<String, Arc<dyn WorkerApi>>,
    fetched: Option<Instant>,
}

/// The worker of the gateway's own process, called without a socket: `strata local`'s (at
/// [`IN_PROCESS`]) or a worker serving S3 too (at the address it registered).
#[derive(Clone)]
pub struct LocalWorker {
    pub address: String,
    pub api: Arc<dyn WorkerApi>,
}

pub struct WorkerPool {
    master: Arc<dyn MasterApi>,
    local: Option<LocalWorker>,
    secret: String,
    http: reqwest::Client,
    state: RwLock<State>,
    refreshing: tokio::sync::Mutex<()>,
}

impl WorkerPool {
    pub fn new(master: Arc<dyn MasterApi>, local: Option<LocalWorker>, secret: String) -> WorkerPool {
        WorkerPool {
            master,
            local,
            secret,
            http: HttpWorker::client(),
            state: RwLock::new(State::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> bool {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.fetched.is_some_and(|t| t.elapsed() < REFRESH) && !s.workers.is_empty()
    }

    async fn refresh(&self) -> S3Result<()> {
        let _one = self.refreshing.lock().await;
        if self.fresh() {
            return Ok(());
        }
        let workers = self.master.list_workers().await?;
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        let (mut handles, mut by_address) = (HashMap::new(), HashMap::new());
        for w in &workers {
            let handle = match s.by_address.get(&w.address) {
                Some(h) => h.clone(),
                None => match &self.local {
                    Some(l) if l.address == w.address => l.api.clone(),
                    _ if w.address == IN_PROCESS => continue,
                    _ => Arc::new(HttpWorker::new(&w.address, &self.secret, self.http.clone())) as Arc<dyn WorkerApi>,
                },
            };
            by_address.insert(w.address.clone(), handle.clone());
            handles.insert(w.id, handle);
        }
        s.workers = workers.into_iter().filter(|w| handles.contains_key(&w.id)).collect();
        s.handles = handles;
        s.by_address = by_address;
        s.fetched = Some(Instant::now());
        Ok(())
    }

    /// The workers for a block, owner first. Errors when none is alive.
    pub async fn ranked(&self, version: u64, block: u64) -> S3Result<Vec<Arc<dyn WorkerApi>>> {
        if !self.fresh()
            && let Err(e) = self.refresh().await
        {
            // A stale list beats none while the master is briefly away.
            tracing::warn!("cannot refresh the worker list: {}", e.message);
        }
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        let order: Vec<Arc<dyn WorkerApi>> =
            rank(&s.workers, version, block).into_iter().filter_map(|w| s.handles.get(&w.id).cloned()).collect();
        if order.is_empty() {
            return Err(S3Error::new(
                S3ErrorCode::ServiceUnavailable,
                "No worker is alive to serve the data; start a worker or check its logs.",
            ));
        }
        Ok(order)
    }

    /// The worker owning block 0 of `version`, with its id.
    pub async fn owner(&self, version: u64) -> S3Result<(u64, Arc<dyn WorkerApi>)> {
        if !self.fresh()
            && let Err(e) = self.refresh().await
        {
            tracing::warn!("cannot refresh the worker list: {}", e.message);
        }
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        rank(&s.workers, version, 0)
            .into_iter()
            .find_map(|w| s.handles.get(&w.id).map(|h| (w.id, h.clone())))
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::ServiceUnavailable,
                    "No worker is alive to take the write; start a worker or check its logs.",
                )
            })
    }

    /// The worker of this id, if it is alive.
    pub async fn by_id(&self, id: u64) -> Option<Arc<dyn WorkerApi>> {
        if !self.fresh() {
            let _ = self.refresh().await;
        }
        self.state.read().unwrap_or_else(|p| p.into_inner()).handles.get(&id).cloned()
    }

    /// Whether one worker owns every block of an object of `size` bytes (so it may cache all of
    /// a write it receives).
    pub async fn single_owner(&self, version: u64, size: Option<u64>, block_size: u64) -> bool {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        if s.workers.len() <= 1 {
            return true;
        }
        match size {
            Some(n) if n > 0 => {
                let owner = |b| rank(&s.workers, version, b).first().map(|w| w.id);
                let first = owner(0);
                (1..n.div_ceil(block_size)).all(|b| owner(b) == first)
            }
            Some(_) => true,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_master::{Master, MasterOptions, RootCredentials};
    use strata_worker::{EvictionPolicy, Medium, PageStore, TierSpec, Worker};

    async fn master(dir: &std::path::Path) -> Arc<Master> {
        let store = strata_master::store::open("memory://").await.unwrap();
        let opts = MasterOptions {
            root_ufs: format!("file://{}", dir.display()),
            credentials: RootCredentials::new("AK".into(), "SK".into()),
            worker_timeout: Duration::from_secs(3600),
            address: IN_PROCESS.into(),
            elected: false,
            block_size: 1 << 20,
            listing_sync_wait: Duration::from_secs(20),
        };
        Arc::new(Master::new(store, opts).unwrap())
    }

    async fn register(m: &Master, id: u64, address: &str) -> u64 {
        m.register_worker(WorkerInfo { id, address: address.into(), capacity_bytes: 1 << 20, ..Default::default() })
            .await
            .unwrap()
            .id
    }

    #[tokio::test]
    async fn the_worker_at_the_local_address_is_called_in_process_and_a_moved_one_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let m = master(dir.path()).await;
        let (here, there) = ("http://10.0.0.1:9200", "http://10.0.0.2:9200");
        let a = register(&m, 0, here).await;
        let b = register(&m, 0, there).await;
        let tiers = vec![TierSpec { medium: Medium::Mem, dirs: vec![], quota: 1 << 20 }];
        let cache = PageStore::open(4096, tiers, EvictionPolicy::Lru).unwrap();
        let api: Arc<dyn WorkerApi> =
            Arc::new(Worker::new(m.clone() as Arc<dyn MasterApi>, cache, &dir.path().join("journal")).unwrap());
        let local = LocalWorker { address: here.into(), api: api.clone() };
        let pool = WorkerPool::new(m.clone() as Arc<dyn MasterApi>, Some(local), "secret".into());
        let local_of = |h: Option<Arc<dyn WorkerApi>>| Arc::ptr_eq(&h.unwrap(), &api);
        assert!(local_of(pool.by_id(a).await), "the worker of this process");
        let b_client = pool.by_id(b).await.unwrap();
        assert!(!Arc::ptr_eq(&b_client, &api), "another worker is called over HTTP");

        // Both come back under their ids at other addresses (pods with new IPs).
        register(&m, a, "http://10.0.0.3:9200").await;
        register(&m, b, "http://10.0.0.4:9200").await;
        pool.state.write().unwrap().fetched = None;
        assert!(!local_of(pool.by_id(a).await), "no longer at this process's address");
        assert!(!Arc::ptr_eq(&pool.by_id(b).await.unwrap(), &b_client), "a client for the new address");
    }
}
