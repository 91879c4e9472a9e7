//! Fault-injecting wrappers around the real master and worker: they pass every call through
//! except the ones told to fail, to give faults no real part can be made to give on cue (a
//! master that is away or conflicts on one RPC, a worker that dies half-way through a write).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use strata_common::api::*;
use strata_common::proto::*;
use strata_common::{Error, ErrorKind, Result};

/// Which master calls fail, and with what.
pub type Faults = Arc<Mutex<HashMap<&'static str, ErrorKind>>>;

/// A fault-injecting wrapper around a real `MasterApi`: a call whose name is in `faults`
/// fails with that error kind instead of reaching the master.
pub struct FaultyMaster {
    pub inner: Arc<dyn MasterApi>,
    pub faults: Faults,
}

impl FaultyMaster {
    pub fn new(inner: Arc<dyn MasterApi>) -> (Arc<FaultyMaster>, Faults) {
        let faults = Arc::new(Mutex::new(HashMap::new()));
        (Arc::new(FaultyMaster { inner, faults: faults.clone() }), faults)
    }
    fn check(&self, call: &'static str) -> Result<()> {
        match self.faults.lock().unwrap().get(call) {
            Some(kind) => Err(Error::new(*kind, format!("injected fault in {call}"))),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl MasterApi for FaultyMaster {
    async fn create_bucket(&self, name: &str) -> Result<Bucket> {
        self.check("create_bucket")?;
        self.inner.create_bucket(name).await
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.check("delete_bucket")?;
        self.inner.delete_bucket(name).await
    }
    async fn get_bucket(&self, name: &str) -> Result<Bucket> {
        self.check("get_bucket")?;
        self.inner.get_bucket(name).await
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        self.check("list_buckets")?;
        self.inner.list_buckets().await
    }
    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.check("lookup")?;
        self.inner.lookup(bucket, key).await
    }
    async fn allocate_version(&self) -> Result<u64> {
        self.check("allocate_version")?;
        self.inner.allocate_version().await
    }
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        self.check("commit_object")?;
        self.inner.commit_object(req).await
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        self.check("delete_object")?;
        self.inner.delete_object(bucket, key).await
    }
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        self.check("list_objects")?;
        self.inner.list_objects(req).await
    }
    async fn create_upload(&self, upload: Upload) -> Result<Upload> {
        self.check("create_upload")?;
        self.inner.create_upload(upload).await
    }
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState> {
        self.check("get_upload")?;
        self.inner.get_upload(upload).await
    }
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        self.check("commit_part")?;
        self.inner.commit_part(req).await
    }
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        self.check("complete_upload")?;
        self.inner.complete_upload(req).await
    }
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse> {
        self.check("abort_upload")?;
        self.inner.abort_upload(upload).await
    }
    async fn get_completed_upload(&self, upload: UploadRef) -> Result<CompletedUpload> {
        self.check("get_completed_upload")?;
        self.inner.get_completed_upload(upload).await
    }
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        self.check("list_uploads")?;
        self.inner.list_uploads(req).await
    }
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        self.check("set_tags")?;
        self.inner.set_tags(req).await
    }
    async fn set_bucket_cors(&self, req: SetCorsRequest) -> Result<()> {
        self.check("set_bucket_cors")?;
        self.inner.set_bucket_cors(req).await
    }
    async fn get_credential(&self, access_key: &str) -> Result<CredentialResponse> {
        self.check("get_credential")?;
        self.inner.get_credential(access_key).await
    }
    async fn set_bucket_access(&self, req: BucketAccessRequest) -> Result<Bucket> {
        self.check("set_bucket_access")?;
        self.inner.set_bucket_access(req).await
    }
    async fn set_object_acl(&self, req: ObjectAclRequest) -> Result<()> {
        self.check("set_object_acl")?;
        self.inner.set_object_acl(req).await
    }
    async fn get_mount(&self, bucket: &str) -> Result<Mount> {
        self.check("get_mount")?;
        self.inner.get_mount(bucket).await
    }
    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo> {
        self.check("register_worker")?;
        self.inner.register_worker(info).await
    }
    async fn journal(&self, worker_id: u64) -> Result<Vec<JournalEntry>> {
        self.check("journal")?;
        self.inner.journal(worker_id).await
    }
    async fn persisted(&self, req: PersistedRequest) -> Result<()> {
        self.check("persisted")?;
        self.inner.persisted(req).await
    }
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        self.check("heartbeat")?;
        self.inner.heartbeat(req).await
    }
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>> {
        self.check("list_workers")?;
        self.inner.list_workers().await
    }
}

/// A fault-injecting wrapper around a real `WorkerApi`: with `fail_write_after = Some(n)`, a
/// write passes `n` bytes of its body to the real worker and then the body breaks, as when
/// the worker's connection drops half-way; every other call passes through.
pub struct FaultyWorker {
    pub inner: Arc<dyn WorkerApi>,
    pub fail_write_after: Option<usize>,
}

#[async_trait]
impl WorkerApi for FaultyWorker {
    async fn read(&self, req: ReadRequest) -> Result<ByteStream> {
        self.inner.read(req).await
    }
    async fn write(&self, req: WriteRequest, body: ByteStream) -> Result<WriteResult> {
        let Some(limit) = self.fail_write_after else { return self.inner.write(req, body).await };
        let mut sent = 0usize;
        let cut = body
            .map(move |chunk| {
                let chunk = chunk?;
                if sent + chunk.len() > limit {
                    return Err(Error::unavailable("injected fault: the worker went away mid-write"));
                }
                sent += chunk.len();
                Ok(chunk)
            })
            .boxed();
        self.inner.write(req, cut).await
    }
    async fn compose(&self, req: ComposeRequest) -> Result<WriteResult> {
        self.inner.compose(req).await
    }
    async fn delete(&self, locs: Vec<UfsLocation>) -> Result<()> {
        self.inner.delete(locs).await
    }
    async fn load(&self, req: ReadRequest) -> Result<LoadResult> {
        self.inner.load(req).await
    }
    async fn free(&self, versions: Vec<u64>) -> Result<u64> {
        self.inner.free(versions).await
    }
}
