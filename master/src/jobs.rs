//! The master's background jobs (TTL passes, multipart expiry, checkpoints, the election),
//! held in one task tracker so that shutdown waits for them: the election's resign and a
//! checkpoint being written are never cut off.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use strata_common::ids;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::master::Master;
use crate::uploads::COMPLETIONS_KEPT;

/// Background jobs, each stopped by one shutdown token and joined by [`Jobs::join`].
pub struct Jobs {
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Jobs {
    pub fn new(shutdown: CancellationToken) -> Jobs {
        Jobs { tracker: TaskTracker::new(), shutdown }
    }

    /// The token every job stops on.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn spawn<F>(&self, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(job);
    }

    /// Fires the shutdown token and waits up to `within` for every job to end.
    pub async fn join(self, within: Duration) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait()).await.is_err() {
            tracing::warn!(jobs = self.tracker.len(), "background jobs still running after {within:?}; leaving them");
        }
    }

    /// Applies the TTL rules every `every` while the master is primary.
    pub fn spawn_ttl(&self, master: Arc<Master>, every: Duration) {
        self.spawn(ttl_loop(master, every, self.shutdown.clone()));
    }

    /// Aborts multipart uploads older than `max_age`, checking every `every`.
    pub fn spawn_upload_expiry(&self, master: Arc<Master>, max_age: Duration, every: Duration) {
        self.spawn(expire_uploads(master, max_age, every, self.shutdown.clone()));
    }

    /// Deletes staged files of dead writes older than `grace` every `grace / 2`, on the primary.
    pub fn spawn_staging_sweep(&self, master: Arc<Master>, grace: Duration) {
        self.spawn(sweep_loop(master, grace, self.shutdown.clone()));
    }

    /// Writes a checkpoint of the metadata into `uri` every `every` (see [`checkpoint_loop`]).
    pub fn spawn_checkpoints(&self, master: Arc<Master>, uri: String, every: Duration) {
        self.spawn(checkpoint_loop(master, uri, every, self.shutdown.clone()));
    }

    /// Campaigns for the primary role until shutdown, then resigns.
    #[cfg(feature = "etcd")]
    pub fn spawn_election(&self, master: Arc<Master>, opts: crate::election::ElectionOptions) {
        self.spawn(crate::election::run(master, opts, self.shutdown.clone()));
    }
}

/// Sleeps `every`; false once `shutdown` fires.
async fn tick(every: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(every) => true,
    }
}

/// Applies the TTL rules every `every` while this master is primary.
pub async fn ttl_loop(master: Arc<Master>, every: Duration, shutdown: CancellationToken) {
    let mut since = 0i64;
    while tick(every, &shutdown).await {
        if !master.ha().is_primary() {
            since = 0;
            continue;
        }
        let now = ids::now_ms();
        match master.apply_ttls(since).await {
            Ok(_) => since = now,
            Err(e) => tracing::warn!("TTL pass failed (will retry): {e}"),
        }
    }
}

/// Runs [`Master::abort_stale_uploads`] every `every` until `shutdown`, and forgets
/// completions older than [`COMPLETIONS_KEPT`] (or `max_age`, if shorter).
pub async fn expire_uploads(master: Arc<Master>, max_age: Duration, every: Duration, shutdown: CancellationToken) {
    while tick(every, &shutdown).await {
        if let Err(e) = master.abort_stale_uploads(max_age).await {
            tracing::warn!("cleaning up stale multipart uploads failed (will retry): {e}");
        }
        if let Err(e) = master.forget_completed_uploads(max_age.min(COMPLETIONS_KEPT)).await {
            tracing::warn!("forgetting old multipart completions failed (will retry): {e}");
        }
    }
}

/// See [`Jobs::spawn_staging_sweep`].
pub async fn sweep_loop(master: Arc<Master>, grace: Duration, shutdown: CancellationToken) {
    let every = (grace / 2).max(Duration::from_secs(1));
    while tick(every, &shutdown).await {
        if master.ha().is_primary()
            && let Err(e) = master.reclaim_staging(grace).await
        {
            tracing::warn!("cannot reclaim staged files of dead writes (will retry): {e}");
        }
    }
}

/// A standby writes a checkpoint every `every` (the primary serves; with one master, it does).
pub async fn checkpoint_loop(master: Arc<Master>, uri: String, every: Duration, shutdown: CancellationToken) {
    while tick(every, &shutdown).await {
        let single = master.ha().masters().len() <= 1;
        if master.ha().is_primary() && !single {
            continue;
        }
        if let Err(e) = crate::backup::write_checkpoint(master.raw_store(), &uri, 3).await {
            tracing::warn!("cannot write a metadata checkpoint to {uri} (will retry in {every:?}): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_waits_for_a_job_to_finish_its_cleanup() {
        let jobs = Jobs::new(CancellationToken::new());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop, flag) = (jobs.shutdown().clone(), done.clone());
        jobs.spawn(async move {
            stop.cancelled().await;
            // A resign: work that must run after shutdown fired.
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        jobs.join(Duration::from_secs(5)).await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst), "join returned before the job ended");
    }

    #[tokio::test]
    async fn join_gives_up_on_a_job_that_never_ends() {
        let jobs = Jobs::new(CancellationToken::new());
        jobs.spawn(std::future::pending());
        let started = std::time::Instant::now();
        jobs.join(Duration::from_millis(50)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_loops_stop_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let master = Arc::new(crate::master::test_master(dir.path()));
        let jobs = Jobs::new(CancellationToken::new());
        jobs.spawn_ttl(master.clone(), Duration::from_millis(5));
        jobs.spawn_upload_expiry(master.clone(), Duration::from_secs(60), Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = std::time::Instant::now();
        jobs.join(Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(1), "the loops did not stop on shutdown");
    }
}
