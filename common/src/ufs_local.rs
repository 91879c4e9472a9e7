//! A local-folder under store that holds keys a file system cannot hold side by side: `a` and
//! `a/b`. Every key stays a plain file of its own path ([`crate::ufs::key_path`]) unless that
//! name is taken by a folder (for the file) or by a file (for the folder): then the newcomer
//! gets the name with a `%` after it (`a%`, `a%/b`), which `key_path` never produces (it
//! escapes `%`) and [`crate::ufs::path_key`] reads back as the plain key. Where a key lives is
//! found by looking at the folder: a plain name first, then the escaped one.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Appended to a file's (or folder's) name when the plain one is taken by the other kind.
pub const BESIDE: char = '%';

#[derive(Debug)]
pub struct LocalKeys {
    inner: LocalFileSystem,
    root: Arc<PathBuf>,
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

impl LocalKeys {
    pub fn new(inner: LocalFileSystem, root: PathBuf) -> LocalKeys {
        LocalKeys { inner, root: Arc::new(root) }
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
        self.inner.put_opts(&self.write(location), payload, opts).await
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
        let root = self.root.clone();
        self.inner.delete_stream(locations.map(move |p| p.map(|p| resolve(&root, &p, false))).boxed())
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
        self.inner.rename_opts(&self.read(from), &self.write(to), options).await
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
        let fs = LocalFileSystem::new_with_prefix(&d).unwrap().with_automatic_cleanup(true);
        (LocalKeys::new(fs, d.clone()), d)
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
}
