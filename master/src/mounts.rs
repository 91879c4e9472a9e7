//! Mounts: an existing under store exposed as a bucket (`strata admin mount`). Unmounting
//! forgets the bucket's metadata; its data stays in the under store.

use object_store::ObjectStore;
use strata_common::kv::transact;
use strata_common::names::check_bucket_name;
use strata_common::proto::{Bucket, Mount};
use strata_common::ufs::redacted;
use strata_common::{Error, ErrorKind, Result, codec, ids, keys};

use crate::master::{Master, read_bucket};

impl Master {
    pub async fn do_mount(&self, name: &str, mount: Mount) -> Result<Bucket> {
        check_bucket_name(name)?;
        let mut mount = mount;
        mount.uri = mount.uri.trim_end_matches('/').to_string();
        // Reach it before promising anything: a wrong endpoint or credential fails here.
        let store = self.ufs.open(&mount)?;
        let mut probe = store.list(None);
        if let Some(Err(e)) = futures::StreamExt::next(&mut probe).await {
            return Err(Error::invalid(format!("cannot list the under store {}: {e}", redacted(&mount).uri)));
        }
        drop(probe);
        let bucket = Bucket {
            name: name.to_string(),
            created_ms: ids::now_ms(),
            mount: Some(mount.clone()),
            ..Default::default()
        };
        let b = bucket.clone();
        transact(self.store.as_ref(), |t| {
            let b = b.clone();
            Box::pin(async move {
                let k = keys::bucket(&b.name);
                if t.get(&k).await?.is_some() {
                    return Err(Error::new(
                        ErrorKind::BucketAlreadyOwnedByYou,
                        format!("bucket {} exists already: unmount it first", b.name),
                    ));
                }
                t.set(&k, &codec::encode(&b));
                Ok(())
            })
        })
        .await?;
        tracing::info!(bucket = name, uri = %redacted(&mount).uri, read_only = mount.read_only, sync_interval_ms = ?mount.sync_interval_ms, "mounted");
        Ok(Bucket { mount: Some(redacted(&mount)), ..bucket })
    }

    pub async fn do_unmount(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        transact(self.store.as_ref(), |t| {
            let n = n.clone();
            Box::pin(async move {
                read_bucket(t, &n).await?;
                let (ob, oe) = keys::objects(&n, "");
                let (ub, ue) = keys::uploads(&n, "");
                t.clear_range(&ob, &oe);
                t.clear_range(&ub, &ue);
                t.clear(&keys::bucket(&n));
                Ok(())
            })
        })
        .await?;
        self.forget_sync(name);
        tracing::info!(bucket = name, "unmounted (the under store keeps its data)");
        Ok(())
    }

    /// Every bucket with its mount, secrets masked.
    pub async fn do_list_mounts(&self) -> Result<Vec<Bucket>> {
        let mut all = self.do_list_buckets().await?;
        for b in &mut all {
            b.mount = b.mount.as_ref().map(redacted);
        }
        Ok(all)
    }
}
