//! The gateway's S3 operations, in-process: a real master, worker and gateway, requests
//! signed with aws-sigv4 and sent to the gateway's router without sockets.

mod support;

#[path = "ops/put.rs"]
mod put;

#[path = "ops/get.rs"]
mod get;
