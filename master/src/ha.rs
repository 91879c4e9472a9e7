//! The primary role: which master serves, under which epoch, and where the primary is for the
//! callers a standby turns away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strata_common::kv::{KvStore, transact};
use strata_common::proto::MasterInfo;
use strata_common::{Error, ErrorKind, Result};

use crate::schema::Schema;
use crate::store::fenced::{FENCED_OFF, UNFENCED, take_epoch};

/// Whether this master serves, under which epoch, and who does if it does not.
pub struct HaState {
    primary: AtomicBool,
    /// The epoch this master's writes must find in the store (see `store::fenced`).
    pub(crate) fence: Arc<AtomicU64>,
    /// This master's address, as others reach it.
    pub(crate) address: String,
    primary_address: Mutex<String>,
    /// Every master taking part in the election, as last seen (for reports).
    masters: Mutex<Vec<MasterInfo>>,
    /// Counts the times this master stopped serving; requests in flight watch it.
    demotions: tokio::sync::watch::Sender<u64>,
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
            demotions: tokio::sync::watch::Sender::new(0),
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
            demotions: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn is_primary(&self) -> bool {
        self.primary.load(Ordering::SeqCst)
    }

    /// The epoch as the fence holds it: [`UNFENCED`] for a single master, [`FENCED_OFF`] when
    /// not serving.
    pub(crate) fn fence_epoch(&self) -> u64 {
        self.fence.load(Ordering::SeqCst)
    }

    /// Changes each time this master stops serving (subscribe before checking the role).
    pub fn demotions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.demotions.subscribe()
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

impl HaState {
    /// Fails with `NotPrimary` (naming the primary) unless this master serves.
    pub fn check_primary(&self) -> Result<()> {
        if self.is_primary() {
            return Ok(());
        }
        let primary = self.primary_address();
        Err(Error::new(
            ErrorKind::NotPrimary,
            if primary.is_empty() || primary == self.address {
                "this master is a standby and no primary is elected yet; retry shortly".to_string()
            } else {
                format!("this master is a standby; the primary is {primary}")
            },
        ))
    }

    /// Takes a new epoch in `raw` (fencing off every earlier primary) and writes under it.
    /// Not yet primary: see [`HaState::serve`].
    pub(crate) async fn take_epoch(&self, raw: &dyn KvStore) -> Result<u64> {
        let epoch = take_epoch(raw).await?;
        self.fence.store(epoch, Ordering::SeqCst);
        Ok(epoch)
    }

    /// Starts serving as the primary (after [`HaState::take_epoch`]).
    pub(crate) fn serve(&self) {
        self.set_primary_address(&self.address);
        self.primary.store(true, Ordering::SeqCst);
    }

    /// Stops serving at once; any write still in flight fails its epoch check.
    pub fn step_down(&self, why: &str) {
        self.fence.store(FENCED_OFF, Ordering::SeqCst);
        self.set_primary_address("");
        if self.primary.swap(false, Ordering::SeqCst) {
            self.demotions.send_modify(|n| *n += 1);
            tracing::warn!("this master stepped down from primary: {why}");
        }
    }
}

/// The persisted epoch (0: no primary ever took one).
pub async fn stored_epoch(store: &dyn KvStore) -> Result<u64> {
    transact(store, |t| Box::pin(async move { t.epoch().await })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_master_serves_unfenced_from_the_start() {
        let ha = HaState::single("http://a");
        assert!(ha.is_primary());
        assert_eq!(ha.epoch(), UNFENCED);
        assert!(ha.check_primary().is_ok());
        assert_eq!(ha.primary_address(), "http://a");
    }

    #[test]
    fn a_standby_names_the_primary_it_knows() {
        let ha = HaState::elected("http://b");
        let e = ha.check_primary().unwrap_err();
        assert!(e.is(ErrorKind::NotPrimary) && e.message.contains("no primary is elected yet"), "{e}");
        ha.set_primary_address("http://a");
        assert!(ha.check_primary().unwrap_err().message.contains("the primary is http://a"));
    }

    #[tokio::test]
    async fn taking_an_epoch_then_serving_then_stepping_down() {
        let raw = crate::store::open("memory://").await.unwrap();
        let ha = HaState::elected("http://b");
        let epoch = ha.take_epoch(raw.as_ref()).await.unwrap();
        assert_eq!((epoch, ha.epoch(), ha.is_primary()), (1, 1, false));
        ha.serve();
        assert!(ha.is_primary() && ha.check_primary().is_ok());
        assert_eq!(stored_epoch(raw.as_ref()).await.unwrap(), 1);
        let demoted = ha.demotions();
        ha.step_down("test");
        assert!(demoted.has_changed().unwrap(), "requests in flight hear of the step-down");
        assert_eq!((ha.is_primary(), ha.epoch(), ha.primary_address()), (false, 0, String::new()));
    }
}
