//! TTL rules: objects under a bucket's prefix older than the rule's TTL are freed from the
//! workers' caches (FREE) or deleted, from the under store too (DELETE). The primary applies
//! them every `ttl_check_interval_ms`; workers learn what to free with their heartbeats.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_common::kv::transact;
use strata_common::proto::TtlRule;
use strata_common::{Error, Result, codec, ids, keys};
use tokio_util::sync::CancellationToken;

use crate::master::{Master, read_bucket};

/// Versions to free, each told to every worker for a while.
#[derive(Default)]
pub struct ToFree(Mutex<HashMap<u64, Instant>>);

impl ToFree {
    fn add(&self, versions: impl IntoIterator<Item = u64>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for v in versions {
            m.entry(v).or_insert_with(Instant::now);
        }
    }

    /// What a heartbeat carries: versions added within `keep` (long enough for every live
    /// worker to heartbeat once).
    pub(crate) fn current(&self, keep: Duration) -> Vec<u64> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, at| at.elapsed() < keep);
        m.keys().copied().collect()
    }
}

fn action(rule: &TtlRule) -> Result<&'static str> {
    match rule.action.to_ascii_uppercase().as_str() {
        "FREE" => Ok("FREE"),
        "DELETE" => Ok("DELETE"),
        other => Err(Error::invalid(format!("TTL action {other:?}: use FREE or DELETE"))),
    }
}

impl Master {
    pub async fn do_set_ttl(&self, mut rule: TtlRule) -> Result<()> {
        let k = keys::ttl(&rule.bucket, &rule.prefix);
        if rule.ttl_ms > 0 {
            rule.action = action(&rule)?.to_string();
        }
        transact(self.store.as_ref(), |t| {
            let (rule, k) = (rule.clone(), k.clone());
            Box::pin(async move {
                read_bucket(t, &rule.bucket).await?;
                if rule.ttl_ms > 0 {
                    t.set(&k, &codec::encode(&rule));
                } else {
                    t.clear(&k);
                }
                Ok(())
            })
        })
        .await?;
        tracing::info!(bucket = %rule.bucket, prefix = %rule.prefix, ttl_ms = rule.ttl_ms, action = %rule.action, "TTL rule set");
        Ok(())
    }

    pub async fn do_list_ttls(&self) -> Result<Vec<TtlRule>> {
        transact(self.store.as_ref(), |t| {
            Box::pin(async move {
                let (b, e) = keys::ttls();
                t.get_range(&b, &e, 0, false).await?.iter().map(|(_, v)| codec::decode(v)).collect()
            })
        })
        .await
    }

    /// One pass over every rule: deletes, or queues for freeing, the objects that expired since
    /// `since_ms` (FREE) or at all (DELETE). Returns (freed, deleted).
    pub async fn apply_ttls(&self, since_ms: i64) -> Result<(usize, usize)> {
        let now = ids::now_ms();
        let (freed, deleted) = (AtomicUsize::new(0), AtomicUsize::new(0));
        for rule in self.do_list_ttls().await? {
            let pass = self.for_each_page(&rule.bucket, &rule.prefix, |objects| {
                let (rule, freed, deleted) = (&rule, &freed, &deleted);
                async move {
                    for o in &objects {
                        let expires = o.last_modified_ms + rule.ttl_ms;
                        if expires > now {
                            continue;
                        }
                        if rule.action == "DELETE" {
                            // Only the version that expired: an overwrite since is a new object.
                            match self.delete_version(&rule.bucket, &o.key, Some(o.version)).await {
                                Ok(r) if r.existed => _ = deleted.fetch_add(1, Relaxed),
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(bucket = %rule.bucket, key = %o.key, "TTL: cannot delete: {e}")
                                }
                            }
                        } else if expires > since_ms {
                            self.to_free.add([o.version]);
                            freed.fetch_add(1, Relaxed);
                        }
                    }
                    Ok(())
                }
            });
            if let Err(e) = pass.await {
                tracing::warn!(bucket = %rule.bucket, "TTL: cannot list: {e}");
            }
        }
        let (freed, deleted) = (freed.into_inner(), deleted.into_inner());
        if freed + deleted > 0 {
            tracing::info!(freed, deleted, "TTL rules applied");
        }
        Ok((freed, deleted))
    }
}

/// Applies the TTL rules every `every` while this master is primary.
pub async fn ttl_loop(master: Arc<Master>, every: Duration, shutdown: CancellationToken) {
    let mut since = 0i64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if !master.ha().is_primary() {
            since = 0;
            continue;
        }
        let now = ids::now_ms();
        match master.apply_ttls(since).await {
            Ok(_) => since = now,
            Err(e) => tracing::warn!("TTL pass failed (will retry): {e}"),
        }
    }
}

/// In a transaction that removes a bucket: its TTL rules go too.
pub(crate) async fn clear_rules(t: &mut strata_common::kv::Txn, bucket: &str) -> Result<()> {
    let (b, e) = keys::ttls();
    for (k, v) in t.get_range(&b, &e, 0, false).await? {
        let rule: TtlRule = codec::decode(&v)?;
        if rule.bucket == bucket {
            t.clear(&k);
        }
    }
    Ok(())
}
