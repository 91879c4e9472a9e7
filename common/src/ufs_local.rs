//! A local-folder under store that holds keys a file system cannot hold side by side: `a` and
//! `a/b`. Every key stays a plain file of its own path ([`crate::ufs::key_path`]) unless that
//! name is taken by a folder (for the file) or by a file (for the folder): then the newcomer
//! gets the name with a `%` after it (`a%`, `a%/b`), which `key_path` never produces (it
//! escapes `%`) and [`crate::ufs::path_key`] reads back as the plain key. Where a key lives is
//! found by looking at the folder: a plain name first, then the escaped one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, RenameTargetMode, Result,
};

/// Appended to a file's (or folder's) name when the plain one is taken by the other kind.
pub const BESIDE: char = '%';

#[derive(Debug)]
pub struct LocalKeys {
    /// Fsyncs each file and folder it changes before it answers; removes emptied folders.
    inner: LocalFileSystem,
    /// The same folder without fsyncs, and keeping emptied folders: for staged files.
    unsynced: LocalFileSystem,
    folders: FolderSyncs,
    root: Arc<PathBuf>,
}

/// Folder fsyncs shared by the writers that need one at about the same time (a group commit):
/// a writer waits for an fsync of the folder that started after its change, and many renames
/// into one folder cost one fsync instead of one each.
#[derive(Debug, Default)]
struct FolderSyncs(std::sync::Mutex<HashMap<PathBuf, Arc<FolderSync>>>);

#[derive(Debug, Default)]
struct FolderSync {
    /// Fsyncs begun; each is numbered by this count when it begins.
    started: AtomicU64,
    /// The number of the last fsync that ended well; held while one runs.
    done: tokio::sync::Mutex<u64>,
}

impl FolderSyncs {
    /// Returns once an fsync of `dir` that began after this call has ended.
    async fn sync(&self, dir: &std::path::Path) -> std::io::Result<()> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(dir.to_path_buf()).or_default().clone();
        let needed = s.started.load(Ordering::SeqCst) + 1;
        let result = async {
            let mut done = s.done.lock().await;
            if *done >= needed {
                return Ok(());
            }
            let n = s.started.fetch_add(1, Ordering::SeqCst) + 1;
            let d = dir.to_path_buf();
            tokio::task::spawn_blocking(move || std::fs::File::open(d)?.sync_all())
                .await
                .map_err(std::io::Error::other)??;
            *done = n;
            Ok(())
        }
        .await;
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this call hold it: nobody is waiting on this folder.
        if Arc::strong_count(&s) == 2 {
            map.remove(dir);
        }
        result
    }
}

/// Whether `p` is a write's staged file, `STAGING_DIR/STAGED_DIR/...`: nobody reads it before the
/// master commits it, and a crash mid-write leaves a file the reclaimer deletes.
fn staged(p: &Path) -> bool {
    let mut parts = p.parts();
    parts.next().is_some_and(|a| a.as_ref() == crate::ufs::STAGING_DIR)
        && parts.next().is_some_and(|b| b.as_ref() == crate::ufs::STAGED_DIR)
}

impl std::fmt::Display for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalKeys({})", self.root.display())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    File,
    Dir,
}

fn kind(p: &std::path::Path) -> Option<Kind> {
    std::fs::metadata(p).ok().map(|m| if m.is_dir() { Kind::Dir } else { Kind::File })
}

fn escaped(part: &str) -> String {
    format!("{part}{BESIDE}")
}

/// The physical path of a logical one: for reading (`write` false), each folder and the file
/// where they are; for writing, where they go.
fn resolve(root: &std::path::Path, location: &Path, write: bool) -> Path {
    let parts: Vec<String> = location.parts().map(|p| p.as_ref().to_string()).collect();
    if parts.first().is_some_and(|p| p == crate::ufs::STAGING_DIR) {
        return location.clone();
    }
    let mut at = root.to_path_buf();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let plain = kind(&at.join(part));
        let beside = kind(&at.join(escaped(part)));
        let last = i + 1 == parts.len();
        let use_beside = match (last, write) {
            // A file: the plain name unless a folder has it (or the file already lives beside).
            (true, false) => plain != Some(Kind::File) && beside == Some(Kind::File),
            (true, true) => beside == Some(Kind::File) || plain == Some(Kind::Dir),
            // A folder: the plain name unless a file has it (or the folder already lives beside).
            (false, false) => plain != Some(Kind::Dir) && beside == Some(Kind::Dir),
            (false, true) => plain != Some(Kind::Dir) && (plain == Some(Kind::File) || beside == Some(Kind::Dir)),
        };
        let name = if use_beside { escaped(part) } else { part.clone() };
        at.push(&name);
        out.push(name);
    }
    // Every name came from a valid path, and `%` is valid in a path part.
    Path::parse(out.join("/")).unwrap_or_else(|_| location.clone())
}

fn io_error(path: &std::path::Path, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic { store: "LocalKeys", source: format!("syncing {}: {e}", path.display()).into() }
}

impl LocalKeys {
    /// The keys of the folder `root`, which exists. Every write is durable when it returns.
    pub fn new(root: PathBuf) -> Result<LocalKeys> {
        let inner = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true).with_fsync(true);
        let unsynced = LocalFileSystem::new_with_prefix(&root)?;
        Ok(LocalKeys { inner, unsynced, folders: FolderSyncs::default(), root: Arc::new(root) })
    }
    fn read(&self, p: &Path) -> Path {
        resolve(&self.root, p, false)
    }
    fn write(&self, p: &Path) -> Path {
        resolve(&self.root, p, true)
    }
    /// A listing's prefix is a folder: where it lives.
    fn folder(&self, prefix: Option<&Path>) -> Option<Path> {
        prefix.map(|p| {
            let probe = p.clone().join("x");
            let r = self.read(&probe);
            Path::from_iter(r.parts().take(p.parts().count()))
        })
    }
}

#[async_trait]
impl ObjectStore for LocalKeys {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        if !(staged(location) && matches!(opts.mode, PutMode::Overwrite)) {
            return self.inner.put_opts(&self.write(location), payload, opts).await;
        }
        let file = self.unsynced.path_to_filesystem(location)?;
        let dir = file.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            // The store creates and syncs the folder; staged deletes never remove it.
            return self.inner.put_opts(location, payload, opts).await;
        }
        // A staged file: written without fsyncs, then its bytes synced and its folder with the
        // others staged meanwhile. Until then nobody reads it (see `staged`).
        let result = self.unsynced.put_opts(location, payload, opts).await?;
        let f = file.clone();
        let synced = match tokio::task::spawn_blocking(move || std::fs::File::open(&f)?.sync_data()).await {
            Ok(Ok(())) => self.folders.sync(&dir).await.map_err(|e| io_error(&dir, e)),
            Ok(Err(e)) => Err(io_error(&file, e)),
            Err(e) => Err(io_error(&file, std::io::Error::other(e))),
        };
        if synced.is_err() {
            // Not durable: gone, lest it pass for a write whose answer was lost.
            let _ = tokio::fs::remove_file(&file).await;
        }
        synced.map(|()| result)
    }
    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(&self.write(location), opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(&self.read(location), options).await
    }
    async fn get_ranges(&self, location: &Path, ranges: &[std::ops::Range<u64>]) -> Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(&self.read(location), ranges).await
    }
    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let (root, inner, unsynced) = (self.root.clone(), self.inner.clone(), self.unsynced.clone());
        locations
            .map(move |p| {
                let (root, inner, unsynced) = (root.clone(), inner.clone(), unsynced.clone());
                async move {
                    let p = p?;
                    // Staged files go without removing their emptied folder (see `put_opts`).
                    let (store, p) = if staged(&p) { (unsynced, p) } else { (inner, resolve(&root, &p, false)) };
                    store.delete_stream(futures::stream::once(async { Ok(p) }).boxed()).next().await.unwrap_or_else(
                        || {
                            Err(object_store::Error::Generic {
                                store: "LocalKeys",
                                source: "the delete gave no answer".into(),
                            })
                        },
                    )
                }
            })
            .buffered(10)
            .boxed()
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(self.folder(prefix).as_ref())
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(self.folder(prefix).as_ref()).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(&self.read(from), &self.write(to), options).await
    }
    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let (from, to) = (self.read(from), self.write(to));
        if !matches!(options.target_mode, RenameTargetMode::Overwrite) {
            return self.inner.rename_opts(&from, &to, options).await;
        }
        // The rename, then an fsync of the target's folder shared with the renames into it
        // meanwhile. The source folder is not synced: on a journalling file system the rename is
        // one journal transaction, which the target's fsync makes durable whole.
        let (src, dst) = (self.inner.path_to_filesystem(&from)?, self.inner.path_to_filesystem(&to)?);
        let target = dst.clone();
        let renamed = tokio::task::spawn_blocking(move || std::fs::rename(&src, &target)).await;
        match renamed {
            Ok(Ok(())) => {
                let dir = dst.parent().unwrap_or(&self.root);
                self.folders.sync(dir).await.map_err(|e| io_error(dir, e))
            }
            // A missing folder to create (synced too), a missing source, any other error: the
            // store's own rename does each right.
            _ => self.inner.rename_opts(&from, &to, options).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ufs::{key_path, path_key};
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;

    fn store() -> (LocalKeys, PathBuf) {
        let d = std::env::temp_dir().join(format!("strata-keys-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&d).unwrap();
        (LocalKeys::new(d.clone()).unwrap(), d)
    }

    async fn put(s: &LocalKeys, key: &str, body: &'static [u8]) {
        s.put(&key_path(key).unwrap(), PutPayload::from_static(body)).await.unwrap_or_else(|e| panic!("{key}: {e}"));
    }

    async fn get(s: &LocalKeys, key: &str) -> Option<Vec<u8>> {
        Some(s.get(&key_path(key).unwrap()).await.ok()?.bytes().await.unwrap().to_vec())
    }

    async fn listed(s: &LocalKeys, prefix: Option<&str>) -> Vec<String> {
        let p = prefix.map(|p| key_path(p).unwrap());
        let mut keys: Vec<String> = s.list(p.as_ref()).map_ok(|m| path_key(&m.location)).try_collect().await.unwrap();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn a_file_and_a_folder_of_one_name_in_either_order() {
        for order in [["a", "a/b"], ["a/b", "a"]] {
            let (s, dir) = store();
            put(&s, order[0], b"first").await;
            put(&s, order[1], b"second").await;
            assert_eq!(get(&s, order[0]).await.as_deref(), Some(&b"first"[..]), "{order:?}");
            assert_eq!(get(&s, order[1]).await.as_deref(), Some(&b"second"[..]), "{order:?}");
            assert_eq!(listed(&s, None).await, ["a", "a/b"], "{order:?}");
            assert_eq!(listed(&s, Some("a")).await, ["a/b"], "{order:?}");
            // Rewrites go where the key lives; nothing is written twice.
            put(&s, "a", b"again").await;
            put(&s, "a/b", b"again").await;
            assert_eq!(listed(&s, None).await, ["a", "a/b"], "{order:?}");
            // The one that came first kept its plain name.
            assert!(dir.join(order[0]).exists(), "{order:?}");
            // Deletes clean up, and the other key stays.
            s.delete(&key_path("a/b").unwrap()).await.unwrap();
            assert_eq!(get(&s, "a").await.as_deref(), Some(&b"again"[..]));
            s.delete(&key_path("a").unwrap()).await.unwrap();
            assert_eq!(listed(&s, None).await, Vec::<String>::new());
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{order:?}: folders left behind");
            std::fs::remove_dir_all(&dir).ok();
        }
    }

    #[tokio::test]
    async fn keys_without_collisions_stay_plain_and_dot_dots_stay_inside() {
        let (s, dir) = store();
        put(&s, "data/part-0", b"x").await;
        put(&s, "../x", b"y").await;
        assert!(dir.join("data/part-0").is_file());
        assert_eq!(get(&s, "../x").await.as_deref(), Some(&b"y"[..]));
        assert!(!dir.parent().unwrap().join("x").exists());
        // A deeper collision: a/b is a file, then a/b/c.
        put(&s, "a/b", b"1").await;
        put(&s, "a/b/c", b"2").await;
        assert!(dir.join("a/b").is_file() && dir.join("a/b%/c").is_file());
        assert_eq!(listed(&s, Some("a/b")).await, ["a/b/c"]);
        assert_eq!(get(&s, "a/b/c").await.as_deref(), Some(&b"2"[..]));
        // A staged file renamed onto a colliding key.
        let staged = crate::ufs::staging_path("tmp/1").unwrap();
        s.put(&staged, PutPayload::from_static(b"3")).await.unwrap();
        s.rename(&staged, &key_path("a").unwrap()).await.unwrap();
        assert_eq!(get(&s, "a").await.as_deref(), Some(&b"3"[..]));
        assert!(dir.join("a%").is_file());
        std::fs::remove_dir_all(&dir).ok();
    }
    /// 50 syncs of `dir` at once.
    async fn fifty_syncs(syncs: &Arc<FolderSyncs>, dir: &std::path::Path) {
        let waiting: Vec<_> = (0..50)
            .map(|_| {
                let (syncs, dir) = (syncs.clone(), dir.to_path_buf());
                tokio::spawn(async move { syncs.sync(&dir).await })
            })
            .collect();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn concurrent_folder_syncs_share_fsyncs() {
        let (_, dir) = store();
        let syncs = Arc::new(FolderSyncs::default());
        fifty_syncs(&syncs, &dir).await;
        assert!(syncs.0.lock().unwrap().is_empty(), "a folder nobody waits on is forgotten");
        // Each call ran its own fsync or waited for one that began after it: 50 calls at once
        // need few. Counted through a folder that stays in the map.
        let held = syncs.0.lock().unwrap().entry(dir.clone()).or_default().clone();
        fifty_syncs(&syncs, &dir).await;
        let fsyncs = held.started.load(Ordering::SeqCst);
        assert!((1..50).contains(&fsyncs), "{fsyncs} fsyncs for 50 calls");
        syncs.sync(&dir).await.unwrap();
        assert_eq!(held.started.load(Ordering::SeqCst), fsyncs + 1, "a later call gets an fsync of its own");
        assert!(syncs.sync(&dir.join("missing")).await.is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn staged_files_land_on_their_keys_and_leave_the_staging_folder() {
        let (s, dir) = store();
        let staged = crate::ufs::staging_path("tmp/7").unwrap();
        // The first one creates the folder, the second is written unsynced and synced after.
        for (i, key) in ["k", "deep/er/k"].into_iter().enumerate() {
            s.put(&staged, PutPayload::from_static(b"bytes")).await.unwrap();
            assert_eq!(std::fs::read(dir.join("%strata/tmp/7")).unwrap(), b"bytes", "{i}");
            s.rename(&staged, &key_path(key).unwrap()).await.unwrap();
            assert_eq!(get(&s, key).await.as_deref(), Some(&b"bytes"[..]));
        }
        assert!(dir.join("%strata/tmp").is_dir());
        // A staged file deleted keeps the folder; a key deleted cleans up its folders.
        s.put(&staged, PutPayload::from_static(b"x")).await.unwrap();
        s.delete(&staged).await.unwrap();
        assert!(dir.join("%strata/tmp").is_dir() && !dir.join("%strata/tmp/7").exists());
        s.delete(&key_path("deep/er/k").unwrap()).await.unwrap();
        assert!(!dir.join("deep").exists());
        // A missing source is the store's NotFound.
        let e = s.rename(&staged, &key_path("k").unwrap()).await.unwrap_err();
        assert!(matches!(e, object_store::Error::NotFound { .. }), "{e}");
        assert_eq!(get(&s, "k").await.as_deref(), Some(&b"bytes"[..]));
        std::fs::remove_dir_all(&dir).ok();
    }
}
