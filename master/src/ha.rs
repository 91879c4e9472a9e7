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
