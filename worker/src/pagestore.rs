//! The worker's page cache: pages of object versions in tiers (memory, then SSD and HDD
//! folders), each with a quota. A new page goes to the highest tier; when a tier is over its
//! quota, the eviction policy's coldest pages move down a tier, or out of the last one. Pages of
//! pinned versions never leave the cache. Disk pages carry a CRC32C and survive restarts; one
//! that fails its check is dropped and reported as a miss, never served.
//!
//! Lock order: `inner` is a plain mutex held only for bookkeeping, never across I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId {
    pub version: u64,
    pub index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Mem,
    Ssd,
    Hdd,
}

impl Medium {
    pub fn parse(s: &str) -> Option<Medium> {
        match s.to_ascii_uppercase().as_str() {
            "MEM" | "MEMORY" => Some(Medium::Mem),
            "SSD" => Some(Medium::Ssd),
            "HDD" => Some(Medium::Hdd),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Mem => "MEM",
            Medium::Ssd => "SSD",
            Medium::Hdd => "HDD",
        }
    }
}

/// One tier as configured: highest first.
#[derive(Debug, Clone)]
pub struct TierSpec {
    pub medium: Medium,
    /// Folders of a disk tier (pages are spread over them); none for memory.
    pub dirs: Vec<PathBuf>,
    pub quota: u64,
}

/// Which page of a full tier goes first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Least recently used.
    Lru,
    /// Least recently/frequently used: each access adds 1 to a score that halves every
    /// `1 / step` accesses to the cache, so a page read often outlives one read once lately.
    Lrfu { step: f64 },
}

#[derive(Debug, Clone)]
pub struct TierUsage {
    pub medium: Medium,
    pub used: u64,
    pub quota: u64,
}

type Order = (i64, u64);

struct Entry {
    tier: usize,
    len: u64,
    order: Order,
    crf: f64,
    last: u64,
}

struct Inner {
    entries: HashMap<PageId, Entry>,
    mem: HashMap<PageId, Bytes>,
    /// Per tier, entries coldest first.
    order: Vec<BTreeMap<Order, PageId>>,
    used: Vec<u64>,
    tick: u64,
    pinned: HashSet<u64>,
}

struct TierState {
    medium: Medium,
    quota: u64,
    /// `<dir>/pages-<page size>` for each folder of a disk tier.
    dirs: Vec<PathBuf>,
}

pub struct PageStore {
    page_size: u64,
    policy: Policy,
    tiers: Vec<TierState>,
    inner: Mutex<Inner>,
}

const HEADER: usize = 8; // CRC32C (4, LE) + length (4, LE)

impl PageStore {
    pub fn open(page_size: u64, tiers: Vec<TierSpec>, policy: Policy) -> std::io::Result<PageStore> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        if tiers.is_empty() {
            return Err(bad("the cache needs at least one tier".into()));
        }
        if tiers.iter().skip(1).any(|t| t.medium == Medium::Mem) {
            return Err(bad("only the first (highest) tier can be MEM".into()));
        }
        if let Some(t) = tiers.iter().find(|t| t.medium != Medium::Mem && t.dirs.is_empty()) {
            return Err(bad(format!("the {} tier needs at least one folder (dirs)", t.medium.as_str())));
        }
        let states: Vec<TierState> = tiers
            .iter()
            .map(|t| TierState {
                medium: t.medium,
                quota: t.quota,
                dirs: t.dirs.iter().map(|d| d.join(format!("pages-{page_size}"))).collect(),
            })
            .collect();
        let n = states.len();
        let store = PageStore {
            page_size,
            policy,
            tiers: states,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                mem: HashMap::new(),
                order: (0..n).map(|_| BTreeMap::new()).collect(),
                used: vec![0; n],
                tick: 0,
                pinned: HashSet::new(),
            }),
        };
        for t in 0..n {
            for dir in &store.tiers[t].dirs {
                std::fs::create_dir_all(dir)?;
                store.reload(t, dir)?;
            }
        }
        Ok(store)
    }

    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the disk pages a previous run left in `dir` of tier `t`.
    fn reload(&self, t: usize, dir: &Path) -> std::io::Result<()> {
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
                if inner.entries.contains_key(&id) {
                    let _ = std::fs::remove_file(f.path()); // a copy left by a move that did not finish
                    continue;
                }
                self.insert(&mut inner, id, t, len, 1.0, 0);
                found += 1;
            }
        }
        if found > 0 {
            tracing::info!(pages = found, dir = %dir.display(), "disk cache pages found again");
        }
        Ok(())
    }

    /// Where tier `t` keeps page `id`.
    fn file(&self, t: usize, id: PageId) -> Option<PathBuf> {
        let dirs = &self.tiers.get(t)?.dirs;
        if dirs.is_empty() {
            return None;
        }
        let dir = &dirs[((id.version ^ id.index.rotate_left(17)) % dirs.len() as u64) as usize];
        Some(dir.join(format!("{:02x}", id.version & 0xFF)).join(format!("{}-{}", id.version, id.index)))
    }

    fn order_of(&self, crf: f64, tick: u64) -> Order {
        match self.policy {
            Policy::Lru => (tick as i64, tick),
            // crf·2^(-step·(now-last)) ordered the same for every `now`: log2(crf) + step·last.
            Policy::Lrfu { step } => (((crf.log2() + step * tick as f64) * 1048576.0) as i64, tick),
        }
    }

    /// Books page `id` into tier `t` (the caller moves the bytes).
    fn insert(&self, inner: &mut Inner, id: PageId, t: usize, len: u64, crf: f64, last: u64) {
        inner.tick += 1;
        let tick = inner.tick;
        let last = if last == 0 { tick } else { last };
        let order = self.order_of(crf, last);
        inner.entries.insert(id, Entry { tier: t, len, order, crf, last });
        inner.order[t].insert(order, id);
        inner.used[t] += len;
    }

    /// Notes an access to `id`; returns its tier.
    fn touch(&self, inner: &mut Inner, id: PageId) -> Option<usize> {
        inner.tick += 1;
        let tick = inner.tick;
        let crf = {
            let e = inner.entries.get(&id)?;
            match self.policy {
                Policy::Lru => 1.0,
                Policy::Lrfu { step } => 1.0 + e.crf * (-(step * (tick - e.last) as f64)).exp2(),
            }
        };
        let order = self.order_of(crf, tick);
        let e = inner.entries.get_mut(&id)?;
        let (t, old) = (e.tier, e.order);
        e.crf = crf;
        e.last = tick;
        e.order = order;
        inner.order[t].remove(&old);
        inner.order[t].insert(order, id);
        Some(t)
    }

    pub fn usage(&self) -> Vec<TierUsage> {
        let inner = self.lock();
        self.tiers
            .iter()
            .enumerate()
            .map(|(t, s)| TierUsage { medium: s.medium, used: inner.used[t], quota: s.quota })
            .collect()
    }

    pub fn capacity(&self) -> u64 {
        self.tiers.iter().map(|t| t.quota).sum()
    }

    pub fn used(&self) -> u64 {
        self.lock().used.iter().sum()
    }

    pub fn pages(&self) -> usize {
        self.lock().entries.len()
    }

    /// The tier holding `id`, if cached.
    pub fn tier_of(&self, id: PageId) -> Option<usize> {
        self.lock().entries.get(&id).map(|e| e.tier)
    }

    /// The page, from whichever tier holds it; with `promote`, a page found below the top tier
    /// moves up to it.
    pub async fn get(&self, id: PageId, promote: bool) -> Option<Bytes> {
        let t = {
            let mut inner = self.lock();
            let t = self.touch(&mut inner, id)?;
            if t == 0
                && let Some(b) = inner.mem.get(&id)
            {
                return Some(b.clone());
            }
            t
        };
        let path = self.file(t, id)?;
        match tokio::fs::read(&path).await {
            Ok(raw) => match check(&raw) {
                Some(len) => {
                    let data = Bytes::from(raw).slice(HEADER..HEADER + len);
                    if promote && t > 0 {
                        self.promote(id, t, data.clone()).await;
                    }
                    Some(data)
                }
                None => {
                    tracing::warn!(file = %path.display(), "cached page failed its checksum; dropped, will be read again");
                    metrics::counter!("strata_worker_page_corrupt_total").increment(1);
                    if self.forget_in(id, t) {
                        let _ = tokio::fs::remove_file(&path).await;
                    }
                    None
                }
            },
            Err(_) => {
                self.forget_in(id, t);
                None
            }
        }
    }

    /// Caches a page in the top tier, moving cold pages down to make room.
    pub async fn put(&self, id: PageId, data: Bytes) {
        let len = data.len() as u64;
        if self.tiers.iter().all(|t| t.quota < len) {
            return;
        }
        {
            let inner = self.lock();
            if inner.entries.contains_key(&id) {
                return;
            }
        }
        self.place(id, 0, data, 1.0, 0).await;
    }

    /// Puts `data` into tier `t` (or the first one below it with room for it), then makes room.
    async fn place(&self, id: PageId, mut t: usize, data: Bytes, crf: f64, last: u64) {
        let len = data.len() as u64;
        while t < self.tiers.len() && self.tiers[t].quota < len {
            t += 1;
        }
        if t >= self.tiers.len() {
            return;
        }
        if self.tiers[t].medium != Medium::Mem {
            let Some(path) = self.file(t, id) else { return };
            if let Err(e) = write_page(&path, &data).await {
                tracing::warn!(file = %path.display(), "cannot write a cache page: {e}");
                return;
            }
        }
        let victims = {
            let mut inner = self.lock();
            if let Some(e) = inner.entries.get(&id) {
                Err(e.tier)
            } else {
                self.insert(&mut inner, id, t, len, crf, last);
                if self.tiers[t].medium == Medium::Mem {
                    inner.mem.insert(id, data);
                }
                Ok(self.take_coldest(&mut inner, t))
            }
        };
        match victims {
            Ok(victims) => self.move_down(t, victims).await,
            Err(held_in) => {
                // Cached again meanwhile (elsewhere): this copy is not needed.
                if held_in != t
                    && let Some(p) = self.file(t, id).filter(|_| self.tiers[t].medium != Medium::Mem)
                {
                    let _ = tokio::fs::remove_file(p).await;
                }
            }
        }
    }

    async fn promote(&self, id: PageId, from: usize, data: Bytes) {
        let (crf, last) = {
            let mut inner = self.lock();
            let Some(e) = inner.entries.get(&id).filter(|e| e.tier == from) else { return };
            let (crf, last, order, len) = (e.crf, e.last, e.order, e.len);
            inner.entries.remove(&id);
            inner.order[from].remove(&order);
            inner.used[from] -= len;
            (crf, last)
        };
        if let Some(p) = self.file(from, id) {
            let _ = tokio::fs::remove_file(p).await;
        }
        Box::pin(self.place(id, 0, data, crf, last)).await;
    }

    /// Takes pages out of tier `t` until it fits its quota, coldest first; pinned pages stay in
    /// the last tier. Memory pages come with their bytes.
    fn take_coldest(&self, inner: &mut Inner, t: usize) -> Vec<(PageId, Option<Bytes>, f64, u64)> {
        let last_tier = t + 1 == self.tiers.len();
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        while inner.used[t] > self.tiers[t].quota {
            let Some((order, id)) = inner.order[t].pop_first() else { break };
            if last_tier && inner.pinned.contains(&id.version) {
                skipped.push((order, id));
                continue;
            }
            let Some(e) = inner.entries.remove(&id) else { continue };
            inner.used[t] -= e.len;
            out.push((id, inner.mem.remove(&id), e.crf, e.last));
        }
        for (order, id) in skipped {
            inner.order[t].insert(order, id);
        }
        out
    }

    async fn move_down(&self, from: usize, victims: Vec<(PageId, Option<Bytes>, f64, u64)>) {
        for (id, bytes, crf, last) in victims {
            let old = self.file(from, id);
            let data = match bytes {
                Some(b) => Some(b),
                None => match &old {
                    Some(p) => tokio::fs::read(p)
                        .await
                        .ok()
                        .and_then(|raw| check(&raw).map(|len| Bytes::from(raw).slice(HEADER..HEADER + len))),
                    None => None,
                },
            };
            if let (Some(data), true) = (data, from + 1 < self.tiers.len()) {
                Box::pin(self.place(id, from + 1, data, crf, last)).await;
            }
            // Unless the page came back to this tier meanwhile (the same file).
            let back = self.lock().entries.get(&id).map(|e| e.tier) == Some(from);
            if let (Some(p), false) = (old, back) {
                let _ = tokio::fs::remove_file(p).await;
            }
        }
    }

    /// Forgets `id` if it is still booked in tier `t` (it may have moved meanwhile).
    fn forget_in(&self, id: PageId, t: usize) -> bool {
        let mut inner = self.lock();
        if inner.entries.get(&id).map(|e| e.tier) != Some(t) {
            return false;
        }
        if let Some(e) = inner.entries.remove(&id) {
            inner.order[t].remove(&e.order);
            inner.used[t] -= e.len;
            inner.mem.remove(&id);
        }
        true
    }

    fn forget(&self, id: PageId) -> Option<usize> {
        let mut inner = self.lock();
        let e = inner.entries.remove(&id)?;
        inner.order[e.tier].remove(&e.order);
        inner.used[e.tier] -= e.len;
        inner.mem.remove(&id);
        Some(e.tier)
    }

    pub async fn remove(&self, id: PageId) {
        if let Some(t) = self.forget(id)
            && let Some(p) = self.file(t, id)
        {
            let _ = tokio::fs::remove_file(p).await;
        }
    }

    /// Drops every page of `version` (an aborted write, `strata admin free`); returns the bytes freed.
    pub async fn remove_version(&self, version: u64) -> u64 {
        let ids: Vec<(PageId, u64)> =
            self.lock().entries.iter().filter(|(id, _)| id.version == version).map(|(id, e)| (*id, e.len)).collect();
        let mut freed = 0;
        for (id, len) in ids {
            self.remove(id).await;
            freed += len;
        }
        freed
    }

    /// Pages of `version` stay in the cache until unpinned.
    pub fn pin(&self, version: u64) {
        self.lock().pinned.insert(version);
    }

    pub fn unpin(&self, version: u64) {
        self.lock().pinned.remove(&version);
    }

    /// The pinned versions are exactly these (the master's list, each heartbeat).
    pub fn set_pinned(&self, versions: &[u64]) {
        self.lock().pinned = versions.iter().copied().collect();
    }

    pub fn pinned(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.lock().pinned.iter().copied().collect();
        v.sort_unstable();
        v
    }
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

    const P: u64 = 4096;

    fn page(n: u8) -> Bytes {
        Bytes::from(vec![n; P as usize])
    }
    fn id(i: u64) -> PageId {
        PageId { version: 9, index: i }
    }
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
    fn used(s: &PageStore) -> Vec<u64> {
        s.usage().iter().map(|u| u.used).collect()
    }

    #[tokio::test]
    async fn evicts_cold_pages_down_the_tiers_then_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = PageStore::open(P, tiers(dir.path(), &[2 * P, 2 * P, 2 * P]), Policy::Lru).unwrap();
        for i in 0..3 {
            s.put(id(i), page(i as u8)).await;
        }
        s.get(id(1), false).await.unwrap(); // 1 is now hotter than 2
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
        assert_eq!(s.get(id(1), false).await.unwrap(), page(1), "read back right from the lowest tier");
    }

    #[tokio::test]
    async fn promotion_moves_a_hot_page_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = PageStore::open(P, tiers(dir.path(), &[2 * P, 4 * P]), Policy::Lru).unwrap();
        for i in 0..4 {
            s.put(id(i), page(i as u8)).await;
        }
        assert_eq!(s.tier_of(id(0)), Some(1));
        assert_eq!(s.get(id(0), false).await.unwrap(), page(0));
        assert_eq!(s.tier_of(id(0)), Some(1), "CACHE reads leave the page where it is");
        assert_eq!(s.get(id(0), true).await.unwrap(), page(0));
        assert_eq!(s.tier_of(id(0)), Some(0), "CACHE_PROMOTE moves it to memory");
        assert_eq!(used(&s), vec![2 * P, 2 * P]);
        assert_eq!(s.get(id(0), false).await.unwrap(), page(0));
    }

    #[tokio::test]
    async fn lrfu_keeps_a_frequently_read_page_that_lru_would_drop() {
        for (policy, kept) in [(Policy::Lru, false), (Policy::Lrfu { step: 0.01 }, true)] {
            let s =
                PageStore::open(P, vec![TierSpec { medium: Medium::Mem, dirs: vec![], quota: 3 * P }], policy).unwrap();
            s.put(id(0), page(0)).await;
            for _ in 0..20 {
                s.get(id(0), false).await.unwrap();
            }
            for i in 1..4 {
                s.put(id(i), page(i as u8)).await;
            }
            assert_eq!(s.tier_of(id(0)).is_some(), kept, "{policy:?}");
        }
    }

    #[tokio::test]
    async fn pinned_pages_are_never_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let s = PageStore::open(P, tiers(dir.path(), &[P, P]), Policy::Lru).unwrap();
        s.pin(9);
        s.put(id(0), page(0)).await;
        for i in 0..5 {
            s.put(PageId { version: 10, index: i }, page(i as u8)).await;
        }
        assert_eq!(s.get(id(0), false).await.unwrap(), page(0));
        s.unpin(9);
        for i in 5..8 {
            s.put(PageId { version: 10, index: i }, page(i as u8)).await;
        }
        assert_eq!(s.tier_of(id(0)), None, "unpinned, it ages out like any page");
    }

    #[tokio::test]
    async fn disk_pages_survive_restart_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = PageStore::open(P, tiers(dir.path(), &[0, 1 << 20]), Policy::Lru).unwrap();
            s.put(id(1), page(1)).await;
            s.put(id(2), page(2)).await;
        }
        let s = PageStore::open(P, tiers(dir.path(), &[0, 1 << 20]), Policy::Lru).unwrap();
        assert_eq!(s.get(id(1), false).await.unwrap(), page(1));
        let f = s.file(1, id(2)).unwrap();
        let mut raw = std::fs::read(&f).unwrap();
        raw[100] ^= 0xFF;
        std::fs::write(&f, raw).unwrap();
        assert_eq!(s.get(id(2), false).await, None);
        assert!(!f.exists(), "a corrupt page is dropped");
        assert_eq!(s.pages(), 1);
    }

    #[test]
    fn bad_tier_layouts_are_refused() {
        let ssd = TierSpec { medium: Medium::Ssd, dirs: vec![], quota: 1 };
        assert!(PageStore::open(P, vec![ssd], Policy::Lru).is_err());
        let mem = TierSpec { medium: Medium::Mem, dirs: vec![], quota: 1 };
        let hdd = TierSpec { medium: Medium::Hdd, dirs: vec!["/tmp/x".into()], quota: 1 };
        assert!(PageStore::open(P, vec![hdd, mem], Policy::Lru).is_err());
    }
}
