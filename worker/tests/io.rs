//! The worker's read and write paths through `WorkerApi`, over a real master on the memory
//! store and a temp-folder under store: writes and reads back (cached and not), ranged reads
//! across pages, atomic writes, compose, delete, load and free, and reads of a changed file.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use strata_common::api::*;
use strata_common::{Error, ErrorKind};
use strata_master::{Master, MasterOptions, RootCredentials};
use strata_worker::{EvictionPolicy, Medium, PageStore, TierSpec, Worker};

const PAGE: u64 = 4096;
const MIB: usize = 1 << 20;

struct Env {
    dir: tempfile::TempDir,
    worker: Worker,
    next_version: std::sync::atomic::AtomicU64,
}

impl Env {
    async fn new() -> Env {
        Env::with_master().await.0
    }

    async fn with_master() -> (Env, Arc<Master>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
        let store = strata_master::store::open("memory://").await.unwrap();
        let opts = MasterOptions {
            root_ufs: format!("file://{}", dir.path().join("ufs").display()),
            credentials: RootCredentials::new("AK".into(), "SK".into()),
            worker_timeout: Duration::from_secs(3600),
            address: "in-process".into(),
            elected: false,
            block_size: 1 << 20,
            listing_sync_wait: Duration::from_secs(20),
        };
        let master = Arc::new(Master::new(store, opts).unwrap());
        master.create_bucket("bkt").await.unwrap();
        let tiers = vec![TierSpec { medium: Medium::Mem, dirs: vec![], quota: 64 << 20 }];
        let cache = PageStore::open(PAGE, tiers, EvictionPolicy::Lru).unwrap();
        let worker = Worker::new(master.clone() as Arc<dyn MasterApi>, cache, &dir.path().join("journal")).unwrap();
        (Env { dir, worker, next_version: 1.into() }, master)
    }

    fn version(&self) -> u64 {
        self.next_version.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn file(&self, key: &str) -> std::path::PathBuf {
        self.dir.path().join("ufs/bkt").join(key)
    }

    /// Writes `data` as `key` in chunks of 1000 bytes; returns the version and the result.
    async fn write(&self, key: &str, data: &[u8], cache: bool) -> (u64, WriteResult) {
        let v = self.version();
        let req =
            WriteRequest { loc: UfsLocation::object("bkt", key), version: v, cache, journal: false, in_place: None };
        (v, self.worker.write(req, body(data, 1000)).await.unwrap())
    }

    async fn read(
        &self,
        key: &str,
        w: &(u64, WriteResult),
        offset: u64,
        len: u64,
        cache: bool,
    ) -> Result<Vec<u8>, Error> {
        let s = self.worker.read(read_req(key, w, offset, len, cache)).await?;
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok(parts.concat())
    }
}

fn read_req(key: &str, (version, w): &(u64, WriteResult), offset: u64, len: u64, cache: bool) -> ReadRequest {
    ReadRequest {
        loc: UfsLocation::object("bkt", key),
        version: *version,
        object_size: w.size,
        ufs_etag: w.ufs_etag.clone(),
        offset,
        len,
        cache,
        promote: false,
        journal: false,
    }
}

fn body(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, Error>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(chunks).boxed()
}

/// `data` in chunks, then an error instead of the end.
fn broken_body(data: &[u8], chunk: usize) -> ByteStream {
    let mut chunks: Vec<Result<Bytes, Error>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    chunks.push(Err(Error::invalid("the client went away")));
    stream::iter(chunks).boxed()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Every file under `dir`, relative to it.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn write_then_read_back_cached() {
    let env = Env::new().await;
    let d = data(3 * PAGE as usize + 5);
    let w = env.write("k", &d, true).await;
    assert_eq!(w.1.size, d.len() as u64);
    assert!(!w.1.ufs_etag.is_empty());
    assert_eq!(env.read("k", &w, 0, d.len() as u64, true).await.unwrap(), d);
}

#[tokio::test]
async fn write_then_read_back_uncached() {
    let env = Env::new().await;
    let d = data(2 * PAGE as usize + 1);
    let w = env.write("k", &d, false).await;
    assert_eq!(env.read("k", &w, 0, d.len() as u64, false).await.unwrap(), d);
    // Nothing was cached by either.
    assert_eq!(env.worker.free(vec![w.0]).await.unwrap(), 0);
}

#[tokio::test]
async fn the_under_store_holds_the_bytes_as_a_plain_file() {
    let env = Env::new().await;
    let d = data(10_000);
    env.write("dir/k.bin", &d, true).await;
    assert_eq!(std::fs::read(env.file("dir/k.bin")).unwrap(), d);
}

#[tokio::test]
async fn ranged_reads_across_page_boundaries() {
    let env = Env::new().await;
    let size = 5 * PAGE as usize + 123;
    let d = data(size);
    for cache in [true, false] {
        let w = env.write("k", &d, cache).await;
        let p = PAGE as usize;
        for (off, len) in
            [(0, 1), (p - 6, 12), (p, p), (100, 3 * p), (2 * p - 1, 2), (size - 1, 1), (0, size), (4 * p, size - 4 * p)]
        {
            let got = env.read("k", &w, off as u64, len as u64, cache).await.unwrap();
            assert_eq!(got, &d[off..off + len], "cache {cache}, {off}+{len}");
        }
    }
}

#[tokio::test]
async fn ranged_reads_of_a_partly_cached_object() {
    let env = Env::new().await;
    let d = data(4 * PAGE as usize);
    let w = env.write("k", &d, false).await;
    // Page 1 cached, the others not.
    env.read("k", &w, PAGE, PAGE, true).await.unwrap();
    let got = env.read("k", &w, 10, 3 * PAGE, true).await.unwrap();
    assert_eq!(got, &d[10..10 + 3 * PAGE as usize]);
}

#[tokio::test]
async fn an_empty_range_and_an_empty_object() {
    let env = Env::new().await;
    let w = env.write("k", &data(100), true).await;
    assert_eq!(env.read("k", &w, 50, 0, true).await.unwrap(), Vec::<u8>::new());
    let e = env.write("empty", b"", true).await;
    assert_eq!(e.1.size, 0);
    assert_eq!(std::fs::read(env.file("empty")).unwrap(), Vec::<u8>::new());
}

#[tokio::test]
async fn a_range_outside_the_object_is_refused() {
    let env = Env::new().await;
    let w = env.write("k", &data(100), true).await;
    let e = env.read("k", &w, 90, 11, true).await.unwrap_err();
    assert!(e.is(ErrorKind::InvalidArgument), "{e}");
    let e = env.read("k", &w, u64::MAX, 2, true).await.unwrap_err();
    assert!(e.is(ErrorKind::InvalidArgument), "{e}");
}

#[tokio::test]
async fn a_body_that_errors_leaves_nothing_in_the_under_store() {
    let env = Env::new().await;
    let v = env.version();
    let req =
        WriteRequest { loc: UfsLocation::object("bkt", "k"), version: v, cache: true, journal: false, in_place: None };
    let e = env.worker.write(req, broken_body(&data(3 * PAGE as usize), 1000)).await.unwrap_err();
    assert!(e.message.contains("went away"), "{e}");
    assert_eq!(files(&env.dir.path().join("ufs")), Vec::<String>::new());
    // Neither are its pages kept.
    assert_eq!(env.worker.free(vec![v]).await.unwrap(), 0);
}

#[tokio::test]
async fn a_large_body_that_errors_aborts_its_multipart_write() {
    let env = Env::new().await;
    let v = env.version();
    let req = WriteRequest {
        loc: UfsLocation::object("bkt", "big"),
        version: v,
        cache: false,
        journal: false,
        in_place: None,
    };
    assert!(env.worker.write(req, broken_body(&data(9 * MIB), MIB)).await.is_err());
    assert!(!env.file("big").exists());
    assert_eq!(files(&env.dir.path().join("ufs")), Vec::<String>::new());
}

#[tokio::test]
async fn a_large_write_goes_through_in_parts() {
    let env = Env::new().await;
    let d = data(9 * MIB + 7);
    let w = env.write("big", &d, false).await;
    assert_eq!(w.1.size, d.len() as u64);
    assert!(std::fs::read(env.file("big")).unwrap() == d);
    let tail = env.read("big", &w, 9 * MIB as u64 - 3, 10, false).await.unwrap();
    assert_eq!(tail, &d[9 * MIB - 3..]);
}

#[tokio::test]
async fn a_write_to_a_missing_bucket() {
    let env = Env::new().await;
    let req = WriteRequest {
        loc: UfsLocation::object("nobkt", "k"),
        version: env.version(),
        cache: true,
        journal: false,
        in_place: None,
    };
    let e = env.worker.write(req, body(b"x", 1)).await.unwrap_err();
    assert!(e.is(ErrorKind::NoSuchBucket), "{e}");
}

#[tokio::test]
async fn compose_concatenates_in_order() {
    let env = Env::new().await;
    let parts = [data(5000), vec![7u8; 3000], data(10)];
    let mut sources = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let loc = UfsLocation::staging("", &format!("uploads/u/{i}"));
        let req =
            WriteRequest { loc: loc.clone(), version: env.version(), cache: false, journal: false, in_place: None };
        env.worker.write(req, body(p, 700)).await.unwrap();
        sources.push(loc);
    }
    sources.reverse();
    let v = env.version();
    let req = ComposeRequest {
        target: UfsLocation::object("bkt", "joined"),
        version: v,
        sources,
        cache: true,
        ..Default::default()
    };
    let w = env.worker.compose(req).await.unwrap();
    let want = [parts[2].clone(), parts[1].clone(), parts[0].clone()].concat();
    assert_eq!(w.size, want.len() as u64);
    assert_eq!(std::fs::read(env.file("joined")).unwrap(), want);
    assert_eq!(env.read("joined", &(v, w), 0, want.len() as u64, true).await.unwrap(), want);
}

#[tokio::test]
async fn compose_with_a_missing_source_writes_nothing() {
    let env = Env::new().await;
    let first = UfsLocation::staging("", "uploads/u/1");
    let req = WriteRequest { loc: first.clone(), version: env.version(), cache: false, journal: false, in_place: None };
    env.worker.write(req, body(b"part one", 3)).await.unwrap();
    let sources = vec![first, UfsLocation::staging("", "uploads/u/missing")];
    let req = ComposeRequest {
        target: UfsLocation::object("bkt", "joined"),
        version: env.version(),
        sources,
        cache: true,
        ..Default::default()
    };
    let e = env.worker.compose(req).await.unwrap_err();
    assert!(e.is(ErrorKind::UfsChanged), "{e}");
    assert!(!env.file("joined").exists());
}

#[tokio::test]
async fn delete_removes_files_and_ignores_missing_ones() {
    let env = Env::new().await;
    env.write("a", b"1", false).await;
    env.write("b/c", b"2", false).await;
    let locs =
        vec![UfsLocation::object("bkt", "a"), UfsLocation::object("bkt", "b/c"), UfsLocation::object("bkt", "none")];
    env.worker.delete(locs).await.unwrap();
    assert!(!env.file("a").exists() && !env.file("b/c").exists());
}

#[tokio::test]
async fn load_reports_bytes_and_what_came_from_the_under_store() {
    let env = Env::new().await;
    let size = 3 * PAGE + 100;
    let w = env.write("k", &data(size as usize), false).await;
    let first = env.worker.load(read_req("k", &w, 0, size, false)).await.unwrap();
    assert_eq!((first.bytes, first.from_ufs), (size, size));
    let again = env.worker.load(read_req("k", &w, 0, size, false)).await.unwrap();
    assert_eq!((again.bytes, again.from_ufs), (size, 0));
}

#[tokio::test]
async fn load_of_a_range_counts_whole_missing_pages() {
    let env = Env::new().await;
    let size = 4 * PAGE;
    let w = env.write("k", &data(size as usize), false).await;
    env.read("k", &w, 0, PAGE, true).await.unwrap();
    // Pages 0 and 1: page 0 is cached, page 1 is read whole from the under store.
    let r = env.worker.load(read_req("k", &w, 10, PAGE, false)).await.unwrap();
    assert_eq!((r.bytes, r.from_ufs), (PAGE, PAGE));
}

#[tokio::test]
async fn a_cached_write_needs_no_under_store_read() {
    let env = Env::new().await;
    let size = 2 * PAGE + 1;
    let w = env.write("k", &data(size as usize), true).await;
    let r = env.worker.load(read_req("k", &w, 0, size, false)).await.unwrap();
    assert_eq!((r.bytes, r.from_ufs), (size, 0));
}

#[tokio::test]
async fn free_drops_cached_pages() {
    let env = Env::new().await;
    let size = 3 * PAGE + 10;
    let w = env.write("k", &data(size as usize), true).await;
    let other = env.write("other", &data(100), true).await;
    assert_eq!(env.worker.free(vec![w.0]).await.unwrap(), size);
    assert_eq!(env.worker.free(vec![w.0]).await.unwrap(), 0);
    let r = env.worker.load(read_req("k", &w, 0, size, false)).await.unwrap();
    assert_eq!(r.from_ufs, size);
    // Other versions stay.
    let r = env.worker.load(read_req("other", &other, 0, 100, false)).await.unwrap();
    assert_eq!(r.from_ufs, 0);
}

#[tokio::test]
async fn a_changed_under_store_file_fails_the_read() {
    let env = Env::new().await;
    let d = data(2 * PAGE as usize);
    let w = env.write("k", &d, false).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let other: Vec<u8> = d.iter().map(|b| b.wrapping_add(1)).collect();
    std::fs::write(env.file("k"), &other).unwrap();
    let e = env.read("k", &w, 0, d.len() as u64, true).await.unwrap_err();
    assert!(e.is(ErrorKind::UfsChanged), "{e}");
    // Nothing of the other bytes was cached either.
    assert_eq!(env.worker.free(vec![w.0]).await.unwrap(), 0);
}

#[tokio::test]
async fn a_vanished_under_store_file_fails_the_read() {
    let env = Env::new().await;
    let w = env.write("k", &data(100), false).await;
    std::fs::remove_file(env.file("k")).unwrap();
    let e = env.read("k", &w, 0, 100, true).await.unwrap_err();
    assert!(e.is(ErrorKind::UfsChanged), "{e}");
}

#[tokio::test]
async fn a_shorter_file_without_a_tag_fails_rather_than_serving_fewer_bytes() {
    let env = Env::new().await;
    let d = data(2 * PAGE as usize);
    let mut w = env.write("k", &d, false).await;
    w.1.ufs_etag.clear();
    std::fs::write(env.file("k"), &d[..PAGE as usize + 10]).unwrap();
    let e = env.read("k", &w, 0, d.len() as u64, false).await.unwrap_err();
    assert!(e.is(ErrorKind::UfsChanged), "{e}");
}

#[tokio::test]
async fn cached_pages_of_a_version_are_served_after_its_file_changed() {
    let env = Env::new().await;
    let d = data(2 * PAGE as usize);
    let w = env.write("k", &d, true).await;
    std::fs::write(env.file("k"), vec![0u8; d.len()]).unwrap();
    assert_eq!(env.read("k", &w, 0, d.len() as u64, true).await.unwrap(), d);
}

#[tokio::test]
async fn journal_writes_stay_out_of_the_under_store() {
    let env = Env::new().await;
    let v = env.version();
    let req =
        WriteRequest { loc: UfsLocation::object("bkt", "j"), version: v, cache: false, journal: true, in_place: None };
    let w = env.worker.write(req, body(b"journaled bytes", 4)).await.unwrap();
    assert!(!env.file("j").exists());
    let mut r = read_req("j", &(v, w), 0, 15, false);
    r.journal = true;
    r.ufs_etag.clear();
    let got: Vec<Bytes> = env.worker.read(r).await.unwrap().try_collect().await.unwrap();
    assert_eq!(got.concat(), b"journaled bytes");
}

#[tokio::test]
async fn concurrent_reads_of_a_missing_page_agree() {
    let env = Env::new().await;
    let d = data(3 * PAGE as usize);
    let w = env.write("k", &d, false).await;
    let reads = (0..8).map(|i| env.read("k", &w, i * 100, PAGE, true));
    for (i, got) in futures::future::join_all(reads).await.into_iter().enumerate() {
        let off = i * 100;
        assert_eq!(got.unwrap(), &d[off..off + PAGE as usize]);
    }
    let r = env.worker.load(read_req("k", &w, 0, 2 * PAGE, false)).await.unwrap();
    assert_eq!(r.from_ufs, 0);
}

#[tokio::test]
async fn reading_from_a_missing_bucket() {
    let env = Env::new().await;
    let w = env.write("k", &data(10), false).await;
    let mut r = read_req("k", &w, 0, 10, false);
    r.loc.bucket = "nobkt".into();
    let e = match env.worker.read(r).await {
        Ok(_) => panic!("read from a missing bucket"),
        Err(e) => e,
    };
    assert!(e.is(ErrorKind::NoSuchBucket), "{e}");
}

#[tokio::test]
async fn a_worker_heartbeats_at_its_interval() {
    let (env, master) = Env::with_master().await;
    let me = strata_worker::WorkerIdentity {
        address: "http://w1".into(),
        s3_address: String::new(),
        id_file: env.dir.path().join("worker_id"),
    };
    let (ready, shutdown) = (strata_common::ops::Readiness::default(), tokio_util::sync::CancellationToken::new());
    let interval = Duration::from_millis(50);
    let hb = tokio::spawn(strata_worker::register_and_heartbeat(
        env.worker.clone(),
        master.clone() as Arc<dyn MasterApi>,
        me,
        interval,
        ready.clone(),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let workers = master.list_workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    let age = strata_common::ids::now_ms() - workers[0].last_heartbeat_ms;
    assert!(age < 300, "the last heartbeat is {age} ms old with a 50 ms interval");
    shutdown.cancel();
    hb.await.unwrap();
}
