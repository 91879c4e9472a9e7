use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_common::api::MasterApi;
use strata_common::kv::{KvStore, transact};
use strata_common::proto::*;
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, ErrorKind, Result, codec, ids, keys};
use tokio::sync::Mutex;

use crate::credentials::RootCredentials;
use crate::ha::HaState;
use crate::membership::Membership;
use crate::store::fenced::FencedStore;

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
}

/// Version ids are handed out from a block reserved in the store, so that allocating one costs
/// no transaction; a restart skips the rest of the block, so ids are never reused.
const VERSION_BLOCK: u64 = 1024;

pub struct Master {
    /// The store behind the epoch check: every write goes through it.
    pub(crate) store: Arc<dyn KvStore>,
    /// The store itself: for taking an epoch, snapshots and restores.
    pub(crate) raw_store: Arc<dyn KvStore>,
    pub(crate) ha: HaState,
    pub(crate) ufs: Arc<UfsRegistry>,
    pub(crate) root_ufs: String,
    credentials: RootCredentials,
    pub(crate) versions: Mutex<(u64, u64)>,
    pub(crate) worker_timeout: Duration,
    pub(crate) block_size: u64,
    pub(crate) sync_times: crate::sync::SyncTimes,
    pub(crate) to_free: crate::ttl::ToFree,
    pub(crate) membership: Membership,
    pub(crate) key_locks: crate::publish::KeyLocks,
}

impl Master {
    pub fn new(store: Arc<dyn KvStore>, opts: MasterOptions) -> Result<Master> {
        let root = Mount { uri: opts.root_ufs.trim_end_matches('/').to_string(), ..Default::default() };
        let ufs = Arc::new(UfsRegistry::default());
        ufs.open(&root)?;
        let ha = if opts.elected { HaState::elected(&opts.address) } else { HaState::single(&opts.address) };
        Ok(Master {
            store: Arc::new(FencedStore::new(store.clone(), ha.fence.clone())),
            raw_store: store,
            ha,
            worker_timeout: opts.worker_timeout,
            block_size: opts.block_size,
            sync_times: Default::default(),
            to_free: Default::default(),
            ufs,
            root_ufs: root.uri,
            credentials: opts.credentials,
            versions: Mutex::new((0, 0)),
            membership: Membership::new(opts.worker_timeout),
            key_locks: Default::default(),
        })
    }

    pub fn store_name(&self) -> &str {
        self.store.name()
    }

    /// The store as it is, without the epoch check (restores, snapshots).
    pub fn raw_store(&self) -> Arc<dyn KvStore> {
        self.raw_store.clone()
    }

    /// What `strata admin report` shows.
    pub async fn report(&self) -> ClusterReport {
        let mut masters = self.ha.masters();
        if masters.is_empty() {
            masters.push(MasterInfo { address: self.ha.address.clone(), primary: self.ha.is_primary() });
        }
        ClusterReport {
            primary: self.ha.primary_address(),
            epoch: crate::ha::stored_epoch(self.raw_store.as_ref()).await.unwrap_or(self.ha.epoch()),
            masters,
            workers: self.membership.all(),
            store: self.store.name().to_string(),
            now_ms: ids::now_ms(),
            worker_timeout_ms: self.worker_timeout.as_millis() as i64,
        }
    }

    pub(crate) fn root_mount(&self) -> Mount {
        Mount { uri: self.root_ufs.clone(), ..Default::default() }
    }

    pub(crate) async fn next_version(&self) -> Result<u64> {
        let mut range = self.versions.lock().await;
        if range.0 >= range.1 {
            let end = transact(self.store.as_ref(), |t| {
                Box::pin(async move {
                    let k = keys::version_counter();
                    let cur = t.get(&k).await?.map(|v| strata_common::kv::decode_i64(&v) as u64).unwrap_or(0);
                    let end = cur + VERSION_BLOCK;
                    t.set(&k, &(end as i64).to_le_bytes());
                    Ok(end)
                })
            })
            .await?;
            *range = (end - VERSION_BLOCK + 1, end + 1);
        }
        let v = range.0;
        range.0 += 1;
        Ok(v)
    }

    fn credential(&self, access_key: &str) -> Result<String> {
        if ids::secret_eq(access_key, &self.credentials.access_key) {
            return Ok(self.credentials.secret_key.clone());
        }
        Err(Error::new(
            ErrorKind::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        ))
    }

    pub(crate) async fn mount_of(&self, bucket: &str) -> Result<Mount> {
        if bucket.is_empty() {
            return Ok(self.root_mount());
        }
        let b = self.bucket(bucket).await?;
        b.mount.ok_or_else(|| Error::internal(format!("bucket {bucket} has no mount")))
    }

    pub(crate) async fn bucket(&self, name: &str) -> Result<Bucket> {
        let name = name.to_string();
        transact(self.store.as_ref(), |t| {
            let name = name.clone();
            Box::pin(async move { read_bucket(t, &name).await })
        })
        .await
    }
}

/// A master on the memory store whose root under store is `dir`, for tests.
#[cfg(test)]
pub(crate) fn test_master(dir: &std::path::Path) -> Master {
    let opts = MasterOptions {
        root_ufs: format!("file://{}", dir.display()),
        credentials: RootCredentials { access_key: "a".into(), secret_key: "s".into() },
        worker_timeout: Duration::from_secs(5),
        address: "in-process".into(),
        elected: false,
        block_size: 64 << 20,
    };
    let store = std::sync::Arc::new(crate::store::RedbStore::memory().expect("memory store"));
    Master::new(store, opts).expect("test master")
}

/// The bucket, if writes may change it: a read-only mount refuses with AccessDenied.
pub(crate) async fn writable_bucket(t: &mut strata_common::kv::Txn, name: &str) -> Result<Bucket> {
    let b = read_bucket(t, name).await?;
    if b.mount.as_ref().is_some_and(|m| m.read_only) {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("bucket {name} is a read-only mount: writes are refused"),
        ));
    }
    Ok(b)
}

pub(crate) async fn read_bucket(t: &mut strata_common::kv::Txn, name: &str) -> Result<Bucket> {
    match t.get(&keys::bucket(name)).await? {
        Some(v) => codec::decode(&v),
        None => Err(Error::new(ErrorKind::NoSuchBucket, format!("The specified bucket does not exist: {name}"))),
    }
}

#[async_trait]
impl MasterApi for Master {
    async fn create_bucket(&self, name: &str) -> Result<Bucket> {
        self.do_create_bucket(name).await
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.do_delete_bucket(name).await
    }
    async fn get_bucket(&self, name: &str) -> Result<Bucket> {
        self.bucket(name).await
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        self.do_list_buckets().await
    }
    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.do_lookup(bucket, key).await
    }
    async fn allocate_version(&self) -> Result<u64> {
        self.next_version().await
    }
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        self.do_commit_object(req).await
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        self.do_delete_object(bucket, key).await
    }
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        self.do_list_objects(req).await
    }
    async fn create_upload(&self, upload: Upload) -> Result<Upload> {
        self.do_create_upload(upload).await
    }
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState> {
        self.do_get_upload(upload).await
    }
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        self.do_commit_part(req).await
    }
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        self.do_complete_upload(req).await
    }
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse> {
        self.do_abort_upload(upload).await
    }
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        self.do_list_uploads(req).await
    }
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        self.do_set_tags(req).await
    }
    async fn get_credential(&self, access_key: &str) -> Result<String> {
        self.credential(access_key)
    }
    async fn get_mount(&self, bucket: &str) -> Result<Mount> {
        self.mount_of(bucket).await
    }
    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo> {
        self.do_register_worker(info).await
    }
    async fn journal(&self, worker_id: u64) -> Result<Vec<JournalEntry>> {
        self.do_journal(worker_id).await
    }
    async fn persisted(&self, req: PersistedRequest) -> Result<()> {
        self.do_persisted(req).await
    }
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        let mut r = self.membership.heartbeat(&req);
        if !r.reregister {
            r.pinned = self.pinned_versions().await?;
            r.free = self.to_free.current(self.worker_timeout);
        }
        Ok(r)
    }
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>> {
        Ok(self.membership.live())
    }
}
