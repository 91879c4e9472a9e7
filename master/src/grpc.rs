//! The master's gRPC service (control plane for gateways and workers), `/healthz`, `/readyz`
//! and `/metrics` on the same port.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::StreamExt;
use strata_common::api::MasterApi;
use strata_common::ids;
use strata_common::master_client::{PRIMARY_HEADER, SECRET_HEADER};
use strata_common::ops::{Readiness, ops_router};
use strata_common::proto::master_server::{Master as MasterService, MasterServer};
use strata_common::proto::*;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::master::Master;

struct Service(Arc<Master>);

fn status(m: &Master, e: strata_common::Error) -> Status {
    let not_primary = e.is(strata_common::ErrorKind::NotPrimary);
    let mut s = Status::from(e);
    if not_primary {
        let primary = m.ha().primary_address();
        if let Ok(v) = primary.parse()
            && !primary.is_empty()
        {
            s.metadata_mut().insert(PRIMARY_HEADER, v);
        }
    }
    s
}

/// Times an RPC (a stream's to its end) and counts its error, if any.
fn observe(rpc: &'static str, started: std::time::Instant, error: Option<&strata_common::Error>) {
    metrics::histogram!("strata_master_rpc_seconds", "rpc" => rpc).record(started.elapsed().as_secs_f64());
    if let Some(e) = error {
        metrics::counter!("strata_master_rpc_errors_total", "rpc" => rpc, "kind" => e.kind.as_str()).increment(1);
    }
}

/// A streamed RPC observed once: at its end, or (no error) when its client hangs up.
struct Observed {
    rpc: &'static str,
    started: std::time::Instant,
    done: bool,
}

impl Observed {
    fn end(&mut self, error: Option<&strata_common::Error>) {
        if !std::mem::replace(&mut self.done, true) {
            observe(self.rpc, self.started, error);
        }
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.end(None);
    }
}

/// Each RPC calls the in-process master, timed and counted; only the primary serves them, and
/// one in flight when the master steps down is answered at once (a partitioned primary's store
/// calls could hang until their timeout): a write's outcome is then the store's epoch check's.
macro_rules! service {
    (extra { $($extra:item)* } $($name:ident($req:ty) -> $resp:ty = |$m:ident, $r:ident| $body:expr;)*) => {
        #[tonic::async_trait]
        impl MasterService for Service {
            $($extra)*
            $(
            async fn $name(&self, req: Request<$req>) -> Result<Response<$resp>, Status> {
                let $m = &self.0;
                let mut demoted = $m.ha().demotions();
                $m.ha().check_primary().map_err(|e| status($m, e))?;
                let $r = req.into_inner();
                let started = std::time::Instant::now();
                let out = tokio::select! {
                    out = $body => out,
                    Ok(()) = demoted.changed() => Err(strata_common::Error::unavailable(
                        "this master stopped being the primary while serving the request; retry it (a write \
                         committed before that stands)",
                    )),
                };
                observe(stringify!($name), started, out.as_ref().err());
                out.map(Response::new).map_err(|e| status($m, e))
            }
            )*
        }
    };
}

service! {
    extra {
        /// Any master answers: a standby knows the primary and the masters taking part.
        async fn report(&self, _req: Request<Empty>) -> Result<Response<ClusterReport>, Status> {
            Ok(Response::new(self.0.report().await))
        }

        type BackupStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<BackupChunk, Status>> + Send>>;

        /// A consistent snapshot of the store; a standby can take it as well as the primary.
        async fn backup(&self, _req: Request<Empty>) -> Result<Response<Self::BackupStream>, Status> {
            let rx = crate::backup::snapshot(self.0.raw_store());
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
                .map(|c| c.map(|(data, keys)| BackupChunk { data: data.to_vec(), keys }).map_err(Status::from));
            Ok(Response::new(Box::pin(stream)))
        }

        type SyncMountStream =
            std::pin::Pin<Box<dyn futures::Stream<Item = Result<SyncProgress, Status>> + Send>>;

        /// `strata admin sync`: the progress of the sync about twice a second, then its end.
        async fn sync_mount(&self, req: Request<SyncRequest>) -> Result<Response<Self::SyncMountStream>, Status> {
            let m = &self.0;
            m.ha().check_primary().map_err(|e| status(m, e))?;
            let r = req.into_inner();
            let started = std::time::Instant::now();
            let run = m.sync_mount(&r.bucket, &r.prefix).await.map_err(|e| {
                observe("sync_mount", started, Some(&e));
                status(m, e)
            })?;
            let seen = Observed { rpc: "sync_mount", started, done: false };
            let stream = futures::stream::unfold((Some(run), seen), |(run, mut seen)| async move {
                let run = run?;
                match run.finished(Duration::from_millis(500)).await {
                    None => Some((Ok(run.progress()), (Some(run), seen))),
                    Some(Ok(())) => {
                        seen.end(None);
                        Some((Ok(run.progress()), (None, seen)))
                    }
                    Some(Err(e)) => {
                        seen.end(Some(&e));
                        Some((Err(Status::from(e)), (None, seen)))
                    }
                }
            });
            Ok(Response::new(Box::pin(stream)))
        }

        type WatchMetaStream =
            std::pin::Pin<Box<dyn futures::Stream<Item = Result<MetaWatchEvent, Status>> + Send>>;

        /// A gateway's watch of the keys it caches: events and heartbeats down, acks up.
        async fn watch_meta(
            &self,
            req: Request<tonic::Streaming<MetaWatchAck>>,
        ) -> Result<Response<Self::WatchMetaStream>, Status> {
            let m = &self.0;
            m.ha().check_primary().map_err(|e| status(m, e))?;
            let hub = m.meta_watch().clone();
            let (id, watcher, rx) = hub.subscribe();
            let mut acks = req.into_inner();
            tokio::spawn(async move {
                while let Ok(Some(a)) = acks.message().await {
                    watcher.ack(a.seq, a.ping);
                }
                hub.unsubscribe(id);
            });
            Ok(Response::new(Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok))))
        }
    }
    create_bucket(BucketName) -> Bucket = |m, r| async {
        match r.create_access {
            Some(a) => m.create_owned_bucket(&r.name, a).await,
            None => m.create_bucket(&r.name).await,
        }
    };
    delete_bucket(BucketName) -> Empty = |m, r| async { m.delete_bucket(&r.name).await.map(|_| Empty {}) };
    get_bucket(BucketName) -> Bucket = |m, r| m.get_bucket(&r.name);
    list_buckets(Empty) -> BucketList = |m, _r| async { m.list_buckets().await.map(|buckets| BucketList { buckets }) };
    lookup(ObjectRef) -> ObjectMeta = |m, r| m.lookup(&r.bucket, &r.key);
    allocate_version(Empty) -> VersionResponse = |m, _r| async { m.allocate_version().await.map(|version| VersionResponse { version }) };
    commit_object(CommitObjectRequest) -> CommitObjectResponse = |m, r| m.commit_object(r);
    delete_object(ObjectRef) -> DeleteObjectResponse = |m, r| m.delete_object(&r.bucket, &r.key);
    list_objects(ListObjectsRequest) -> ListObjectsResponse = |m, r| m.list_objects(r);
    create_upload(CreateUploadRequest) -> Upload = |m, r| m.create_upload(r.upload.unwrap_or_default());
    get_upload(UploadRef) -> UploadState = |m, r| m.get_upload(r);
    commit_part(CommitPartRequest) -> CommitPartResponse = |m, r| m.commit_part(r);
    complete_upload(CompleteUploadRequest) -> CompleteUploadResponse = |m, r| m.complete_upload(r);
    abort_upload(UploadRef) -> AbortUploadResponse = |m, r| m.abort_upload(r);
    get_completed_upload(UploadRef) -> CompletedUpload = |m, r| m.get_completed_upload(r);
    list_uploads(ListUploadsRequest) -> ListUploadsResponse = |m, r| m.list_uploads(r);
    set_tags(SetTagsRequest) -> Empty = |m, r| async { m.set_tags(r).await.map(|_| Empty {}) };
    set_bucket_cors(SetCorsRequest) -> Empty = |m, r| async { m.set_bucket_cors(r).await.map(|_| Empty {}) };
    get_credential(CredentialRequest) -> CredentialResponse = |m, r| async {
        m.get_credential(&r.access_key).await
    };
    set_bucket_access(BucketAccessRequest) -> Bucket = |m, r| m.set_bucket_access(r);
    set_object_acl(ObjectAclRequest) -> Empty = |m, r| async { m.set_object_acl(r).await.map(|_| Empty {}) };
    create_user(User) -> User = |m, r| m.create_user(r);
    list_users(Empty) -> UserList = |m, _r| async { m.list_users().await.map(|users| UserList { users }) };
    delete_user(UserRef) -> Empty = |m, r| async { m.delete_user(&r.id).await.map(|_| Empty {}) };
    create_key(UserRef) -> AccessKey = |m, r| async { m.create_key(&r.id).await };
    list_keys(UserRef) -> AccessKeyList = |m, r| async { m.list_keys(&r.id).await.map(|keys| AccessKeyList { keys }) };
    revoke_key(CredentialRequest) -> Empty = |m, r| async { m.revoke_key(&r.access_key).await.map(|_| Empty {}) };
    set_key_disabled(KeyDisabledRequest) -> Empty = |m, r| async { m.set_key_disabled(&r.access_key, r.disabled).await.map(|_| Empty {}) };
    get_mount(BucketName) -> Mount = |m, r| m.get_mount(&r.name);
    register_worker(WorkerInfo) -> WorkerInfo = |m, r| m.register_worker(r);
    heartbeat(HeartbeatRequest) -> HeartbeatResponse = |m, r| m.heartbeat(r);
    journal(JournalRequest) -> JournalList = |m, r| async { m.journal(r.worker_id).await.map(|entries| JournalList { entries }) };
    persisted(PersistedRequest) -> Empty = |m, r| async { m.persisted(r).await.map(|_| Empty {}) };
    list_workers(Empty) -> WorkerList = |m, _r| async { m.list_workers().await.map(|workers| WorkerList { workers }) };
    mount_bucket(MountRequest) -> Bucket = |m, r| m.mount(&r.bucket, r.mount.clone().unwrap_or_default());
    unmount_bucket(BucketName) -> Empty = |m, r| async { m.unmount(&r.name).await.map(|_| Empty {}) };
    pin(PinRequest) -> PinResponse = |m, r| async { m.pin(&r.bucket, &r.prefix, r.pinned).await.map(|objects| PinResponse { objects }) };
    set_ttl(TtlRule) -> Empty = |m, r| async { m.set_ttl(r).await.map(|_| Empty {}) };
    list_ttls(Empty) -> TtlList = |m, _r| async { m.list_ttls().await.map(|rules| TtlList { rules }) };
    list_mounts(Empty) -> BucketList = |m, _r| async { m.list_mounts().await.map(|buckets| BucketList { buckets }) };
}

/// The gRPC service behind the cluster secret, with the ops endpoints beside it.
pub fn router(master: Arc<Master>, secret: String, ready: Readiness) -> Router {
    let check = move |req: Request<()>| -> Result<Request<()>, Status> {
        let given = req.metadata().get(SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if ids::secret_eq(given, &secret) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("missing or wrong cluster secret: give every process the same cluster_secret"))
        }
    };
    let server = MasterServer::new(Service(master)).max_decoding_message_size(64 << 20);
    let grpc = tonic::service::interceptor::InterceptedService::new(server, check);
    tonic::service::Routes::new(grpc).into_axum_router().merge(ops_router(ready))
}

/// Serves the master on `listener` until `shutdown`.
pub async fn run(
    master: Arc<Master>,
    secret: String,
    listener: TcpListener,
    tls: Option<strata_common::tls::ServerTls>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let ready = Readiness::default();
    ready.set(true);
    tracing::info!(addr = %listener.local_addr()?, store = master.store_name(), "master serving");
    let limits = strata_common::server::Limits { tls, ..Default::default() };
    strata_common::server::serve_with(
        listener,
        router(master, secret, ready),
        shutdown,
        Duration::from_secs(10),
        limits,
    )
    .await
}
