//! The page store's bookkeeping: which tier holds each page, the bytes each tier uses against
//! its quota, the pinned versions, and the moves between tiers. A new page goes to the highest
//! tier with room for a page; a tier over its quota hands the victims its eviction policy
//! chooses to the tier below, and the last tier drops them. Pages of pinned versions never
//! leave the last tier. A disk page that fails its check is dropped and reported as a miss.
//!
//! Lock order: one lock, `books`, held only for bookkeeping (and the policy's calls), never
//! across I/O; a page's bytes are written before it is booked and deleted after it is not.
//!
//! Memory: every page buffer in the process (cached in memory, read from disk, filled from an
//! under store, on its way to a client) is counted while it lives ([`PageStore::track`]); the
//! memory tier gives up room for the ones outside it, so the pages held stay within its quota
//! while it has pages to give up. Not counted: the page an upload is filling, and the spare
//! buffers of disk reads (`page_file.rs`). Moves between tiers that reads ask for run as tasks
//! of their own (the read waits for them), so a read dropped half way loses no page.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use strata_common::cache_types::{EvictionPolicy, Medium};

use super::PageId;
use super::page_file;
use super::policy::{self, Heat, Policy, TierView};
use super::stats::{MissStats, Stats, TierStats};

/// One tier as configured: highest first.
#[derive(Debug, Clone)]
pub struct TierSpec {
    pub medium: Medium,
    /// Folders of a disk tier (pages are spread over them); none for memory.
    pub dirs: Vec<PathBuf>,
    pub quota: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TierUsage {
    pub medium: Medium,
    pub used: u64,
    pub quota: u64,
}

struct Entry {
    tier: usize,
    len: u64,
    heat: Heat,
}

/// Everything under the lock.
struct Books {
    entries: HashMap<PageId, Entry>,
    /// The bytes of the pages in a memory tier.
    mem: HashMap<PageId, Bytes>,
    used: Vec<u64>,
    /// Ticks at each insert and each read.
    clock: u64,
    pinned: HashSet<u64>,
    policy: Box<dyn Policy>,
    /// Pages being promoted: one promotion a page (they would write the same files).
    promoting: HashSet<PageId>,
}

struct Tier {
    medium: Medium,
    quota: u64,
    /// `<dir>/pages-<page size>` for each folder of a disk tier.
    dirs: Vec<PathBuf>,
}

pub struct PageStore {
    page_size: u64,
    tiers: Vec<Tier>,
    books: Mutex<Books>,
    stats: Stats,
    /// Bytes of the page buffers alive, in a tier or not: see [`PageStore::track`].
    live: Arc<AtomicU64>,
    /// Bytes of memory pages taken out of the memory tier and not yet written below: room
    /// already being made, which others do not make again.
    leaving: Arc<AtomicU64>,
    /// Disk pages read and still held (queued to clients): readers of the same page meanwhile
    /// share the buffer rather than read one each.
    sending: Mutex<HashMap<PageId, Weak<Tracked>>>,
    /// Moves between tiers started by reads and running on their own (see [`PageStore::detach`]).
    moving: Arc<AtomicU64>,
    /// In tests: a promotion that wrote its top copy says so on the first, then waits for the second.
    #[cfg(test)]
    pub(crate) promotion_written: Mutex<Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>>,
}

/// Whether a page read from below the top tier moves up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveUp {
    /// Never (a read that must not fill the cache).
    No,
    /// When the memory tier has free room for it (a plain cached read).
    IntoRoom,
    /// Always (`CACHE_PROMOTE`).
    Yes,
}

/// The most room the memory tier keeps free for page buffers outside it: see
/// [`PageStore::headroom`].
const HEADROOM: u64 = 64 << 20;

/// Entries of [`PageStore::sending`] past which the dropped ones are cleared out.
const SENDING_SWEEP: usize = 1024;

/// `n` added to a counter until dropped.
struct Counted {
    n: u64,
    of: Arc<AtomicU64>,
}

impl Counted {
    fn new(of: &Arc<AtomicU64>, n: u64) -> Counted {
        of.fetch_add(n, Ordering::Relaxed);
        Counted { n, of: of.clone() }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.of.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// A page buffer, counted in [`PageStore::live`] until its last slice is dropped.
struct Tracked {
    bytes: Bytes,
    _live: Counted,
}

/// Room in [`PageStore::live`] for a page buffer about to be made ([`PageStore::reserve`]):
/// the buffer takes it over ([`Reserved::track`]), or it is given back when dropped unused.
pub struct Reserved(Counted);

impl Reserved {
    fn into_tracked(self, bytes: Bytes) -> Arc<Tracked> {
        let of = self.0.of.clone();
        drop(self); // the room goes back as the buffer is counted
        Arc::new(Tracked { _live: Counted::new(&of, bytes.len() as u64), bytes })
    }

    pub fn track(self, bytes: Bytes) -> Bytes {
        Bytes::from_owner(Shared(self.into_tracked(bytes)))
    }
}

/// The owner of the bytes handed out for a [`Tracked`] buffer.
struct Shared(Arc<Tracked>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0.bytes
    }
}

/// A page's claim on its promotion, given up when the promotion ends however it ends.
struct Promoting<'a> {
    store: &'a PageStore,
    id: PageId,
}

impl Drop for Promoting<'_> {
    fn drop(&mut self) {
        self.store.lock().promoting.remove(&self.id);
    }
}

/// A page taken out of a tier on its way down, with its bytes if it was in memory.
struct Victim {
    id: PageId,
    bytes: Option<Bytes>,
    heat: Heat,
    /// A memory page in [`PageStore::leaving`] until the victim is done with (or dropped, when
    /// the move is cancelled).
    _leaving: Counted,
}

/// Tier `tier` as its policy sees it.
struct View<'a> {
    entries: &'a HashMap<PageId, Entry>,
    pinned: &'a HashSet<u64>,
    tier: usize,
    used: u64,
    quota: u64,
    /// Pinned pages may not leave the last tier.
    last: bool,
}

impl TierView for View<'_> {
    fn used(&self) -> u64 {
        self.used
    }
    fn quota(&self) -> u64 {
        self.quota
    }
    fn len(&self, id: PageId) -> Option<u64> {
        self.entries.get(&id).filter(|e| e.tier == self.tier).map(|e| e.len)
    }
    fn evictable(&self, id: PageId) -> bool {
        !(self.last && self.pinned.contains(&id.version))
    }
}

/// Refuses layouts the store cannot serve: no tier, MEM below the top, a disk tier without folders.
fn check_layout(tiers: &[TierSpec]) -> std::io::Result<()> {
    let bad = |m: String| Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, m));
    if tiers.is_empty() {
        return bad("the cache needs at least one tier".into());
    }
    if tiers.iter().skip(1).any(|t| t.medium == Medium::Mem) {
        return bad("only the first (highest) tier can be MEM".into());
    }
    if let Some(t) = tiers.iter().find(|t| t.medium != Medium::Mem && t.dirs.is_empty()) {
        return bad(format!("the {} tier needs at least one folder (dirs)", t.medium));
    }
    Ok(())
}

impl PageStore {
    /// Opens the tiers, finding again the disk pages a previous run left.
    pub fn open(page_size: u64, tiers: Vec<TierSpec>, policy: EvictionPolicy) -> std::io::Result<PageStore> {
        check_layout(&tiers)?;
        let tiers: Vec<Tier> = tiers
            .iter()
            .map(|t| Tier {
                medium: t.medium,
                quota: t.quota,
                dirs: t.dirs.iter().map(|d| page_file::tier_dir(d, page_size)).collect(),
            })
            .collect();
        let books = Books {
            entries: HashMap::new(),
            mem: HashMap::new(),
            used: vec![0; tiers.len()],
            clock: 0,
            pinned: HashSet::new(),
            policy: policy::build(policy),
            promoting: HashSet::new(),
        };
        let stats = Stats::new(&tiers.iter().map(|t| t.medium).collect::<Vec<_>>());
        let store = PageStore {
            page_size,
            tiers,
            books: Mutex::new(books),
            stats,
            live: Arc::default(),
            leaving: Arc::default(),
            sending: Mutex::default(),
            moving: Arc::default(),
            #[cfg(test)]
            promotion_written: Mutex::default(),
        };
        for t in 0..store.tiers.len() {
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

    /// Counts a page buffer already made (a page written) while any slice of it lives; a page
    /// is tracked once, where its buffer is made, before [`PageStore::put`].
    pub fn track(&self, bytes: Bytes) -> Bytes {
        Reserved(Counted::new(&self.live, 0)).track(bytes)
    }

    /// Counts `len` bytes of a page buffer about to be made (a fill, a disk read), first moving
    /// memory pages down to make room for it.
    pub async fn reserve(self: &Arc<Self>, len: u64) -> Reserved {
        let room = Reserved(Counted::new(&self.live, len));
        if self.is_mem(0) && self.over_quota() > 0 {
            let this = self.clone();
            let _ = self.detach(async move { this.make_room(len).await }).await;
        }
        room
    }

    /// Runs a move between tiers as a task of its own, which the caller may await: a read that
    /// asked for it may be dropped (its client gone) or left unpolled (a slow client), and a
    /// move stopped half way would lose the pages taken out of a tier.
    fn detach(&self, work: impl std::future::Future<Output = ()> + Send + 'static) -> tokio::task::JoinHandle<()> {
        let moving = Counted::new(&self.moving, 1);
        tokio::spawn(async move {
            let _moving = moving;
            work.await
        })
    }

    /// Waits for the moves started by reads to end.
    #[cfg(test)]
    pub(crate) async fn settled(&self) {
        while self.moving.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Bytes of page buffers alive outside the memory tier: read ahead, queued to clients,
    /// evicted from memory while still being sent.
    pub fn in_flight(&self) -> u64 {
        let books = self.lock();
        let in_mem = if self.is_mem(0) { books.used[0] } else { 0 };
        self.live.load(Ordering::Relaxed).saturating_sub(in_mem)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Books the pages a previous run left in `dir` of tier `t`.
    fn reload(&self, t: usize, dir: &std::path::Path) -> std::io::Result<()> {
        let mut found = 0u64;
        for f in page_file::scan(dir)? {
            let mut books = self.lock();
            if books.entries.contains_key(&f.id) {
                let _ = std::fs::remove_file(&f.path); // a copy left by a move that did not finish
                continue;
            }
            self.book(&mut books, f.id, t, f.len, None);
            found += 1;
        }
        if found > 0 {
            tracing::info!(pages = found, dir = %dir.display(), "disk cache pages found again");
        }
        Ok(())
    }

    /// Where tier `t` keeps page `id`; none for memory.
    pub(super) fn file(&self, t: usize, id: PageId) -> Option<PathBuf> {
        page_file::path_of(&self.tiers.get(t)?.dirs, id)
    }

    fn is_mem(&self, t: usize) -> bool {
        self.tiers[t].medium == Medium::Mem
    }

    /// Books page `id` into tier `t` (the caller moves the bytes); `heat` when it moved.
    fn book(&self, books: &mut Books, id: PageId, t: usize, len: u64, heat: Option<Heat>) {
        books.clock += 1;
        let heat = books.policy.on_insert(t, id, books.clock, heat);
        books.entries.insert(id, Entry { tier: t, len, heat });
        books.used[t] += len;
    }

    /// Notes a read of `id` (the clock ticks even for a miss); returns its tier.
    fn touch(&self, books: &mut Books, id: PageId) -> Option<usize> {
        books.clock += 1;
        let now = books.clock;
        let e = books.entries.get_mut(&id)?;
        e.heat = books.policy.on_access(e.tier, id, now, e.heat);
        Some(e.tier)
    }

    /// Unbooks `id` from tier `t`, if it is there; returns what it was.
    fn unbook(&self, books: &mut Books, id: PageId, t: usize) -> Option<Entry> {
        if books.entries.get(&id)?.tier != t {
            return None;
        }
        let e = books.entries.remove(&id)?;
        books.policy.on_remove(t, id, e.heat);
        books.used[t] -= e.len;
        books.mem.remove(&id);
        Some(e)
    }

    pub fn usage(&self) -> Vec<TierUsage> {
        let books = self.lock();
        self.tiers
            .iter()
            .enumerate()
            .map(|(t, s)| TierUsage { medium: s.medium, used: books.used[t], quota: s.quota })
            .collect()
    }

    /// Each tier's pages, hits, demotions and evictions.
    pub fn tier_stats(&self) -> Vec<TierStats> {
        let mut pages = vec![0u64; self.tiers.len()];
        for e in self.lock().entries.values() {
            pages[e.tier] += 1;
        }
        self.stats.read(&pages)
    }

    /// A page was not cached: `filled` bytes were read from its under store.
    pub fn note_miss(&self, filled: u64) {
        self.stats.miss(filled);
    }

    pub fn miss_stats(&self) -> MissStats {
        self.stats.misses()
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

    /// The page, from whichever tier holds it; a page found below the top tier moves up to it as
    /// `up` says.
    pub async fn get(self: &Arc<Self>, id: PageId, up: MoveUp) -> Option<Bytes> {
        let (t, len) = {
            let mut books = self.lock();
            let t = self.touch(&mut books, id)?;
            if let Some(b) = books.mem.get(&id).filter(|_| t == 0) {
                self.stats.hit(0, b.len() as u64);
                return Some(b.clone());
            }
            (t, books.entries.get(&id).map_or(0, |e| e.len))
        };
        if let Some(data) = self.sent(id) {
            self.stats.hit(t, data.len() as u64);
            return Some(data);
        }
        let path = self.file(t, id)?;
        let room = self.reserve(len).await;
        match page_file::read(&path).await {
            page_file::Read::Page(data) => {
                let data = self.share(id, room.into_tracked(data));
                self.stats.hit(t, data.len() as u64);
                let promote = match up {
                    MoveUp::No => false,
                    MoveUp::IntoRoom => self.has_room(data.len() as u64),
                    MoveUp::Yes => true,
                };
                if t > 0 && promote {
                    let (this, data) = (self.clone(), data.clone());
                    let _ = self.detach(async move { this.promote(id, t, data).await }).await;
                }
                Some(data)
            }
            page_file::Read::Corrupt => {
                tracing::warn!(file = %path.display(), "cached page failed its checksum; dropped, will be read again");
                metrics::counter!("strata_worker_page_corrupt_total").increment(1);
                if self.forget_in(id, t) {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                None
            }
            page_file::Read::Unreadable => {
                self.forget_in(id, t);
                None
            }
        }
    }

    /// Whether the memory tier has room for a page of `len` just read (counted alive already)
    /// and one more buffer like it, besides its [`PageStore::headroom`]: then the page moves up,
    /// so a tier emptied for buffers in flight fills again, and the next disk read moves no page
    /// down.
    fn has_room(&self, len: u64) -> bool {
        let books = self.lock();
        let quota = self.tiers[0].quota;
        let room = self.live.load(Ordering::Relaxed) + len + self.headroom();
        self.is_mem(0) && room <= quota && books.used[0] + len <= quota
    }

    /// Disk page `id`, if another reader still holds the buffer it read.
    fn sent(&self, id: PageId) -> Option<Bytes> {
        let sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        sending.get(&id).and_then(Weak::upgrade).map(|t| Bytes::from_owner(Shared(t)))
    }

    /// A disk page just read, shared with the readers of `id` while it is held.
    fn share(&self, id: PageId, page: Arc<Tracked>) -> Bytes {
        let mut sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        if sending.len() >= SENDING_SWEEP {
            sending.retain(|_, w| w.strong_count() > 0);
        }
        sending.insert(id, Arc::downgrade(&page));
        Bytes::from_owner(Shared(page))
    }

    /// Bytes of page buffers alive beyond the memory tier's quota, less the room being made.
    fn over_quota(&self) -> u64 {
        let live = self.live.load(Ordering::Relaxed).saturating_sub(self.leaving.load(Ordering::Relaxed));
        live.saturating_sub(self.tiers[0].quota)
    }

    /// Room the memory tier keeps free for page buffers outside it once they made it give up
    /// room: pages read from disk move up only while it stays free, so that reads under a steady
    /// load move no page down each.
    fn headroom(&self) -> u64 {
        (self.tiers[0].quota / 8).min(HEADROOM)
    }

    /// Moves memory pages down by as many bytes as the page buffers alive, less those already
    /// leaving, exceed the memory tier's quota (at most the [`PageStore::headroom`], or `len` if
    /// more).
    async fn make_room(&self, len: u64) {
        if !self.is_mem(0) || self.over_quota() == 0 {
            return;
        }
        let victims = self.take_victims(&mut self.lock(), 0, len.max(self.headroom()));
        if !victims.is_empty() {
            self.hand_down(0, victims).await;
        }
    }

    /// Caches a page (from [`PageStore::track`]) in the top tier, moving cold pages down to
    /// make room.
    pub async fn put(&self, id: PageId, data: Bytes) {
        let len = data.len() as u64;
        if self.tiers.iter().all(|t| t.quota < len) || self.lock().entries.contains_key(&id) {
            return;
        }
        self.place(id, 0, data, None).await;
    }

    /// Puts `data` into tier `t` (or the first one below it with room for it), then makes room.
    async fn place(&self, id: PageId, mut t: usize, data: Bytes, heat: Option<Heat>) {
        let len = data.len() as u64;
        while t < self.tiers.len() && self.tiers[t].quota < len {
            t += 1;
        }
        if t >= self.tiers.len() {
            return;
        }
        if !self.is_mem(t) && !self.write_page(t, id, &data).await {
            return;
        }
        let victims = {
            let mut books = self.lock();
            match books.entries.get(&id) {
                Some(e) => Err(e.tier),
                None => Ok(self.admit(&mut books, id, t, data, heat)),
            }
        };
        match victims {
            Ok(victims) => self.hand_down(t, victims).await,
            Err(held_in) => {
                // Cached again meanwhile (elsewhere): this copy is not needed.
                if held_in != t
                    && let Some(p) = self.file(t, id)
                {
                    let _ = tokio::fs::remove_file(p).await;
                }
            }
        }
    }

    /// Writes page `id` into disk tier `t`; false (logged) when it cannot.
    async fn write_page(&self, t: usize, id: PageId, data: &[u8]) -> bool {
        let Some(path) = self.file(t, id) else { return false };
        match page_file::write(&path, data).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot write a cache page: {e}");
                false
            }
        }
    }

    /// Books page `id` (its bytes written, if `t` is a disk tier) in tier `t`, and takes out the
    /// victims that leaves tier `t` over its quota.
    fn admit(&self, books: &mut Books, id: PageId, t: usize, data: Bytes, heat: Option<Heat>) -> Vec<Victim> {
        let len = data.len() as u64;
        self.book(books, id, t, len, heat);
        if self.is_mem(t) {
            books.mem.insert(id, data);
        }
        self.take_victims(books, t, len)
    }

    /// Hands the victims taken out of tier `t` to the tier below, counted.
    async fn hand_down(&self, t: usize, victims: Vec<Victim>) {
        self.stats.left(t, victims.len() as u64);
        self.move_down(t, victims).await
    }

    /// Moves a page of tier `from` to the top tier: written there first (a disk tier), then
    /// rebooked in one step, so that readers meanwhile find it in one tier or the other.
    async fn promote(&self, id: PageId, from: usize, data: Bytes) {
        let len = data.len() as u64;
        if self.tiers[0].quota < len || !self.lock().promoting.insert(id) {
            return;
        }
        let _claimed = Promoting { store: self, id };
        if !self.is_mem(0) && !self.write_page(0, id, &data).await {
            return;
        }
        #[cfg(test)]
        {
            let hook = self.promotion_written.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some((written, go)) = hook {
                written.notify_one();
                go.notified().await;
            }
        }
        let victims = {
            let mut books = self.lock();
            self.unbook(&mut books, id, from).map(|e| self.admit(&mut books, id, 0, data, Some(e.heat)))
        };
        match victims {
            Some(victims) => {
                // Unless the page came back down to that tier meanwhile (the same file).
                if let Some(p) = self.file(from, id)
                    && self.tier_of(id) != Some(from)
                {
                    let _ = tokio::fs::remove_file(p).await;
                }
                Box::pin(self.hand_down(0, victims)).await;
            }
            // Moved or dropped meanwhile: the copy written above is not needed (unless the page
            // came to the top tier on another way, in that same file).
            None => {
                if let Some(p) = self.file(0, id)
                    && self.tier_of(id) != Some(0)
                {
                    let _ = tokio::fs::remove_file(p).await;
                }
            }
        }
    }

    /// Takes the policy's victims out of tier `t` until it fits its quota; from the memory tier,
    /// up to `len` bytes more while the page buffers alive exceed its quota. (No more than asked:
    /// a page moved down while a reader holds it frees nothing yet.)
    fn take_victims(&self, books: &mut Books, t: usize, len: u64) -> Vec<Victim> {
        let mut quota = self.tiers[t].quota;
        if self.is_mem(t) {
            quota = quota.min(books.used[t]).saturating_sub(self.over_quota().min(len));
        }
        let view = View {
            entries: &books.entries,
            pinned: &books.pinned,
            tier: t,
            used: books.used[t],
            quota,
            last: t + 1 == self.tiers.len(),
        };
        let chosen = books.policy.choose_victims(t, &view);
        let mut out = Vec::with_capacity(chosen.len());
        for id in chosen {
            let Some(e) = books.entries.remove(&id) else { continue };
            books.used[t] -= e.len;
            let bytes = books.mem.remove(&id);
            let _leaving = Counted::new(&self.leaving, bytes.as_ref().map_or(0, Bytes::len) as u64);
            out.push(Victim { id, bytes, heat: e.heat, _leaving });
        }
        out
    }

    /// Hands the victims of tier `from` to the tier below (the last tier drops them).
    async fn move_down(&self, from: usize, victims: Vec<Victim>) {
        for v in victims {
            let old = self.file(from, v.id);
            let data = match (v.bytes, &old) {
                (Some(b), _) => Some(b),
                (None, Some(p)) => match page_file::read(p).await {
                    page_file::Read::Page(b) => Some(b),
                    page_file::Read::Corrupt | page_file::Read::Unreadable => None,
                },
                (None, None) => None,
            };
            if let (Some(data), true) = (data, from + 1 < self.tiers.len()) {
                Box::pin(self.place(v.id, from + 1, data, Some(v.heat))).await;
            }
            // Unless the page came back to this tier meanwhile (the same file).
            if let Some(p) = old
                && self.tier_of(v.id) != Some(from)
            {
                let _ = tokio::fs::remove_file(p).await;
            }
        }
    }

    /// Forgets `id` if it is still booked in tier `t` (it may have moved meanwhile).
    fn forget_in(&self, id: PageId, t: usize) -> bool {
        self.unbook(&mut self.lock(), id, t).is_some()
    }

    pub async fn remove(&self, id: PageId) {
        let removed = {
            let mut books = self.lock();
            let t = books.entries.get(&id).map(|e| e.tier);
            t.and_then(|t| self.unbook(&mut books, id, t).map(|_| t))
        };
        if let Some(p) = removed.and_then(|t| self.file(t, id)) {
            let _ = tokio::fs::remove_file(p).await;
        }
    }

    /// Drops every page of `version` (an aborted write, `strata admin free`); returns the bytes freed.
    pub async fn remove_version(&self, version: u64) -> u64 {
        self.remove_versions(&std::collections::HashSet::from([version])).await
    }

    /// Drops every page of these versions, looking through the books once; returns the bytes freed.
    pub async fn remove_versions(&self, versions: &std::collections::HashSet<u64>) -> u64 {
        let ids: Vec<(PageId, u64)> = self
            .lock()
            .entries
            .iter()
            .filter(|(id, _)| versions.contains(&id.version))
            .map(|(id, e)| (*id, e.len))
            .collect();
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

    /// Bytes cached of the pinned versions.
    pub fn pinned_bytes(&self) -> u64 {
        let books = self.lock();
        books.entries.iter().filter(|(id, _)| books.pinned.contains(&id.version)).map(|(_, e)| e.len).sum()
    }

    /// Those of `versions` that are not pinned.
    pub fn unpinned(&self, versions: impl IntoIterator<Item = u64>) -> HashSet<u64> {
        let books = self.lock();
        versions.into_iter().filter(|v| !books.pinned.contains(v)).collect()
    }

    /// The pinned versions, sorted.
    pub fn pinned(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.lock().pinned.iter().copied().collect();
        v.sort_unstable();
        v
    }
}
