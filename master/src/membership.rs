//! Worker membership. Registrations are persisted (so a new primary starts with the workers
//! the last one knew, and placement does not move at a takeover); heartbeats are soft state.
//! A worker unknown to this master (it restarted from an old store) is told to register again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_common::kv::{KvStore, transact};
use strata_common::proto::{HeartbeatRequest, HeartbeatResponse, WorkerInfo};
use strata_common::{Result, ids};

use crate::schema::Schema;

/// The workers this master knows, and their registrations in the store.
pub struct Membership {
    store: Arc<dyn KvStore>,
    workers: Mutex<HashMap<u64, WorkerInfo>>,
    timeout: Duration,
}

impl Membership {
    pub fn new(store: Arc<dyn KvStore>, timeout: Duration) -> Membership {
        Membership { store, workers: Mutex::new(HashMap::new()), timeout }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, WorkerInfo>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn heartbeat(&self, req: &HeartbeatRequest) -> HeartbeatResponse {
        match self.lock().get_mut(&req.worker_id) {
            Some(w) => {
                w.capacity_bytes = req.capacity_bytes;
                w.used_bytes = req.used_bytes;
                w.tiers = req.tiers.clone();
                (w.cache_misses, w.fill_bytes) = (req.cache_misses, req.fill_bytes);
                (w.loads_running, w.loads_done, w.load_bytes) = (req.loads_running, req.loads_done, req.load_bytes);
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

    /// Workers heard from within the timeout, by id, and the in-process worker of `strata
    /// local` (alive while this process is: a heartbeat late under CPU load must not take the
    /// only worker out of placement).
    pub fn live(&self) -> Vec<WorkerInfo> {
        let cutoff = ids::now_ms() - self.timeout.as_millis() as i64;
        let mut live: Vec<WorkerInfo> = self
            .lock()
            .values()
            .filter(|w| w.last_heartbeat_ms >= cutoff || w.address == strata_common::api::IN_PROCESS)
            .cloned()
            .collect();
        live.sort_by_key(|w| w.id);
        live
    }
}

impl Membership {
    /// A worker keeps its id across restarts (its disk cache stays valid for the blocks it
    /// owns); a new worker (id 0) gets the next one.
    pub(crate) async fn register(&self, mut info: WorkerInfo) -> Result<WorkerInfo> {
        let now = ids::now_ms();
        info.registered_ms = now;
        info.last_heartbeat_ms = now;
        let stale: Vec<u64> = {
            let workers = self.lock();
            workers.iter().filter(|(id, w)| **id != info.id && w.address == info.address).map(|(id, _)| *id).collect()
        };
        info.id = transact(self.store.as_ref(), |t| {
            let (mut info, stale) = (info.clone(), stale.clone());
            Box::pin(async move {
                if info.id == 0 {
                    info.id = t.next_worker_id().await?;
                }
                for id in stale {
                    t.remove_worker(id);
                }
                t.put_worker(&info);
                Ok(info.id)
            })
        })
        .await?;
        let mut workers = self.lock();
        // One address, one worker: a restarted worker that lost its id replaces its old entry.
        workers.retain(|id, w| *id == info.id || w.address != info.address);
        workers.insert(info.id, info.clone());
        tracing::info!(worker = info.id, address = %info.address, capacity = info.capacity_bytes, "worker registered");
        Ok(info)
    }

    /// Reloads the workers registered with an earlier primary (`raw`: the store without the
    /// epoch check), each given one timeout from now to heartbeat.
    pub(crate) async fn reload(&self, raw: &dyn KvStore) -> Result<()> {
        let known = transact(raw, |t| Box::pin(async move { t.workers().await })).await?;
        self.restore(known);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn membership(timeout: Duration) -> Membership {
        Membership::new(crate::store::open("memory://").await.unwrap(), timeout)
    }

    fn worker(address: &str, id: u64) -> WorkerInfo {
        WorkerInfo { address: address.into(), id, ..Default::default() }
    }

    #[tokio::test]
    async fn new_workers_get_ids_and_a_known_one_keeps_its_own() {
        let m = membership(Duration::from_secs(5)).await;
        let a = m.register(worker("http://a", 0)).await.unwrap();
        let b = m.register(worker("http://b", 0)).await.unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        let again = m.register(worker("http://a", 1)).await.unwrap();
        assert_eq!(again.id, 1);
        assert_eq!(m.live().iter().map(|w| w.id).collect::<Vec<_>>(), [1, 2]);
    }

    #[tokio::test]
    async fn a_worker_that_lost_its_id_replaces_its_old_entry() {
        let m = membership(Duration::from_secs(5)).await;
        m.register(worker("http://a", 0)).await.unwrap();
        let fresh = m.register(worker("http://a", 0)).await.unwrap();
        assert_eq!(fresh.id, 2);
        assert_eq!(m.all().iter().map(|w| w.id).collect::<Vec<_>>(), [2]);
        // And the store forgot the old one too: a reload knows only the new id.
        let other = Membership::new(m.store.clone(), Duration::from_secs(5));
        other.reload(m.store.as_ref()).await.unwrap();
        assert_eq!(other.all().iter().map(|w| w.id).collect::<Vec<_>>(), [2]);
    }

    #[tokio::test]
    async fn heartbeats_update_known_workers_and_ask_unknown_ones_to_register() {
        let m = membership(Duration::from_secs(5)).await;
        let w = m.register(worker("http://a", 0)).await.unwrap();
        let hb = HeartbeatRequest { worker_id: w.id, capacity_bytes: 9, used_bytes: 4, ..Default::default() };
        assert!(!m.heartbeat(&hb).reregister);
        assert_eq!((m.all()[0].capacity_bytes, m.all()[0].used_bytes), (9, 4));
        assert!(m.heartbeat(&HeartbeatRequest { worker_id: 77, ..Default::default() }).reregister);
    }

    #[tokio::test]
    async fn a_silent_worker_is_not_live_but_still_known() {
        let m = membership(Duration::from_millis(0)).await;
        m.register(worker("http://a", 0)).await.unwrap();
        m.lock().values_mut().for_each(|w| w.last_heartbeat_ms -= 1000);
        assert!(m.live().is_empty());
        assert_eq!(m.all().len(), 1);
    }

    #[tokio::test]
    async fn the_in_process_worker_stays_live_with_late_heartbeats() {
        let m = membership(Duration::from_millis(0)).await;
        m.register(worker(strata_common::api::IN_PROCESS, 0)).await.unwrap();
        m.register(worker("http://a", 0)).await.unwrap();
        m.lock().values_mut().for_each(|w| w.last_heartbeat_ms -= 60_000);
        let live: Vec<String> = m.live().into_iter().map(|w| w.address).collect();
        assert_eq!(live, [strata_common::api::IN_PROCESS]);
    }
}
