//! The schema's invariants on the memory store: what replacing, removing and rewriting an
//! object does to its pin and journal key, and the accessors' round trips.

use std::sync::Arc;

use strata_common::kv::{KvStore, Txn, transact};
use strata_common::proto::*;
use strata_common::{ErrorKind, Result, codec, keys};

use super::*;

async fn store() -> Arc<dyn KvStore> {
    crate::store::open("memory://").await.unwrap()
}

/// Runs `f` in one transaction on `s`.
async fn run<T: Send + 'static>(
    s: &Arc<dyn KvStore>,
    f: impl for<'t> Fn(&'t mut Txn) -> futures::future::BoxFuture<'t, Result<T>> + Send,
) -> Result<T> {
    transact(s.as_ref(), f).await
}

fn obj(key: &str, version: u64, journal_worker: u64) -> ObjectMeta {
    ObjectMeta { key: key.into(), version, journal_worker, size: version * 10, ..Default::default() }
}

async fn raw(s: &Arc<dyn KvStore>, key: Vec<u8>) -> Option<Vec<u8>> {
    run(s, move |t| {
        let key = key.clone();
        Box::pin(async move { t.get(&key).await })
    })
    .await
    .unwrap()
}

async fn put(s: &Arc<dyn KvStore>, old: Option<ObjectMeta>, new: ObjectMeta) -> u64 {
    run(s, move |t| {
        let (old, new) = (old.clone(), new.clone());
        Box::pin(async move { t.replace_object("b", old.as_ref(), &new).await })
    })
    .await
    .unwrap()
}

async fn pinned(s: &Arc<dyn KvStore>) -> Vec<u64> {
    run(s, |t| Box::pin(async move { t.pinned_versions().await })).await.unwrap()
}

async fn pin(s: &Arc<dyn KvStore>, v: u64, on: bool) {
    run(s, move |t| {
        Box::pin(async move {
            t.set_pin(v, on);
            Ok(())
        })
    })
    .await
    .unwrap()
}

async fn journal(s: &Arc<dyn KvStore>, worker: u64) -> Vec<JournalEntry> {
    run(s, move |t| Box::pin(async move { t.journal(worker).await })).await.unwrap()
}

async fn object(s: &Arc<dyn KvStore>, key: &str) -> Option<ObjectMeta> {
    let key = key.to_string();
    run(s, move |t| {
        let key = key.clone();
        Box::pin(async move { t.object("b", &key).await })
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn replacing_an_object_moves_its_pin_to_the_new_version() {
    let s = store().await;
    put(&s, None, obj("k", 1, 0)).await;
    pin(&s, 1, true).await;
    assert_eq!(put(&s, Some(obj("k", 1, 0)), obj("k", 2, 0)).await, 1);
    assert_eq!(pinned(&s).await, [2]);
    assert_eq!(object(&s, "k").await.map(|o| o.version), Some(2));
}

#[tokio::test]
async fn replacing_an_unpinned_object_pins_nothing() {
    let s = store().await;
    put(&s, None, obj("k", 1, 0)).await;
    pin(&s, 9, true).await; // another object's pin
    put(&s, Some(obj("k", 1, 0)), obj("k", 2, 0)).await;
    assert_eq!(pinned(&s).await, [9]);
}

#[tokio::test]
async fn replacing_an_object_moves_its_journal_key() {
    let s = store().await;
    let mut first = obj("k", 1, 7);
    first.persist_pending = true;
    put(&s, None, first.clone()).await;
    let entries = journal(&s, 7).await;
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].bucket.as_str(), entries[0].key.as_str(), entries[0].version), ("b", "k", 1));
    assert!(entries[0].persist);
    // Onto another worker's journal: the old worker's entry goes (it may drop those bytes).
    put(&s, Some(first.clone()), obj("k", 2, 8)).await;
    assert!(journal(&s, 7).await.is_empty());
    assert_eq!(journal(&s, 8).await.iter().map(|e| e.version).collect::<Vec<_>>(), [2]);
    // Onto the under store: no journal entry left.
    put(&s, Some(obj("k", 2, 8)), obj("k", 3, 0)).await;
    assert!(journal(&s, 8).await.is_empty());
}

#[tokio::test]
async fn the_first_write_of_a_key_replaces_version_zero() {
    let s = store().await;
    assert_eq!(put(&s, None, obj("new", 5, 0)).await, 0);
    assert_eq!(object(&s, "new").await.map(|o| o.size), Some(50));
}

#[tokio::test]
async fn removing_an_object_drops_its_pin_and_its_journal_key() {
    let s = store().await;
    put(&s, None, obj("k", 1, 7)).await;
    pin(&s, 1, true).await;
    run(&s, |t| Box::pin(async move { t.remove_object("b", &obj("k", 1, 7)).await })).await.unwrap();
    assert_eq!(object(&s, "k").await, None);
    assert!(pinned(&s).await.is_empty());
    assert!(journal(&s, 7).await.is_empty());
}

#[tokio::test]
async fn rewriting_an_object_keeps_its_pin_and_journal() {
    let s = store().await;
    put(&s, None, obj("k", 1, 7)).await;
    pin(&s, 1, true).await;
    let mut tagged = obj("k", 1, 7);
    tagged.ufs_etag = "\"e\"".into();
    run(&s, move |t| {
        let tagged = tagged.clone();
        Box::pin(async move {
            t.rewrite_object("b", &tagged);
            Ok(())
        })
    })
    .await
    .unwrap();
    assert_eq!(object(&s, "k").await.map(|o| o.ufs_etag), Some("\"e\"".to_string()));
    assert_eq!(pinned(&s).await, [1]);
    assert_eq!(journal(&s, 7).await.len(), 1);
}

#[tokio::test]
async fn values_are_stored_as_the_codec_encodes_them_at_the_layouts_keys() {
    let s = store().await;
    let meta = obj("dir/k", 3, 0);
    put(&s, None, meta.clone()).await;
    assert_eq!(raw(&s, keys::object("b", "dir/k")).await, Some(codec::encode(&meta)));
    let bucket = Bucket { name: "b".into(), ..Default::default() };
    let b2 = bucket.clone();
    run(&s, move |t| {
        let b = b2.clone();
        Box::pin(async move {
            t.put_bucket(&b);
            t.set_pin(3, true);
            Ok(())
        })
    })
    .await
    .unwrap();
    assert_eq!(raw(&s, keys::bucket("b")).await, Some(codec::encode(&bucket)));
    assert_eq!(raw(&s, keys::pin(3)).await, Some(Vec::new()));
}

#[tokio::test]
async fn buckets_missing_read_only_and_listed() {
    let s = store().await;
    let e = run(&s, |t| Box::pin(async move { t.bucket("nope").await })).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchBucket);
    run(&s, |t| {
        Box::pin(async move {
            let ro = Mount { uri: "file:///x".into(), read_only: true, ..Default::default() };
            t.put_bucket(&Bucket { name: "ro".into(), mount: Some(ro), ..Default::default() });
            t.put_bucket(&Bucket { name: "rw".into(), ..Default::default() });
            Ok(())
        })
    })
    .await
    .unwrap();
    let e = run(&s, |t| Box::pin(async move { t.writable_bucket("ro").await })).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(run(&s, |t| Box::pin(async move { t.writable_bucket("rw").await })).await.is_ok());
    let names = run(&s, |t| Box::pin(async move { t.buckets().await })).await.unwrap();
    assert_eq!(names.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["ro", "rw"]);
    let found = run(&s, |t| Box::pin(async move { t.find_bucket("zz").await })).await.unwrap();
    assert!(found.is_none());
}

fn upload(key: &str, id: &str) -> Upload {
    Upload { bucket: "b".into(), key: key.into(), upload_id: id.into(), ..Default::default() }
}

fn uref(key: &str, id: &str) -> UploadRef {
    UploadRef { bucket: "b".into(), key: key.into(), upload_id: id.into() }
}

#[tokio::test]
async fn a_bucket_with_an_object_or_an_upload_is_not_empty() {
    let s = store().await;
    let empty = |s: Arc<dyn KvStore>| async move {
        run(&s, |t| Box::pin(async move { t.bucket_is_empty("b").await })).await.unwrap()
    };
    assert!(empty(s.clone()).await);
    run(&s, |t| {
        Box::pin(async move {
            t.put_upload(&upload("k", "u1"));
            Ok(())
        })
    })
    .await
    .unwrap();
    assert!(!empty(s.clone()).await);
    run(&s, |t| {
        Box::pin(async move {
            t.remove_upload(&uref("k", "u1"));
            Ok(())
        })
    })
    .await
    .unwrap();
    assert!(empty(s.clone()).await);
    put(&s, None, obj("k", 1, 0)).await;
    assert!(!empty(s.clone()).await);
}

#[tokio::test]
async fn removing_a_bucket_takes_its_ttl_rules_and_no_others() {
    let s = store().await;
    run(&s, |t| {
        Box::pin(async move {
            for (bucket, prefix) in [("b", ""), ("b", "logs/"), ("bb", "")] {
                t.put_ttl_rule(&TtlRule {
                    bucket: bucket.into(),
                    prefix: prefix.into(),
                    ttl_ms: 5,
                    ..Default::default()
                });
            }
            t.put_bucket(&Bucket { name: "b".into(), ..Default::default() });
            Ok(())
        })
    })
    .await
    .unwrap();
    run(&s, |t| Box::pin(async move { t.remove_bucket("b").await })).await.unwrap();
    let left = run(&s, |t| Box::pin(async move { t.ttl_rules().await })).await.unwrap();
    assert_eq!(left.iter().map(|r| r.bucket.as_str()).collect::<Vec<_>>(), ["bb"]);
    assert!(run(&s, |t| Box::pin(async move { t.find_bucket("b").await })).await.unwrap().is_none());
}

#[tokio::test]
async fn a_ttl_rule_of_zero_is_removed() {
    let s = store().await;
    let rule = |ttl_ms| TtlRule { bucket: "b".into(), prefix: "p".into(), ttl_ms, action: "FREE".into() };
    for ttl in [10, 0] {
        run(&s, move |t| {
            Box::pin(async move {
                t.put_ttl_rule(&rule(ttl));
                Ok(())
            })
        })
        .await
        .unwrap();
        let rules = run(&s, |t| Box::pin(async move { t.ttl_rules().await })).await.unwrap();
        assert_eq!(rules.len(), usize::from(ttl > 0));
    }
}

#[tokio::test]
async fn clearing_a_buckets_contents_leaves_other_buckets_alone() {
    let s = store().await;
    put(&s, None, obj("k", 1, 0)).await;
    run(&s, |t| {
        Box::pin(async move {
            t.replace_object("bb", None, &obj("k", 2, 0)).await?;
            t.put_upload(&upload("k", "u"));
            t.clear_bucket_contents("b");
            Ok(())
        })
    })
    .await
    .unwrap();
    assert_eq!(object(&s, "k").await, None);
    let other = run(&s, |t| Box::pin(async move { t.object("bb", "k").await })).await.unwrap();
    assert_eq!(other.map(|o| o.version), Some(2));
    let ups = run(&s, |t| {
        Box::pin(async move { t.list_uploads(&ListUploadsRequest { bucket: "b".into(), ..Default::default() }).await })
    })
    .await
    .unwrap();
    assert!(ups.uploads.is_empty());
}

#[tokio::test]
async fn listing_rolls_up_common_prefixes_and_pages_after_a_marker() {
    let s = store().await;
    for (i, k) in ["a/1", "a/2", "b", "c"].iter().enumerate() {
        put(&s, None, obj(k, i as u64 + 1, 0)).await;
    }
    let list = |delimiter: &'static str, after: &'static str, max| {
        let s = s.clone();
        async move {
            let req = ListObjectsRequest {
                bucket: "b".into(),
                delimiter: delimiter.into(),
                start_after: after.into(),
                max_keys: max,
                ..Default::default()
            };
            run(&s, move |t| {
                let req = req.clone();
                Box::pin(async move { t.list_objects(&req).await })
            })
            .await
            .unwrap()
        }
    };
    let page = list("/", "", 1000).await;
    assert_eq!(page.common_prefixes, ["a/"]);
    assert_eq!(page.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    let page = list("", "a/1", 2).await;
    assert_eq!(page.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["a/2", "b"]);
    assert!(page.truncated);
    assert_eq!(page.next_marker, "b");
    // More than S3's page is never returned.
    assert!(!list("", "", 5000).await.truncated);
}

#[tokio::test]
async fn objects_after_pages_with_keys() {
    let s = store().await;
    for (i, k) in ["p/1", "p/2", "p/3", "q"].iter().enumerate() {
        put(&s, None, obj(k, i as u64 + 1, 0)).await;
    }
    let page = |after: &'static str| {
        let s = s.clone();
        async move {
            run(&s, move |t| Box::pin(async move { t.objects_after("b", "p/", after, 2).await }))
                .await
                .unwrap()
                .into_iter()
                .map(|(k, m)| (k, m.version))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page("").await, [("p/1".to_string(), 1), ("p/2".to_string(), 2)]);
    assert_eq!(page("p/2").await, [("p/3".to_string(), 3)]);
}

#[tokio::test]
async fn uploads_and_their_parts_round_trip_and_go_together() {
    let s = store().await;
    run(&s, |t| {
        Box::pin(async move {
            t.put_bucket(&Bucket { name: "b".into(), ..Default::default() });
            t.put_upload(&upload("k", "u1"));
            Ok(())
        })
    })
    .await
    .unwrap();
    let part = |n, etag: &str| PartMeta { number: n, etag: etag.into(), ..Default::default() };
    let (p1, p1b, p2) = (part(1, "a"), part(1, "b"), part(2, "c"));
    let replaced = run(&s, move |t| {
        let (p1, p1b, p2) = (p1.clone(), p1b.clone(), p2.clone());
        Box::pin(async move {
            let r = uref("k", "u1");
            let first = t.replace_part(&r, &p1).await?;
            t.replace_part(&r, &p2).await?;
            let second = t.replace_part(&r, &p1b).await?;
            Ok((first, second))
        })
    })
    .await
    .unwrap();
    assert_eq!(replaced.0, None);
    assert_eq!(replaced.1.map(|p| p.etag), Some("a".to_string()));
    let parts = run(&s, |t| Box::pin(async move { t.parts(&uref("k", "u1")).await })).await.unwrap();
    assert_eq!(parts.iter().map(|p| (p.number, p.etag.as_str())).collect::<Vec<_>>(), [(1, "b"), (2, "c")]);
    run(&s, |t| {
        Box::pin(async move {
            t.remove_upload(&uref("k", "u1"));
            Ok(())
        })
    })
    .await
    .unwrap();
    let e = run(&s, |t| Box::pin(async move { t.upload(&uref("k", "u1")).await })).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchUpload);
    assert!(run(&s, |t| Box::pin(async move { t.parts(&uref("k", "u1")).await })).await.unwrap().is_empty());
    // An upload of a bucket that does not exist: the bucket is what is missing.
    let e =
        run(&s, |t| Box::pin(async move { t.upload(&UploadRef { bucket: "zz".into(), ..Default::default() }).await }))
            .await
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchBucket);
}

#[tokio::test]
async fn upload_listing_resumes_after_key_and_upload_markers() {
    let s = store().await;
    run(&s, |t| {
        Box::pin(async move {
            for (k, id) in [("a", "1"), ("a", "2"), ("b", "1")] {
                t.put_upload(&upload(k, id));
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    let list = |key_marker: &'static str, upload_id_marker: &'static str| {
        let s = s.clone();
        async move {
            let req = ListUploadsRequest {
                bucket: "b".into(),
                key_marker: key_marker.into(),
                upload_id_marker: upload_id_marker.into(),
                ..Default::default()
            };
            run(&s, move |t| {
                let req = req.clone();
                Box::pin(async move { t.list_uploads(&req).await })
            })
            .await
            .unwrap()
            .uploads
            .into_iter()
            .map(|u| format!("{}/{}", u.key, u.upload_id))
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("", "").await, ["a/1", "a/2", "b/1"]);
    assert_eq!(list("a", "1").await, ["a/2", "b/1"]);
    assert_eq!(list("a", "").await, ["b/1"]);
}

#[tokio::test]
async fn journaled_in_finds_only_the_buckets_own_entries() {
    let s = store().await;
    run(&s, |t| Box::pin(async move { t.replace_object("bb", None, &obj("x", 4, 3)).await })).await.unwrap();
    let find = |b: &'static str| {
        let s = s.clone();
        async move { run(&s, move |t| Box::pin(async move { t.journaled_in(b).await })).await.unwrap() }
    };
    assert!(find("b").await.is_none());
    assert_eq!(find("bb").await.map(|e| e.key), Some("x".to_string()));
}

#[tokio::test]
async fn workers_and_their_id_counter() {
    let s = store().await;
    let ids = run(&s, |t| {
        Box::pin(async move {
            let (a, b) = (t.next_worker_id().await?, t.next_worker_id().await?);
            t.put_worker(&WorkerInfo { id: a, address: "http://a".into(), ..Default::default() });
            t.put_worker(&WorkerInfo { id: b, address: "http://b".into(), ..Default::default() });
            Ok((a, b))
        })
    })
    .await
    .unwrap();
    assert_eq!(ids, (1, 2));
    run(&s, |t| {
        Box::pin(async move {
            t.remove_worker(1);
            Ok(())
        })
    })
    .await
    .unwrap();
    let left = run(&s, |t| Box::pin(async move { t.workers().await })).await.unwrap();
    assert_eq!(left.iter().map(|w| w.address.as_str()).collect::<Vec<_>>(), ["http://b"]);
    assert_eq!(run(&s, |t| Box::pin(async move { t.next_worker_id().await })).await.unwrap(), 3);
}

#[tokio::test]
async fn counters_and_markers_round_trip() {
    let s = store().await;
    let got = run(&s, |t| {
        Box::pin(async move {
            let a = t.reserve_versions(1024).await?;
            let b = t.reserve_versions(1024).await?;
            let before = (t.epoch().await?, t.restoring().await?);
            t.set_restoring(true);
            Ok((a, b, before, t.restoring().await?))
        })
    })
    .await
    .unwrap();
    assert_eq!(got, (1024, 2048, (0, false), true));
    // The counters keep the little-endian i64 encoding older stores hold.
    assert_eq!(raw(&s, keys::version_counter()).await, Some(2048i64.to_le_bytes().to_vec()));
    let epoch = crate::store::fenced::take_epoch(s.as_ref()).await.unwrap();
    assert_eq!(run(&s, |t| Box::pin(async move { t.epoch().await })).await.unwrap(), epoch);
}

fn completion(bucket: &str, id: &str, completed_ms: i64) -> CompletedUpload {
    CompletedUpload { bucket: bucket.into(), key: "k".into(), upload_id: id.into(), completed_ms, ..Default::default() }
}

async fn completed(s: &Arc<dyn KvStore>, bucket: &str, id: &str) -> Option<CompletedUpload> {
    let r = UploadRef { bucket: bucket.into(), key: "k".into(), upload_id: id.into() };
    run(s, move |t| {
        let r = r.clone();
        Box::pin(async move { t.completed_upload(&r).await })
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn old_completions_are_forgotten_page_by_page_and_with_their_bucket() {
    let s = store().await;
    run(&s, |t| {
        Box::pin(async move {
            for (b, id, ms) in [("a", "1", 10), ("a", "2", 99), ("b", "1", 10), ("b", "2", 10), ("c", "1", 99)] {
                t.put_completed_upload(&completion(b, id, ms));
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    assert_eq!(completed(&s, "a", "2").await.map(|c| c.completed_ms), Some(99));
    // Two a page: the cursor carries on after the last one read, old or not.
    let (mut forgot, mut after, mut pages) = (0, None, 0);
    loop {
        let (n, last) = run(&s, move |t| {
            let after = after.clone();
            Box::pin(async move { t.forget_completed_uploads(after.as_ref(), 50, 2).await })
        })
        .await
        .unwrap();
        (forgot, pages) = (forgot + n, pages + 1);
        match last {
            Some(l) => after = Some(l),
            None => break,
        }
    }
    assert_eq!((forgot, pages), (3, 3));
    for (b, id, kept) in [("a", "1", false), ("a", "2", true), ("b", "1", false), ("b", "2", false), ("c", "1", true)] {
        assert_eq!(completed(&s, b, id).await.is_some(), kept, "{b}/{id}");
    }
    run(&s, |t| {
        Box::pin(async move {
            t.clear_bucket_contents("a");
            t.remove_bucket("c").await
        })
    })
    .await
    .unwrap();
    assert!(completed(&s, "a", "2").await.is_none() && completed(&s, "c", "1").await.is_none());
}
