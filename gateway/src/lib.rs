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

impl std::ops::Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
