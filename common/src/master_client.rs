//! The master over gRPC, as the gateway and workers see it.

use std::time::Duration;

use async_trait::async_trait;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::api::MasterApi;
use crate::error::{Error, Result};
use crate::proto::master_client::MasterClient;
use crate::proto::*;

pub const SECRET_HEADER: &str = "x-strata-secret";

#[derive(Clone)]
pub struct SecretInterceptor {
    value: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Interceptor for SecretInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.value {
            req.metadata_mut().insert(SECRET_HEADER, v.clone());
        }
        Ok(req)
    }
}

#[derive(Clone)]
pub struct GrpcMaster {
    client: MasterClient<InterceptedService<Channel, SecretInterceptor>>,
    address: String,
}

impl GrpcMaster {
    /// Connects lazily: the master may start after this process.
    pub fn new(address: &str, secret: &str) -> Result<GrpcMaster> {
        let url = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::invalid(format!("bad master address {address:?}: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true);
        let value =
            secret.parse().map_err(|_| Error::invalid("the cluster secret must be printable ASCII")).map(Some)?;
        let client = MasterClient::with_interceptor(endpoint.connect_lazy(), SecretInterceptor { value })
            .max_decoding_message_size(64 << 20);
        Ok(GrpcMaster { client, address: url })
    }

    pub fn address(&self) -> &str {
        &self.address
    }
}

macro_rules! call {
    ($self:ident . $method:ident ($req:expr)) => {
        $self.client.clone().$method($req).await.map(|r| r.into_inner()).map_err(Error::from)
    };
}

#[async_trait]
impl MasterApi for GrpcMaster {
    async fn create_bucket(&self, name: &str) -> Result<Bucket> {
        call!(self.create_bucket(BucketName { name: name.into() }))
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        call!(self.delete_bucket(BucketName { name: name.into() })).map(|_| ())
    }
    async fn get_bucket(&self, name: &str) -> Result<Bucket> {
        call!(self.get_bucket(BucketName { name: name.into() }))
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        call!(self.list_buckets(Empty {})).map(|l| l.buckets)
    }
    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        call!(self.lookup(ObjectRef { bucket: bucket.into(), key: key.into() }))
    }
    async fn allocate_version(&self) -> Result<u64> {
        call!(self.allocate_version(Empty {})).map(|v| v.version)
    }
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        call!(self.commit_object(req))
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        call!(self.delete_object(ObjectRef { bucket: bucket.into(), key: key.into() }))
    }
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        call!(self.list_objects(req))
    }
    async fn create_upload(&self, upload: Upload) -> Result<Upload> {
        call!(self.create_upload(CreateUploadRequest { upload: Some(upload) }))
    }
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState> {
        call!(self.get_upload(upload))
    }
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        call!(self.commit_part(req))
    }
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        call!(self.complete_upload(req))
    }
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse> {
        call!(self.abort_upload(upload))
    }
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        call!(self.list_uploads(req))
    }
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        call!(self.set_tags(req)).map(|_| ())
    }
    async fn get_credential(&self, access_key: &str) -> Result<String> {
        call!(self.get_credential(CredentialRequest { access_key: access_key.into() })).map(|c| c.secret_key)
    }
    async fn get_mount(&self, bucket: &str) -> Result<Mount> {
        call!(self.get_mount(BucketName { name: bucket.into() }))
    }
    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo> {
        call!(self.register_worker(info))
    }
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        call!(self.heartbeat(req))
    }
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>> {
        call!(self.list_workers(Empty {})).map(|l| l.workers)
    }
}
