//! The S3 gateway: stateless. It parses and authenticates S3 requests, asks the master for
//! metadata and streams bytes from and to workers.

mod auth;
mod body;
mod error;
mod http;
mod ops;
mod router;
mod workers;
mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_common::api::{MasterApi, WorkerApi};

pub use http::{router, run};
pub use workers::IN_PROCESS;

pub struct GatewayOptions {
    /// Virtual-hosted-style addressing under this domain.
    pub domain: Option<String>,
    pub region: String,
    pub block_size: u64,
}

/// Cheap to clone; all state is behind one Arc.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

pub struct Inner {
    master: Arc<dyn MasterApi>,
    workers: workers::WorkerPool,
    secrets: Mutex<HashMap<String, (String, Instant)>>,
    opts: GatewayOptions,
    /// Under stores, for reads when no worker is alive.
    ufs: strata_common::ufs::UfsRegistry,
    mounts: Mutex<HashMap<String, (strata_common::proto::Mount, Instant)>>,
}

/// How long a looked-up secret key is trusted.
const SECRET_TTL: Duration = Duration::from_secs(60);

impl Gateway {
    /// `local`: the in-process worker of `strata local`, reached without sockets.
    pub fn new(
        master: Arc<dyn MasterApi>,
        local: Option<Arc<dyn WorkerApi>>,
        cluster_secret: String,
        opts: GatewayOptions,
    ) -> Gateway {
        Gateway(Arc::new(Inner {
            workers: workers::WorkerPool::new(master.clone(), local, cluster_secret),
            master,
            secrets: Mutex::new(HashMap::new()),
            opts,
            ufs: Default::default(),
            mounts: Mutex::new(HashMap::new()),
        }))
    }

    async fn secret_of(&self, access_key: String) -> error::S3Result<String> {
        if let Some((s, at)) = self.0.secrets.lock().unwrap_or_else(|p| p.into_inner()).get(&access_key)
            && at.elapsed() < SECRET_TTL
        {
            return Ok(s.clone());
        }
        let secret = self.0.master.get_credential(&access_key).await?;
        self.0.secrets.lock().unwrap_or_else(|p| p.into_inner()).insert(access_key, (secret.clone(), Instant::now()));
        Ok(secret)
    }
}

/// How long a mount is trusted for direct reads.
const MOUNT_TTL: Duration = Duration::from_secs(10);

impl Gateway {
    /// A bucket's mount, trusted for a few seconds.
    pub(crate) async fn mount_of(&self, bucket: &str) -> strata_common::Result<strata_common::proto::Mount> {
        let cached = self.0.mounts.lock().unwrap_or_else(|p| p.into_inner()).get(bucket).cloned();
        if let Some((m, at)) = cached
            && at.elapsed() < MOUNT_TTL
        {
            return Ok(m);
        }
        let m = self.0.master.get_mount(bucket).await?;
        self.0.mounts.lock().unwrap_or_else(|p| p.into_inner()).insert(bucket.to_string(), (m.clone(), Instant::now()));
        Ok(m)
    }

    /// Reads a block's range from the under store itself (no worker is alive): the same bytes,
    /// uncached, refused if the object changed there since it was written.
    async fn direct_read(
        &self,
        req: &strata_common::api::ReadRequest,
    ) -> strata_common::Result<strata_common::api::ByteStream> {
        use futures::{StreamExt, TryStreamExt};
        use object_store::{GetOptions, GetRange, ObjectStore};
        use strata_common::ufs::ufs_error;
        let mount = self.mount_of(&req.loc.bucket).await?;
        let store = self.0.ufs.open(&mount)?;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(req.offset..req.offset + req.len)),
            if_match: (!req.ufs_etag.is_empty()).then(|| req.ufs_etag.clone()),
            ..Default::default()
        };
        let what = format!("reading {}/{} from the under store", req.loc.bucket, req.loc.key);
        let got = store.get_opts(&req.loc.path()?, opts).await.map_err(|e| ufs_error(&what, e))?;
        Ok(got.into_stream().map_err(move |e| ufs_error(&what, e)).boxed())
    }
}

impl std::ops::Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
