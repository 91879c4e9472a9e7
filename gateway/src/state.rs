//! The gateway's shared state: the master and worker clients, the under stores for reads
//! when no worker is alive, and short-lived caches of secrets and mounts.

use std::sync::Arc;
use std::time::Duration;

use strata_common::api::MasterApi;
use strata_common::proto::{Bucket, BucketAccessRequest, CredentialResponse, Mount};
use strata_common::ttl_cache::TtlCache;
use strata_common::ufs::UfsRegistry;

use crate::access::Principal;
use crate::error::S3Result;
use crate::policy::Policy;
use crate::workers::{LocalWorker, WorkerPool};

pub struct GatewayOptions {
    /// Virtual-hosted-style addressing under this domain.
    pub domain: Option<String>,
    pub region: String,
    pub block_size: u64,
    /// What the HTTP server tolerates from clients.
    pub limits: strata_common::server::Limits,
    /// A JSON line per request goes here (and per-request lines leave the main log).
    pub access_log: Option<Arc<crate::AccessLog>>,
}

/// Cheap to clone; all state is behind one Arc.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

pub struct Inner {
    pub(crate) master: Arc<dyn MasterApi>,
    pub(crate) workers: WorkerPool,
    secrets: TtlCache<String, CredentialResponse>,
    pub(crate) opts: GatewayOptions,
    /// Under stores, for reads when no worker is alive.
    pub(crate) ufs: UfsRegistry,
    mounts: TtlCache<String, Mount>,
    /// Bucket records for the root key's requests (see [`Gateway::bucket_for_root`]).
    root_buckets: TtlCache<String, Bucket>,
    /// Buckets' policies as parsed, with the text they were parsed from.
    policies: std::sync::Mutex<std::collections::HashMap<String, (String, Arc<Policy>)>>,
}

/// Parsed policies kept; past this many the cache starts over.
const MAX_CACHED_POLICIES: usize = 10_000;

/// How long a looked-up secret key (and whose it is) is trusted: a revoked key stops working
/// within this time on every gateway.
pub const SECRET_TTL: Duration = Duration::from_secs(5);
/// How long the root key's requests trust a bucket record (its policy's Deny statements).
const ROOT_BUCKET_TTL: Duration = Duration::from_secs(1);
/// How long a mount is trusted for direct reads and write types.
const MOUNT_TTL: Duration = Duration::from_secs(10);

impl Gateway {
    /// `local`: the worker of this process, reached without sockets.
    pub fn new(
        master: Arc<dyn MasterApi>,
        local: Option<LocalWorker>,
        cluster_secret: String,
        opts: GatewayOptions,
    ) -> Gateway {
        Gateway(Arc::new(Inner {
            workers: WorkerPool::new(master.clone(), local, cluster_secret),
            master,
            secrets: TtlCache::new(SECRET_TTL),
            opts,
            ufs: Default::default(),
            mounts: TtlCache::new(MOUNT_TTL),
            root_buckets: TtlCache::new(ROOT_BUCKET_TTL),
            policies: Default::default(),
        }))
    }

    /// The secret key of an access key, trusted for a few seconds.
    pub(crate) async fn secret_of(&self, access_key: String) -> S3Result<String> {
        Ok(self.credential(access_key).await?.secret_key)
    }

    /// Whose an (authenticated) access key is.
    pub(crate) async fn principal_of(&self, access_key: &str) -> S3Result<Principal> {
        Ok(Principal::of(&self.credential(access_key.to_string()).await?))
    }

    async fn credential(&self, access_key: String) -> strata_common::Result<CredentialResponse> {
        let fetch = self.0.master.get_credential(&access_key);
        self.0.secrets.get_or_fetch(access_key.clone(), fetch).await
    }

    /// A bucket's policy, parsed once per text (it was checked when put); None when it has none
    /// or (written by something else than PutBucketPolicy) it does not parse, which is logged.
    pub(crate) fn policy_of(&self, b: &Bucket) -> Option<Arc<Policy>> {
        if b.policy.is_empty() {
            return None;
        }
        let mut cache = self.0.policies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((text, p)) = cache.get(&b.name)
            && *text == b.policy
        {
            return Some(p.clone());
        }
        let p = match Policy::parse(b.policy.as_bytes(), &b.name) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::warn!(bucket = %b.name, "stored bucket policy does not parse, ignored: {}", e.message);
                return None;
            }
        };
        if cache.len() >= MAX_CACHED_POLICIES {
            cache.clear();
        }
        cache.insert(b.name.clone(), (b.policy.clone(), p.clone()));
        Some(p)
    }

    /// A bucket as the root key's requests see it: trusted for a second, so that checking its
    /// policy's Deny costs the root key (benchmarks, bulk jobs) no master call per request. A
    /// change through this gateway is seen at once ([`Gateway::set_bucket_access`]).
    pub(crate) async fn bucket_for_root(&self, name: &str) -> strata_common::Result<Bucket> {
        self.0.root_buckets.get_or_fetch(name.to_string(), self.0.master.get_bucket(name)).await
    }

    /// Changes a bucket's access configuration; this gateway's cached record goes.
    pub(crate) async fn set_bucket_access(&self, req: BucketAccessRequest) -> strata_common::Result<Bucket> {
        let name = req.bucket.clone();
        let r = self.0.master.set_bucket_access(req).await;
        self.forget_bucket(&name);
        r
    }

    /// Drops this gateway's cached record of a bucket it changed.
    pub(crate) fn forget_bucket(&self, name: &str) {
        self.0.root_buckets.invalidate(name);
    }

    /// A bucket's mount, trusted for a few seconds.
    pub(crate) async fn mount_of(&self, bucket: &str) -> strata_common::Result<Mount> {
        self.0.mounts.get_or_fetch(bucket.to_string(), self.0.master.get_mount(bucket)).await
    }
}

impl std::ops::Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
