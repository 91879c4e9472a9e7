//! The master: its components composed, and [`MasterApi`] implemented by calling them. Each
//! component owns its state and its transactions (see the layering in `lib.rs`); this file
//! only wires them and takes and gives up the primary role.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_common::api::MasterApi;
use strata_common::kv::KvStore;
use strata_common::proto::*;
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, Result, ids};
use tokio_util::task::TaskTracker;

use crate::acl::Acls;
use crate::buckets::Buckets;
use crate::credentials::RootCredentials;
use crate::free::ToFree;
use crate::ha::{HaState, stored_epoch};
use crate::journal::Journal;
use crate::membership::Membership;
use crate::mounts::Mounts;
use crate::objects::Objects;
use crate::publish::Publisher;
use crate::store::fenced::FencedStore;
use crate::store::watch::MetaWatch;
use crate::sync::UfsSync;
use crate::ttl::Ttl;
use crate::uploads::Uploads;
use crate::users::Users;
use crate::versions::Versions;

pub struct MasterOptions {
    pub root_ufs: String,
    pub credentials: RootCredentials,
    pub worker_timeout: Duration,
    /// This master's address as others reach it.
    pub address: String,
    /// One of several masters under an election: a standby until it wins.
    pub elected: bool,
    /// Block size recorded for objects found in an under store.
    pub block_size: u64,
    /// How long a client's listing waits for the sync of its mount's under store.
    pub listing_sync_wait: Duration,
}

pub struct Master {
    /// The store itself, without the epoch check: for taking an epoch, snapshots and restores.
    /// Every component writes through the fenced store over it.
    raw_store: Arc<dyn KvStore>,
    store_name: String,
    ha: Arc<HaState>,
    users: Users,
    acls: Acls,
    worker_timeout: Duration,
    versions: Arc<Versions>,
    membership: Membership,
    buckets: Arc<Buckets>,
    objects: Arc<Objects>,
    uploads: Arc<Uploads>,
    journal: Arc<Journal>,
    mounts: Mounts,
    ttl: Ttl,
    /// Versions workers may drop from their caches (expired, replaced, deleted).
    to_free: Arc<ToFree>,
    store: Arc<dyn KvStore>,
    ufs: Arc<UfsRegistry>,
    publisher: Arc<Publisher>,
    /// Gateways watching the keys they cache.
    meta_watch: Arc<MetaWatch>,
    /// Commits with their under-store steps, run apart from the caller (see [`Master::detached`]).
    publishing: TaskTracker,
    staged_seen: crate::reclaim::Sightings,
}

impl Master {
    pub fn new(raw_store: Arc<dyn KvStore>, opts: MasterOptions) -> Result<Master> {
        let root = Mount { uri: opts.root_ufs.trim_end_matches('/').to_string(), ..Default::default() };
        let ufs = Arc::new(UfsRegistry::default());
        ufs.open(&root)?;
        let ha = Arc::new(if opts.elected { HaState::elected(&opts.address) } else { HaState::single(&opts.address) });
        let meta_watch = Arc::new(MetaWatch::new(ha.fence.clone()));
        let store: Arc<dyn KvStore> =
            Arc::new(FencedStore::watched(raw_store.clone(), ha.fence.clone(), meta_watch.clone()));
        let versions = Arc::new(Versions::new(store.clone()));
        let buckets = Arc::new(Buckets::new(store.clone(), ufs.clone(), root.uri));
        let to_free = Arc::new(ToFree::default());
        let publisher =
            Arc::new(Publisher::new(store.clone(), ufs.clone(), ha.clone(), buckets.clone(), to_free.clone()));
        let sync = Arc::new(UfsSync::new(
            store.clone(),
            ufs.clone(),
            buckets.clone(),
            publisher.clone(),
            versions.clone(),
            opts.block_size,
            opts.listing_sync_wait,
        ));
        let objects = Arc::new(Objects::new(store.clone(), sync.clone(), publisher.clone()));
        Ok(Master {
            store_name: raw_store.name().to_string(),
            raw_store,
            ha,
            users: Users::new(store.clone(), opts.credentials),
            acls: Acls::new(store.clone()),
            worker_timeout: opts.worker_timeout,
            versions,
            membership: Membership::new(store.clone(), opts.worker_timeout),
            uploads: Arc::new(Uploads::new(store.clone(), ufs.clone(), buckets.clone(), publisher.clone())),
            journal: Arc::new(Journal::new(store.clone(), publisher.clone())),
            mounts: Mounts::new(store.clone(), ufs.clone(), buckets.clone(), sync, objects.clone()),
            ttl: Ttl::new(store.clone(), objects.clone(), to_free.clone()),
            to_free,
            store,
            ufs,
            publisher,
            meta_watch,
            buckets,
            objects,
            publishing: TaskTracker::new(),
            staged_seen: Default::default(),
        })
    }

    /// Runs a commit and what follows it (moving bytes onto the key, releasing staged parts) as
    /// its own task: a caller that goes away (a client hanging up drops the request's future)
    /// cannot stop it between the metadata commit and the under store's change.
    async fn detached<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.publishing
            .spawn(work)
            .await
            .map_err(|e| Error::internal(format!("a commit task ended without an answer: {e}")))?
    }

    /// Waits up to `within` for commits still running (shutdown).
    pub async fn drain_commits(&self, within: Duration) {
        self.publishing.close();
        if tokio::time::timeout(within, self.publishing.wait()).await.is_err() {
            tracing::warn!(left = self.publishing.len(), "commits still running after {within:?}");
        }
    }

    pub fn store_name(&self) -> &str {
        &self.store_name
    }

    /// The store as it is, without the epoch check (restores, snapshots).
    pub fn raw_store(&self) -> Arc<dyn KvStore> {
        self.raw_store.clone()
    }

    /// Where gateways watch the metadata they cache.
    pub fn meta_watch(&self) -> &Arc<MetaWatch> {
        &self.meta_watch
    }

    pub fn ha(&self) -> &HaState {
        &self.ha
    }

    /// What `strata admin report` shows.
    pub async fn report(&self) -> ClusterReport {
        let mut masters = self.ha.masters();
        if masters.is_empty() {
            masters.push(MasterInfo { address: self.ha.address.clone(), primary: self.ha.is_primary() });
        }
        ClusterReport {
            primary: self.ha.primary_address(),
            epoch: stored_epoch(self.raw_store.as_ref()).await.unwrap_or(self.ha.epoch()),
            masters,
            workers: self.membership.all(),
            store: self.store_name.clone(),
            now_ms: ids::now_ms(),
            worker_timeout_ms: self.worker_timeout.as_millis() as i64,
        }
    }

    /// Becomes the primary: takes a new epoch (fencing off every earlier primary), then reloads
    /// what the last primary knew of workers. Returns the epoch.
    pub async fn take_over(&self) -> Result<u64> {
        let epoch = self.ha.take_epoch(self.raw_store.as_ref()).await?;
        // Version ids come from blocks reserved under the new epoch.
        self.versions.reset().await;
        self.membership.reload(self.raw_store.as_ref()).await?;
        self.finish_publishes().await;
        self.meta_watch.new_term();
        self.ha.serve();
        tracing::info!(epoch, address = %self.ha.address, "this master is now the primary");
        Ok(epoch)
    }

    /// Finishes the under-store changes of commits that an earlier primary (or this process,
    /// before a crash) left undone; run before serving. An intent that cannot be finished now
    /// stays for the next try, and a later commit of its key supersedes it. Secret keys kept in
    /// clear (records from before sealing) are sealed too.
    pub async fn finish_publishes(&self) {
        match self.publisher.finish_all().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "finished interrupted publishes"),
            Err(e) => tracing::warn!("cannot finish interrupted publishes (will retry at the next start): {e}"),
        }
        if let Err(e) = self.users.seal_clear_secrets().await {
            tracing::warn!("cannot seal the secret keys kept in clear (will retry at the next start): {e}");
        }
    }

    /// Deletes staged files of dead writes, seen unchanged for `grace` (see `reclaim`); returns
    /// how many.
    pub async fn reclaim_staging(&self, grace: Duration) -> Result<usize> {
        let root = self.buckets.mount_of("").await?;
        crate::reclaim::sweep(self.store.as_ref(), &self.ufs, root, grace, &self.staged_seen).await
    }

    // --- the admin RPCs (`strata admin ...`), beside `MasterApi` -------------------------------

    pub async fn mount(&self, bucket: &str, mount: Mount) -> Result<Bucket> {
        self.mounts.mount(bucket, mount).await
    }
    pub async fn unmount(&self, bucket: &str) -> Result<()> {
        self.mounts.unmount(bucket).await
    }
    /// Every bucket with its mount, secrets masked.
    pub async fn list_mounts(&self) -> Result<Vec<Bucket>> {
        self.mounts.list().await
    }
    /// The syncs with under stores running now: bucket, prefix, progress.
    pub(crate) fn syncs_running(&self) -> Vec<(String, String, SyncProgress)> {
        self.mounts.syncs_running()
    }
    /// Syncs `prefix` of a mount with its under store now, or joins the sync of it running.
    pub(crate) async fn sync_mount(&self, bucket: &str, prefix: &str) -> Result<Arc<crate::sync::SyncRun>> {
        self.mounts.sync_now(bucket, prefix).await
    }
    pub async fn create_user(&self, user: User) -> Result<User> {
        self.users.create_user(user).await
    }
    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.users.list_users().await
    }
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.users.delete_user(id).await
    }
    pub async fn create_key(&self, user_id: &str) -> Result<AccessKey> {
        self.users.create_key(user_id).await
    }
    pub async fn list_keys(&self, user_id: &str) -> Result<Vec<AccessKey>> {
        self.users.list_keys(user_id).await
    }
    pub async fn revoke_key(&self, access_key: &str) -> Result<()> {
        self.users.revoke_key(access_key).await
    }
    pub async fn set_key_disabled(&self, access_key: &str, disabled: bool) -> Result<()> {
        self.users.set_key_disabled(access_key, disabled).await
    }
    pub async fn pin(&self, bucket: &str, prefix: &str, pinned: bool) -> Result<u64> {
        self.mounts.pin(bucket, prefix, pinned).await
    }
    pub async fn set_ttl(&self, rule: TtlRule) -> Result<()> {
        self.ttl.set_rule(rule).await
    }
    pub async fn list_ttls(&self) -> Result<Vec<TtlRule>> {
        self.ttl.rules().await
    }

    // --- the background passes (`jobs`) ---------------------------------------------------------

    /// One pass of the TTL rules; see [`Ttl::apply`]. Returns (freed, deleted).
    pub async fn apply_ttls(&self, since_ms: i64) -> Result<(usize, usize)> {
        self.ttl.pass(since_ms).await
    }
    /// What the TTL passes did since this master started.
    pub fn ttl_passes(&self) -> crate::ttl::TtlPasses {
        self.ttl.passes()
    }
    /// Aborts every multipart upload started more than `max_age` ago; returns how many.
    pub async fn abort_stale_uploads(&self, max_age: Duration) -> Result<usize> {
        self.uploads.abort_stale_uploads(max_age).await
    }
    /// Forgets completed uploads (kept for their retries) finished more than `max_age` ago.
    pub async fn forget_completed_uploads(&self, max_age: Duration) -> Result<usize> {
        self.uploads.forget_completions(max_age).await
    }
}

#[async_trait]
impl MasterApi for Master {
    async fn create_bucket(&self, name: &str) -> Result<Bucket> {
        self.buckets.create(name, None).await
    }
    async fn create_owned_bucket(&self, name: &str, access: BucketAccessRequest) -> Result<Bucket> {
        self.buckets.create(name, Some(access)).await
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.buckets.delete(name).await
    }
    async fn get_bucket(&self, name: &str) -> Result<Bucket> {
        self.buckets.get(name).await
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        self.buckets.list().await
    }
    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.objects.lookup(bucket, key).await
    }
    async fn allocate_version(&self) -> Result<u64> {
        self.versions.next().await
    }
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        let objects = self.objects.clone();
        self.detached(async move { objects.commit(req).await }).await
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        let (objects, bucket, key) = (self.objects.clone(), bucket.to_string(), key.to_string());
        self.detached(async move { objects.delete(&bucket, &key, None).await }).await
    }
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        self.objects.list(req).await
    }
    async fn create_upload(&self, upload: Upload) -> Result<Upload> {
        self.uploads.create(upload).await
    }
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState> {
        self.uploads.get(upload).await
    }
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        let uploads = self.uploads.clone();
        self.detached(async move { uploads.commit_part(req).await }).await
    }
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        let uploads = self.uploads.clone();
        self.detached(async move { uploads.complete(req).await }).await
    }
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse> {
        let uploads = self.uploads.clone();
        self.detached(async move { uploads.abort(upload).await }).await
    }
    async fn get_completed_upload(&self, upload: UploadRef) -> Result<CompletedUpload> {
        self.uploads.completed(upload).await
    }
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        self.uploads.list(req).await
    }
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        self.objects.set_tags(req).await
    }
    async fn set_bucket_cors(&self, req: SetCorsRequest) -> Result<()> {
        self.objects.set_bucket_cors(req).await
    }
    async fn get_credential(&self, access_key: &str) -> Result<CredentialResponse> {
        self.users.credential(access_key).await
    }
    async fn set_bucket_access(&self, req: BucketAccessRequest) -> Result<Bucket> {
        self.acls.set_bucket_access(req).await
    }
    async fn set_object_acl(&self, req: ObjectAclRequest) -> Result<()> {
        self.acls.set_object_acl(req).await
    }
    async fn get_mount(&self, bucket: &str) -> Result<Mount> {
        self.buckets.mount_of(bucket).await
    }
    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo> {
        self.membership.register(info).await
    }
    async fn journal(&self, worker_id: u64) -> Result<Vec<JournalEntry>> {
        self.journal.entries(worker_id).await
    }
    async fn persisted(&self, req: PersistedRequest) -> Result<()> {
        let journal = self.journal.clone();
        self.detached(async move { journal.persisted(req).await }).await
    }
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        let mut r = self.membership.heartbeat(&req);
        if !r.reregister {
            r.pinned = self.mounts.pinned_versions().await?;
            r.free = self.to_free.current(self.worker_timeout);
        }
        Ok(r)
    }
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>> {
        Ok(self.membership.live())
    }
}

/// A master on the memory store whose root under store is `dir`, for tests.
#[cfg(test)]
pub(crate) fn test_master(dir: &std::path::Path) -> Master {
    test_master_waiting(dir, Duration::from_secs(20))
}

/// [`test_master`] whose clients' listings wait `listing_sync_wait` for a sync.
#[cfg(test)]
pub(crate) fn test_master_waiting(dir: &std::path::Path, listing_sync_wait: Duration) -> Master {
    let opts = MasterOptions {
        root_ufs: format!("file://{}", dir.display()),
        credentials: RootCredentials::new("a".into(), "s".into()),
        worker_timeout: Duration::from_secs(5),
        address: "in-process".into(),
        elected: false,
        block_size: 64 << 20,
        listing_sync_wait,
    };
    let store = Arc::new(crate::store::RedbStore::memory().expect("memory store"));
    Master::new(store, opts).expect("test master")
}

#[cfg(test)]
mod ha_tests;
#[cfg(test)]
mod tests;
