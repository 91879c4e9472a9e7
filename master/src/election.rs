//! Primary election through etcd: every master campaigns for `/<cluster>/primary` under a lease
//! and publishes itself under `/<cluster>/masters/`. The winner takes a new epoch (fencing) and
//! serves; the others answer with the winner's address. A master that cannot renew its lease
//! within half its TTL steps down before etcd can hand the role to another one,
//! and campaigns again with a new lease.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions, LeaderKey, PutOptions, ResignOptions};
use strata_common::proto::MasterInfo;
use strata_common::{Error, Result};
use tokio_util::sync::CancellationToken;

use crate::master::Master;

#[derive(Clone, Debug)]
pub struct ElectionOptions {
    pub endpoints: Vec<String>,
    /// Key prefix in etcd: one per cluster.
    pub cluster: String,
    pub lease_ttl: Duration,
}

impl ElectionOptions {
    /// `etcd://host:port[,host:port...]/cluster`.
    pub fn parse(url: &str, lease_ttl: Duration) -> Result<ElectionOptions> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| Error::invalid(format!("election {url:?}: give etcd://host:port[,host:port]/cluster")))?;
        let (hosts, cluster) = rest.split_once('/').unwrap_or((rest, "strata"));
        let cluster = cluster.trim_matches('/');
        if hosts.is_empty() {
            return Err(Error::invalid(format!("election {url:?} names no etcd host")));
        }
        if lease_ttl < Duration::from_secs(2) {
            return Err(Error::invalid("lease_ttl_ms must be at least 2000 (etcd's shortest lease)"));
        }
        Ok(ElectionOptions {
            endpoints: hosts.split(',').map(|h| format!("http://{h}")).collect(),
            cluster: if cluster.is_empty() { "strata".into() } else { cluster.into() },
            lease_ttl,
        })
    }

    fn election_name(&self) -> String {
        format!("/{}/primary", self.cluster)
    }

    fn members_prefix(&self) -> String {
        format!("/{}/masters/", self.cluster)
    }
}

/// Campaigns until `shutdown`; a lost term (lease gone, etcd unreachable) is followed by a new
/// campaign.
pub async fn run(master: Arc<Master>, opts: ElectionOptions, shutdown: CancellationToken) {
    loop {
        let outcome = term(&master, &opts, &shutdown).await;
        master.ha().step_down(match &outcome {
            Ok(()) => "shutting down",
            Err(e) => &e.message,
        });
        match outcome {
            Ok(()) => return,
            Err(e) => tracing::warn!("election: {e}; campaigning again in 1s"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn etcd(what: &str) -> impl Fn(etcd_client::Error) -> Error + '_ {
    move |e| Error::unavailable(format!("{what}: {e}"))
}

/// One lease: standby, perhaps primary, until the lease is lost or `shutdown`.
async fn term(master: &Arc<Master>, opts: &ElectionOptions, shutdown: &CancellationToken) -> Result<()> {
    let connect = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2));
    let mut client = Client::connect(&opts.endpoints, Some(connect)).await.map_err(etcd("cannot reach etcd"))?;
    let ttl = opts.lease_ttl;
    let secs = ttl.as_millis().div_ceil(1000) as i64;
    let lease = client.lease_grant(secs, None).await.map_err(etcd("lease grant"))?.id();
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.map_err(etcd("lease keep-alive"))?;
    let me = master.ha().address.clone();
    client
        .put(format!("{}{me}", opts.members_prefix()), me.clone(), Some(PutOptions::new().with_lease(lease)))
        .await
        .map_err(etcd("publish this master"))?;
    tracing::info!(lease = format!("{lease:x}"), address = %me, ttl = ?ttl, "campaigning for primary");

    let mut campaign = {
        let (mut c, name, me) = (client.clone(), opts.election_name(), me.clone());
        Box::pin(async move { c.campaign(name, me, lease).await })
    };
    let mut leader: Option<LeaderKey> = None;
    let mut renewed = Instant::now();
    let mut pending: Option<Instant> = None;
    let mut keepalive = tokio::time::interval(ttl / 6);
    let (lost, observer) = watch_primary(&client, opts, master);
    let result = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            _ = lost.cancelled() => break Err(Error::unavailable("etcd names another master as primary")),
            won = &mut campaign, if leader.is_none() => {
                // (No early return in this loop: the observer must be stopped below.)
                let key = match won {
                    Ok(won) => won.leader().cloned(),
                    Err(e) => break Err(etcd("campaign")(e)),
                };
                let Some(key) = key else { break Err(Error::unavailable("campaign answered without a leader key")) };
                leader = Some(key);
                if let Err(e) = master.take_over().await {
                    break Err(Error::unavailable(format!("won the election but cannot take the epoch: {e}")));
                }
            }
            _ = keepalive.tick() => {
                if renewed.elapsed() >= ttl / 2 {
                    break Err(Error::unavailable(format!("lease not renewed for {:?}", renewed.elapsed())));
                }
                if pending.is_none() {
                    pending = Some(Instant::now());
                    if let Err(e) = keeper.keep_alive().await {
                        tracing::warn!("election: lease keep-alive not sent: {e}");
                        pending = None;
                    }
                }
            }
            answer = answers.message() => match answer {
                Ok(Some(a)) if a.ttl() > 0 => renewed = pending.take().unwrap_or(renewed),
                Ok(Some(_)) => break Err(Error::unavailable("the lease expired")),
                Ok(None) => break Err(Error::unavailable("etcd closed the lease keep-alive stream")),
                Err(e) => break Err(Error::unavailable(format!("lease keep-alive: {e}"))),
            },
        }
    };
    observer.abort();
    master.ha().step_down("the election term ended");
    // Hand over at once rather than at lease expiry: resign and drop the lease.
    if let Some(key) = leader {
        let _ =
            tokio::time::timeout(Duration::from_secs(2), client.resign(Some(ResignOptions::new().with_leader(key))))
                .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.lease_revoke(lease)).await;
    result
}

/// Who is primary, read beside the term's loop so that a slow etcd answer never delays a
/// keep-alive; the token fires if etcd names another master while this one serves.
fn watch_primary(
    client: &Client,
    opts: &ElectionOptions,
    master: &Arc<Master>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let lost = CancellationToken::new();
    let observer = tokio::spawn({
        let (mut c, opts, lost, master) = (client.clone(), opts.clone(), lost.clone(), master.clone());
        async move {
            // Twice in a row: one answer may predate this master's own win.
            let mut other = 0;
            loop {
                match tokio::time::timeout(Duration::from_secs(1), observe(&mut c, &opts, &master)).await {
                    Ok(Ok(primary)) => {
                        let usurped = master.ha().is_primary() && !primary.is_empty() && primary != master.ha().address;
                        other = if usurped { other + 1 } else { 0 };
                        if other >= 2 {
                            lost.cancel();
                        }
                    }
                    Ok(Err(e)) => tracing::debug!("election: cannot read who is primary: {e}"),
                    Err(_) => tracing::debug!("election: etcd did not say who is primary within 1s"),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    (lost, observer)
}

/// Reads who is primary (returned) and which masters take part.
async fn observe(client: &mut Client, opts: &ElectionOptions, master: &Master) -> Result<String> {
    let primary = match client.leader(opts.election_name()).await {
        Ok(r) => r.kv().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()).unwrap_or_default(),
        Err(e) if e.to_string().contains("no leader") => String::new(),
        Err(e) => return Err(etcd("leader")(e)),
    };
    if !master.ha().is_primary() {
        master.ha().set_primary_address(&primary);
    }
    let members =
        client.get(opts.members_prefix(), Some(GetOptions::new().with_prefix())).await.map_err(etcd("list masters"))?;
    let masters = members
        .kvs()
        .iter()
        .map(|kv| {
            let address = String::from_utf8_lossy(kv.value()).into_owned();
            MasterInfo { primary: address == primary, address }
        })
        .collect();
    master.ha().set_masters(masters);
    Ok(primary)
}
