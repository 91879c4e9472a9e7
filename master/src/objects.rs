use strata_common::kv::{Txn, transact};
use strata_common::proto::*;
use strata_common::{Error, ErrorKind, Result, codec, keys};

use crate::listing::{self, Scan};
use crate::master::{Master, read_bucket, writable_bucket};
use crate::publish::Committed;

/// The longest listing page, as S3.
pub const MAX_LIST_KEYS: u32 = 1000;

pub(crate) fn no_such_key() -> Error {
    Error::new(ErrorKind::NoSuchKey, "The specified key does not exist.")
}

/// Checks `If-Match` / `If-None-Match: *` of a write against the object it would replace.
pub(crate) fn check_write_conditions(
    current: Option<&ObjectMeta>,
    if_match: &str,
    if_none_match_any: bool,
) -> Result<()> {
    if if_none_match_any && current.is_some() {
        return Err(Error::new(
            ErrorKind::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ));
    }
    if !if_match.is_empty() {
        match current {
            None => return Err(no_such_key()),
            Some(m) if !etag_matches(if_match, &m.etag) => {
                return Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `If-Match` values may be quoted, a list, or `*`.
pub fn etag_matches(condition: &str, etag: &str) -> bool {
    condition.split(',').map(|c| c.trim().trim_start_matches("W/").trim_matches('"')).any(|c| c == "*" || c == etag)
}

pub(crate) async fn read_object(t: &mut Txn, bucket: &str, key: &str) -> Result<Option<ObjectMeta>> {
    t.get(&keys::object(bucket, key)).await?.map(|v| codec::decode(&v)).transpose()
}

impl Master {
    pub(crate) async fn do_lookup(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let (bucket, found) = transact(self.store.as_ref(), |t| {
            let (b, k) = (b.clone(), k.clone());
            Box::pin(async move { Ok((read_bucket(t, &b).await?, read_object(t, &b, &k).await?)) })
        })
        .await?;
        if bucket.mount.as_ref().is_some_and(|m| m.sync_interval_ms.is_some()) {
            return self.synced_lookup(&bucket, key, found).await?.ok_or_else(no_such_key);
        }
        found.ok_or_else(no_such_key)
    }

    pub(crate) async fn do_commit_object(&self, req: CommitObjectRequest) -> Result<CommitObjectResponse> {
        let meta = req.meta.clone().ok_or_else(|| Error::invalid("commit without object metadata"))?;
        let commit = transact(self.store.as_ref(), |t| {
            let (req, meta) = (req.clone(), meta.clone());
            Box::pin(async move {
                let bucket = writable_bucket(t, &req.bucket).await?;
                let current = read_object(t, &req.bucket, &meta.key).await?;
                check_write_conditions(current.as_ref(), &req.if_match, req.if_none_match_any)?;
                if let Some(c) = &current {
                    crate::mounts::carry_pin(t, c.version, meta.version).await?;
                }
                crate::journal::rejournal(t, &req.bucket, current.as_ref(), Some(&meta));
                t.set(&keys::object(&req.bucket, &meta.key), &codec::encode(&meta));
                let value = CommitObjectResponse { replaced_version: current.as_ref().map(|c| c.version).unwrap_or(0) };
                let mount = (!req.staging_key.is_empty()).then_some(bucket.mount).flatten();
                Ok(Committed { value, mount, replaced: current, version: meta.version })
            })
        });
        self.publish(&req.bucket, &meta.key, &req.staging_key, commit).await
    }

    pub(crate) async fn do_delete_object(&self, bucket: &str, key: &str) -> Result<DeleteObjectResponse> {
        self.delete_version(bucket, key, None).await
    }

    /// Deletes the object, or with `only` only that version of it (else nothing happens).
    pub(crate) async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        only: Option<u64>,
    ) -> Result<DeleteObjectResponse> {
        let (b, k) = (bucket.to_string(), key.to_string());
        let commit = transact(self.store.as_ref(), |t| {
            let (b, k) = (b.clone(), k.clone());
            Box::pin(async move {
                let bucket = writable_bucket(t, &b).await?;
                let current = read_object(t, &b, &k).await?.filter(|o| only.is_none_or(|v| v == o.version));
                let Some(old) = current else {
                    let value = DeleteObjectResponse { existed: false, version: 0 };
                    return Ok(Committed { value, mount: None, replaced: None, version: 0 });
                };
                t.clear(&keys::object(&b, &k));
                crate::mounts::carry_pin(t, old.version, 0).await?;
                crate::journal::rejournal(t, &b, Some(&old), None);
                let value = DeleteObjectResponse { existed: true, version: old.version };
                Ok(Committed { value, mount: bucket.mount, replaced: Some(old), version: 0 })
            })
        });
        self.publish(bucket, key, "", commit).await
    }

    pub(crate) async fn do_set_tags(&self, req: SetTagsRequest) -> Result<()> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                let mut bucket = read_bucket(t, &req.bucket).await?;
                if req.key.is_empty() {
                    bucket.tags = req.tags;
                    t.set(&keys::bucket(&req.bucket), &codec::encode(&bucket));
                    return Ok(());
                }
                let mut meta = read_object(t, &req.bucket, &req.key).await?.ok_or_else(no_such_key)?;
                meta.tags = req.tags;
                t.set(&keys::object(&req.bucket, &req.key), &codec::encode(&meta));
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn do_list_objects(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        self.sync_listing(&req.bucket, &req.prefix).await?;
        self.list_metadata(req).await
    }

    /// Every object under `prefix`, a page at a time, for the master's own passes (pins, TTL):
    /// the under store is synced once, before the first page. `visit` gets each page.
    pub(crate) async fn for_each_page<F, Fut>(&self, bucket: &str, prefix: &str, mut visit: F) -> Result<()>
    where
        F: FnMut(Vec<ObjectMeta>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.sync_listing(bucket, prefix).await?;
        let mut after = String::new();
        loop {
            let req = ListObjectsRequest {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                start_after: after.clone(),
                max_keys: 1000,
                ..Default::default()
            };
            let page = self.list_metadata(req).await?;
            let next = page.objects.last().filter(|_| page.truncated).map(|o| o.key.clone());
            visit(page.objects).await?;
            match next {
                Some(k) => after = k,
                None => return Ok(()),
            }
        }
    }

    /// One page of the metadata's listing, without asking the under store.
    async fn list_metadata(&self, req: ListObjectsRequest) -> Result<ListObjectsResponse> {
        transact(self.store.as_ref(), |t| {
            let req = req.clone();
            Box::pin(async move {
                read_bucket(t, &req.bucket).await?;
                list(t, &req).await
            })
        })
        .await
    }
}

/// One page of a listing, from `start_after` (exclusive).
async fn list(t: &mut Txn, req: &ListObjectsRequest) -> Result<ListObjectsResponse> {
    let (mut begin, end) = keys::objects(&req.bucket, &req.prefix);
    if !req.start_after.is_empty() {
        let mut after = keys::object(&req.bucket, &req.start_after);
        after.push(0);
        begin = begin.max(after);
    }
    let scan = Scan {
        begin,
        end,
        prefix: &req.prefix,
        delimiter: &req.delimiter,
        marker: &req.start_after,
        max: req.max_keys.min(MAX_LIST_KEYS) as usize,
    };
    let bucket = req.bucket.as_str();
    let page = listing::scan(
        t,
        scan,
        |full, value| {
            let key = keys::object_key_of(bucket, full)
                .ok_or_else(|| Error::internal("object key out of its bucket's range"))?;
            Ok((key, codec::decode::<ObjectMeta>(value)?))
        },
        |cp| keys::prefix_end(&keys::object(bucket, cp)),
    )
    .await?;
    Ok(ListObjectsResponse {
        objects: page.items,
        common_prefixes: page.common_prefixes,
        truncated: page.truncated,
        next_marker: page.next_marker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn master_with(keys: &[&str]) -> (Master, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::master::test_master(dir.path());
        m.do_create_bucket("bkt").await.unwrap();
        for k in keys {
            let meta = ObjectMeta { key: k.to_string(), version: 1, ..Default::default() };
            m.do_commit_object(CommitObjectRequest { bucket: "bkt".into(), meta: Some(meta), ..Default::default() })
                .await
                .unwrap();
        }
        (m, dir)
    }

    fn req(prefix: &str, delimiter: &str, after: &str, max: u32) -> ListObjectsRequest {
        ListObjectsRequest {
            bucket: "bkt".into(),
            prefix: prefix.into(),
            delimiter: delimiter.into(),
            start_after: after.into(),
            max_keys: max,
        }
    }

    #[tokio::test]
    async fn lists_with_delimiter_and_pages() {
        let (m, _d) = master_with(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]).await;
        let r = m.do_list_objects(req("", "/", "", 1000)).await.unwrap();
        let keys: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["b", "d"]);
        assert_eq!(r.common_prefixes, ["a/", "c/"]);
        assert!(!r.truncated);

        // Pages of two: a/ b | c/ d
        let p1 = m.do_list_objects(req("", "/", "", 2)).await.unwrap();
        assert_eq!(
            (p1.common_prefixes.clone(), p1.truncated, p1.next_marker.as_str()),
            (vec!["a/".to_string()], true, "b")
        );
        let p2 = m.do_list_objects(req("", "/", &p1.next_marker, 2)).await.unwrap();
        assert_eq!(p2.common_prefixes, ["c/"]);
        assert_eq!(p2.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["d"]);
        assert!(!p2.truncated);

        // A marker that is a common prefix skips it.
        let p = m.do_list_objects(req("", "/", "a/", 10)).await.unwrap();
        assert_eq!(p.objects.first().map(|o| o.key.as_str()), Some("b"));

        let sub = m.do_list_objects(req("c/", "/", "", 10)).await.unwrap();
        assert_eq!(sub.common_prefixes, ["c/x/"]);
        assert_eq!(sub.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["c/y"]);

        let flat = m.do_list_objects(req("c", "", "", 10)).await.unwrap();
        assert_eq!(flat.objects.len(), 2);
    }

    #[tokio::test]
    async fn conditional_commits() {
        let (m, _d) = master_with(&["k"]).await;
        let meta = ObjectMeta { key: "k".into(), version: 2, etag: "e2".into(), ..Default::default() };
        let r = m
            .do_commit_object(CommitObjectRequest {
                bucket: "bkt".into(),
                meta: Some(meta.clone()),
                if_none_match_any: true,
                ..Default::default()
            })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::PreconditionFailed);
        let r = m
            .do_commit_object(CommitObjectRequest {
                bucket: "bkt".into(),
                meta: Some(meta.clone()),
                if_match: "\"nope\"".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::PreconditionFailed);
        let r = m
            .do_commit_object(CommitObjectRequest { bucket: "bkt".into(), meta: Some(meta), ..Default::default() })
            .await;
        assert_eq!(r.unwrap().replaced_version, 1);
        assert_eq!(m.do_lookup("bkt", "k").await.unwrap().etag, "e2");
        assert_eq!(m.do_lookup("bkt", "zz").await.unwrap_err().kind, ErrorKind::NoSuchKey);
        assert_eq!(m.do_lookup("nob", "k").await.unwrap_err().kind, ErrorKind::NoSuchBucket);
        assert_eq!(m.do_delete_bucket("bkt").await.unwrap_err().kind, ErrorKind::BucketNotEmpty);
    }
}
