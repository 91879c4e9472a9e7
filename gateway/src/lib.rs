//! The S3 gateway: stateless. It parses and authenticates S3 requests, asks the master for
//! metadata and streams bytes from and to workers.
//!
//! Layers, each using only the ones below it: `http` (the front) → `ops` (one module per
//! operation family, none using another) → `read` and `write` (the pipelines) → `request`,
//! `headers`, `tags`, `body`, `access` (who may do what), `auth`, `workers`, `state` → `acl`,
//! `policy`, `router`, `xml`, `error`.

mod access;
mod access_log;
mod acl;
mod auth;
mod body;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod http;
mod meta_cache;
mod ops;
mod policy;
mod read;
mod request;
mod router;
mod state;
mod tags;
mod workers;
mod write;
mod xml;

pub use access_log::AccessLog;
pub use http::{router, run};
pub use meta_cache::CachedMaster;
pub use state::{Gateway, GatewayOptions, Inner, SECRET_TTL};
pub use workers::{IN_PROCESS, LocalWorker};
