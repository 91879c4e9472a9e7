//! What the gateway (and the worker) call. Each trait has an in-process implementation (used by
//! `strata local`, no sockets) and a remote one (gRPC to the master, HTTP to a worker).

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::proto::*;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// The address an in-process worker registers under (`strata local`): it lives exactly as long
/// as the master beside it, so it is never declared lost.
pub const IN_PROCESS: &str = "in-process";

#[async_trait]
pub trait MasterApi: Send + Sync + 'static {
    async fn create_bucket(&self, name: &str) -> Result<Bucket>;
    /// Creates a bucket with its owner and ACL (`access`'s `set_` parts) in one transaction, so
    /// that no bucket is ever seen without its owner.
    async fn create_owned_bucket(&self, name: &str, access: BucketAccessRequest) -> Result<Bucket> {
        self.create_bucket(name).await?;
        self.set_bucket_access(BucketAccessRequest { bucket: name.into(), ..access }).await
    }
    async fn delete_bucket(&self, name: &str) -> Result<()>;
    async fn get_bucket(&self, name: &str) -> Result<Bucket>;
    async fn list_buckets(&self) -> Result<Vec<Bucket>>;

    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta>;
    async fn allocate_version(&self) -> Result<u64>;
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse>;
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse>;
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse>;

    async fn create_upload(&self, upload: Upload) -> Result<Upload>;
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState>;
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse>;
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse>;
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse>;
    /// What completing the upload answered, while that is remembered (an hour): a retried
    /// complete answers the same. NoSuchUpload otherwise.
    async fn get_completed_upload(&self, upload: UploadRef) -> Result<CompletedUpload>;
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse>;

    /// Replaces the tags of an object, or of the bucket when `req.key` is empty.
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()>;
    /// PutBucketCors; no rules removes the configuration.
    async fn set_bucket_cors(&self, req: SetCorsRequest) -> Result<()>;

    /// The secret key of an S3 access key, and whose key it is.
    async fn get_credential(&self, access_key: &str) -> Result<CredentialResponse>;
    /// Changes a bucket's owner, ACL grants and/or PublicAccessBlock (each when its `set_`).
    async fn set_bucket_access(&self, req: BucketAccessRequest) -> Result<Bucket>;
    /// Replaces an object's ACL grants.
    async fn set_object_acl(&self, req: ObjectAclRequest) -> Result<()>;
    /// The mount of a bucket; "" is the cluster's root under store (staging of multipart parts).
    async fn get_mount(&self, bucket: &str) -> Result<Mount>;

    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo>;
    /// The objects whose bytes are in this worker's journal.
    async fn journal(&self, worker_id: u64) -> Result<Vec<JournalEntry>>;
    /// An ASYNC_THROUGH object's bytes are at `staging_key` in the under store: move them onto
    /// the key. PreconditionFailed when the object changed since (the staged bytes are dropped).
    async fn persisted(&self, req: PersistedRequest) -> Result<()>;
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse>;
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>>;
}

/// A place in an under store: the mount of `bucket` ("" = root under store) and a key in it,
/// or with `staging` a name in Strata's staging folder of that mount, which no key reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UfsLocation {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub staging: bool,
}

impl UfsLocation {
    pub fn object(bucket: &str, key: &str) -> UfsLocation {
        UfsLocation { bucket: bucket.into(), key: key.into(), staging: false }
    }
    pub fn staging(bucket: &str, name: &str) -> UfsLocation {
        UfsLocation { bucket: bucket.into(), key: name.into(), staging: true }
    }
    pub fn path(&self) -> Result<object_store::path::Path> {
        if self.staging { crate::ufs::staging_path(&self.key) } else { crate::ufs::key_path(&self.key) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadRequest {
    pub loc: UfsLocation,
    pub version: u64,
    pub object_size: u64,
    /// The under store's tag when the object was written: a fill from a changed file fails.
    pub ufs_etag: String,
    pub offset: u64,
    pub len: u64,
    pub cache: bool,
    /// CACHE_PROMOTE: a page found below the top tier moves up.
    #[serde(default)]
    pub promote: bool,
    /// The bytes are in this worker's journal, not (yet) in the under store.
    #[serde(default)]
    pub journal: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteRequest {
    pub loc: UfsLocation,
    pub version: u64,
    /// Keep the written pages in this worker's cache.
    pub cache: bool,
    /// Write into this worker's journal instead of the under store (MUST_CACHE, ASYNC_THROUGH).
    #[serde(default)]
    pub journal: bool,
    /// A multipart part that may go in place into its upload's one file (local folders);
    /// else it is written to `loc`.
    #[serde(default)]
    pub in_place: Option<InPlace>,
}

/// A part of `size` bytes (known before its body) of upload `upload_id` of `bucket`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InPlace {
    pub bucket: String,
    pub upload_id: String,
    pub number: u32,
    pub size: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriteResult {
    pub size: u64,
    pub ufs_etag: String,
    /// Where an [`InPlace`] part went when it was written in place: a staging name of its
    /// bucket's mount, and the offset in it.
    #[serde(default)]
    pub placed: Option<(String, u64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ComposeRequest {
    pub target: UfsLocation,
    pub version: u64,
    /// Concatenated in this order.
    pub sources: Vec<UfsLocation>,
    pub cache: bool,
    /// (offset, length) of each source to take; empty: every source whole.
    #[serde(default)]
    pub ranges: Vec<(u64, u64)>,
    /// Local folders: link the one source that holds the whole target, or else copy file to
    /// file in the kernel; no pages cached.
    #[serde(default)]
    pub local: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadResult {
    /// Bytes of the range now cached.
    pub bytes: u64,
    /// Of which read from the under store (the rest was cached already).
    pub from_ufs: u64,
}

#[async_trait]
pub trait WorkerApi: Send + Sync + 'static {
    /// Streams `len` bytes at `offset` of an object version, from cache or the under store.
    async fn read(&self, req: ReadRequest) -> Result<ByteStream>;
    /// Writes `body` to the under store, atomically: an error in `body` leaves nothing there.
    async fn write(&self, req: WriteRequest, body: ByteStream) -> Result<WriteResult>;
    /// Writes the concatenation of `sources` as `target`, atomically.
    async fn compose(&self, req: ComposeRequest) -> Result<WriteResult>;
    /// Deletes under-store objects; missing ones are not an error.
    async fn delete(&self, locs: Vec<UfsLocation>) -> Result<()>;
    /// Brings a range into the cache without sending it anywhere.
    async fn load(&self, req: ReadRequest) -> Result<LoadResult>;
    /// Drops the cached pages of these versions (not of pinned ones); returns the bytes freed.
    async fn free(&self, versions: Vec<u64>) -> Result<u64>;
}
