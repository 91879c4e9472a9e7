//! The disk page format, which existing caches are reloaded from, so it must not change.
//!
//! A disk tier folder `<dir>` keeps its pages in `<dir>/pages-<page size>/<vv>/<version>-<index>`,
//! `vv` being the low byte of the version in hex; a tier with several folders spreads the pages
//! over them by a hash of the id. A file holds a CRC32C of the data (4 bytes, LE), the data's
//! length (4 bytes, LE), then the data. Pages are written beside their name and renamed, so a
//! crash leaves a `.tmp` file (dropped on reload), never a torn page.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::PageId;

/// CRC32C (4, LE) + length (4, LE).
pub(crate) const HEADER: usize = 8;

/// The folder of a disk tier's pages of this size, inside one of its configured folders.
pub(crate) fn tier_dir(dir: &Path, page_size: u64) -> PathBuf {
    dir.join(format!("pages-{page_size}"))
}

/// Where page `id` lives among a tier's folders (from [`tier_dir`]); none for a memory tier.
pub(crate) fn path_of(dirs: &[PathBuf], id: PageId) -> Option<PathBuf> {
    if dirs.is_empty() {
        return None;
    }
    let dir = &dirs[((id.version ^ id.index.rotate_left(17)) % dirs.len() as u64) as usize];
    Some(dir.join(format!("{:02x}", id.version & 0xFF)).join(file_name(id)))
}

pub(crate) fn file_name(id: PageId) -> String {
    format!("{}-{}", id.version, id.index)
}

/// The page a file name stands for; none for anything else (a `.tmp` file, a stray file).
pub(crate) fn parse_name(name: &str) -> Option<PageId> {
    let (v, i) = name.split_once('-')?;
    Some(PageId { version: v.parse().ok()?, index: i.parse().ok()? })
}

fn crc32c(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// The bytes of a page file holding `data`.
pub(crate) fn frame(data: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(HEADER + data.len());
    raw.extend_from_slice(&crc32c(data).to_le_bytes());
    raw.extend_from_slice(&(data.len() as u32).to_le_bytes());
    raw.extend_from_slice(data);
    raw
}

/// The length of the page data when the header's length and checksum hold.
pub(crate) fn check(raw: &[u8]) -> Option<usize> {
    if raw.len() < HEADER {
        return None;
    }
    let crc = u32::from_le_bytes(raw[0..4].try_into().ok()?);
    let len = u32::from_le_bytes(raw[4..8].try_into().ok()?) as usize;
    let data = raw.get(HEADER..HEADER + len)?;
    (raw.len() == HEADER + len && crc32c(data) == crc).then_some(len)
}

/// Writes the page beside its final name, then renames: a crash leaves no torn page.
pub(crate) async fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    let written = match tokio::fs::write(&tmp, frame(data)).await {
        Ok(()) => tokio::fs::rename(&tmp, path).await,
        Err(e) => Err(e),
    };
    if written.is_err() {
        // A full disk leaves part of the page behind: give its room back.
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written
}

/// What reading a page file gave.
#[derive(Debug)]
pub(crate) enum Read {
    Page(Bytes),
    /// The file is there but fails its check.
    Corrupt,
    /// The file cannot be read (gone, or the disk fails).
    Unreadable,
}

/// Buffers of page files read and sent, kept for the next reads: a fresh page-sized buffer is
/// a fresh mapping (above glibc's mmap threshold), faulted in, zeroed and unmapped each read.
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// Spare buffers kept at most (each a page): a bound on the memory this holds.
const MAX_SPARE: usize = 16;

/// A page file's bytes, back to [`SPARE`] once every slice of them is dropped.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let mut spare = SPARE.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < MAX_SPARE {
            spare.push(buf);
        }
    }
}

fn read_pooled(path: &Path) -> std::io::Result<Pooled> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len() as usize;
    let mut buf = SPARE.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
    buf.clear();
    buf.reserve(len);
    // Returned to the pool on every path, the error ones included.
    let mut pooled = Pooled(buf);
    f.read_to_end(&mut pooled.0)?;
    Ok(pooled)
}

pub(crate) async fn read(path: &Path) -> Read {
    let path = path.to_path_buf();
    match tokio::task::spawn_blocking(move || read_pooled(&path)).await {
        Ok(Ok(raw)) => match check(&raw.0) {
            Some(len) => Read::Page(Bytes::from_owner(raw).slice(HEADER..HEADER + len)),
            None => Read::Corrupt,
        },
        _ => Read::Unreadable,
    }
}

/// A page file found in a tier folder.
pub(crate) struct Found {
    pub id: PageId,
    pub path: PathBuf,
    /// Of the data, without the header.
    pub len: u64,
}

/// The pages a previous run left in a tier folder; files that are not pages (a half-written
/// page) are deleted on the way.
pub(crate) fn scan(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(dir)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(shard.path())? {
            let f = f?;
            let Some(id) = f.file_name().to_str().and_then(parse_name) else {
                let _ = std::fs::remove_file(f.path());
                continue;
            };
            let len = f.metadata()?.len().saturating_sub(HEADER as u64);
            found.push(Found { id, path: f.path(), len });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(version: u64, index: u64) -> PageId {
        PageId { version, index }
    }

    #[test]
    fn names_round_trip_and_strays_are_not_pages() {
        for p in [id(0, 0), id(9, 3), id(u64::MAX, 12345)] {
            assert_eq!(parse_name(&file_name(p)), Some(p));
        }
        for bad in ["9-3.tmp", "9", "x-1", "9-", "-3", "9-3-4", ""] {
            assert_eq!(parse_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_layout_is_the_one_existing_caches_have() {
        let dirs = [PathBuf::from("/a/pages-4096")];
        assert_eq!(tier_dir(Path::new("/a"), 4096), dirs[0]);
        assert_eq!(path_of(&dirs, id(0x1ff, 7)), Some(PathBuf::from("/a/pages-4096/ff/511-7")));
        assert_eq!(path_of(&[], id(1, 1)), None, "memory tiers have no files");
        let two = [PathBuf::from("/a"), PathBuf::from("/b")];
        // (version ^ index.rotl(17)) % 2 picks the folder.
        assert!(path_of(&two, id(2, 0)).unwrap().starts_with("/a"));
        assert!(path_of(&two, id(3, 0)).unwrap().starts_with("/b"));
    }

    #[test]
    fn a_frame_is_crc_then_length_then_data() {
        let raw = frame(b"hello");
        assert_eq!(&raw[4..8], &5u32.to_le_bytes());
        assert_eq!(&raw[0..4], &0x9a71bb4cu32.to_le_bytes(), "CRC32C of \"hello\"");
        assert_eq!(&raw[HEADER..], b"hello");
        assert_eq!(check(&raw), Some(5));
        assert_eq!(check(&frame(b"")), Some(0));
    }

    #[test]
    fn flipped_truncated_or_padded_frames_fail_their_check() {
        let good = frame(&[7u8; 100]);
        let mut flipped = good.clone();
        flipped[50] ^= 1;
        let mut padded = good.clone();
        padded.push(0);
        for (what, raw) in [("flipped", flipped), ("truncated", good[..90].to_vec()), ("padded", padded)] {
            assert_eq!(check(&raw), None, "{what}");
        }
        assert_eq!(check(&good[..4]), None, "shorter than a header");
        assert_eq!(check(&good), Some(100));
    }

    #[tokio::test]
    async fn a_reused_read_buffer_holds_only_the_next_page() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [tier_dir(dir.path(), 4096)];
        let (big, small) = (path_of(&dirs, id(1, 0)).unwrap(), path_of(&dirs, id(1, 1)).unwrap());
        write(&big, &[9u8; 4096]).await.unwrap();
        write(&small, b"small").await.unwrap();
        for _ in 0..3 {
            let Read::Page(b) = read(&big).await else { panic!("the big page") };
            assert_eq!(b, vec![9u8; 4096]);
            let half = b.slice(..10);
            drop(b);
            assert_eq!(half, [9u8; 10][..], "a slice keeps its buffer out of the pool");
            drop(half);
            assert!(matches!(read(&small).await, Read::Page(b) if b == "small"));
        }
    }

    #[tokio::test]
    async fn written_pages_read_back_and_scan_finds_them_dropping_strays() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [tier_dir(dir.path(), 4096)];
        let p = path_of(&dirs, id(5, 1)).unwrap();
        write(&p, b"page").await.unwrap();
        assert!(matches!(read(&p).await, Read::Page(b) if b == "page"));
        let stray = p.with_extension("tmp");
        std::fs::write(&stray, b"half").unwrap();
        let found = scan(&dirs[0]).unwrap();
        assert_eq!(found.iter().map(|f| (f.id, f.len)).collect::<Vec<_>>(), vec![(id(5, 1), 4)]);
        assert!(!stray.exists(), "a half-written page is deleted");
        std::fs::write(&p, b"garbage!!").unwrap();
        assert!(matches!(read(&p).await, Read::Corrupt));
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(read(&p).await, Read::Unreadable));
    }
}
