//! The gateway's S3 operations, in-process: a real master, worker and gateway, requests
//! signed with aws-sigv4 and sent to the gateway's router without sockets.

mod support;

#[path = "ops/put.rs"]
mod put;

#[path = "ops/get.rs"]
mod get;

#[path = "ops/copy.rs"]
mod copy;

#[path = "ops/multipart.rs"]
mod multipart;

#[path = "ops/list.rs"]
mod list;

#[path = "ops/bucket.rs"]
mod bucket;

#[path = "ops/errors.rs"]
mod errors;

#[path = "ops/config.rs"]
mod config;

#[path = "ops/access.rs"]
mod access;
