//! The components through the composed master, on the memory store and a local folder as the
//! root under store: commits, deletes, uploads, journals, pins, TTL, mounts and sync.

use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_common::ErrorKind;
use strata_common::api::MasterApi;
use strata_common::proto::*;

use crate::master::{Master, test_master};

async fn master_with(keys: &[&str]) -> (Master, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let m = test_master(dir.path());
    m.create_bucket("bkt").await.unwrap();
    for k in keys {
        let meta = ObjectMeta { key: k.to_string(), version: 1, ..Default::default() };
        m.commit_object(CommitObjectRequest { bucket: "bkt".into(), meta: Some(meta), ..Default::default() })
            .await
            .unwrap();
    }
    (m, dir)
}

fn commit(key: &str, version: u64) -> CommitObjectRequest {
    CommitObjectRequest {
        bucket: "bkt".into(),
        meta: Some(ObjectMeta { key: key.into(), version, ..Default::default() }),
        ..Default::default()
    }
}

fn journaled(key: &str, version: u64, worker: u64) -> CommitObjectRequest {
    let mut c = commit(key, version);
    if let Some(m) = c.meta.as_mut() {
        m.journal_worker = worker;
        m.persist_pending = true;
    }
    c
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

/// A registered worker's heartbeat: (pinned, free).
async fn heartbeat(m: &Master) -> (Vec<u64>, Vec<u64>) {
    let w = m.register_worker(WorkerInfo { address: "http://w".into(), ..Default::default() }).await.unwrap();
    let r = m.heartbeat(HeartbeatRequest { worker_id: w.id, ..Default::default() }).await.unwrap();
    assert!(!r.reregister);
    let (mut pinned, mut free) = (r.pinned, r.free);
    pinned.sort();
    free.sort();
    (pinned, free)
}

fn stage(dir: &Path, name: &str, bytes: &[u8]) {
    let staged = dir.join("bkt/%strata/tmp");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join(name), bytes).unwrap();
}

#[tokio::test]
async fn lists_with_delimiter_and_pages() {
    let (m, _d) = master_with(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]).await;
    let r = m.list_objects(req("", "/", "", 1000)).await.unwrap();
    let keys: Vec<_> = r.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["b", "d"]);
    assert_eq!(r.common_prefixes, ["a/", "c/"]);
    assert!(!r.truncated);

    // Pages of two: a/ b | c/ d
    let p1 = m.list_objects(req("", "/", "", 2)).await.unwrap();
    assert_eq!(
        (p1.common_prefixes.clone(), p1.truncated, p1.next_marker.as_str()),
        (vec!["a/".to_string()], true, "b")
    );
    let p2 = m.list_objects(req("", "/", &p1.next_marker, 2)).await.unwrap();
    assert_eq!(p2.common_prefixes, ["c/"]);
    assert_eq!(p2.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["d"]);
    assert!(!p2.truncated);

    // A marker that is a common prefix skips it.
    let p = m.list_objects(req("", "/", "a/", 10)).await.unwrap();
    assert_eq!(p.objects.first().map(|o| o.key.as_str()), Some("b"));

    let sub = m.list_objects(req("c/", "/", "", 10)).await.unwrap();
    assert_eq!(sub.common_prefixes, ["c/x/"]);
    assert_eq!(sub.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["c/y"]);

    let flat = m.list_objects(req("c", "", "", 10)).await.unwrap();
    assert_eq!(flat.objects.len(), 2);
}

#[tokio::test]
async fn conditional_commits() {
    let (m, _d) = master_with(&["k"]).await;
    let meta = ObjectMeta { key: "k".into(), version: 2, etag: "e2".into(), ..Default::default() };
    let r = m
        .commit_object(CommitObjectRequest {
            bucket: "bkt".into(),
            meta: Some(meta.clone()),
            if_none_match_any: true,
            ..Default::default()
        })
        .await;
    assert_eq!(r.unwrap_err().kind, ErrorKind::PreconditionFailed);
    let r = m
        .commit_object(CommitObjectRequest {
            bucket: "bkt".into(),
            meta: Some(meta.clone()),
            if_match: "\"nope\"".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(r.unwrap_err().kind, ErrorKind::PreconditionFailed);
    let r = m.commit_object(CommitObjectRequest { bucket: "bkt".into(), meta: Some(meta), ..Default::default() }).await;
    assert_eq!(r.unwrap().replaced_version, 1);
    assert_eq!(m.lookup("bkt", "k").await.unwrap().etag, "e2");
    // If-None-Match with entity tags: refused when the object has one of them, else written.
    let none_match = |etag: &str, version| CommitObjectRequest {
        bucket: "bkt".into(),
        meta: Some(ObjectMeta { key: "k".into(), version, etag: "e3".into(), ..Default::default() }),
        if_none_match: etag.into(),
        ..Default::default()
    };
    assert_eq!(m.commit_object(none_match("\"x\", \"e2\"", 3)).await.unwrap_err().kind, ErrorKind::PreconditionFailed);
    assert_eq!(m.commit_object(none_match("\"x\"", 3)).await.unwrap().replaced_version, 2);
    assert_eq!(m.lookup("bkt", "zz").await.unwrap_err().kind, ErrorKind::NoSuchKey);
    assert_eq!(m.lookup("nob", "k").await.unwrap_err().kind, ErrorKind::NoSuchBucket);
    assert_eq!(m.delete_bucket("bkt").await.unwrap_err().kind, ErrorKind::BucketNotEmpty);
}

#[tokio::test]
async fn if_match_on_a_missing_key_is_no_such_key() {
    let (m, _d) = master_with(&[]).await;
    let mut c = commit("k", 1);
    c.if_match = "*".into();
    assert_eq!(m.commit_object(c).await.unwrap_err().kind, ErrorKind::NoSuchKey);
}

#[tokio::test]
async fn a_commit_whose_bytes_cannot_move_is_undone() {
    let (m, dir) = master_with(&[]).await;
    stage(dir.path(), "1", b"first");
    let staged =
        |version: u64, staging: &str| CommitObjectRequest { staging_key: staging.into(), ..commit("k", version) };
    m.commit_object(staged(1, "tmp/1")).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("bkt/k")).unwrap(), b"first");
    // Version 2's staged bytes are missing: the move fails, version 1 stays.
    let e = m.commit_object(staged(2, "tmp/2")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    assert_eq!(m.lookup("bkt", "k").await.unwrap().version, 1);
    assert_eq!(std::fs::read(dir.path().join("bkt/k")).unwrap(), b"first");
}

#[tokio::test]
async fn a_delete_whose_file_stays_is_undone() {
    let (m, dir) = master_with(&["k"]).await;
    // A folder where the key's file is: the under store cannot delete it.
    std::fs::create_dir_all(dir.path().join("bkt/k/x")).unwrap();
    let e = m.delete_object("bkt", "k").await.unwrap_err();
    assert!(e.message.starts_with("deleting k: "), "{}", e.message);
    assert_eq!(m.lookup("bkt", "k").await.unwrap().version, 1);
}

#[tokio::test]
async fn an_undone_first_write_leaves_no_object_and_no_journal() {
    let (m, _dir) = master_with(&[]).await;
    let c = CommitObjectRequest { staging_key: "tmp/9".into(), ..journaled("k", 9, 4) };
    assert!(m.commit_object(c).await.is_err());
    assert_eq!(m.lookup("bkt", "k").await.unwrap_err().kind, ErrorKind::NoSuchKey);
    assert!(m.journal(4).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_pin_follows_its_object_through_overwrites_and_goes_with_it() {
    let (m, _d) = master_with(&["k", "other"]).await;
    assert_eq!(m.pin("bkt", "k", true).await.unwrap(), 1);
    assert_eq!(heartbeat(&m).await.0, [1]);
    m.commit_object(commit("k", 5)).await.unwrap();
    assert_eq!(heartbeat(&m).await.0, [5]);
    m.delete_object("bkt", "k").await.unwrap();
    assert!(heartbeat(&m).await.0.is_empty());
}

#[tokio::test]
async fn unpinning_releases_the_pin() {
    let (m, _d) = master_with(&["p/1", "p/2", "q"]).await;
    assert_eq!(m.pin("bkt", "p/", true).await.unwrap(), 2);
    assert_eq!(m.pin("bkt", "p/", false).await.unwrap(), 2);
    assert!(heartbeat(&m).await.0.is_empty());
}

#[tokio::test]
async fn journal_entries_follow_commits_and_deletes() {
    let (m, _d) = master_with(&[]).await;
    m.commit_object(journaled("k", 3, 7)).await.unwrap();
    let j = m.journal(7).await.unwrap();
    assert_eq!((j.len(), j[0].key.as_str(), j[0].version, j[0].persist), (1, "k", 3, true));
    m.commit_object(journaled("k", 4, 7)).await.unwrap();
    assert_eq!(m.journal(7).await.unwrap().iter().map(|e| e.version).collect::<Vec<_>>(), [4]);
    let d = m.delete_object("bkt", "k").await.unwrap();
    assert_eq!((d.existed, d.version), (true, 4));
    assert!(m.journal(7).await.unwrap().is_empty());
    assert!(!m.delete_object("bkt", "k").await.unwrap().existed);
}

#[tokio::test]
async fn a_caller_that_goes_away_after_the_commit_does_not_stop_the_move() {
    let (m, dir) = master_with(&[]).await;
    let key = crate::publish::PAUSED_KEY;
    stage(dir.path(), "3", b"old");
    let first = CommitObjectRequest { staging_key: "tmp/3".into(), ..commit(key, 3) };
    m.commit_object(first).await.unwrap();
    stage(dir.path(), "4", b"new");
    let second = CommitObjectRequest { staging_key: "tmp/4".into(), ..commit(key, 4) };
    // The caller is dropped while the commit is paused between the metadata and the move.
    assert!(tokio::time::timeout(Duration::from_millis(100), m.commit_object(second)).await.is_err());
    assert_eq!(m.lookup("bkt", key).await.unwrap().version, 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read(dir.path().join("bkt").join(key)).unwrap(), b"new");
    assert!(!dir.path().join("bkt/%strata/tmp/4").exists());
}

#[tokio::test]
async fn a_persist_moves_the_bytes_and_clears_the_journal_entry() {
    let (m, dir) = master_with(&[]).await;
    m.commit_object(journaled("k", 5, 7)).await.unwrap();
    let p = |version| PersistedRequest {
        bucket: "bkt".into(),
        key: "k".into(),
        version,
        staging_key: "tmp/5".into(),
        ufs_etag: "fp".into(),
    };
    // A stale report is refused, and the bytes it staged are deleted.
    stage(dir.path(), "5", b"stale");
    assert_eq!(m.persisted(p(4)).await.unwrap_err().kind, ErrorKind::PreconditionFailed);
    assert!(!dir.path().join("bkt/%strata/tmp/5").exists());
    stage(dir.path(), "5", b"persisted");
    m.persisted(p(5)).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("bkt/k")).unwrap(), b"persisted");
    let o = m.lookup("bkt", "k").await.unwrap();
    assert_eq!((o.journal_worker, o.persist_pending, o.ufs_etag.as_str()), (0, false, "fp"));
    assert!(m.journal(7).await.unwrap().is_empty());
    // Persisted once: a second report is refused.
    assert_eq!(m.persisted(p(5)).await.unwrap_err().kind, ErrorKind::PreconditionFailed);
}

#[tokio::test]
async fn tags_of_buckets_and_objects() {
    let (m, _d) = master_with(&["k"]).await;
    let tags: std::collections::HashMap<String, String> = [("a".to_string(), "1".to_string())].into();
    m.set_tags(SetTagsRequest { bucket: "bkt".into(), key: String::new(), tags: tags.clone() }).await.unwrap();
    m.set_tags(SetTagsRequest { bucket: "bkt".into(), key: "k".into(), tags: tags.clone() }).await.unwrap();
    assert_eq!(m.get_bucket("bkt").await.unwrap().tags, tags);
    let o = m.lookup("bkt", "k").await.unwrap();
    assert_eq!((o.tags, o.version), (tags.clone(), 1));
    let e = m.set_tags(SetTagsRequest { bucket: "bkt".into(), key: "zz".into(), tags }).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchKey);
}

#[tokio::test]
async fn credentials_and_versions() {
    let (m, _d) = master_with(&[]).await;
    assert_eq!(m.get_credential("a").await.unwrap().secret_key, "s");
    assert_eq!(m.get_credential("b").await.unwrap_err().kind, ErrorKind::InvalidAccessKeyId);
    let (v1, v2) = (m.allocate_version().await.unwrap(), m.allocate_version().await.unwrap());
    assert!(v2 > v1 && v1 > 0);
}

#[tokio::test]
async fn an_unknown_worker_is_told_to_register() {
    let (m, _d) = master_with(&[]).await;
    let r = m.heartbeat(HeartbeatRequest { worker_id: 42, ..Default::default() }).await.unwrap();
    assert!(r.reregister);
    assert!(m.list_workers().await.unwrap().is_empty());
    let report = m.report().await;
    assert_eq!((report.store.as_str(), report.workers.len()), ("memory", 0));
}

fn upload_ref(id: &str) -> UploadRef {
    UploadRef { bucket: "bkt".into(), key: "k".into(), upload_id: id.into() }
}

#[tokio::test]
async fn stale_uploads_are_aborted_and_their_parts_deleted() {
    let (m, dir) = master_with(&[]).await;
    let u = m.create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
    let staged = dir.path().join("%strata/uploads/x");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("1-5"), b"part").unwrap();
    let r = upload_ref(&u.upload_id);
    let part = PartMeta { number: 1, staging_path: "uploads/x/1-5".into(), ..Default::default() };
    m.commit_part(CommitPartRequest { upload: Some(r.clone()), part: Some(part) }).await.unwrap();
    assert_eq!(m.abort_stale_uploads(Duration::from_secs(3600)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(m.abort_stale_uploads(Duration::from_millis(1)).await.unwrap(), 1);
    assert_eq!(m.get_upload(r).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
    assert!(!staged.join("1-5").exists());
}

#[tokio::test]
async fn a_replaced_part_has_its_old_staged_bytes_deleted() {
    let (m, dir) = master_with(&[]).await;
    let u = m.create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
    let staged = dir.path().join("%strata/uploads/y");
    std::fs::create_dir_all(&staged).unwrap();
    for f in ["1-a", "1-b"] {
        std::fs::write(staged.join(f), b"part").unwrap();
    }
    let part =
        |p: &str| PartMeta { number: 1, staging_path: format!("uploads/y/{p}"), etag: p.into(), ..Default::default() };
    let r = upload_ref(&u.upload_id);
    let first = m.commit_part(CommitPartRequest { upload: Some(r.clone()), part: Some(part("1-a")) }).await.unwrap();
    assert!(first.replaced.is_none());
    let second = m.commit_part(CommitPartRequest { upload: Some(r.clone()), part: Some(part("1-b")) }).await.unwrap();
    assert_eq!(second.replaced.map(|p| p.etag), Some("1-a".to_string()));
    assert!(!staged.join("1-a").exists() && staged.join("1-b").exists());
    // A part for an upload that is gone: refused, and its staged bytes deleted.
    m.abort_upload(r.clone()).await.unwrap();
    assert!(!staged.join("1-b").exists(), "an abort deletes the staged parts");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("1-c"), b"late").unwrap();
    let e = m.commit_part(CommitPartRequest { upload: Some(r), part: Some(part("1-c")) }).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchUpload);
    assert!(!staged.join("1-c").exists());
}

#[tokio::test]
async fn completing_an_upload_checks_its_parts_and_commits_the_object() {
    let (m, _d) = master_with(&[]).await;
    let u = m.create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
    let r = upload_ref(&u.upload_id);
    let part = PartMeta { number: 1, size: 5, etag: "p1".into(), ..Default::default() };
    m.commit_part(CommitPartRequest { upload: Some(r.clone()), part: Some(part) }).await.unwrap();
    let complete = |etag: &str| CompleteUploadRequest {
        upload: Some(r.clone()),
        meta: Some(ObjectMeta {
            key: "k".into(),
            version: 8,
            journal_worker: 2,
            parts: vec![PartInfo { number: 1, size: 5, etag: etag.into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(m.complete_upload(complete("other")).await.unwrap_err().kind, ErrorKind::InvalidPart);
    let done = m.complete_upload(complete("p1")).await.unwrap();
    assert_eq!(done.staged.len(), 1);
    assert_eq!(m.lookup("bkt", "k").await.unwrap().version, 8);
    assert_eq!(m.journal(2).await.unwrap().iter().map(|e| e.version).collect::<Vec<_>>(), [8]);
    assert_eq!(m.get_upload(r).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
    let listed = m.list_uploads(ListUploadsRequest { bucket: "bkt".into(), ..Default::default() }).await.unwrap();
    assert!(listed.uploads.is_empty());
}

/// A one-part upload of "k" completed as version `version`; returns its ref.
async fn completed_upload(m: &Master, version: u64) -> UploadRef {
    let u = m.create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
    let r = upload_ref(&u.upload_id);
    let part = PartMeta { number: 1, size: 5, etag: "p1".into(), ..Default::default() };
    m.commit_part(CommitPartRequest { upload: Some(r.clone()), part: Some(part) }).await.unwrap();
    let sum = Checksum { algorithm: "CRC32".into(), value: "AAAAAA==-1".into() };
    let meta = ObjectMeta {
        key: "k".into(),
        version,
        etag: format!("etag-{version}"),
        checksums: vec![sum],
        parts: vec![PartInfo { number: 1, size: 5, etag: "p1".into(), ..Default::default() }],
        ..Default::default()
    };
    m.complete_upload(CompleteUploadRequest { upload: Some(r.clone()), meta: Some(meta), ..Default::default() })
        .await
        .unwrap();
    r
}

#[tokio::test]
async fn a_completed_upload_is_remembered_for_its_retries_then_forgotten() {
    let (m, _d) = master_with(&[]).await;
    let r = completed_upload(&m, 8).await;
    // The key is overwritten since: the completion still answers what it made.
    m.commit_object(commit("k", 9)).await.unwrap();
    let done = m.get_completed_upload(r.clone()).await.unwrap();
    assert_eq!((done.etag.as_str(), done.version, done.key.as_str()), ("etag-8", 8, "k"));
    assert_eq!(done.checksums[0].value, "AAAAAA==-1");
    assert_eq!(done.parts.iter().map(|p| (p.number, p.etag.as_str())).collect::<Vec<_>>(), [(1, "p1")]);
    // Only for its own key and its own id; the upload itself stays gone.
    let other_key = UploadRef { key: "other".into(), ..r.clone() };
    assert_eq!(m.get_completed_upload(other_key).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
    assert_eq!(m.get_completed_upload(upload_ref("nope")).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
    assert_eq!(m.get_upload(r.clone()).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
    // A completion does not keep its bucket from being empty.
    m.delete_object("bkt", "k").await.unwrap();
    let listed = m.list_uploads(ListUploadsRequest { bucket: "bkt".into(), ..Default::default() }).await.unwrap();
    assert!(listed.uploads.is_empty());
    // The expiry job forgets completions older than it keeps them.
    assert_eq!(m.forget_completed_uploads(Duration::from_secs(3600)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(m.forget_completed_uploads(Duration::from_millis(1)).await.unwrap(), 1);
    assert_eq!(m.get_completed_upload(r).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
}

#[tokio::test]
async fn forgetting_old_completions_reads_them_in_batches_and_keeps_new_ones() {
    let (m, _d) = master_with(&[]).await;
    let mut old = Vec::new();
    for v in 0..3 {
        old.push(completed_upload(&m, 10 + v).await);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new = completed_upload(&m, 20).await;
    assert_eq!(m.forget_completed_uploads(Duration::from_millis(10)).await.unwrap(), 3);
    for r in old {
        assert_eq!(m.get_completed_upload(r).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
    }
    assert_eq!(m.get_completed_upload(new).await.unwrap().version, 20);
}

#[tokio::test]
async fn deleting_a_bucket_forgets_its_completions() {
    let (m, _d) = master_with(&[]).await;
    let r = completed_upload(&m, 8).await;
    m.delete_object("bkt", "k").await.unwrap();
    m.delete_bucket("bkt").await.unwrap();
    m.create_bucket("bkt").await.unwrap();
    assert_eq!(m.get_completed_upload(r).await.unwrap_err().kind, ErrorKind::NoSuchUpload);
}

#[tokio::test]
async fn a_read_only_mount_refuses_writes_but_reads() {
    let (m, dir) = master_with(&[]).await;
    let src = dir.path().join("robkt");
    std::fs::create_dir_all(&src).unwrap();
    let mount = Mount { uri: format!("file://{}", src.display()), read_only: true, ..Default::default() };
    m.mount("robkt", mount).await.unwrap();
    let c = CommitObjectRequest { bucket: "robkt".into(), ..commit("k", 1) };
    assert_eq!(m.commit_object(c).await.unwrap_err().kind, ErrorKind::AccessDenied);
    assert_eq!(m.delete_object("robkt", "k").await.unwrap_err().kind, ErrorKind::AccessDenied);
    let up = Upload { bucket: "robkt".into(), key: "k".into(), ..Default::default() };
    assert_eq!(m.create_upload(up).await.unwrap_err().kind, ErrorKind::AccessDenied);
    assert_eq!(m.list_mounts().await.unwrap().len(), 2);
    let again = Mount { uri: format!("file://{}", src.display()), ..Default::default() };
    assert_eq!(m.mount("robkt", again).await.unwrap_err().kind, ErrorKind::BucketAlreadyOwnedByYou);
}

#[tokio::test]
async fn unmount_waits_for_journaled_objects_then_forgets_the_metadata() {
    let (m, dir) = master_with(&[]).await;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    m.mount("mnt", Mount { uri: format!("file://{}", src.display()), ..Default::default() }).await.unwrap();
    m.commit_object(CommitObjectRequest { bucket: "mnt".into(), ..journaled("k", 3, 7) }).await.unwrap();
    m.set_ttl(TtlRule { bucket: "mnt".into(), prefix: String::new(), ttl_ms: 5, action: "free".into() }).await.unwrap();
    assert_eq!(m.unmount("mnt").await.unwrap_err().kind, ErrorKind::BucketNotEmpty);
    m.delete_object("mnt", "k").await.unwrap();
    m.commit_object(CommitObjectRequest { bucket: "mnt".into(), ..commit("plain", 4) }).await.unwrap();
    m.unmount("mnt").await.unwrap();
    assert_eq!(m.get_bucket("mnt").await.unwrap_err().kind, ErrorKind::NoSuchBucket);
    assert!(m.list_ttls().await.unwrap().is_empty());
    // Mounted again, the bucket starts without the old metadata.
    m.mount("mnt", Mount { uri: format!("file://{}", src.display()), ..Default::default() }).await.unwrap();
    assert_eq!(m.lookup("mnt", "plain").await.unwrap_err().kind, ErrorKind::NoSuchKey);
}

#[tokio::test]
async fn ttl_rules_delete_or_free_expired_objects() {
    let (m, _d) = master_with(&["logs/a", "logs/b", "keep"]).await;
    let bad = TtlRule { bucket: "bkt".into(), prefix: "logs/".into(), ttl_ms: 1, action: "burn".into() };
    assert_eq!(m.set_ttl(bad).await.unwrap_err().kind, ErrorKind::InvalidArgument);
    let nob = TtlRule { bucket: "nob".into(), prefix: String::new(), ttl_ms: 1, action: "FREE".into() };
    assert_eq!(m.set_ttl(nob).await.unwrap_err().kind, ErrorKind::NoSuchBucket);
    m.set_ttl(TtlRule { bucket: "bkt".into(), prefix: "logs/".into(), ttl_ms: 1, action: "delete".into() })
        .await
        .unwrap();
    m.set_ttl(TtlRule { bucket: "bkt".into(), prefix: "keep".into(), ttl_ms: 1, action: "free".into() }).await.unwrap();
    assert_eq!(m.list_ttls().await.unwrap().iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["FREE", "DELETE"]);
    assert_eq!(m.apply_ttls(0).await.unwrap(), (1, 2));
    assert_eq!(m.lookup("bkt", "logs/a").await.unwrap_err().kind, ErrorKind::NoSuchKey);
    assert_eq!(m.lookup("bkt", "keep").await.unwrap().version, 1);
    assert_eq!(heartbeat(&m).await.1, [1]);
    // A rule of TTL 0 is removed; deleting the bucket removes the rest.
    m.set_ttl(TtlRule { bucket: "bkt".into(), prefix: "keep".into(), ttl_ms: 0, action: String::new() }).await.unwrap();
    assert_eq!(m.list_ttls().await.unwrap().len(), 1);
    m.delete_object("bkt", "keep").await.unwrap();
    m.delete_bucket("bkt").await.unwrap();
    assert!(m.list_ttls().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_syncing_mount_sees_changes_made_in_its_under_store() {
    let (m, dir) = master_with(&[]).await;
    let src = dir.path().join("synced");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"one").unwrap();
    let mount = Mount { uri: format!("file://{}", src.display()), sync_interval_ms: Some(0), ..Default::default() };
    m.mount("syn", mount).await.unwrap();
    let first = m.lookup("syn", "f").await.unwrap();
    assert_eq!(first.size, 3);
    assert!(first.etag.ends_with("-1"), "a derived ETag is not taken for an MD5: {}", first.etag);
    std::fs::write(src.join("f"), b"longer").unwrap();
    let second = m.lookup("syn", "f").await.unwrap();
    assert!(second.version > first.version);
    assert_eq!(second.size, 6);
    std::fs::write(src.join("g"), b"new").unwrap();
    let listed = m
        .list_objects(ListObjectsRequest { bucket: "syn".into(), max_keys: 1000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["f", "g"]);
    std::fs::remove_file(src.join("f")).unwrap();
    assert_eq!(m.lookup("syn", "f").await.unwrap_err().kind, ErrorKind::NoSuchKey);
}

#[tokio::test]
async fn a_listing_records_many_new_objects_of_a_read_only_mount_at_once() {
    let (m, dir) = master_with(&[]).await;
    let src = dir.path().join("many");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..250usize {
        std::fs::write(src.join("d").join(format!("{i:03}")), vec![b'x'; i]).unwrap();
    }
    let uri = format!("file://{}", src.display());
    let mount = Mount { uri, sync_interval_ms: Some(0), read_only: true, ..Default::default() };
    m.mount("many", mount).await.unwrap();
    let looked_up = m.lookup("many", "d/007").await.unwrap();
    let list = || async {
        let req =
            ListObjectsRequest { bucket: "many".into(), prefix: "d/".into(), max_keys: 1000, ..Default::default() };
        m.list_objects(req).await.unwrap().objects
    };
    let listed = list().await;
    assert_eq!(listed.len(), 250);
    for (i, o) in listed.iter().enumerate() {
        assert_eq!((o.key.clone(), o.size), (format!("d/{i:03}"), i as u64));
    }
    assert_eq!(listed[7].version, looked_up.version, "a key already recorded keeps its version");
    let versions: std::collections::HashSet<u64> = listed.iter().map(|o| o.version).collect();
    assert_eq!(versions.len(), 250);
    // Nothing changed: nothing is recorded again; a changed file gets a new version.
    std::fs::write(src.join("d").join("100"), b"changed").unwrap();
    let again = list().await;
    assert_eq!(again.len(), 250);
    for (a, b) in again.iter().zip(&listed) {
        assert_eq!(a.version == b.version, a.key != "d/100", "{}", a.key);
    }
    assert_eq!(again[100].size, 7);
}

/// A folder of `dir` holding `files` files, mounted as `name` with that sync interval.
async fn mounted_folder(m: &Master, dir: &Path, name: &str, files: usize, sync_interval_ms: i64) -> PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..files {
        std::fs::write(src.join(format!("{i:03}")), b"x").unwrap();
    }
    let uri = format!("file://{}", src.display());
    m.mount(name, Mount { uri, sync_interval_ms: Some(sync_interval_ms), ..Default::default() }).await.unwrap();
    src
}

#[tokio::test]
async fn a_listing_that_outwaits_its_sync_answers_so_and_the_sync_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::master::test_master_waiting(dir.path(), Duration::ZERO);
    mounted_folder(&m, dir.path(), "big", 300, 3_600_000).await;
    let req = ListObjectsRequest { bucket: "big".into(), max_keys: 1000, ..Default::default() };
    let e = m.list_objects(req.clone()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syncing, "{e}");
    assert!(e.message.contains("bucket big") && e.message.contains("retry"), "{e}");
    // The sync went on without the listing; `strata admin sync` joins it.
    let run = m.sync_mount("big", "").await.unwrap();
    assert_eq!(run.finished(Duration::from_secs(30)).await.unwrap(), Ok(()));
    let p = run.progress();
    assert_eq!((p.listed, p.changes, p.done), (300, 300, true));
    assert_eq!(m.list_objects(req).await.unwrap().objects.len(), 300);
    // Forced again: nothing new to record.
    let run = m.sync_mount("big", "").await.unwrap();
    assert_eq!(run.finished(Duration::from_secs(30)).await.unwrap(), Ok(()));
    assert_eq!((run.progress().listed, run.progress().changes), (300, 0));
    assert_eq!(m.sync_mount("bkt-none", "").await.err().map(|e| e.kind), Some(ErrorKind::NoSuchBucket));
}

#[tokio::test]
async fn a_first_listing_starting_after_a_key_records_the_mount_first() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::master::test_master(dir.path());
    mounted_folder(&m, dir.path(), "fresh", 20, 3_600_000).await;
    let req =
        ListObjectsRequest { bucket: "fresh".into(), start_after: "009".into(), max_keys: 5, ..Default::default() };
    let page = m.list_objects(req).await.unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["010", "011", "012", "013", "014"]);
    assert!(page.truncated);
}

#[tokio::test]
async fn a_sync_past_the_listing_turns_waits_for_one_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::master::test_master_waiting(dir.path(), Duration::ZERO);
    mounted_folder(&m, dir.path(), "queued", 10, 3_600_000).await;
    let held = m.mounts.sync_turns().acquire_many(crate::sync::MAX_RUNS as u32).await.unwrap();
    let run = m.sync_mount("queued", "").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // its task runs up to the turns
    assert!(run.progress().waiting && !run.progress().done);
    let req = ListObjectsRequest { bucket: "queued".into(), max_keys: 1000, ..Default::default() };
    let e = m.list_objects(req.clone()).await.unwrap_err();
    assert!(e.message.contains("waits for its turn"), "{e}");
    drop(held);
    assert_eq!(run.finished(Duration::from_secs(30)).await.unwrap(), Ok(()));
    let p = run.progress();
    assert!(!p.waiting && p.done && p.listed == 10, "{p:?}");
    assert!(m.mounts.remembers_recorded("queued", ""), "later pages need no store read");
    assert_eq!(m.list_objects(req).await.unwrap().objects.len(), 10);
}

#[tokio::test]
async fn a_re_sync_that_outwaits_the_listing_lets_it_see_the_recorded_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::master::test_master_waiting(dir.path(), Duration::ZERO);
    let src = mounted_folder(&m, dir.path(), "lake", 50, 1).await;
    let req = ListObjectsRequest { bucket: "lake".into(), max_keys: 10, ..Default::default() };
    assert_eq!(m.list_objects(req.clone()).await.unwrap_err().kind, ErrorKind::Syncing);
    let run = m.sync_mount("lake", "").await.unwrap();
    assert_eq!(run.finished(Duration::from_secs(30)).await.unwrap(), Ok(()));
    // Due again (1 ms): the re-sync starts and the listing is answered from what is recorded.
    std::fs::write(src.join("new"), b"n").unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let page = m.list_objects(req.clone()).await.unwrap();
    assert_eq!((page.objects.len(), page.truncated), (10, true));
    let next = ListObjectsRequest { start_after: page.next_marker.clone(), ..req.clone() };
    assert_eq!(m.list_objects(next).await.unwrap().objects.len(), 10, "a later page never waits");
    let run = m.sync_mount("lake", "").await.unwrap();
    assert_eq!(run.finished(Duration::from_secs(30)).await.unwrap(), Ok(()));
    let all = ListObjectsRequest { max_keys: 1000, ..req };
    assert_eq!(m.list_objects(all).await.unwrap().objects.len(), 51);
}

#[tokio::test]
async fn a_sync_whose_listing_predates_a_delete_through_strata_does_not_bring_the_key_back() {
    let (m, dir) = master_with(&[]).await;
    let m = std::sync::Arc::new(m);
    let src = dir.path().join("racy");
    std::fs::create_dir_all(&src).unwrap();
    let key = crate::publish::PAUSED_KEY;
    std::fs::write(src.join(key), b"old").unwrap();
    std::fs::write(src.join("other"), b"x").unwrap();
    let uri = format!("file://{}", src.display());
    m.mount("racy", Mount { uri, sync_interval_ms: Some(3_600_000), ..Default::default() }).await.unwrap();
    let req = ListObjectsRequest { bucket: "racy".into(), max_keys: 1000, ..Default::default() };
    assert_eq!(m.list_objects(req.clone()).await.unwrap().objects.len(), 2); // synced: not due for an hour
    // The delete removes the metadata, then waits before deleting the file under its lock...
    let deleting = tokio::spawn({
        let m = m.clone();
        async move { m.delete_object("racy", key).await }
    });
    let listed = |m: std::sync::Arc<Master>| async move {
        let req = ListObjectsRequest { bucket: "racy".into(), max_keys: 1000, ..Default::default() };
        m.list_objects(req).await.unwrap().objects.into_iter().map(|o| o.key).collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if listed(m.clone()).await == ["other"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(src.join(key).exists(), "the delete is paused between its commit and its file delete");
    // ... while a sync lists the folder: it sees the file the metadata no longer has (the key's
    // lock is held: looked at afresh once the delete is done).
    let run = m.sync_mount("racy", "").await.unwrap();
    assert_eq!(run.finished(Duration::from_secs(30)).await.unwrap(), Ok(()));
    assert!(deleting.await.unwrap().unwrap().existed);
    assert!(!src.join(key).exists());
    assert_eq!(listed(m.clone()).await, ["other"]);
}

#[tokio::test]
async fn a_sync_watch_sees_the_keys_published_after_it_began_and_only_those() {
    let (m, _dir) = master_with(&["before", "after", "unrelated"]).await;
    m.delete_object("bkt", "before").await.unwrap();
    let watch = m.publisher.watch("bkt");
    let later = m.publisher.watch("bkt");
    m.delete_object("bkt", "after").await.unwrap();
    m.commit_object(commit("written", 2)).await.unwrap();
    drop(later);
    assert!(watch.published("after") && watch.published("written"));
    assert!(!watch.published("before") && !watch.published("unrelated"));
    drop(watch);
    let fresh = m.publisher.watch("bkt");
    assert!(!fresh.published("after"), "a watch sees nothing published before it");
}

/// What a master that died between a commit and its move leaves: the object's new metadata
/// and its publish intent, with the bytes still staged.
async fn crashed_commit(m: &Master, key: &str, version: u64, staging: &str) {
    use crate::schema::Schema;
    let store = m.raw_store();
    let (key, staging) = (key.to_string(), staging.to_string());
    strata_common::kv::transact(store.as_ref(), |t| {
        let (key, staging) = (key.clone(), staging.clone());
        Box::pin(async move {
            let current = t.object("bkt", &key).await?;
            let meta = ObjectMeta { key: key.clone(), version, ..Default::default() };
            t.replace_object("bkt", current.as_ref(), &meta).await?;
            crate::publish::intend(t, "bkt", &key, &staging, version);
            Ok(())
        })
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_restarted_master_finishes_or_drops_interrupted_publishes() {
    let (m, dir) = master_with(&[]).await;
    let file = |k: &str| std::fs::read(dir.path().join("bkt").join(k)).ok();
    // Committed, not moved: the move is finished.
    stage(dir.path(), "1", b"old");
    m.commit_object(CommitObjectRequest { staging_key: "tmp/1".into(), ..commit("a", 1) }).await.unwrap();
    stage(dir.path(), "2", b"new");
    crashed_commit(&m, "a", 2, "tmp/2").await;
    // Superseded before the restart finished it (its bytes go, the newer ones stay).
    stage(dir.path(), "3", b"b3");
    crashed_commit(&m, "b", 3, "tmp/3").await;
    stage(dir.path(), "4", b"b4");
    m.commit_object(CommitObjectRequest { staging_key: "tmp/4".into(), ..commit("b", 4) }).await.unwrap();
    // A delete whose file was not removed.
    stage(dir.path(), "5", b"c");
    m.commit_object(CommitObjectRequest { staging_key: "tmp/5".into(), ..commit("c", 5) }).await.unwrap();
    m.delete_object("bkt", "c").await.unwrap();
    std::fs::write(dir.path().join("bkt/c"), b"c").unwrap();
    crashed_commit(&m, "c", 6, "").await;
    m.delete_object("bkt", "c").await.unwrap();
    std::fs::write(dir.path().join("bkt/c"), b"c").unwrap();
    crashed_commit(&m, "c", 7, "").await;
    let _ = m.objects.delete("bkt", "c", Some(7)).await;
    // The restart.
    m.finish_publishes().await;
    assert_eq!(file("a").as_deref(), Some(&b"new"[..]));
    assert_eq!(file("b").as_deref(), Some(&b"b4"[..]));
    assert_eq!(file("c"), None);
    for v in ["2", "3", "4"] {
        assert!(!dir.path().join("bkt/%strata/tmp").join(v).exists(), "tmp/{v} left");
    }
    let left = strata_common::kv::transact(m.raw_store().as_ref(), |t| {
        Box::pin(async move { crate::schema::Schema::publish_intents(t).await })
    })
    .await
    .unwrap();
    assert!(left.is_empty(), "intents left: {left:?}");
}

#[tokio::test]
async fn dead_writes_staged_files_are_reclaimed_and_claimed_ones_kept() {
    let (m, dir) = master_with(&[]).await;
    stage(dir.path(), "dead", b"x");
    stage(dir.path(), "7#1", b"cut off"); // an object store's temporary file, hidden from listings
    stage(dir.path(), "pending", b"y");
    crashed_commit(&m, "k", 9, "tmp/pending").await;
    let u = m.create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
    let parts = dir.path().join("%strata/uploads/x");
    std::fs::create_dir_all(&parts).unwrap();
    std::fs::write(parts.join("1-5"), b"part").unwrap();
    std::fs::write(parts.join("2-6"), b"dead part").unwrap();
    let part = PartMeta { number: 1, staging_path: "uploads/x/1-5".into(), ..Default::default() };
    m.commit_part(CommitPartRequest { upload: Some(upload_ref(&u.upload_id)), part: Some(part) }).await.unwrap();
    // Young files stay, whoever claims them.
    assert_eq!(m.reclaim_staging(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(m.reclaim_staging(Duration::ZERO).await.unwrap(), 3);
    assert!(!dir.path().join("bkt/%strata/tmp/dead").exists());
    assert!(!dir.path().join("bkt/%strata/tmp/7#1").exists());
    assert!(!parts.join("2-6").exists());
    assert!(dir.path().join("bkt/%strata/tmp/pending").exists());
    assert!(parts.join("1-5").exists());
}

#[tokio::test]
async fn a_staged_file_dated_long_ago_by_its_store_waits_out_the_grace_on_the_masters_clock() {
    // S3 dates a multipart upload's object by the upload's start, and its clock is not ours: a
    // file of a write that has just finished may look hours old.
    let (m, dir) = master_with(&[]).await;
    stage(dir.path(), "just-written", b"x");
    let f = std::fs::File::options().write(true).open(dir.path().join("bkt/%strata/tmp/just-written")).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200)).unwrap();
    let grace = Duration::from_millis(300);
    assert_eq!(m.reclaim_staging(grace).await.unwrap(), 0, "deleted at first sight");
    // Changed since (a live write): seen anew.
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(7000)).unwrap();
    tokio::time::sleep(grace).await;
    assert_eq!(m.reclaim_staging(grace).await.unwrap(), 0, "deleted though it changed");
    assert!(dir.path().join("bkt/%strata/tmp/just-written").exists());
    tokio::time::sleep(grace).await;
    assert_eq!(m.reclaim_staging(grace).await.unwrap(), 1);
    assert!(!dir.path().join("bkt/%strata/tmp/just-written").exists());
}

#[tokio::test]
async fn the_folder_of_parts_written_in_place_stays_while_its_upload_lives() {
    let (m, dir) = master_with(&[]).await;
    let u = m.create_upload(Upload { bucket: "bkt".into(), key: "k".into(), ..Default::default() }).await.unwrap();
    let folder = dir.path().join("bkt/%strata/uploads").join(&u.upload_id);
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["data-4", "slot-1", "slot-2", "part-size", "lock", "sealed"] {
        std::fs::write(folder.join(f), b"4").unwrap();
    }
    let staging_path = format!("uploads/{}/data-4", u.upload_id);
    let part = PartMeta { number: 1, in_place: true, staging_path, ..Default::default() };
    m.commit_part(CommitPartRequest { upload: Some(upload_ref(&u.upload_id)), part: Some(part) }).await.unwrap();
    assert_eq!(m.reclaim_staging(Duration::ZERO).await.unwrap(), 0);
    assert!(folder.join("slot-2").exists() && folder.join("lock").exists());
    m.abort_upload(upload_ref(&u.upload_id)).await.unwrap();
    assert!(!folder.exists(), "an aborted upload leaves its folder");
}

#[tokio::test]
async fn an_upload_folder_whose_first_part_is_being_written_stays_whole() {
    // No part recorded yet: only the file still changing tells that the marks are in use.
    let (m, dir) = master_with(&[]).await;
    let folder = dir.path().join("bkt/%strata/uploads/u9");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["slot-1", "part-size", "lock", "data-8"] {
        std::fs::write(folder.join(f), b"8").unwrap();
    }
    let grace = Duration::from_millis(200);
    assert_eq!(m.reclaim_staging(grace).await.unwrap(), 0);
    tokio::time::sleep(grace).await;
    std::fs::write(folder.join("data-8"), b"88").unwrap(); // the part's bytes still arriving
    assert_eq!(m.reclaim_staging(grace).await.unwrap(), 0);
    assert!(folder.join("slot-1").exists() && folder.join("lock").exists());
    tokio::time::sleep(grace).await;
    assert_eq!(m.reclaim_staging(grace).await.unwrap(), 4, "a dead write's folder goes once settled");
}

#[tokio::test]
async fn a_syncing_mount_reads_a_file_placed_beside_a_folder_of_its_name() {
    // `a` beside `a/b`: the file that came second lives as `a%` (see common::ufs_local).
    let (m, dir) = master_with(&[]).await;
    let src = dir.path().join("beside");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("a/b"), b"in the folder").unwrap();
    std::fs::write(src.join("a%"), b"the file").unwrap();
    std::fs::create_dir_all(src.join("c%")).unwrap();
    std::fs::write(src.join("c"), b"c file").unwrap();
    std::fs::write(src.join("c%/d"), b"in c").unwrap();
    let mount = Mount { uri: format!("file://{}", src.display()), sync_interval_ms: Some(0), ..Default::default() };
    m.mount("bes", mount).await.unwrap();
    let listed = m
        .list_objects(ListObjectsRequest { bucket: "bes".into(), max_keys: 1000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["a", "a/b", "c", "c/d"]);
    assert_eq!(m.lookup("bes", "a").await.unwrap().size, 8);
    assert_eq!(m.lookup("bes", "c/d").await.unwrap().size, 4);
    let under_c = m
        .list_objects(ListObjectsRequest {
            bucket: "bes".into(),
            prefix: "c/".into(),
            max_keys: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(under_c.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["c/d"]);
}

#[tokio::test]
async fn concurrent_publishes_forget_every_intent() {
    let (m, dir) = master_with(&[]).await;
    let m = std::sync::Arc::new(m);
    let writes: Vec<_> = (0..40u64)
        .map(|i| {
            stage(dir.path(), &i.to_string(), format!("bytes {i}").as_bytes());
            let m = m.clone();
            tokio::spawn(async move {
                let req =
                    CommitObjectRequest { staging_key: format!("tmp/{i}"), ..commit(&format!("k{}", i % 10), 100 + i) };
                m.commit_object(req).await
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let left = strata_common::kv::transact(m.raw_store().as_ref(), |t| {
        Box::pin(async move { crate::schema::Schema::publish_intents(t).await })
    })
    .await
    .unwrap();
    assert!(left.is_empty(), "intents left: {left:?}");
    for k in 0..10u64 {
        let v = m.lookup("bkt", &format!("k{k}")).await.unwrap().version;
        let file = std::fs::read(dir.path().join(format!("bkt/k{k}"))).unwrap();
        assert_eq!(file, format!("bytes {}", v - 100).as_bytes(), "k{k}: the file is the committed version's");
    }
}
