//! Primary role tests: fencing, takeover, election (with a real etcd).
use std::sync::Arc;
use std::time::Duration;

use strata_common::ErrorKind;
use strata_common::api::MasterApi;
use strata_common::kv::{KvStore, transact};

use crate::ha::stored_epoch;
use crate::master::{Master, MasterOptions};
use crate::schema::Schema;
use crate::{RootCredentials, store};
use strata_common::proto::WorkerInfo;

fn master(store: Arc<dyn KvStore>, dir: &std::path::Path, address: &str) -> Master {
    let opts = MasterOptions {
        root_ufs: format!("file://{}", dir.display()),
        credentials: RootCredentials::new("a".into(), "s".into()),
        worker_timeout: Duration::from_secs(5),
        address: address.into(),
        elected: true,
        block_size: 64 << 20,
        listing_sync_wait: Duration::from_secs(20),
    };
    Master::new(store, opts).unwrap()
}

async fn bucket_exists(s: &dyn KvStore, name: &str) -> bool {
    let name = name.to_string();
    transact(s, |t| {
        let name = name.clone();
        Box::pin(async move { t.find_bucket(&name).await })
    })
    .await
    .unwrap()
    .is_some()
}

/// Two masters on one store: once the second takes an epoch, nothing the first writes lands.
async fn an_old_primary_writes_nothing(shared: Arc<dyn KvStore>) {
    let dir = tempfile::tempdir().unwrap();
    let a = master(shared.clone(), dir.path(), "http://a");
    let b = master(shared.clone(), dir.path(), "http://b");
    assert!(a.ha().check_primary().unwrap_err().is(ErrorKind::NotPrimary), "a standby until elected");
    let e1 = a.take_over().await.unwrap();
    a.create_bucket("one").await.unwrap();
    let e2 = b.take_over().await.unwrap();
    assert!(e2 > e1);
    // `a` still believes it is primary (it has not heard of the takeover), yet its writes fail.
    assert!(a.ha().is_primary());
    let e = a.create_bucket("two").await.unwrap_err();
    assert!(e.is(ErrorKind::NotPrimary), "{e}");
    let e = a.allocate_version().await.unwrap_err();
    assert!(e.is(ErrorKind::NotPrimary), "{e}");
    assert!(!bucket_exists(shared.as_ref(), "two").await, "the fenced write left nothing");
    // Reads still work for it, and the new primary writes.
    assert!(a.get_bucket("one").await.is_ok());
    b.create_bucket("three").await.unwrap();
    a.ha().step_down("test");
    assert!(a.ha().check_primary().unwrap_err().message.contains("standby"));
    assert_eq!(stored_epoch(shared.as_ref()).await.unwrap(), e2);
}

#[tokio::test]
async fn fencing_on_memory_store() {
    an_old_primary_writes_nothing(store::open("memory://").await.unwrap()).await;
}

#[cfg(feature = "etcd")]
#[tokio::test]
async fn fencing_on_etcd() {
    let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else { return };
    let url = format!("etcd://{endpoint}/fence-{:x}", rand::random::<u64>());
    an_old_primary_writes_nothing(store::open(&url).await.unwrap()).await;
}

/// Workers registered with one primary are known to the next (placement does not move).
#[tokio::test]
async fn a_new_primary_knows_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let shared = store::open("memory://").await.unwrap();
    let a = master(shared.clone(), dir.path(), "http://a");
    a.take_over().await.unwrap();
    let w = a
        .register_worker(WorkerInfo { address: "http://w1".into(), capacity_bytes: 7, ..Default::default() })
        .await
        .unwrap();
    let b = master(shared, dir.path(), "http://b");
    b.take_over().await.unwrap();
    let live = b.list_workers().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].id, live[0].address.as_str(), live[0].capacity_bytes), (w.id, "http://w1", 7));
}

/// Two masters campaign in a real etcd: one serves, the other names it; when the primary
/// leaves, the standby takes over with a higher epoch.
#[cfg(feature = "etcd")]
#[tokio::test]
async fn election_hands_over() {
    use crate::election::{ElectionOptions, run};
    use tokio_util::sync::CancellationToken;
    let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else { return };
    let tag = format!("{:x}", rand::random::<u64>());
    let shared = store::open(&format!("etcd://{endpoint}/elect-{tag}")).await.unwrap();
    let opts = ElectionOptions::parse(&format!("etcd://{endpoint}/cluster-{tag}"), Duration::from_secs(2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(master(shared.clone(), dir.path(), "http://a"));
    let b = Arc::new(master(shared.clone(), dir.path(), "http://b"));
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let ja = tokio::spawn(run(a.clone(), opts.clone(), stop_a.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let jb = tokio::spawn(run(b.clone(), opts.clone(), stop_b.clone()));
    let mut waited = 0;
    while !(a.ha().is_primary() && b.ha().primary_address() == "http://a") {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 200, "a did not become primary, or b does not name it");
    }
    assert!(!b.ha().is_primary());
    let e = b.ha().check_primary().unwrap_err();
    assert!(e.message.contains("http://a"), "{e}");
    let first = a.ha().epoch();
    stop_a.cancel();
    ja.await.unwrap();
    assert!(!a.ha().is_primary());
    let mut waited = 0;
    while !b.ha().is_primary() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 200, "b did not take over");
    }
    assert!(b.ha().epoch() > first);
    b.create_bucket("after").await.unwrap();
    assert!(a.create_bucket("never").await.unwrap_err().is(ErrorKind::NotPrimary));
    stop_b.cancel();
    jb.await.unwrap();
}

fn commit_of(key: &str, version: u64, staging: &str) -> strata_common::proto::CommitObjectRequest {
    use strata_common::proto::{CommitObjectRequest, ObjectMeta};
    let meta = ObjectMeta { key: key.into(), version, ..Default::default() };
    CommitObjectRequest { bucket: "bkt".into(), meta: Some(meta), staging_key: staging.into(), ..Default::default() }
}

/// The move of a commit's bytes is fenced too: a primary stalled between its commit (here a
/// delete) and its move, while a new primary took over, finished that intent and wrote the key
/// again, must not touch the under store when it wakes up (it deleted the new bytes before).
async fn a_stalled_primary_moves_nothing(shared: Arc<dyn KvStore>) {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(master(shared.clone(), dir.path(), "http://a"));
    let b = master(shared.clone(), dir.path(), "http://b");
    a.take_over().await.unwrap();
    a.create_bucket("bkt").await.unwrap();
    let (staged, file) = (dir.path().join("bkt/%strata/tmp"), dir.path().join("bkt/k"));
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("1"), b"one").unwrap();
    a.commit_object(commit_of("k", 10, "tmp/1")).await.unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"one");

    *a.publisher.pause.lock().unwrap() = Duration::from_millis(1500);
    let deleting = tokio::spawn({
        let a = a.clone();
        async move { a.delete_object("bkt", "k").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(file.exists(), "a's delete is committed but not yet moved");
    // `b` takes over: its recovery finishes a's delete, then it writes the key anew.
    b.take_over().await.unwrap();
    assert!(!file.exists(), "the new primary finished the delete intent");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join("2"), b"two").unwrap();
    b.commit_object(commit_of("k", 20, "tmp/2")).await.unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"two");

    // `a` wakes up still believing it is primary: its fenced claim fails, the file stays.
    assert!(a.ha().is_primary());
    let e = deleting.await.unwrap().unwrap_err();
    assert!(e.is(ErrorKind::Unavailable) && e.message.contains("new primary finishes it"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"two", "the stalled primary deleted the new primary's bytes");
    assert_eq!(b.lookup("bkt", "k").await.unwrap().version, 20);
    let intents = transact(shared.as_ref(), |t| Box::pin(async move { t.publish_intents().await })).await.unwrap();
    assert!(intents.is_empty(), "{intents:?}");
}

#[tokio::test]
async fn a_stalled_primary_moves_nothing_on_memory_store() {
    a_stalled_primary_moves_nothing(store::open("memory://").await.unwrap()).await;
}

#[cfg(feature = "etcd")]
#[tokio::test]
async fn a_stalled_primary_moves_nothing_on_etcd() {
    let Ok(endpoint) = std::env::var("STRATA_TEST_ETCD") else { return };
    let url = format!("etcd://{endpoint}/stall-{:x}", rand::random::<u64>());
    a_stalled_primary_moves_nothing(store::open(&url).await.unwrap()).await;
}
