//! The master: the namespace (buckets, objects, multipart uploads, mounts, credentials) in a
//! transactional key-value store, and worker membership.

pub mod backup;
mod buckets;
mod credentials;
#[cfg(feature = "etcd")]
pub mod election;
mod grpc;
mod ha;
mod journal;
mod listing;
mod master;
mod membership;
mod mounts;
mod objects;
mod publish;
pub mod store;
mod sync;
mod ttl;
mod uploads;

pub use credentials::RootCredentials;
pub use grpc::{router, run};
pub use ha::{HaState, stored_epoch};
pub use master::{Master, MasterOptions};
pub use ttl::ttl_loop;
pub use uploads::expire_uploads;
