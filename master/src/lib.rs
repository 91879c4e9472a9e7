//! The master: the namespace (buckets, objects, multipart uploads, mounts, credentials) in a
//! transactional key-value store, and worker membership.
//!
//! Layering, lowest first. A file uses only files above it in this list, never one below:
//!
//! 1. `store` (backends, the fenced wrapper) over `strata_common::kv`
//! 2. `listing` (one page of an S3 listing over a key range)
//! 3. `schema` (typed accessors over the key layout; the invariants of replacing an object)
//! 4. `ha` (primary role, epoch), `versions` (version ids), `credentials`, `backup`
//! 5. `membership` (workers), `buckets`
//! 6. `publish` (commits of one key in order, with their bytes moved into place)
//! 7. `sync` (syncing mounts with their under stores)
//! 8. `objects` (lookups, commits, deletes, tags, listings)
//! 9. `uploads`, `journal`, `mounts` (and pins), `ttl`
//! 10. `master` (composes the components, implements `MasterApi`)
//! 11. `grpc`, `election`, `jobs` (background jobs in a task tracker), `ui` (the web dashboard)
//!
//! Adding an RPC: its messages and `rpc` in `common/proto/strata.proto`; the method in
//! `common/src/api.rs` (`MasterApi`) and the client's in `common/src/master_client.rs`; the
//! component's method (e.g. `objects.rs`); one line in `master.rs`'s `impl MasterApi` and one in
//! `grpc.rs`'s `service!`.

mod acl;
pub mod backup;
mod buckets;
mod credentials;
#[cfg(feature = "etcd")]
pub mod election;
mod free;
#[doc(hidden)]
pub mod fuzzing;
mod grpc;
mod ha;
pub mod jobs;
mod journal;
mod listing;
mod master;
mod membership;
mod mounts;
mod objects;
mod publish;
mod reclaim;
mod schema;
pub mod store;
mod sync;
mod ttl;
pub mod ui;
mod uploads;
mod users;
mod versions;

pub use credentials::RootCredentials;
pub use grpc::{router, run};
pub use ha::{HaState, stored_epoch};
pub use jobs::{Jobs, expire_uploads, ttl_loop};
pub use master::{Master, MasterOptions};
pub use ttl::TtlPasses;
