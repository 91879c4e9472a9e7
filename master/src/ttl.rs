//! TTL rules: objects under a bucket's prefix older than the rule's TTL are freed from the
//! workers' caches (FREE) or deleted, from the under store too (DELETE). The primary applies
//! them every `ttl_check_interval_ms`; workers learn what to free with their heartbeats.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use strata_common::kv::{KvStore, transact};
use strata_common::proto::TtlRule;
use strata_common::{Error, Result, ids};

use crate::free::ToFree;
use crate::objects::Objects;
use crate::schema::Schema;

fn action(rule: &TtlRule) -> Result<&'static str> {
    match rule.action.to_ascii_uppercase().as_str() {
        "FREE" => Ok("FREE"),
        "DELETE" => Ok("DELETE"),
        other => Err(Error::invalid(format!("TTL action {other:?}: use FREE or DELETE"))),
    }
}

/// What the TTL passes of this master did since it started (the dashboard's jobs page).
#[derive(Debug, Clone, Default)]
pub struct TtlPasses {
    pub passes: u64,
    pub failed: u64,
    /// When the last pass ended (0: none yet), and what it did.
    pub last_ms: i64,
    pub last_freed: usize,
    pub last_deleted: usize,
    pub last_error: Option<String>,
    pub freed: u64,
    pub deleted: u64,
}

pub(crate) struct Ttl {
    store: Arc<dyn KvStore>,
    objects: Arc<Objects>,
    to_free: Arc<ToFree>,
    passes: Mutex<TtlPasses>,
}

impl Ttl {
    pub(crate) fn new(store: Arc<dyn KvStore>, objects: Arc<Objects>, to_free: Arc<ToFree>) -> Ttl {
        Ttl { store, objects, to_free, passes: Default::default() }
    }

    pub(crate) fn passes(&self) -> TtlPasses {
        self.passes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// [`Ttl::apply`], counted in metrics and [`TtlPasses`].
    pub(crate) async fn pass(&self, since_ms: i64) -> Result<(usize, usize)> {
        let r = self.apply(since_ms).await;
        let mut p = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        p.passes += 1;
        p.last_ms = ids::now_ms();
        metrics::gauge!("strata_master_ttl_last_pass_timestamp_seconds").set(p.last_ms as f64 / 1000.0);
        match &r {
            Ok((freed, deleted)) => {
                metrics::counter!("strata_master_ttl_passes_total", "result" => "ok").increment(1);
                metrics::counter!("strata_master_ttl_objects_total", "action" => "free").increment(*freed as u64);
                metrics::counter!("strata_master_ttl_objects_total", "action" => "delete").increment(*deleted as u64);
                (p.last_freed, p.last_deleted, p.last_error) = (*freed, *deleted, None);
                (p.freed, p.deleted) = (p.freed + *freed as u64, p.deleted + *deleted as u64);
            }
            Err(e) => {
                metrics::counter!("strata_master_ttl_passes_total", "result" => "failed").increment(1);
                p.failed += 1;
                p.last_error = Some(e.message.clone());
            }
        }
        r
    }

    /// Sets a rule; a TTL of 0 removes it.
    pub(crate) async fn set_rule(&self, mut rule: TtlRule) -> Result<()> {
        if rule.ttl_ms > 0 {
            rule.action = action(&rule)?.to_string();
        }
        transact(self.store.as_ref(), |t| {
            let rule = rule.clone();
            Box::pin(async move {
                t.bucket(&rule.bucket).await?;
                t.put_ttl_rule(&rule);
                Ok(())
            })
        })
        .await?;
        tracing::info!(bucket = %rule.bucket, prefix = %rule.prefix, ttl_ms = rule.ttl_ms, action = %rule.action, "TTL rule set");
        Ok(())
    }

    pub(crate) async fn rules(&self) -> Result<Vec<TtlRule>> {
        transact(self.store.as_ref(), |t| Box::pin(async move { t.ttl_rules().await })).await
    }

    /// One pass over every rule: deletes, or queues for freeing, the objects that expired since
    /// `since_ms` (FREE) or at all (DELETE). Returns (freed, deleted).
    pub(crate) async fn apply(&self, since_ms: i64) -> Result<(usize, usize)> {
        let now = ids::now_ms();
        let (freed, deleted) = (AtomicUsize::new(0), AtomicUsize::new(0));
        for rule in self.rules().await? {
            let pass = self.objects.for_each_page(&rule.bucket, &rule.prefix, |objects| {
                let (rule, freed, deleted) = (&rule, &freed, &deleted);
                async move {
                    for o in &objects {
                        let expires = o.last_modified_ms + rule.ttl_ms;
                        if expires > now {
                            continue;
                        }
                        if rule.action == "DELETE" {
                            // Only the version that expired: an overwrite since is a new object.
                            match self.objects.delete(&rule.bucket, &o.key, Some(o.version)).await {
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
