//! Local folders: multipart parts written in place, and composes done by the file system.
//!
//! An upload has one file, `%strata/uploads/<id>/data-<P>` of its bucket's mount, holding part
//! n at (n-1)·P, where P (the upload's part size: aws cli, boto3 and s3a send uniform parts) is
//! fixed by the first part that looks like a non-final one. A part larger than P, or whose
//! slot was claimed already (a part re-sent), goes to its own file as before: every slot is
//! written by one write at most, so a recorded part's bytes are never overwritten. Completing
//! parts 1..k that lie end to end in that file links it as the object: no byte copied.
//!
//! A linked file is the object's, so no part may be written into it afterwards (a late part
//! would grow the object in the under store): writers hold the upload's `lock` shared from
//! their claim to their sync, and a compose links only under the lock held exclusive, after
//! marking the upload `sealed` (later claims go to their own files). A compose that finds a
//! writer at work copies the parts' ranges instead.

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use strata_common::api::{ByteStream, ComposeRequest, InPlace, UfsLocation};
use strata_common::ufs::{STAGING_DIR, upload_files as files};
use strata_common::{Error, Result};

use crate::Worker;

/// A part below this size is the last of its upload.
const MIN_PART: u64 = 5 << 20;

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::unavailable(format!("{what}: local under store error: {e}"))
}

/// The upload's part size: the one recorded, or this part's when none is yet and this part
/// looks like a non-final one (part 1, or a whole number of MiB, at least [`MIN_PART`]).
fn part_size(dir: &Path, p: &InPlace, version: u64) -> std::io::Result<Option<u64>> {
    let file = dir.join(files::PART_SIZE);
    match std::fs::read_to_string(&file) {
        Ok(s) => return Ok(s.trim().parse().ok()),
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if p.size < MIN_PART || (p.number != 1 && !p.size.is_multiple_of(1 << 20)) {
        return Ok(None);
    }
    // Written whole, then linked: a reader never sees it half written.
    let tmp = dir.join(format!("part-size.{version}"));
    std::fs::write(&tmp, p.size.to_string())?;
    let linked = std::fs::hard_link(&tmp, &file);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Some(p.size)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(std::fs::read_to_string(&file)?.trim().parse().ok()),
        Err(e) => Err(e),
    }
}

/// A claimed slot: the upload file's staging name and path, the part's offset in it, and the
/// upload's lock, held shared until the part is written.
struct Slot {
    name: String,
    path: PathBuf,
    offset: u64,
    _lock: std::fs::File,
}

fn upload_lock(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(files::LOCK))
}

/// Claims the slot of a part that fits it; `None` when the part must go to its own file.
fn claim(folder: &Path, p: &InPlace, version: u64) -> std::io::Result<Option<Slot>> {
    let id_ok =
        !p.upload_id.is_empty() && p.upload_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok || p.number == 0 {
        return Ok(None);
    }
    let rel = format!("{}/{}", files::DIR, p.upload_id);
    let dir = folder.join(STAGING_DIR).join(&rel);
    std::fs::create_dir_all(&dir)?;
    let lock = upload_lock(&dir)?;
    lock.lock_shared()?;
    if dir.join(files::SEALED).exists() {
        return Ok(None); // completed: its file is an object's now
    }
    let Some(ps) = part_size(&dir, p, version)? else { return Ok(None) };
    if p.size > ps || ps == 0 {
        return Ok(None);
    }
    match std::fs::File::create_new(dir.join(format!("{}{}", files::SLOT, p.number))) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    }
    let name = format!("{}{ps}", files::DATA);
    Ok(Some(Slot {
        name: format!("{rel}/{name}"),
        path: dir.join(name),
        offset: (p.number as u64 - 1) * ps,
        _lock: lock,
    }))
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Direct writes go in blocks of this alignment (of memory, file offset and length).
const ALIGN: usize = 4096;
/// Bytes gathered before each direct write.
const BLOCK: usize = 1 << 20;

/// A BLOCK-sized buffer aligned for O_DIRECT, and how much of it is filled.
struct Aligned {
    v: Vec<u8>,
    start: usize,
    fill: usize,
}

impl Aligned {
    fn new() -> Aligned {
        let v = vec![0u8; BLOCK + ALIGN];
        let start = v.as_ptr().align_offset(ALIGN);
        Aligned { v, start, fill: 0 }
    }

    fn data(&self) -> &[u8] {
        &self.v[self.start..self.start + self.fill]
    }

    /// Copies what fits of `bytes`; returns how much.
    fn take(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(BLOCK - self.fill);
        let at = self.start + self.fill;
        self.v[at..at + n].copy_from_slice(&bytes[..n]);
        self.fill += n;
        n
    }
}

/// Writes `data` at `pos`: its aligned part through `direct` (falling back to `buffered` where
/// the file system refuses O_DIRECT), the rest through `buffered`.
fn write_block(direct: &std::fs::File, buffered: &std::fs::File, data: &[u8], pos: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let aligned = data.len() / ALIGN * ALIGN;
    if aligned > 0 {
        match direct.write_all_at(&data[..aligned], pos) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => buffered.write_all_at(&data[..aligned], pos)?,
            r => r?,
        }
    }
    buffered.write_all_at(&data[aligned..], pos + aligned as u64)
}

/// Writes `body` at `offset` of `path`, at most `size` bytes; returns how many it had.
///
/// The bytes go with O_DIRECT where the file system takes it and `offset` is aligned: a part is
/// new data, read back later through the cache, and writes that fill the page cache first cost
/// more CPU than the device takes to store them (MinIO writes objects the same way).
async fn write_at(path: PathBuf, offset: u64, size: u64, mut body: ByteStream) -> Result<u64> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let what = format!("writing a part in place in {}", path.display());
    let blocking = |e: tokio::task::JoinError| Error::internal(e.to_string());
    let (file, direct) = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let open = |flags: i32| {
                std::fs::OpenOptions::new().create(true).truncate(false).write(true).custom_flags(flags).open(&path)
            };
            let file = open(0)?;
            let direct = if offset.is_multiple_of(ALIGN as u64) { open(libc::O_DIRECT).ok() } else { None };
            Ok::<_, std::io::Error>((file, direct))
        })
        .await
        .map_err(blocking)?
        .map_err(|e| io_error(&what, e))?
    };
    let (file, direct) = (Arc::new(file), direct.map(Arc::new));
    let mut block = direct.as_ref().map(|_| Aligned::new());
    // Bytes of the body written to the file so far (the rest is in `block`).
    let mut written = 0u64;
    let mut at = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if at + chunk.len() as u64 > size {
            return Err(Error::invalid(format!("the part has more than the {size} bytes it announced")));
        }
        at += chunk.len() as u64;
        let (Some(d), Some(mut b)) = (direct.clone(), block.take()) else {
            let (f, pos) = (file.clone(), offset + at - chunk.len() as u64);
            tokio::task::spawn_blocking(move || f.write_all_at(&chunk, pos))
                .await
                .map_err(blocking)?
                .map_err(|e| io_error(&what, e))?;
            continue;
        };
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            rest = &rest[b.take(rest)..];
            if b.fill == BLOCK {
                let (d, f, pos) = (d.clone(), file.clone(), offset + written);
                b = tokio::task::spawn_blocking(move || write_block(&d, &f, b.data(), pos).map(|()| b))
                    .await
                    .map_err(blocking)?
                    .map_err(|e| io_error(&what, e))?;
                written += BLOCK as u64;
                b.fill = 0;
            }
        }
        block = Some(b);
    }
    tokio::task::spawn_blocking(move || {
        if let (Some(d), Some(b)) = (direct, block) {
            write_block(&d, &file, b.data(), offset + written)?;
        }
        file.sync_data().and_then(|()| sync_dir(&path))
    })
    .await
    .map_err(blocking)?
    .map_err(|e| io_error(&what, e))?;
    Ok(at)
}

/// Appends ranges of files to `out`, synced.
fn copy_ranges(out: &mut std::fs::File, sources: &[(PathBuf, u64, u64)]) -> std::io::Result<()> {
    for (path, off, len) in sources {
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(*off))?;
        // std copies File to File with copy_file_range.
        let n = std::io::copy(&mut f.take(*len), out)?;
        if n != *len {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, format!("{} is short", path.display())));
        }
    }
    out.sync_all()
}

/// Marks the upload whose file `data` is sealed, under its lock held exclusive (returned, to
/// hold while linking); `None` when a part is being written into it, or it is no upload's.
fn seal(data: &Path) -> std::io::Result<Option<std::fs::File>> {
    let Some(dir) = data.parent().filter(|d| d.parent().and_then(Path::file_name) == Some(files::DIR.as_ref())) else {
        return Ok(None);
    };
    let lock = upload_lock(dir)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    std::fs::File::create(dir.join(files::SEALED))?.sync_all()?;
    sync_dir(&dir.join(files::SEALED))?;
    Ok(Some(lock))
}

/// Copies (or links) ranges of files into a new file, in the kernel; returns its size.
fn compose_files(target: &Path, sources: &[(PathBuf, u64, u64)], link: bool) -> std::io::Result<u64> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let total = sources.iter().map(|s| s.2).sum();
    let whole_file = |(p, off, len): &(PathBuf, u64, u64)| -> std::io::Result<bool> {
        Ok(*off == 0 && std::fs::metadata(p)?.len() == *len)
    };
    let sealed = match sources {
        [one] if link && whole_file(one)? => seal(&one.0)?,
        _ => None,
    };
    if sealed.is_some() {
        std::fs::hard_link(&sources[0].0, target)?;
    } else {
        let mut out = std::fs::File::create_new(target)?;
        if let Err(e) = copy_ranges(&mut out, sources) {
            let _ = std::fs::remove_file(target);
            return Err(e);
        }
    }
    sync_dir(target)?;
    Ok(total)
}

impl Worker {
    /// The file of a staged location in a local-folder mount (writable, for `write`).
    async fn local_file(&self, loc: &UfsLocation, write: bool) -> Result<Option<PathBuf>> {
        let mount = self.mount(&loc.bucket).await?;
        if !loc.staging || (write && mount.read_only) {
            return Ok(None);
        }
        let Some(folder) = strata_common::ufs::local_folder(&mount) else { return Ok(None) };
        loc.path()?; // a valid staging name
        Ok(Some(folder.join(STAGING_DIR).join(&loc.key)))
    }

    /// Writes a part in place when its bucket's mount is a local folder and it fits its slot:
    /// returns the staging name, the offset and the bytes written; else gives the body back.
    pub(crate) async fn write_in_place(
        &self,
        p: &InPlace,
        version: u64,
        body: ByteStream,
    ) -> Result<std::result::Result<(String, u64, u64), ByteStream>> {
        let mount = self.mount(&p.bucket).await?;
        let Some(folder) = strata_common::ufs::local_folder(&mount).filter(|_| !mount.read_only) else {
            return Ok(Err(body));
        };
        let p2 = p.clone();
        let claimed = tokio::task::spawn_blocking(move || claim(&folder, &p2, version))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| io_error("claiming a part's place", e))?;
        let Some(slot) = claimed else { return Ok(Err(body)) };
        let (name, offset) = (slot.name.clone(), slot.offset);
        let n = write_at(slot.path.clone(), offset, p.size, body).await?;
        drop(slot);
        metrics::counter!("strata_worker_ufs_bytes_written_total").increment(n);
        Ok(Ok((name, offset, n)))
    }

    /// A compose of staged files of local folders, by the file system; `None` when some
    /// location is not one.
    pub(crate) async fn compose_local(&self, req: &ComposeRequest) -> Result<Option<u64>> {
        let Some(target) = self.local_file(&req.target, true).await? else { return Ok(None) };
        let mut sources = Vec::with_capacity(req.sources.len());
        for (i, src) in req.sources.iter().enumerate() {
            let Some(path) = self.local_file(src, false).await? else { return Ok(None) };
            let (off, len) = match req.ranges.get(i) {
                Some(r) => *r,
                None => (0, tokio::fs::metadata(&path).await.map_err(|e| io_error("reading a part", e))?.len()),
            };
            sources.push((path, off, len));
        }
        let what = format!("composing {}", req.target.key);
        let size = tokio::task::spawn_blocking(move || compose_files(&target, &sources, true))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| io_error(&what, e))?;
        Ok(Some(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, size: u64) -> InPlace {
        InPlace { bucket: "b".into(), upload_id: "u1".into(), number, size }
    }

    #[tokio::test]
    async fn parts_land_whole_at_aligned_and_unaligned_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let body: Vec<u8> = (0..(2 * BLOCK + 4097) as u32).map(|i| (i % 251) as u8).collect();
        // Chunks of odd sizes, so the blocks straddle them.
        let stream = |b: &[u8]| -> ByteStream {
            let chunks: Vec<Result<bytes::Bytes>> =
                b.chunks(700_001).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
            futures::stream::iter(chunks).boxed()
        };
        let n = body.len() as u64;
        let off = 3 * BLOCK as u64;
        assert_eq!(write_at(path.clone(), off, n, stream(&body)).await.unwrap(), n);
        assert_eq!(write_at(path.clone(), 1000, 5000, stream(&body[..5000])).await.unwrap(), 5000);
        let file = std::fs::read(&path).unwrap();
        assert_eq!(file.len() as u64, off + n);
        assert_eq!(&file[off as usize..], &body[..], "the aligned part, with its unaligned tail");
        assert_eq!(&file[1000..6000], &body[..5000], "the unaligned part");
        let e = write_at(path.clone(), 0, 10, stream(&body[..11])).await.unwrap_err();
        assert!(e.to_string().contains("more than the 10 bytes"), "{e}");
    }

    #[test]
    fn slots_follow_the_first_whole_part_and_are_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let mib = 1 << 20;
        // A final-looking part first: no part size yet, its own file.
        assert!(claim(dir.path(), &part(3, 5 * mib + 1), 1).unwrap().is_none());
        let s = claim(dir.path(), &part(2, 8 * mib), 2).unwrap().unwrap();
        assert_eq!((s.name.as_str(), s.offset), ("uploads/u1/data-8388608", 8 * mib));
        assert_eq!(claim(dir.path(), &part(1, 8 * mib), 3).unwrap().unwrap().offset, 0);
        assert!(claim(dir.path(), &part(1, 8 * mib), 4).unwrap().is_none(), "a re-sent part");
        assert!(claim(dir.path(), &part(4, 9 * mib), 5).unwrap().is_none(), "too large");
        assert_eq!(claim(dir.path(), &part(5, 3), 6).unwrap().unwrap().offset, 32 * mib);
        let bad = InPlace { upload_id: "../x".into(), ..part(6, 8 * mib) };
        assert!(claim(dir.path(), &bad, 7).unwrap().is_none());
    }

    #[test]
    fn one_whole_file_is_linked_and_ranges_are_copied() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"0123456789").unwrap();
        let t = dir.path().join("t/linked");
        assert_eq!(compose_files(&t, &[(a.clone(), 0, 10)], true).unwrap(), 10);
        assert_eq!(std::fs::read(&t).unwrap(), b"0123456789");
        let c = dir.path().join("copied");
        compose_files(&c, &[(a.clone(), 2, 3), (a.clone(), 0, 1)], true).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), b"2340");
        let short = dir.path().join("short");
        assert!(compose_files(&short, &[(a, 8, 5)], true).is_err());
        assert!(!short.exists());
    }

    #[test]
    fn a_part_written_after_its_upload_was_linked_never_grows_the_object() {
        let dir = tempfile::tempdir().unwrap();
        let mib = 1 << 20;
        let data =
            |s: &Slot| std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&s.path).unwrap();
        let one = claim(dir.path(), &part(1, 5 * mib), 1).unwrap().unwrap();
        std::os::unix::fs::FileExt::write_all_at(&data(&one), &vec![1u8; 5 * mib as usize], 0).unwrap();
        let path = one.path.clone();
        // Part 2 is being written while the upload is completed with part 1: copied, not linked.
        let two = claim(dir.path(), &part(2, 5 * mib), 2).unwrap().unwrap();
        drop(one);
        let copied = dir.path().join("objects/copied");
        compose_files(&copied, &[(path.clone(), 0, 5 * mib)], true).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&data(&two), b"late", 5 * mib).unwrap();
        drop(two);
        assert_eq!(std::fs::metadata(&copied).unwrap().len(), 5 * mib);
        // No writer: linked, and the upload sealed, so a late part gets a file of its own.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(5 * mib).unwrap();
        let linked = dir.path().join("objects/linked");
        compose_files(&linked, &[(path.clone(), 0, 5 * mib)], true).unwrap();
        assert!(claim(dir.path(), &part(3, 5 * mib), 3).unwrap().is_none());
        assert_eq!(std::fs::metadata(&linked).unwrap().len(), 5 * mib);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&linked).unwrap().ino(), std::fs::metadata(&path).unwrap().ino());
    }
}
