//! The worker's page cache: pages of object versions in a memory tier and a disk tier, each
//! with a quota. A new page goes to memory; the least recently used page of a full tier moves
//! down (memory to disk) or is dropped (disk). Disk pages carry a CRC32C and survive restarts;
//! one that fails its check is dropped and reported as a miss, never served.
//!
//! Lock order: `inner` is a plain mutex held only for bookkeeping, never across I/O.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId {
    pub version: u64,
    pub index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Mem = 0,
    Disk = 1,
}

struct Entry {
    tier: Tier,
    len: u64,
    tick: u64,
}

struct Inner {
    entries: HashMap<PageId, Entry>,
    mem: HashMap<PageId, Bytes>,
    /// Per tier, entries by last use: the first is the coldest.
    lru: [BTreeMap<u64, PageId>; 2],
    used: [u64; 2],
    tick: u64,
}

pub struct PageStore {
    page_size: u64,
    quota: [u64; 2],
    disk: Option<PathBuf>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub mem_used: u64,
    pub mem_quota: u64,
    pub disk_used: u64,
    pub disk_quota: u64,
    pub pages: u64,
}

const HEADER: usize = 8; // CRC32C (4, LE) + length (4, LE)

impl PageStore {
    /// `disk`: the folder of the disk tier (pages of another page size are kept apart).
    pub fn open(page_size: u64, mem_quota: u64, disk: Option<(&Path, u64)>) -> std::io::Result<PageStore> {
        let store = PageStore {
            page_size,
            quota: [mem_quota, disk.map(|d| d.1).unwrap_or(0)],
            disk: disk.map(|(p, _)| p.join(format!("pages-{page_size}"))),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                mem: HashMap::new(),
                lru: [BTreeMap::new(), BTreeMap::new()],
                used: [0, 0],
                tick: 0,
            }),
        };
        if let Some(dir) = &store.disk {
            std::fs::create_dir_all(dir)?;
            store.reload(dir)?;
        }
        Ok(store)
    }

    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the disk pages a previous run left.
    fn reload(&self, dir: &Path) -> std::io::Result<()> {
        let mut found = 0u64;
        for shard in std::fs::read_dir(dir)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(shard.path())? {
                let f = f?;
                let name = f.file_name();
                let Some(id) = name.to_str().and_then(parse_name) else {
                    let _ = std::fs::remove_file(f.path()); // a half-written page
                    continue;
                };
                let len = f.metadata()?.len().saturating_sub(HEADER as u64);
                let mut inner = self.lock();
                inner.tick += 1;
                let tick = inner.tick;
                inner.entries.insert(id, Entry { tier: Tier::Disk, len, tick });
                inner.lru[1].insert(tick, id);
                inner.used[1] += len;
                found += 1;
            }
        }
        if found > 0 {
            tracing::info!(pages = found, dir = %dir.display(), "disk cache pages found again");
        }
        Ok(())
    }

    fn file(&self, id: PageId) -> Option<PathBuf> {
        self.disk
            .as_ref()
            .map(|d| d.join(format!("{:02x}", id.version & 0xFF)).join(format!("{}-{}", id.version, id.index)))
    }

    pub fn usage(&self) -> Usage {
        let inner = self.lock();
        Usage {
            mem_used: inner.used[0],
            mem_quota: self.quota[0],
            disk_used: inner.used[1],
            disk_quota: self.quota[1],
            pages: inner.entries.len() as u64,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.quota[0] + self.quota[1]
    }

    /// The page, from whichever tier holds it.
    pub async fn get(&self, id: PageId) -> Option<Bytes> {
        let tier = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            inner.tick += 1;
            let tick = inner.tick;
            let e = inner.entries.get_mut(&id)?;
            inner.lru[e.tier as usize].remove(&e.tick);
            e.tick = tick;
            inner.lru[e.tier as usize].insert(tick, id);
            if e.tier == Tier::Mem {
                return inner.mem.get(&id).cloned();
            }
            e.tier
        };
        debug_assert_eq!(tier, Tier::Disk);
        let path = self.file(id)?;
        match tokio::fs::read(&path).await {
            Ok(raw) => match check(&raw) {
                Some(data) => Some(Bytes::from(raw).slice(HEADER..HEADER + data)),
                None => {
                    tracing::warn!(file = %path.display(), "cached page failed its checksum; dropped, will be read again");
                    metrics::counter!("strata_worker_page_corrupt_total").increment(1);
                    self.remove(id).await;
                    None
                }
            },
            Err(_) => {
                self.forget(id);
                None
            }
        }
    }

    /// Caches a page in memory, moving cold pages down to make room.
    pub async fn put(&self, id: PageId, data: Bytes) {
        let len = data.len() as u64;
        if len > self.quota[0] && len > self.quota[1] {
            return;
        }
        let victims = {
            let mut inner = self.lock();
            if inner.entries.contains_key(&id) {
                return;
            }
            inner.tick += 1;
            let tick = inner.tick;
            inner.entries.insert(id, Entry { tier: Tier::Mem, len, tick });
            inner.lru[0].insert(tick, id);
            inner.used[0] += len;
            inner.mem.insert(id, data);
            take_coldest(&mut inner, Tier::Mem, self.quota[0])
        };
        for (vid, bytes) in victims {
            self.demote(vid, bytes).await;
        }
    }

    async fn demote(&self, id: PageId, data: Bytes) {
        let Some(path) = self.file(id).filter(|_| self.quota[1] >= data.len() as u64) else {
            return;
        };
        if write_page(&path, &data).await.is_err() {
            return;
        }
        let dropped = {
            let mut inner = self.lock();
            if inner.entries.contains_key(&id) {
                return; // cached again meanwhile
            }
            inner.tick += 1;
            let tick = inner.tick;
            let len = data.len() as u64;
            inner.entries.insert(id, Entry { tier: Tier::Disk, len, tick });
            inner.lru[1].insert(tick, id);
            inner.used[1] += len;
            take_coldest(&mut inner, Tier::Disk, self.quota[1])
        };
        for (vid, _) in dropped {
            if let Some(p) = self.file(vid) {
                let _ = tokio::fs::remove_file(p).await;
            }
        }
    }

    fn forget(&self, id: PageId) -> Option<Tier> {
        let mut inner = self.lock();
        let e = inner.entries.remove(&id)?;
        inner.lru[e.tier as usize].remove(&e.tick);
        inner.used[e.tier as usize] -= e.len;
        inner.mem.remove(&id);
        Some(e.tier)
    }

    pub async fn remove(&self, id: PageId) {
        if self.forget(id) == Some(Tier::Disk)
            && let Some(p) = self.file(id)
        {
            let _ = tokio::fs::remove_file(p).await;
        }
    }

    /// Drops every page of `version` (an aborted write).
    pub async fn remove_version(&self, version: u64) {
        let ids: Vec<PageId> = self.lock().entries.keys().filter(|id| id.version == version).copied().collect();
        for id in ids {
            self.remove(id).await;
        }
    }
}

/// Removes the coldest pages of `tier` until it fits `quota`; memory pages come back with
/// their bytes so they can move down.
fn take_coldest(inner: &mut Inner, tier: Tier, quota: u64) -> Vec<(PageId, Bytes)> {
    let mut out = Vec::new();
    while inner.used[tier as usize] > quota {
        let Some((_, id)) = inner.lru[tier as usize].pop_first() else { break };
        if let Some(e) = inner.entries.remove(&id) {
            inner.used[tier as usize] -= e.len;
        }
        let bytes = inner.mem.remove(&id).unwrap_or_default();
        out.push((id, bytes));
    }
    out
}

fn parse_name(name: &str) -> Option<PageId> {
    let (v, i) = name.split_once('-')?;
    Some(PageId { version: v.parse().ok()?, index: i.parse().ok()? })
}

/// The length of the page data when the header's checksum holds.
fn check(raw: &[u8]) -> Option<usize> {
    if raw.len() < HEADER {
        return None;
    }
    let crc = u32::from_le_bytes(raw[0..4].try_into().ok()?);
    let len = u32::from_le_bytes(raw[4..8].try_into().ok()?) as usize;
    let data = raw.get(HEADER..HEADER + len)?;
    (raw.len() == HEADER + len && crc32c(data) == crc).then_some(len)
}

fn crc32c(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// Writes the page beside its final name, then renames: a crash leaves no torn page.
async fn write_page(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut raw = Vec::with_capacity(HEADER + data.len());
    raw.extend_from_slice(&crc32c(data).to_le_bytes());
    raw.extend_from_slice(&(data.len() as u32).to_le_bytes());
    raw.extend_from_slice(data);
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, &raw).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u8) -> Bytes {
        Bytes::from(vec![n; 4096])
    }
    fn id(i: u64) -> PageId {
        PageId { version: 9, index: i }
    }

    #[tokio::test]
    async fn evicts_cold_pages_down_then_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = PageStore::open(4096, 2 * 4096, Some((dir.path(), 2 * 4096))).unwrap();
        for i in 0..3 {
            s.put(id(i), page(i as u8)).await;
        }
        s.get(id(1)).await.unwrap(); // 1 is now hotter than 2
        s.put(id(3), page(3)).await;
        let u = s.usage();
        assert_eq!((u.mem_used, u.disk_used), (2 * 4096, 2 * 4096));
        // 0 and 2 went to disk and still read back right.
        assert_eq!(s.get(id(0)).await.unwrap(), page(0));
        s.put(id(4), page(4)).await;
        s.put(id(5), page(5)).await;
        assert!(s.usage().disk_used <= 2 * 4096);
        assert!(s.usage().pages <= 4);
    }

    #[tokio::test]
    async fn disk_pages_survive_restart_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = PageStore::open(4096, 0, Some((dir.path(), 1 << 20))).unwrap();
            s.put(id(1), page(1)).await;
            s.put(id(2), page(2)).await;
        }
        let s = PageStore::open(4096, 0, Some((dir.path(), 1 << 20))).unwrap();
        assert_eq!(s.get(id(1)).await.unwrap(), page(1));
        let f = s.file(id(2)).unwrap();
        let mut raw = std::fs::read(&f).unwrap();
        raw[100] ^= 0xFF;
        std::fs::write(&f, raw).unwrap();
        assert_eq!(s.get(id(2)).await, None);
        assert!(!f.exists(), "a corrupt page is dropped");
    }
}
