//! The page store tested through its public face: quotas, demotion, promotion, pins, restart,
//! corrupt pages, removal and the figures it reports. The policies have their own tests.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_common::cache_types::{EvictionPolicy, Medium};

use super::page_file::{path_of, tier_dir};
use super::{MoveUp, PageId, PageStore, TierSpec, TierUsage};

const P: u64 = 4096;

fn page(n: u8) -> Bytes {
    Bytes::from(vec![n; P as usize])
}
fn id(i: u64) -> PageId {
    PageId { version: 9, index: i }
}
/// MEM, then SSD, then HDD tiers of these quotas; disk tiers have two folders each.
fn tiers(dir: &Path, quotas: &[u64]) -> Vec<TierSpec> {
    quotas
        .iter()
        .enumerate()
        .map(|(i, q)| match i {
            0 => TierSpec { medium: Medium::Mem, dirs: vec![], quota: *q },
            i => TierSpec {
                medium: if i == 1 { Medium::Ssd } else { Medium::Hdd },
                dirs: vec![dir.join(format!("t{i}a")), dir.join(format!("t{i}b"))],
                quota: *q,
            },
        })
        .collect()
}
fn open(dir: &Path, quotas: &[u64]) -> Arc<PageStore> {
    Arc::new(PageStore::open(P, tiers(dir, quotas), EvictionPolicy::Lru).unwrap())
}
fn mem_only(quota: u64, policy: EvictionPolicy) -> Arc<PageStore> {
    Arc::new(PageStore::open(P, vec![TierSpec { medium: Medium::Mem, dirs: vec![], quota }], policy).unwrap())
}
/// Puts tracked (counted) pages `ids` in.
async fn put_tracked(s: &PageStore, ids: std::ops::Range<u64>) {
    for i in ids {
        s.put(id(i), s.track(page(i as u8))).await;
    }
}
fn used(s: &PageStore) -> Vec<u64> {
    s.usage().iter().map(|u| u.used).collect()
}
fn files_under(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() { files_under(&p) } else { 1 };
    }
    n
}

#[tokio::test]
async fn evicts_cold_pages_down_the_tiers_then_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[2 * P, 2 * P, 2 * P]);
    for i in 0..3 {
        s.put(id(i), page(i as u8)).await;
    }
    s.get(id(1), MoveUp::IntoRoom).await.unwrap(); // 1 is now hotter than 2
    s.put(id(3), page(3)).await;
    assert_eq!(used(&s), vec![2 * P, 2 * P, 0]);
    assert_eq!((s.tier_of(id(1)), s.tier_of(id(3))), (Some(0), Some(0)));
    assert_eq!((s.tier_of(id(0)), s.tier_of(id(2))), (Some(1), Some(1)));
    for i in 4..8 {
        s.put(id(i), page(i as u8)).await;
    }
    // Eight pages, six places: the two coldest (0 and 2) went through SSD and HDD and out.
    assert_eq!(used(&s), vec![2 * P, 2 * P, 2 * P]);
    assert_eq!(s.pages(), 6);
    assert_eq!((s.tier_of(id(0)), s.tier_of(id(2))), (None, None));
    assert_eq!(s.tier_of(id(1)), Some(2));
    assert_eq!(s.get(id(1), MoveUp::IntoRoom).await.unwrap(), page(1), "read back right from the lowest tier");
    assert_eq!(files_under(dir.path()), 4, "one file per disk page, none left behind by the moves");
}

#[tokio::test]
async fn no_tier_goes_over_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = [3 * P, 5 * P, 2 * P];
    let s = open(dir.path(), &quotas);
    for i in 0..40 {
        s.put(id(i), page(i as u8)).await;
        if i % 3 == 0 {
            s.get(id(i / 2), if i % 2 == 0 { MoveUp::Yes } else { MoveUp::IntoRoom }).await;
        }
        for (u, q) in used(&s).iter().zip(quotas) {
            assert!(*u <= q, "after page {i}: {:?}", used(&s));
        }
    }
    assert_eq!(s.pages(), 10, "every tier is full");
}

#[tokio::test]
async fn a_page_too_big_for_a_tier_goes_to_the_first_that_can_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[P / 2, 4 * P]);
    s.put(id(0), page(0)).await;
    assert_eq!(s.tier_of(id(0)), Some(1));
    assert_eq!(used(&s), vec![0, P]);
    let tiny = open(&dir.path().join("tiny"), &[P / 2, P / 2]);
    tiny.put(id(0), page(0)).await;
    assert_eq!((tiny.tier_of(id(0)), tiny.pages()), (None, 0), "a page bigger than every tier is not cached");
}

#[tokio::test]
async fn caching_a_cached_page_again_changes_nothing() {
    let s = mem_only(4 * P, EvictionPolicy::Lru);
    s.put(id(0), page(0)).await;
    s.put(id(0), page(7)).await;
    assert_eq!((s.pages(), s.used()), (1, P));
    assert_eq!(s.get(id(0), MoveUp::IntoRoom).await.unwrap(), page(0), "the first copy stays");
}

#[tokio::test]
async fn lru_drops_the_page_read_longest_ago() {
    let s = mem_only(3 * P, EvictionPolicy::Lru);
    for i in 0..3 {
        s.put(id(i), page(i as u8)).await;
    }
    s.get(id(0), MoveUp::IntoRoom).await.unwrap();
    s.put(id(3), page(3)).await;
    assert_eq!(s.tier_of(id(1)), None, "1 was the least recently used");
    s.put(id(4), page(4)).await;
    assert_eq!(s.tier_of(id(2)), None);
    assert!(s.tier_of(id(0)).is_some() && s.tier_of(id(3)).is_some() && s.tier_of(id(4)).is_some());
}

#[tokio::test]
async fn lrfu_keeps_a_frequently_read_page_that_lru_would_drop() {
    for (policy, kept) in [(EvictionPolicy::Lru, false), (EvictionPolicy::Lrfu { step: 0.01 }, true)] {
        let s = mem_only(3 * P, policy);
        s.put(id(0), page(0)).await;
        for _ in 0..20 {
            s.get(id(0), MoveUp::IntoRoom).await.unwrap();
        }
        for i in 1..4 {
            s.put(id(i), page(i as u8)).await;
        }
        assert_eq!(s.tier_of(id(0)).is_some(), kept, "{policy:?}");
        assert_eq!(s.pages(), 3, "{policy:?}");
    }
}

#[tokio::test]
async fn lrfu_reads_fade_as_the_clock_ticks_misses_included() {
    for (misses, kept) in [(0, true), (600, false)] {
        let s = mem_only(2 * P, EvictionPolicy::Lrfu { step: 0.01 });
        s.put(id(0), page(0)).await;
        for _ in 0..20 {
            s.get(id(0), MoveUp::IntoRoom).await.unwrap();
        }
        for i in 0..misses {
            assert_eq!(s.get(PageId { version: 1, index: i }, MoveUp::IntoRoom).await, None);
        }
        s.put(id(1), page(1)).await;
        s.put(id(2), page(2)).await;
        assert_eq!(s.tier_of(id(0)).is_some(), kept, "after {misses} misses");
        assert_eq!(s.pages(), 2);
    }
}

#[tokio::test]
async fn promotion_moves_a_hot_page_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[2 * P, 4 * P]);
    for i in 0..4 {
        s.put(id(i), page(i as u8)).await;
    }
    assert_eq!(s.tier_of(id(0)), Some(1));
    assert_eq!(s.get(id(0), MoveUp::IntoRoom).await.unwrap(), page(0));
    assert_eq!(s.tier_of(id(0)), Some(1), "CACHE reads leave the page where it is");
    let ssd_file = s.file(1, id(0)).unwrap();
    assert_eq!(s.get(id(0), MoveUp::Yes).await.unwrap(), page(0));
    s.settled().await;
    assert_eq!(s.tier_of(id(0)), Some(0), "CACHE_PROMOTE moves it to memory");
    assert!(!ssd_file.exists(), "its disk copy is gone");
    assert_eq!(used(&s), vec![2 * P, 2 * P], "and a memory page came down to make room");
    assert_eq!(s.get(id(0), MoveUp::IntoRoom).await.unwrap(), page(0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_page_being_promoted_is_in_some_tier_all_along() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[2 * P, 8 * P]);
    put_tracked(&s, 0..6).await;
    assert_eq!(s.tier_of(id(0)), Some(1));
    // Between the promotion's awaits (file writes and deletes, moving memory pages down) this
    // task looks at where page 0 is.
    let (watcher, stop) = (s.clone(), Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let seen = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(watcher.tier_of(id(0)));
                tokio::task::yield_now().await;
            }
            seen
        }
    });
    assert_eq!(s.get(id(0), MoveUp::Yes).await.unwrap(), page(0));
    s.settled().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = seen.await.unwrap();
    assert_eq!(s.tier_of(id(0)), Some(0));
    assert!(seen.len() > 1 && !seen.contains(&None), "{seen:?}");
    assert_eq!(s.pages(), 6);
}

#[tokio::test]
async fn pages_promoted_twice_at_once_to_a_disk_top_tier_leave_one_good_copy() {
    let dir = tempfile::tempdir().unwrap();
    let disk = |medium, name: &str, quota| TierSpec { medium, dirs: vec![dir.path().join(name)], quota };
    let tiers = vec![disk(Medium::Ssd, "ssd", 2 * P), disk(Medium::Hdd, "hdd", 8 * P)];
    let s = Arc::new(PageStore::open(P, tiers, EvictionPolicy::Lru).unwrap());
    put_tracked(&s, 0..4).await;
    let hdd_file = s.file(1, id(0)).unwrap();
    assert!(hdd_file.exists());
    for _ in 0..2 {
        let (a, b) = tokio::join!(s.get(id(0), MoveUp::Yes), s.get(id(0), MoveUp::Yes));
        assert_eq!((a.unwrap(), b.unwrap()), (page(0), page(0)));
        s.settled().await;
    }
    assert_eq!(s.tier_of(id(0)), Some(0));
    assert!(!hdd_file.exists(), "its lower copy is gone");
    assert_eq!(s.get(id(0), MoveUp::No).await.unwrap(), page(0), "the top copy passes its check");
    assert_eq!((s.pages(), files_under(dir.path())), (4, 4), "one file a page, no .tmp left");
}

#[tokio::test]
async fn a_page_removed_while_its_promotion_writes_the_top_copy_stays_removed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = |medium, name: &str, quota| TierSpec { medium, dirs: vec![dir.path().join(name)], quota };
    let tiers = vec![disk(Medium::Ssd, "ssd", 2 * P), disk(Medium::Hdd, "hdd", 8 * P)];
    let s = Arc::new(PageStore::open(P, tiers, EvictionPolicy::Lru).unwrap());
    put_tracked(&s, 0..4).await;
    assert_eq!(s.tier_of(id(0)), Some(1));
    let (written, go) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
    *s.promotion_written.lock().unwrap() = Some((written.clone(), go.clone()));
    let reader = tokio::spawn({
        let s = s.clone();
        async move { s.get(id(0), MoveUp::Yes).await }
    });
    written.notified().await;
    assert!(s.file(0, id(0)).unwrap().exists(), "the top copy is written");
    s.remove(id(0)).await;
    go.notify_one();
    assert_eq!(reader.await.unwrap().unwrap(), page(0), "the read under way gets its page");
    s.settled().await;
    assert_eq!(s.tier_of(id(0)), None);
    assert!(s.get(id(0), MoveUp::No).await.is_none(), "not brought back by the promotion");
    assert_eq!((s.pages(), files_under(dir.path())), (3, 3), "neither copy left behind");
}

#[tokio::test]
async fn promoting_a_top_tier_page_is_a_plain_hit() {
    let s = mem_only(2 * P, EvictionPolicy::Lru);
    s.put(id(0), page(0)).await;
    assert_eq!(s.get(id(0), MoveUp::Yes).await.unwrap(), page(0));
    assert_eq!((s.tier_of(id(0)), s.used()), (Some(0), P));
}

#[tokio::test]
async fn pinned_pages_are_never_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[P, P]);
    s.pin(9);
    s.put(id(0), page(0)).await;
    for i in 0..5 {
        s.put(PageId { version: 10, index: i }, page(i as u8)).await;
    }
    assert_eq!(s.get(id(0), MoveUp::IntoRoom).await.unwrap(), page(0));
    assert_eq!(s.tier_of(id(0)), Some(1), "pins hold in the last tier; above it a pinned page moves down");
    s.unpin(9);
    for i in 5..8 {
        s.put(PageId { version: 10, index: i }, page(i as u8)).await;
    }
    assert_eq!(s.tier_of(id(0)), None, "unpinned, it ages out like any page");
}

#[tokio::test]
async fn pinned_pages_may_hold_the_last_tier_over_its_quota() {
    let s = mem_only(2 * P, EvictionPolicy::Lru);
    s.set_pinned(&[9]);
    for i in 0..4 {
        s.put(id(i), page(i as u8)).await;
    }
    assert_eq!((s.pages(), s.used()), (4, 4 * P), "nothing could go");
    s.put(PageId { version: 1, index: 0 }, page(1)).await;
    assert_eq!(s.tier_of(PageId { version: 1, index: 0 }), None, "an unpinned newcomer is the only victim");
    s.set_pinned(&[]);
    s.put(PageId { version: 1, index: 1 }, page(1)).await;
    assert_eq!(s.used(), 2 * P, "unpinned, the oldest leave until the tier fits");
    assert_eq!((s.tier_of(id(3)), s.tier_of(id(0))), (Some(0), None));
}

#[test]
fn pins_are_listed_sorted_and_replaced_by_the_masters_list() {
    let s = mem_only(P, EvictionPolicy::Lru);
    s.pin(30);
    s.pin(10);
    s.pin(20);
    s.unpin(20);
    assert_eq!(s.pinned(), vec![10, 30]);
    s.set_pinned(&[7, 5]);
    assert_eq!(s.pinned(), vec![5, 7]);
}

#[tokio::test]
async fn disk_pages_survive_a_restart_in_their_tier() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), &[0, P, 4 * P]);
        for i in 0..3 {
            s.put(id(i), page(i as u8)).await;
        }
        assert_eq!(used(&s), vec![0, P, 2 * P]);
    }
    let s = open(dir.path(), &[0, P, 4 * P]);
    assert_eq!(used(&s), vec![0, P, 2 * P]);
    assert_eq!((s.tier_of(id(0)), s.tier_of(id(1)), s.tier_of(id(2))), (Some(2), Some(2), Some(1)));
    for i in 0..3 {
        assert_eq!(s.get(id(i), MoveUp::IntoRoom).await.unwrap(), page(i as u8));
    }
}

#[tokio::test]
async fn memory_pages_do_not_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), &[4 * P, 4 * P]);
        s.put(id(0), page(0)).await;
    }
    let s = open(dir.path(), &[4 * P, 4 * P]);
    assert_eq!((s.pages(), s.get(id(0), MoveUp::IntoRoom).await), (0, None));
}

#[tokio::test]
async fn reload_drops_half_written_pages_and_second_copies() {
    let dir = tempfile::tempdir().unwrap();
    let f = {
        let s = open(dir.path(), &[0, 4 * P, 4 * P]);
        s.put(id(1), page(1)).await;
        s.file(1, id(1)).unwrap()
    };
    let tmp = f.with_extension("tmp");
    std::fs::write(&tmp, b"torn").unwrap();
    // A move to HDD that did not finish left a copy there too.
    let hdd_dirs = [tier_dir(&dir.path().join("t2a"), P), tier_dir(&dir.path().join("t2b"), P)];
    let hdd = path_of(&hdd_dirs, id(1)).unwrap();
    std::fs::create_dir_all(hdd.parent().unwrap()).unwrap();
    std::fs::copy(&f, &hdd).unwrap();
    let s = open(dir.path(), &[0, 4 * P, 4 * P]);
    assert_eq!((s.pages(), s.tier_of(id(1))), (1, Some(1)), "the higher tier's copy is kept");
    assert!(!tmp.exists() && !hdd.exists());
    assert_eq!(used(&s), vec![0, P, 0]);
}

#[tokio::test]
async fn pages_of_another_page_size_are_not_seen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), &[0, 4 * P]);
        s.put(id(1), page(1)).await;
    }
    let s = Arc::new(PageStore::open(2 * P, tiers(dir.path(), &[0, 4 * P]), EvictionPolicy::Lru).unwrap());
    assert_eq!(s.pages(), 0);
    assert_eq!(open(dir.path(), &[0, 4 * P]).pages(), 1, "and are still there for their own size");
}

#[tokio::test]
async fn a_corrupt_page_is_a_miss_and_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path(), &[0, 1 << 20]);
        s.put(id(1), page(1)).await;
        s.put(id(2), page(2)).await;
    }
    let s = open(dir.path(), &[0, 1 << 20]);
    assert_eq!(s.get(id(1), MoveUp::IntoRoom).await.unwrap(), page(1));
    let f = s.file(1, id(2)).unwrap();
    let mut raw = std::fs::read(&f).unwrap();
    raw[100] ^= 0xFF;
    std::fs::write(&f, raw).unwrap();
    assert_eq!(s.get(id(2), MoveUp::IntoRoom).await, None);
    assert!(!f.exists(), "a corrupt page is dropped");
    assert_eq!((s.pages(), s.used(), s.tier_of(id(2))), (1, P, None));
    s.put(id(2), page(2)).await;
    assert_eq!(s.get(id(2), MoveUp::IntoRoom).await.unwrap(), page(2), "and cached again when read again");
}

#[tokio::test]
async fn a_page_file_gone_behind_the_stores_back_is_a_miss_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[0, 4 * P]);
    s.put(id(1), page(1)).await;
    std::fs::remove_file(s.file(1, id(1)).unwrap()).unwrap();
    assert_eq!(s.get(id(1), MoveUp::IntoRoom).await, None);
    assert_eq!((s.pages(), s.used()), (0, 0));
}

#[tokio::test]
async fn remove_version_frees_its_pages_and_reports_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[P, 4 * P]);
    for i in 0..3 {
        s.put(id(i), page(i as u8)).await;
    }
    let other = PageId { version: 10, index: 0 };
    s.put(other, Bytes::from(vec![1u8; 100])).await;
    let disk_file = s.file(1, id(0)).unwrap();
    assert!(disk_file.exists());
    assert_eq!(s.remove_version(9).await, 3 * P);
    assert_eq!((s.pages(), s.used()), (1, 100));
    assert!(!disk_file.exists(), "disk pages are deleted");
    assert_eq!(s.get(other, MoveUp::IntoRoom).await.unwrap().len(), 100, "other versions stay");
    assert_eq!(s.remove_version(9).await, 0, "nothing left to free");
}

#[tokio::test]
async fn remove_drops_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[P, 4 * P]);
    s.put(id(0), page(0)).await;
    s.put(id(1), page(1)).await;
    let f = s.file(1, id(0)).unwrap();
    s.remove(id(0)).await;
    s.remove(id(1)).await;
    s.remove(id(5)).await; // not cached: nothing happens
    assert_eq!((s.pages(), used(&s)), (0, vec![0, 0]));
    assert!(!f.exists());
}

#[tokio::test]
async fn usage_and_capacity_are_per_tier_and_summed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[2 * P, 3 * P, 5 * P]);
    assert_eq!(s.capacity(), 10 * P);
    assert_eq!(s.page_size(), P);
    for i in 0..4 {
        s.put(id(i), page(i as u8)).await;
    }
    let want = vec![
        TierUsage { medium: Medium::Mem, used: 2 * P, quota: 2 * P },
        TierUsage { medium: Medium::Ssd, used: 2 * P, quota: 3 * P },
        TierUsage { medium: Medium::Hdd, used: 0, quota: 5 * P },
    ];
    assert_eq!(s.usage(), want);
    assert_eq!((s.used(), s.pages()), (4 * P, 4));
}

#[test]
fn bad_tier_layouts_are_refused() {
    let err = |tiers: Vec<TierSpec>| PageStore::open(P, tiers, EvictionPolicy::Lru).err().unwrap().to_string();
    let mem = TierSpec { medium: Medium::Mem, dirs: vec![], quota: 1 };
    let ssd = TierSpec { medium: Medium::Ssd, dirs: vec![], quota: 1 };
    let hdd = TierSpec { medium: Medium::Hdd, dirs: vec!["/tmp/x".into()], quota: 1 };
    assert!(err(vec![]).contains("at least one tier"));
    assert!(err(vec![ssd]).contains("SSD tier needs at least one folder"));
    assert!(err(vec![hdd.clone(), mem.clone()]).contains("only the first"));
    assert!(err(vec![mem.clone(), mem]).contains("only the first"));
}

#[tokio::test]
async fn each_tier_counts_its_pages_hits_demotions_and_evictions() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[2 * P, 2 * P]);
    for i in 0..5 {
        s.put(id(i), page(i as u8)).await;
    }
    // MEM keeps 2, passed 3 down; SSD keeps 2 and dropped 1.
    assert!(s.get(id(4), MoveUp::IntoRoom).await.is_some());
    assert!(s.get(id(2), MoveUp::IntoRoom).await.is_some());
    let stats = s.tier_stats();
    assert_eq!((stats[0].pages, stats[1].pages), (2, 2));
    assert_eq!((stats[0].demotions, stats[0].evictions), (3, 0));
    assert_eq!((stats[1].demotions, stats[1].evictions), (0, 1));
    assert_eq!((stats[0].hits, stats[1].hits), (1, 1));
    assert_eq!((stats[0].hit_bytes, stats[1].hit_bytes), (P, P));
    s.note_miss(P);
    assert_eq!((s.miss_stats().misses, s.miss_stats().fill_bytes), (1, P));
    s.pin(9);
    assert_eq!(s.pinned_bytes(), 4 * P);
}

#[tokio::test]
async fn page_buffers_outside_the_memory_tier_take_its_room() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[4 * P, 8 * P]);
    put_tracked(&s, 0..4).await;
    assert_eq!((used(&s), s.in_flight()), (vec![4 * P, 0], 0));
    // Two disk pages read and held (queued to clients): two memory pages go down for them.
    s.put(id(10), s.track(page(10))).await;
    s.put(id(11), s.track(page(11))).await;
    let held = [s.get(id(0), MoveUp::IntoRoom).await.unwrap(), s.get(id(1), MoveUp::IntoRoom).await.unwrap()];
    s.settled().await;
    assert_eq!(s.tier_of(id(0)), Some(1), "read from disk, not promoted");
    assert_eq!(s.in_flight(), 2 * P);
    assert_eq!(used(&s)[0], 2 * P, "memory tier + buffers held stay within its quota");
    // Once they are dropped, the tier fills up to its quota again.
    drop(held);
    assert_eq!(s.in_flight(), 0);
    put_tracked(&s, 20..24).await;
    assert_eq!(used(&s)[0], 4 * P);
}

#[tokio::test]
async fn a_memory_tier_emptied_for_buffers_fills_again_from_disk_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[4 * P, 16 * P]);
    put_tracked(&s, 0..8).await;
    // A burst of readers holds four buffers, then four disk pages: the tier gives up a page
    // for each page read meanwhile, down to nothing.
    let mut held: Vec<Bytes> = (90..94).map(|n| s.track(page(n))).collect();
    for i in 0..4 {
        held.push(s.get(id(i), MoveUp::IntoRoom).await.unwrap());
        s.settled().await;
        assert_eq!(used(&s)[0], (3 - i) * P);
    }
    drop(held);
    // Pages read from disk then move up while the tier has room for them, the buffer being read
    // and its headroom (an eighth of its quota).
    for i in 4..8 {
        assert_eq!(s.get(id(i), MoveUp::IntoRoom).await.unwrap(), page(i as u8));
    }
    s.settled().await;
    assert_eq!(used(&s)[0], 2 * P);
    assert_eq!((s.tier_of(id(4)), s.tier_of(id(5)), s.tier_of(id(6))), (Some(0), Some(0), Some(1)));
}

#[tokio::test]
async fn a_read_dropped_while_the_tier_makes_room_loses_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), &[4 * P, 16 * P]);
    put_tracked(&s, 0..8).await;
    // A disk read over the quota, dropped (its client gone) once started: the room it asked for
    // is made or not, but every page is still cached somewhere.
    {
        let mut read = std::pin::pin!(s.get(id(0), MoveUp::IntoRoom));
        let _ = futures::poll!(read.as_mut());
    }
    s.settled().await;
    assert_eq!(s.pages(), 8);
    assert!(used(&s)[0] >= 3 * P);
    // One buffer held outside and one read: over the quota, so the tier gives up a page.
    let _held = s.track(page(99));
    let before = used(&s)[0];
    assert_eq!(s.get(id(1), MoveUp::IntoRoom).await.unwrap(), page(1));
    s.settled().await;
    assert_eq!(used(&s)[0], before - P);
    assert_eq!(s.pages(), 8);
}
