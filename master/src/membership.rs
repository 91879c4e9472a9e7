//! Worker membership. Registrations are persisted (so a new primary starts with the workers
//! the last one knew, and placement does not move at a takeover); heartbeats are soft state.
//! A worker unknown to this master (it restarted from an old store) is told to register again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use strata_common::kv::{decode_i64, transact};
use strata_common::proto::{HeartbeatRequest, HeartbeatResponse, WorkerInfo};
use strata_common::{Result, codec, ids, keys};

use crate::master::Master;

pub struct Membership {
    workers: Mutex<HashMap<u64, WorkerInfo>>,
    timeout: Duration,
}

impl Membership {
    pub fn new(timeout: Duration) -> Membership {
        Membership { workers: Mutex::new(HashMap::new()), timeout }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, WorkerInfo>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn heartbeat(&self, req: &HeartbeatRequest) -> HeartbeatResponse {
        match self.lock().get_mut(&req.worker_id) {
            Some(w) => {
                w.capacity_bytes = req.capacity_bytes;
                w.used_bytes = req.used_bytes;
                w.tiers = req.tiers.clone();
                w.last_heartbeat_ms = ids::now_ms();
                HeartbeatResponse { reregister: false, ..Default::default() }
            }
            None => HeartbeatResponse { reregister: true, ..Default::default() },
        }
    }

    /// Workers registered with an earlier primary, given one timeout from now to heartbeat.
    pub fn restore(&self, known: Vec<WorkerInfo>) {
        let now = ids::now_ms();
        let mut workers = self.lock();
        workers.clear();
        for mut w in known {
            w.last_heartbeat_ms = now;
            workers.insert(w.id, w);
        }
    }

    /// Every worker this master knows, live or not, by id.
    pub fn all(&self) -> Vec<WorkerInfo> {
        let mut all: Vec<WorkerInfo> = self.lock().values().cloned().collect();
        all.sort_by_key(|w| w.id);
        all
    }

    /// Workers heard from within the timeout, by id.
    pub fn live(&self) -> Vec<WorkerInfo> {
        let cutoff = ids::now_ms() - self.timeout.as_millis() as i64;
        let mut live: Vec<WorkerInfo> =
            self.lock().values().filter(|w| w.last_heartbeat_ms >= cutoff).cloned().collect();
        live.sort_by_key(|w| w.id);
        live
    }
}

impl Master {
    /// A worker keeps its id across restarts (its disk cache stays valid for the blocks it
    /// owns); a new worker (id 0) gets the next one.
    pub(crate) async fn do_register_worker(&self, mut info: WorkerInfo) -> Result<WorkerInfo> {
        let now = ids::now_ms();
        info.registered_ms = now;
        info.last_heartbeat_ms = now;
        let stale: Vec<u64> = {
            let workers = self.membership.lock();
            workers.iter().filter(|(id, w)| **id != info.id && w.address == info.address).map(|(id, _)| *id).collect()
        };
        info.id = transact(self.store.as_ref(), |t| {
            let (mut info, stale) = (info.clone(), stale.clone());
            Box::pin(async move {
                if info.id == 0 {
                    let k = keys::worker_id_counter();
                    let next = t.get(&k).await?.map(|v| decode_i64(&v)).unwrap_or(0) + 1;
                    t.set(&k, &next.to_le_bytes());
                    info.id = next as u64;
                }
                for id in stale {
                    t.clear(&keys::worker(id));
                }
                t.set(&keys::worker(info.id), &codec::encode(&info));
                Ok(info.id)
            })
        })
        .await?;
        let mut workers = self.membership.lock();
        // One address, one worker: a restarted worker that lost its id replaces its old entry.
        workers.retain(|id, w| *id == info.id || w.address != info.address);
        workers.insert(info.id, info.clone());
        tracing::info!(worker = info.id, address = %info.address, capacity = info.capacity_bytes, "worker registered");
        Ok(info)
    }
}
