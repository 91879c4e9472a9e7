//! Buckets: creating one (with its folder in the root under store), deleting an empty one,
//! listing them, and the mount each reads and writes through.

use std::sync::Arc;

use strata_common::kv::{KvStore, transact};
use strata_common::names::check_bucket_name;
use strata_common::proto::{Bucket, BucketAccessRequest, Mount};
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, ErrorKind, Result, ids};

use crate::schema::Schema;

pub(crate) struct Buckets {
    store: Arc<dyn KvStore>,
    ufs: Arc<UfsRegistry>,
    /// The root under store's URI, without a trailing slash.
    root_ufs: String,
}

impl Buckets {
    pub(crate) fn new(store: Arc<dyn KvStore>, ufs: Arc<UfsRegistry>, root_ufs: String) -> Buckets {
        Buckets { store, ufs, root_ufs }
    }

    pub(crate) fn root_mount(&self) -> Mount {
        Mount { uri: self.root_ufs.clone(), ..Default::default() }
    }

    /// A new bucket, with its owner and ACL when `access` gives them.
    pub(crate) async fn create(&self, name: &str, access: Option<BucketAccessRequest>) -> Result<Bucket> {
        check_bucket_name(name)?;
        let mut bucket = Bucket {
            name: name.to_string(),
            created_ms: ids::now_ms(),
            mount: Some(Mount { uri: format!("{}/{name}", self.root_ufs), ..Default::default() }),
            ..Default::default()
        };
        if let Some(a) = access {
            crate::acl::apply_access(&mut bucket, a);
        }
        // The folder first: a bucket that exists always has one.
        if let Some(m) = &bucket.mount {
            self.ufs.open(m)?;
        }
        self.insert_new(&bucket, "Your previous request to create the named bucket succeeded and you already own it.")
            .await?;
        tracing::info!(bucket = name, uri = %bucket.mount.as_ref().map(|m| m.uri.as_str()).unwrap_or(""), "bucket created");
        Ok(bucket)
    }

    /// Records a bucket that must not exist yet (else BucketAlreadyOwnedByYou with `exists`).
    pub(crate) async fn insert_new(&self, bucket: &Bucket, exists: &str) -> Result<()> {
        transact(self.store.as_ref(), |t| {
            let (b, exists) = (bucket.clone(), exists.to_string());
            Box::pin(async move {
                if t.find_bucket(&b.name).await?.is_some() {
                    return Err(Error::new(ErrorKind::BucketAlreadyOwnedByYou, exists));
                }
                t.put_bucket(&b);
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        let bucket = transact(self.store.as_ref(), |t| {
            let n = n.clone();
            Box::pin(async move {
                let b = t.bucket(&n).await?;
                if !t.bucket_is_empty(&n).await? {
                    return Err(Error::new(ErrorKind::BucketNotEmpty, "The bucket you tried to delete is not empty"));
                }
                t.remove_bucket(&n).await?;
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

    pub(crate) async fn list(&self) -> Result<Vec<Bucket>> {
        transact(self.store.as_ref(), |t| Box::pin(async move { t.buckets().await })).await
    }

    pub(crate) async fn get(&self, name: &str) -> Result<Bucket> {
        let name = name.to_string();
        transact(self.store.as_ref(), |t| {
            let name = name.clone();
            Box::pin(async move { t.bucket(&name).await })
        })
        .await
    }

    /// The mount of `bucket`; the root under store for "".
    pub(crate) async fn mount_of(&self, bucket: &str) -> Result<Mount> {
        if bucket.is_empty() {
            return Ok(self.root_mount());
        }
        let b = self.get(bucket).await?;
        b.mount.ok_or_else(|| Error::internal(format!("bucket {bucket} has no mount")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn buckets(dir: &std::path::Path) -> Buckets {
        let store = crate::store::open("memory://").await.unwrap();
        Buckets::new(store, Arc::new(UfsRegistry::default()), format!("file://{}", dir.display()))
    }

    #[tokio::test]
    async fn create_makes_the_folder_and_refuses_a_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let b = buckets(dir.path()).await;
        let made = b.create("bkt", None).await.unwrap();
        assert!(dir.path().join("bkt").is_dir());
        assert_eq!(made.mount.unwrap().uri, format!("file://{}/bkt", dir.path().display()));
        assert_eq!(b.create("bkt", None).await.unwrap_err().kind, ErrorKind::BucketAlreadyOwnedByYou);
        assert_eq!(b.create("Bad_Name", None).await.unwrap_err().kind, ErrorKind::InvalidBucketName);
        assert_eq!(b.list().await.unwrap().iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["bkt"]);
    }

    #[tokio::test]
    async fn delete_removes_the_record_and_its_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let b = buckets(dir.path()).await;
        b.create("bkt", None).await.unwrap();
        b.delete("bkt").await.unwrap();
        assert!(!dir.path().join("bkt").exists());
        assert_eq!(b.get("bkt").await.unwrap_err().kind, ErrorKind::NoSuchBucket);
        assert_eq!(b.delete("bkt").await.unwrap_err().kind, ErrorKind::NoSuchBucket);
    }

    #[tokio::test]
    async fn the_empty_name_is_the_root_mount() {
        let dir = tempfile::tempdir().unwrap();
        let b = buckets(dir.path()).await;
        assert_eq!(b.mount_of("").await.unwrap().uri, format!("file://{}", dir.path().display()));
        assert_eq!(b.mount_of("nope").await.unwrap_err().kind, ErrorKind::NoSuchBucket);
    }
}
