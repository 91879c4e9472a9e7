//! The master over gRPC, as the gateway and workers see it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::api::MasterApi;
use crate::error::{Error, ErrorKind, Result};
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

type Client = MasterClient<InterceptedService<Channel, SecretInterceptor>>;

/// A standby's answer carries the primary's address in this header.
pub const PRIMARY_HEADER: &str = "strata-primary";

/// The masters of a cluster over gRPC. Calls go to the master last known as primary; a standby's
/// answer names the primary, which is followed at once; a master that cannot be reached gives
/// way to the next address. Either way the call is tried again (until `failover_wait`) only
/// when it certainly did nothing, or it changes nothing.
pub struct GrpcMaster {
    addresses: Vec<String>,
    secret: SecretInterceptor,
    clients: Mutex<HashMap<String, Client>>,
    current: Mutex<String>,
    failover_wait: Duration,
    /// For `https://` addresses: the cluster CA, and a client certificate for mutual TLS.
    tls: Option<ClientTlsConfig>,
}

fn url_of(address: &str) -> String {
    if address.contains("://") { address.to_string() } else { format!("http://{address}") }
}

/// The primary a standby's refusal names, as a URL.
fn named_primary(s: &tonic::Status) -> Option<String> {
    s.metadata().get(PRIMARY_HEADER).and_then(|v| v.to_str().ok()).filter(|p| !p.is_empty()).map(url_of)
}

/// The call never reached a master (refused, unresolvable): nothing was done. Only a transport
/// error qualifies, never a status a master sent (those carry their kind), nor a timeout.
fn never_reached(s: &tonic::Status) -> bool {
    if s.code() != tonic::Code::Unavailable || s.metadata().contains_key("strata-error-kind") {
        return false;
    }
    let mut text = String::new();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        text.push_str(&e.to_string().to_ascii_lowercase());
        source = e.source();
    }
    ["tcp connect error", "connection refused", "dns error"].iter().any(|m| text.contains(m))
}

/// How long calls wait for masters that all say no primary is elected (see `GrpcMaster::call`).
const NO_PRIMARY_WAIT: Duration = Duration::from_secs(8);

/// A TLS failure with a master that names a certificate (one the CA does not vouch for, an
/// alert): trying again cannot help, so it is told at once, with what to check. (A client
/// certificate refused under TLS 1.3 shows only as a dropped connection, and is retried.)
fn tls_failure(s: &tonic::Status, address: &str) -> Option<Error> {
    if s.code() != tonic::Code::Unavailable || s.metadata().contains_key("strata-error-kind") {
        return None;
    }
    let mut text = String::new();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        text.push_str(&e.to_string());
        text.push_str(": ");
        source = e.source();
    }
    let lower = text.to_ascii_lowercase();
    ["certificate", "fatal alert"].iter().any(|m| lower.contains(m)).then(|| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "TLS with master {address} failed ({}): check tls.ca (the CA that signed the master's certificate) \
                 and, where masters require one, tls.client_cert/tls.client_key or tls.cert/tls.key",
                text.trim_end_matches(": ")
            ),
        )
    })
}

/// `call!(self, idempotent, method(request))`.
macro_rules! call {
    ($self:ident, $idem:expr, $method:ident ($req:expr)) => {{
        let req = $req;
        $self
            .call($idem, |mut c| {
                let r = req.clone();
                async move { c.$method(r).await }
            })
            .await
    }};
}

impl GrpcMaster {
    /// Connects lazily: the masters may start after this process.
    pub fn new(addresses: &[String], secret: &str) -> Result<GrpcMaster> {
        GrpcMaster::with_tls(addresses, secret, None)
    }

    /// `tls` is used for `https://` addresses (see [`crate::tls::grpc_client_config`]).
    pub fn with_tls(addresses: &[String], secret: &str, tls: Option<ClientTlsConfig>) -> Result<GrpcMaster> {
        let addresses: Vec<String> = addresses.iter().map(|a| url_of(a)).collect();
        let first = addresses.first().cloned().ok_or_else(|| Error::invalid("no master address given"))?;
        let value =
            secret.parse().map_err(|_| Error::invalid("the cluster secret must be printable ASCII")).map(Some)?;
        let m = GrpcMaster {
            addresses,
            secret: SecretInterceptor { value },
            clients: Mutex::new(HashMap::new()),
            current: Mutex::new(first),
            failover_wait: Duration::from_secs(30),
            tls,
        };
        for a in &m.addresses {
            m.client(a)?;
        }
        Ok(m)
    }

    /// The address calls go to now.
    pub fn address(&self) -> String {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn client(&self, address: &str) -> Result<Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(address) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|e| Error::invalid(format!("bad master address {address:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            // A master that stops answering (paused, partitioned) fails its calls within ~3s.
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let endpoint = match (&self.tls, address.starts_with("https://")) {
            (Some(tls), true) => endpoint
                .tls_config(tls.clone())
                .map_err(|e| Error::invalid(format!("cannot use TLS to {address}: {e}")))?,
            (None, true) => {
                return Err(Error::invalid(format!(
                    "master {address} is https: set tls.ca (STRATA_TLS__CA) to the cluster CA's PEM file"
                )));
            }
            (_, false) => endpoint,
        };
        let c = MasterClient::with_interceptor(endpoint.connect_lazy(), self.secret.clone())
            .max_decoding_message_size(64 << 20);
        clients.insert(address.to_string(), c.clone());
        Ok(c)
    }

    fn switch(&self, from: &str, to: Option<String>) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if *cur != from {
            return; // another call moved on already
        }
        let next = to.unwrap_or_else(|| {
            let i = self.addresses.iter().position(|a| a == from).map(|i| i + 1).unwrap_or(0);
            self.addresses[i % self.addresses.len()].clone()
        });
        if next != *cur {
            tracing::info!(from = %cur, to = %next, "following the primary master");
            *cur = next;
        }
    }

    async fn call<T, F, Fut>(&self, idempotent: bool, f: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.failover_wait;
        // Masters that name no primary: an election takes about a lease; past that, the
        // caller gets 503 rather than a hang (a master cut off from etcd stays so).
        let electing = tokio::time::Instant::now() + NO_PRIMARY_WAIT;
        let mut pause = Duration::from_millis(50);
        loop {
            let address = self.address();
            let status = match f(self.client(&address)?).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) => s,
            };
            if let Some(e) = tls_failure(&status, &address) {
                return Err(e);
            }
            let err = Error::from(status.clone());
            let primary = named_primary(&status);
            let leaderless = err.kind == ErrorKind::NotPrimary && primary.is_none();
            let retry = match err.kind {
                ErrorKind::NotPrimary => {
                    self.switch(&address, primary.filter(|p| *p != address));
                    true
                }
                ErrorKind::Unavailable if never_reached(&status) || idempotent => {
                    self.switch(&address, None);
                    true
                }
                _ => false,
            };
            let until = if leaderless { deadline.min(electing) } else { deadline };
            if !retry || tokio::time::Instant::now() + pause > until {
                return Err(err);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The primary's stream of changed metadata keys (gateway caches); `acks` goes up. A
    /// standby's refusal moves later calls to the primary it names.
    pub async fn watch_meta(
        &self,
        acks: impl futures::Stream<Item = MetaWatchAck> + Send + 'static,
    ) -> Result<tonic::Streaming<MetaWatchEvent>> {
        let address = self.address();
        let status = match self.client(&address)?.watch_meta(acks).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) => s,
        };
        let err = Error::from(status.clone());
        match err.kind {
            ErrorKind::NotPrimary => {
                self.switch(&address, named_primary(&status).filter(|p| *p != address));
            }
            ErrorKind::Unavailable => self.switch(&address, None),
            _ => {}
        }
        Err(err)
    }

    /// Who is primary, the masters, the workers: any master answers.
    pub async fn report(&self) -> Result<ClusterReport> {
        self.call(true, |mut c| async move { c.report(Empty {}).await }).await
    }

    pub async fn mount(&self, bucket: &str, mount: Mount) -> Result<Bucket> {
        let req = MountRequest { bucket: bucket.into(), mount: Some(mount) };
        call!(self, false, mount_bucket(req))
    }

    pub async fn unmount(&self, bucket: &str) -> Result<()> {
        call!(self, false, unmount_bucket(BucketName { name: bucket.into(), ..Default::default() })).map(|_| ())
    }

    /// Pins or unpins the objects under a prefix; returns how many.
    pub async fn pin(&self, bucket: &str, prefix: &str, pinned: bool) -> Result<u64> {
        let req = PinRequest { bucket: bucket.into(), prefix: prefix.into(), pinned };
        call!(self, true, pin(req)).map(|r| r.objects)
    }

    pub async fn set_ttl(&self, rule: TtlRule) -> Result<()> {
        call!(self, true, set_ttl(rule)).map(|_| ())
    }

    pub async fn ttls(&self) -> Result<Vec<TtlRule>> {
        call!(self, true, list_ttls(Empty {})).map(|l| l.rules)
    }

    /// Buckets and their mounts, secrets masked.
    pub async fn mounts(&self) -> Result<Vec<Bucket>> {
        call!(self, true, list_mounts(Empty {})).map(|l| l.buckets)
    }
    /// Syncs a mount's range with its under store now; progress comes about twice a second.
    pub async fn sync_mount(&self, bucket: &str, prefix: &str) -> Result<tonic::Streaming<SyncProgress>> {
        call!(self, true, sync_mount(SyncRequest { bucket: bucket.into(), prefix: prefix.into() }))
    }

    /// A consistent snapshot of the metadata, as a stream of chunks.
    pub async fn backup(&self) -> Result<tonic::Streaming<BackupChunk>> {
        self.call(true, |mut c| async move { c.backup(Empty {}).await }).await
    }

    pub async fn create_user(&self, user: User) -> Result<User> {
        call!(self, false, create_user(user))
    }
    pub async fn list_users(&self) -> Result<Vec<User>> {
        call!(self, true, list_users(Empty {})).map(|l| l.users)
    }
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        call!(self, false, delete_user(UserRef { id: id.into() })).map(|_| ())
    }
    /// A new key of the user, with its secret: the only time the secret is answered.
    pub async fn create_key(&self, user_id: &str) -> Result<AccessKey> {
        call!(self, false, create_key(UserRef { id: user_id.into() }))
    }
    /// The keys of a user ("" = all), secrets blank.
    pub async fn list_keys(&self, user_id: &str) -> Result<Vec<AccessKey>> {
        call!(self, true, list_keys(UserRef { id: user_id.into() })).map(|l| l.keys)
    }
    pub async fn revoke_key(&self, access_key: &str) -> Result<()> {
        call!(self, false, revoke_key(CredentialRequest { access_key: access_key.into() })).map(|_| ())
    }
    pub async fn set_key_disabled(&self, access_key: &str, disabled: bool) -> Result<()> {
        let req = KeyDisabledRequest { access_key: access_key.into(), disabled };
        call!(self, false, set_key_disabled(req)).map(|_| ())
    }
}

#[async_trait]
impl MasterApi for GrpcMaster {
    async fn create_bucket(&self, name: &str) -> Result<Bucket> {
        call!(self, false, create_bucket(BucketName { name: name.into(), create_access: None }))
    }
    async fn create_owned_bucket(&self, name: &str, access: BucketAccessRequest) -> Result<Bucket> {
        call!(self, false, create_bucket(BucketName { name: name.into(), create_access: Some(access) }))
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        call!(self, false, delete_bucket(BucketName { name: name.into(), ..Default::default() })).map(|_| ())
    }
    async fn get_bucket(&self, name: &str) -> Result<Bucket> {
        call!(self, true, get_bucket(BucketName { name: name.into(), ..Default::default() }))
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        call!(self, true, list_buckets(Empty {})).map(|l| l.buckets)
    }
    async fn lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        call!(self, true, lookup(ObjectRef { bucket: bucket.into(), key: key.into() }))
    }
    async fn allocate_version(&self) -> Result<u64> {
        call!(self, true, allocate_version(Empty {})).map(|v| v.version)
    }
    async fn commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        call!(self, false, commit_object(req))
    }
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        call!(self, false, delete_object(ObjectRef { bucket: bucket.into(), key: key.into() }))
    }
    async fn list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        call!(self, true, list_objects(req))
    }
    async fn create_upload(&self, upload: Upload) -> Result<Upload> {
        call!(self, false, create_upload(CreateUploadRequest { upload: Some(upload) }))
    }
    async fn get_upload(&self, upload: UploadRef) -> Result<UploadState> {
        call!(self, true, get_upload(upload))
    }
    async fn commit_part(&self, req: CommitPartRequest) -> Result<CommitPartResponse> {
        call!(self, false, commit_part(req))
    }
    async fn complete_upload(&self, req: CompleteUploadRequest) -> Result<CompleteUploadResponse> {
        call!(self, false, complete_upload(req))
    }
    async fn abort_upload(&self, upload: UploadRef) -> Result<AbortUploadResponse> {
        call!(self, false, abort_upload(upload))
    }
    async fn get_completed_upload(&self, upload: UploadRef) -> Result<CompletedUpload> {
        call!(self, true, get_completed_upload(upload))
    }
    async fn list_uploads(&self, req: ListUploadsRequest) -> Result<ListUploadsResponse> {
        call!(self, true, list_uploads(req))
    }
    async fn set_tags(&self, req: SetTagsRequest) -> Result<()> {
        call!(self, true, set_tags(req)).map(|_| ())
    }
    async fn set_bucket_cors(&self, req: SetCorsRequest) -> Result<()> {
        call!(self, true, set_bucket_cors(req)).map(|_| ())
    }
    async fn get_credential(&self, access_key: &str) -> Result<CredentialResponse> {
        call!(self, true, get_credential(CredentialRequest { access_key: access_key.into() }))
    }
    async fn set_bucket_access(&self, req: BucketAccessRequest) -> Result<Bucket> {
        call!(self, true, set_bucket_access(req))
    }
    async fn set_object_acl(&self, req: ObjectAclRequest) -> Result<()> {
        call!(self, true, set_object_acl(req)).map(|_| ())
    }
    async fn get_mount(&self, bucket: &str) -> Result<Mount> {
        call!(self, true, get_mount(BucketName { name: bucket.into(), ..Default::default() }))
    }
    async fn register_worker(&self, info: WorkerInfo) -> Result<WorkerInfo> {
        call!(self, true, register_worker(info))
    }
    async fn journal(&self, worker_id: u64) -> Result<Vec<JournalEntry>> {
        call!(self, true, journal(JournalRequest { worker_id })).map(|l| l.entries)
    }
    async fn persisted(&self, req: PersistedRequest) -> Result<()> {
        call!(self, false, persisted(req)).map(|_| ())
    }
    async fn heartbeat(&self, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        call!(self, true, heartbeat(req))
    }
    async fn list_workers(&self) -> Result<Vec<WorkerInfo>> {
        call!(self, true, list_workers(Empty {})).map(|l| l.workers)
    }
}
