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
        let mut handles = HashMap::new();
        for w in &workers {
            let handle = match s.handles.get(&w.id) {
                Some(h) => h.clone(),
                None => match &self.local {
                    Some(l) if l.address == w.address => l.api.clone(),
                    _ if w.address == IN_PROCESS => continue,
                    _ => Arc::new(HttpWorker::new(&w.address, &self.secret, self.http.clone())) as Arc<dyn WorkerApi>,
                },
            };
            handles.insert(w.id, handle);
        }
        s.workers = workers.into_iter().filter(|w| handles.contains_key(&w.id)).collect();
        s.handles = handles;
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
