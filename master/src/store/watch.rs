//! The metadata watch: gateways' caches of object metadata, buckets and credentials stay exact
//! because every committed write of such a key is published to every watching gateway, and
//! the commit returns only once each of them has acknowledged it, or has been cut off and its
//! lease has run out (`gateway/src/meta_cache.rs` is the other half; the argument is in the
//! commit that brought both).
//!
//! Leases: a gateway trusts its cache until `LEASE` after it sent the ack that the master's
//! latest message says it received, so the master knows each gateway's trust ends by
//! `last_ack_at + LEASE`. A gateway cut off (slow to ack, stream gone), and every gateway of a
//! previous master instance or primary term, is waited out that long before a commit returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_common::keys::Changed;
use strata_common::proto::{MetaWatchEvent, ObjectRef};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fenced::FENCED_OFF;

/// How long a gateway trusts its cache after an acknowledged ack.
pub const LEASE: Duration = Duration::from_millis(1000);
/// What the master adds to a lease it waits out (clock rates differ a little).
const LEASE_MARGIN: Duration = Duration::from_millis(100);
/// How often every watcher hears from the master (and renews its lease by acking).
pub const HEARTBEAT: Duration = Duration::from_millis(200);
/// A watcher that has not acked a commit within this is cut off.
const ACK_TIMEOUT: Duration = Duration::from_millis(500);

pub struct MetaWatch {
    state: Mutex<State>,
    /// The fencing epoch: FENCED_OFF means not primary, so no watcher is served.
    fence: Arc<AtomicU64>,
}

struct State {
    epoch: u64,
    seq: u64,
    next_id: u64,
    watchers: HashMap<u64, Arc<Watcher>>,
    /// Commits return no earlier than this: leases a gateway may still hold without being
    /// watched (cut off, or granted by an earlier master) have run out by then.
    quiet_until: Instant,
    /// Whether gateways may watch from another process (a master serving gRPC).
    remote: bool,
    heartbeats: bool,
}

pub struct Watcher {
    /// Taken when cut off, which ends the gateway's stream.
    tx: Mutex<Option<mpsc::UnboundedSender<MetaWatchEvent>>>,
    acked: watch::Sender<u64>,
    lease: Mutex<Lease>,
}

struct Lease {
    ping: u64,
    last_ack_at: Instant,
    cut: bool,
}

impl Watcher {
    /// The gateway applied every event up to `seq`; `ping` numbers this ack.
    pub fn ack(&self, seq: u64, ping: u64) {
        let mut l = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if l.cut {
            return;
        }
        l.ping = l.ping.max(ping);
        l.last_ack_at = Instant::now();
        drop(l);
        self.acked.send_if_modified(|s| {
            let newer = seq > *s;
            *s = (*s).max(seq);
            newer
        });
    }

    /// Stops renewing and ends the stream; returns when the gateway's lease has surely run out.
    fn cut(&self) -> Instant {
        let mut l = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        l.cut = true;
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        l.last_ack_at + LEASE + LEASE_MARGIN
    }

    fn send(&self, m: MetaWatchEvent) -> bool {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|tx| tx.send(m).is_ok())
    }

    fn message(&self, epoch: u64, seq: u64) -> MetaWatchEvent {
        let ping = self.lease.lock().unwrap_or_else(|p| p.into_inner()).ping;
        MetaWatchEvent { epoch, seq, acked_ping: ping, lease_ms: LEASE.as_millis() as u64, ..Default::default() }
    }
}

impl MetaWatch {
    pub fn new(fence: Arc<AtomicU64>) -> MetaWatch {
        MetaWatch {
            state: Mutex::new(State {
                epoch: rand::random(),
                seq: 0,
                next_id: 0,
                watchers: HashMap::new(),
                quiet_until: Instant::now(),
                remote: false,
                heartbeats: false,
            }),
            fence,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serving(&self) -> bool {
        self.fence.load(Ordering::SeqCst) != FENCED_OFF
    }

    /// Gateways in other processes may watch from now on: a master that starts (or a new
    /// primary term, see [`MetaWatch::new_term`]) waits out the leases an earlier one granted.
    pub fn serve_remote(&self) {
        let mut s = self.lock();
        s.remote = true;
        s.quiet_until = s.quiet_until.max(Instant::now() + LEASE + LEASE_MARGIN);
    }

    /// A new primary term: a new epoch, every watcher dropped (they resubscribe).
    pub fn new_term(&self) {
        let mut s = self.lock();
        s.epoch = rand::random();
        s.seq = 0;
        let until = s.watchers.drain().map(|(_, w)| w.cut()).max();
        let lease_end = if s.remote { Some(Instant::now() + LEASE + LEASE_MARGIN) } else { None };
        s.quiet_until = s.quiet_until.max(until.into_iter().chain(lease_end).max().unwrap_or(s.quiet_until));
    }

    /// A new watcher: its id, itself and its stream (a first heartbeat is in it already).
    pub fn subscribe(self: &Arc<Self>) -> (u64, Arc<Watcher>, mpsc::UnboundedReceiver<MetaWatchEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let w = Arc::new(Watcher {
            tx: Mutex::new(Some(tx)),
            acked: watch::Sender::new(0),
            lease: Mutex::new(Lease { ping: 0, last_ack_at: Instant::now(), cut: false }),
        });
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        w.acked.send_replace(s.seq);
        let mut hello = w.message(s.epoch, s.seq);
        hello.heartbeat = true;
        w.send(hello);
        s.watchers.insert(id, w.clone());
        if !s.heartbeats {
            s.heartbeats = true;
            tokio::spawn(self.clone().heartbeat_loop());
        }
        (id, w, rx)
    }

    /// Shutdown: every watcher's stream ends (its gateway drops its cache and looks for a master),
    /// so the server's drain does not wait on streams that never end by themselves.
    pub fn close_all(&self) {
        let mut s = self.lock();
        let until = s.watchers.drain().map(|(_, w)| w.cut()).max();
        s.quiet_until = s.quiet_until.max(until.unwrap_or(s.quiet_until));
    }

    /// The watcher's stream ended: its gateway is waited out like a cut-off one.
    pub fn unsubscribe(&self, id: u64) {
        let mut s = self.lock();
        if let Some(w) = s.watchers.remove(&id) {
            s.quiet_until = s.quiet_until.max(w.cut());
        }
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            let serving = self.serving();
            let mut s = self.lock();
            if !serving {
                // Stepped down: no watcher hears from this master again.
                let until = s.watchers.drain().map(|(_, w)| w.cut()).max();
                s.quiet_until = s.quiet_until.max(until.unwrap_or(s.quiet_until));
                continue;
            }
            let (epoch, seq) = (s.epoch, s.seq);
            s.watchers.retain(|_, w| {
                let mut m = w.message(epoch, seq);
                m.heartbeat = true;
                w.send(m)
            });
        }
    }

    /// Publishes the changed keys of a commit and waits until every watcher has applied them
    /// (or was cut off and its lease ran out).
    pub async fn publish(&self, changed: &[Changed], everything: bool) {
        let mut objects = Vec::new();
        let mut buckets = Vec::new();
        let mut credentials = false;
        for c in changed {
            match c {
                Changed::Object { bucket, key } => objects.push(ObjectRef { bucket: bucket.clone(), key: key.clone() }),
                Changed::Bucket(b) => buckets.push(b.clone()),
                Changed::Credentials => credentials = true,
                Changed::Other => {}
            }
        }
        let (seq, waiting, quiet_until) = {
            let mut s = self.lock();
            if s.watchers.is_empty() {
                (0, Vec::new(), s.quiet_until)
            } else {
                s.seq += 1;
                let (epoch, seq) = (s.epoch, s.seq);
                let mut waiting = Vec::with_capacity(s.watchers.len());
                let mut gone = Vec::new();
                for (id, w) in &s.watchers {
                    let mut m = w.message(epoch, seq);
                    m.objects = objects.clone();
                    m.buckets = buckets.clone();
                    m.credentials = credentials;
                    m.everything = everything;
                    if w.send(m) {
                        waiting.push((*id, w.clone()));
                    } else {
                        gone.push(*id);
                    }
                }
                for id in gone {
                    if let Some(w) = s.watchers.remove(&id) {
                        s.quiet_until = s.quiet_until.max(w.cut());
                    }
                }
                (seq, waiting, s.quiet_until)
            }
        };
        let acks = waiting.into_iter().map(|(id, w)| async move {
            let mut rx = w.acked.subscribe();
            if tokio::time::timeout(ACK_TIMEOUT, rx.wait_for(|s| *s >= seq)).await.is_ok_and(|r| r.is_ok()) {
                return None;
            }
            tracing::warn!(
                watcher = id,
                seq,
                "a gateway did not acknowledge a metadata change in time; cutting it off"
            );
            let mut s = self.lock();
            s.watchers.remove(&id);
            let until = w.cut();
            s.quiet_until = s.quiet_until.max(until);
            Some(until)
        });
        let cut_until = futures::future::join_all(acks).await.into_iter().flatten().max();
        let until = cut_until.map_or(quiet_until, |c| c.max(quiet_until));
        if until > Instant::now() {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Arc<MetaWatch> {
        Arc::new(MetaWatch::new(Arc::new(AtomicU64::new(0))))
    }

    fn obj(k: &str) -> Changed {
        Changed::Object { bucket: "b".into(), key: k.into() }
    }

    #[tokio::test]
    async fn a_commit_waits_for_the_watchers_ack() {
        let hub = hub();
        let (_, w, mut rx) = hub.subscribe();
        let hello = rx.recv().await.unwrap();
        assert!(hello.heartbeat && hello.seq == 0);
        let publish = tokio::spawn({
            let hub = hub.clone();
            async move { hub.publish(&[obj("k")], false).await }
        });
        let ev = rx.recv().await.unwrap();
        assert_eq!((ev.seq, ev.objects[0].key.as_str(), ev.heartbeat), (1, "k", false));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!publish.is_finished(), "the commit returned before the gateway applied it");
        w.ack(1, 1);
        tokio::time::timeout(Duration::from_secs(1), publish).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_silent_watcher_is_cut_off_and_its_lease_waited_out() {
        let hub = hub();
        let (_, w, _rx) = hub.subscribe();
        w.ack(0, 1);
        let started = Instant::now();
        hub.publish(&[obj("k")], false).await;
        assert!(started.elapsed() >= LEASE, "returned after {:?}, before the lease ran out", started.elapsed());
        assert!(hub.lock().watchers.is_empty());
        // Cut off: its later acks renew nothing, and the next commit does not wait for it.
        w.ack(5, 9);
        let started = Instant::now();
        hub.publish(&[obj("k")], false).await;
        assert!(started.elapsed() < ACK_TIMEOUT);
    }

    #[tokio::test]
    async fn a_served_master_waits_out_an_earlier_masters_leases_once() {
        let hub = hub();
        hub.serve_remote();
        let started = Instant::now();
        hub.publish(&[obj("k")], false).await;
        assert!(started.elapsed() >= LEASE);
        let started = Instant::now();
        hub.publish(&[obj("k")], false).await;
        assert!(started.elapsed() < LEASE / 2);
    }
}
