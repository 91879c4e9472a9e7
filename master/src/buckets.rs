use strata_common::kv::transact;
use strata_common::names::check_bucket_name;
use strata_common::proto::{Bucket, Mount};
use strata_common::{Error, ErrorKind, Result, codec, ids, keys};

use crate::master::{Master, read_bucket};

impl Master {
    pub(crate) async fn do_create_bucket(&self, name: &str) -> Result<Bucket> {
        check_bucket_name(name)?;
        let bucket = Bucket {
            name: name.to_string(),
            created_ms: ids::now_ms(),
            mount: Some(Mount { uri: format!("{}/{name}", self.root_ufs), ..Default::default() }),
            owner: String::new(),
            tags: Default::default(),
        };
        // The folder first: a bucket that exists always has one.
        if let Some(m) = &bucket.mount {
            self.ufs.open(m)?;
        }
        self.insert_new_bucket(
            &bucket,
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
        .await?;
        tracing::info!(bucket = name, uri = %bucket.mount.as_ref().map(|m| m.uri.as_str()).unwrap_or(""), "bucket created");
        Ok(bucket)
    }

    /// Records a bucket that must not exist yet (else BucketAlreadyOwnedByYou with `exists`).
    pub(crate) async fn insert_new_bucket(&self, bucket: &Bucket, exists: &str) -> Result<()> {
        transact(self.store.as_ref(), |t| {
            let (b, exists) = (bucket.clone(), exists.to_string());
            Box::pin(async move {
                let k = keys::bucket(&b.name);
                if t.get(&k).await?.is_some() {
                    return Err(Error::new(ErrorKind::BucketAlreadyOwnedByYou, exists));
                }
                t.set(&k, &codec::encode(&b));
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn do_delete_bucket(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        let bucket = transact(self.store.as_ref(), |t| {
            let n = n.clone();
            Box::pin(async move {
                let b = read_bucket(t, &n).await?;
                let (ob, oe) = keys::objects(&n, "");
                let (ub, ue) = keys::uploads(&n, "");
                if !t.get_range(&ob, &oe, 1, false).await?.is_empty()
                    || !t.get_range(&ub, &ue, 1, false).await?.is_empty()
                {
                    return Err(Error::new(ErrorKind::BucketNotEmpty, "The bucket you tried to delete is not empty"));
                }
                t.clear(&keys::bucket(&n));
                crate::ttl::clear_rules(t, &n).await?;
                Ok(b)
            })
        })
        .await?;
        // The folder goes too when it is an empty local one; anything else stays in the under store.
        if let Some(path) = bucket.mount.and_then(|m| url::Url::parse(&m.uri).ok()).and_then(|u| u.to_file_path().ok())
        {
            let _ = std::fs::remove_dir(path);
        }
        tracing::info!(bucket = name, "bucket deleted");
        Ok(())
    }

    pub(crate) async fn do_list_buckets(&self) -> Result<Vec<Bucket>> {
        transact(self.store.as_ref(), |t| {
            Box::pin(async move {
                let (b, e) = keys::buckets();
                t.get_range(&b, &e, 0, false).await?.iter().map(|(_, v)| codec::decode(v)).collect()
            })
        })
        .await
    }
}
