//! The master: the namespace (buckets, objects, multipart uploads, mounts, credentials) in a
//! transactional key-value store, and worker membership.

mod buckets;
mod credentials;
mod grpc;
mod listing;
mod master;
mod membership;
mod objects;
mod publish;
pub mod store;
mod uploads;

pub use credentials::RootCredentials;
pub use grpc::{router, run};
pub use master::{Master, MasterOptions};
pub use uploads::expire_uploads;
