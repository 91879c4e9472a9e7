//! Worker membership: soft state, rebuilt from registrations after a master restart (a worker
//! told `reregister` registers again). Only the worker id counter is persisted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use strata_common::kv::{decode_i64, transact};
use strata_common::proto::{HeartbeatRequest, HeartbeatResponse, WorkerInfo};
use strata_common::{Result, ids, keys};

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
                w.last_heartbeat_ms = ids::now_ms();
                HeartbeatResponse { reregister: false }
            }
            None => HeartbeatResponse { reregister: true },
        }
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
        if info.id == 0 {
            info.id = transact(self.store.as_ref(), |t| {
                Box::pin(async move {
                    let k = keys::worker_id_counter();
                    let next = t.get(&k).await?.map(|v| decode_i64(&v)).unwrap_or(0) + 1;
                    t.set(&k, &next.to_le_bytes());
                    Ok(next as u64)
                })
            })
            .await?;
        }
        let now = ids::now_ms();
        info.registered_ms = now;
        info.last_heartbeat_ms = now;
        let mut workers = self.membership.lock();
        // One address, one worker: a restarted worker that lost its id replaces its old entry.
        workers.retain(|id, w| *id == info.id || w.address != info.address);
        workers.insert(info.id, info.clone());
        tracing::info!(worker = info.id, address = %info.address, capacity = info.capacity_bytes, "worker registered");
        Ok(info)
    }
}
