//! `strata admin user …` and `strata admin key …`: S3 users and their access keys, kept by the
//! master. A key's secret is printed once, when it is made, and never logged.

use anyhow::{Context, Result};
use strata_common::api::MasterApi;
use strata_common::config::Config;
use strata_common::proto::{BucketAccessRequest, User, UserBucketGrant};

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
    let user = User { id: id.into(), display_name: display_name.unwrap_or("").into(), ..Default::default() };
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
        println!(
            "{:<24} user {:<40} {:<8} created {}",
            k.access_key,
            k.user_id,
            key_state(k.disabled),
            when(k.created_ms)
        );
    }
    Ok(())
}

/// Gateways trust a looked-up key this long: waiting it out means every gateway refuses it.
async fn wait_out_gateway_caches() {
    tokio::time::sleep(strata_gateway::SECRET_TTL + std::time::Duration::from_millis(100)).await;
}

pub async fn key_revoke(cfg: &Config, access_key: &str) -> Result<()> {
    client(cfg)?.revoke_key(access_key).await.with_context(|| format!("cannot revoke {access_key}"))?;
    wait_out_gateway_caches().await;
    println!("revoked {access_key}: every gateway refuses it now");
    Ok(())
}

pub async fn key_disable(cfg: &Config, access_key: &str, disabled: bool) -> Result<()> {
    let verb = if disabled { "disable" } else { "enable" };
    client(cfg)?.set_key_disabled(access_key, disabled).await.with_context(|| format!("cannot {verb} {access_key}"))?;
    if disabled {
        wait_out_gateway_caches().await;
        println!("disabled {access_key}: every gateway refuses it now (`strata admin key enable` undoes it)");
    } else {
        println!("enabled {access_key}");
    }
    Ok(())
}

/// The rights of `strata admin grant`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rights {
    pub read: bool,
    pub write: bool,
    pub owner: bool,
}

/// Adds (`give`) or takes away `rights` of `user` on `bucket`.
pub async fn grant(cfg: &Config, user: &str, bucket: &str, rights: &Rights, give: bool) -> Result<()> {
    let c = client(cfg)?;
    let users = c.list_users().await.context("cannot list users")?;
    if give && !users.iter().any(|u| u.id == user) {
        anyhow::bail!("no user {user:?}: `strata admin user list` shows them");
    }
    let b = c.get_bucket(bucket).await.with_context(|| format!("cannot read bucket {bucket}"))?;
    let mut g = b
        .user_grants
        .iter()
        .find(|g| g.user_id == user)
        .cloned()
        .unwrap_or(UserBucketGrant { user_id: user.into(), ..Default::default() });
    for (flag, wanted) in [(&mut g.read, rights.read), (&mut g.write, rights.write), (&mut g.owner, rights.owner)] {
        if wanted {
            *flag = give;
        }
    }
    let req = BucketAccessRequest {
        bucket: bucket.into(),
        set_user_grant: true,
        user_grant: Some(g.clone()),
        ..Default::default()
    };
    c.set_bucket_access(req).await.with_context(|| format!("cannot change the grants of {bucket}"))?;
    let names: Vec<&str> = [(g.read, "read"), (g.write, "write"), (g.owner, "owner")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    let now = if names.is_empty() { "nothing".to_string() } else { names.join(", ") };
    println!("{user} on {bucket}: {now}");
    Ok(())
}

/// A key's state in `key list`.
fn key_state(disabled: bool) -> &'static str {
    if disabled { "disabled" } else { "active" }
}
