//! `strata admin user …` and `strata admin key …`: S3 users and their access keys, kept by the
//! master. A key's secret is printed once, when it is made, and never logged.

use anyhow::{Context, Result};
use strata_common::config::Config;
use strata_common::proto::User;

use crate::{cluster_secret, master_client};

fn client(cfg: &Config) -> Result<std::sync::Arc<strata_common::master_client::GrpcMaster>> {
    master_client(cfg, &cluster_secret(cfg, "admin")?)
}

/// How long ago, for listings.
fn when(ms: i64) -> String {
    let secs = (strata_common::ids::now_ms() - ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

pub async fn user_create(cfg: &Config, id: &str, display_name: Option<&str>) -> Result<()> {
    let user = User { id: id.into(), display_name: display_name.unwrap_or("").into(), created_ms: 0 };
    let u = client(cfg)?.create_user(user).await.with_context(|| format!("cannot create user {id}"))?;
    println!("created user {} ({}); give it a key with `strata admin key create {}`", u.id, u.display_name, u.id);
    Ok(())
}

pub async fn user_list(cfg: &Config) -> Result<()> {
    for u in client(cfg)?.list_users().await.context("cannot list users")? {
        println!("{:<40} {:<24} created {}", u.id, u.display_name, when(u.created_ms));
    }
    Ok(())
}

pub async fn user_delete(cfg: &Config, id: &str) -> Result<()> {
    client(cfg)?.delete_user(id).await.with_context(|| format!("cannot delete user {id}"))?;
    println!("deleted user {id} and its keys (buckets it owns stay; the root key reaches them)");
    Ok(())
}

pub async fn key_create(cfg: &Config, user: &str) -> Result<()> {
    let k = client(cfg)?.create_key(user).await.with_context(|| format!("cannot create a key for {user}"))?;
    println!("access_key = {}\nsecret_key = {}", k.access_key, k.secret_key);
    eprintln!("(the secret key is shown this once: keep it now)");
    Ok(())
}

pub async fn key_list(cfg: &Config, user: Option<&str>) -> Result<()> {
    for k in client(cfg)?.list_keys(user.unwrap_or("")).await.context("cannot list keys")? {
        println!("{:<24} user {:<40} created {}", k.access_key, k.user_id, when(k.created_ms));
    }
    Ok(())
}

pub async fn key_revoke(cfg: &Config, access_key: &str) -> Result<()> {
    client(cfg)?.revoke_key(access_key).await.with_context(|| format!("cannot revoke {access_key}"))?;
    println!("revoked {access_key}: gateways refuse it within 5 seconds");
    Ok(())
}
