//! Shared types of Strata: errors, config, the metadata key layout and store trait, the
//! control-plane protocol and the data-plane API that gateway, master and worker speak.

pub mod api;
pub mod cache_types;
pub mod codec;
pub mod config;
pub mod error;
pub mod etag;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod io_mode;
pub mod keys;
pub mod kv;
pub mod locks;
pub mod master_client;
pub mod names;
pub mod ops;
pub mod placement;
pub mod read_source;
pub mod recent_errors;
pub mod server;
pub mod tls;
pub mod ttl_cache;
pub mod ufs;
pub mod ufs_local;
pub mod ufs_metered;
pub mod ufs_read;
pub mod worker_client;

pub mod proto {
    tonic::include_proto!("strata.v1");
}

pub use error::{Error, ErrorKind, Result};
