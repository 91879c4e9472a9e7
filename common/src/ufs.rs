//! Under stores: one `object_store` per mount, and the mapping of S3 keys to paths in them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::error::{Error, Result};
use crate::proto::Mount;

/// Opened under stores, by URI: opening is not free (an S3 client, a folder check).
#[derive(Default)]
pub struct UfsRegistry {
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl UfsRegistry {
    pub fn open(&self, mount: &Mount) -> Result<Arc<dyn ObjectStore>> {
        let mut id = mount.uri.clone();
        let mut options: Vec<_> = mount.options.iter().collect();
        options.sort();
        for (k, v) in options {
            id.push_str(&format!("\0{k}={v}"));
        }
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(&id) {
            return Ok(s.clone());
        }
        let store = crate::ufs_metered::Metered::wrap(open_store(mount)?, &mount.uri);
        stores.insert(id, store.clone());
        Ok(store)
    }
}

/// An under store's error as Strata's: a missing object, or one whose ETag no longer matches,
/// changed behind Strata's back; anything else makes the store unavailable for now.
pub fn ufs_error(what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. }
        | object_store::Error::Precondition { .. }
        | object_store::Error::NotModified { .. } => Error::new(
            crate::error::ErrorKind::UfsChanged,
            format!("{what}: the under store's copy changed or vanished behind Strata's back ({e})"),
        ),
        other if is_storage_full(&other) => Error::new(
            crate::error::ErrorKind::StorageFull,
            format!(
                "{what}: the under store's disk is full (no space left on device): free space there or add capacity, then retry"
            ),
        ),
        other if is_read_only(&other) => Error::new(
            crate::error::ErrorKind::StorageReadOnly,
            format!(
                "{what}: the under store's disk is read-only (read-only file system): make it writable (fsck and remount), then retry"
            ),
        ),
        other => Error::unavailable(format!("{what}: under store error: {other}")),
    }
}

/// Whether an error comes from a read-only file system (EROFS).
pub fn is_read_only(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(err) = at {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::ReadOnlyFilesystem || io.raw_os_error() == Some(30))
        {
            return true;
        }
        at = err.source();
    }
    // Errors that keep only their source's text.
    e.to_string().contains("Read-only file system")
}

/// Whether an error comes from a full disk (ENOSPC, or EDQUOT: a quota reached).
pub fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(err) = at {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || matches!(io.raw_os_error(), Some(28 | 122)))
        {
            return true;
        }
        at = err.source();
    }
    // Errors that keep only their source's text.
    let text = e.to_string();
    text.contains("No space left on device") || text.contains("Disk quota exceeded")
}

/// Mount options whose values are secrets: never logged, shown only masked.
pub fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "token", "sas", "credential", "private_key", "account_key", "access_key"]
        .iter()
        .any(|s| k.contains(s))
        && !k.ends_with("_file")
        && !k.ends_with("access_key_id")
}

/// The mount as it may be shown: secret option values masked.
pub fn redacted(mount: &Mount) -> Mount {
    let mut m = mount.clone();
    for (k, v) in m.options.iter_mut() {
        if is_secret_option(k) {
            *v = if v.len() > 12 { format!("****{}", &v[v.len() - 4..]) } else { "****".to_string() };
        }
    }
    m
}

/// `hdfs://namenode:port/path` (or a name service); options are Hadoop settings
/// (`dfs.ha.namenodes.ns`, ...).
#[cfg(feature = "hdfs")]
fn hdfs_store(mount: &Mount, url: &url::Url) -> Result<Arc<dyn ObjectStore>> {
    let root = &url[..url::Position::BeforePath];
    let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
        .with_url(root)
        .with_config(mount.options.clone())
        .build()
        .map_err(|e| Error::invalid(format!("cannot open the HDFS under store {}: {e}", mount.uri)))?;
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let prefix = url.path().trim_matches('/');
    Ok(if prefix.is_empty() { store } else { Arc::new(object_store::prefix::PrefixStore::new(store, prefix)) })
}

#[cfg(not(feature = "hdfs"))]
fn hdfs_store(mount: &Mount, _url: &url::Url) -> Result<Arc<dyn ObjectStore>> {
    Err(Error::invalid(format!("{}: this build has no HDFS support: build with `--features hdfs`", mount.uri)))
}

/// How a cloud under store's requests are retried (5xx, 429, timeouts, dropped connections,
/// and a GET's body cut mid-way, resumed where it broke), with backoff. The `object_store`
/// defaults retry for three minutes, past any S3 client's patience; Strata's give up within
/// seconds (a hung request, 30 s by default, is tried once more), so that a dead under store
/// answers an error while the client still waits (60 s for botocore). Mount
/// options `max_retries` and `retry_timeout` (e.g. `30s`) change them.
pub fn retry_config(mount: &Mount) -> Result<object_store::RetryConfig> {
    let mut retry = object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 6,
        retry_timeout: std::time::Duration::from_secs(45),
    };
    if let Some(n) = mount.options.get("max_retries") {
        retry.max_retries =
            n.parse().map_err(|_| Error::invalid(format!("mount option max_retries={n:?}: give a number")))?;
    }
    if let Some(t) = mount.options.get("retry_timeout") {
        retry.retry_timeout = humantime::parse_duration(t)
            .map_err(|e| Error::invalid(format!("mount option retry_timeout={t:?}: {e} (e.g. 30s)")))?;
    }
    Ok(retry)
}

/// A cloud store's builder, with the mount's options (those it knows) and Strata's retries.
macro_rules! cloud_builder {
    ($builder:ty, $url:expr, $options:expr, $retry:expr) => {{
        let builder =
            $options.iter().fold(<$builder>::new().with_url($url), |b, (k, v)| match k.to_ascii_lowercase().parse() {
                Ok(k) => b.with_config(k, v.clone()),
                Err(_) => b,
            });
        Arc::new(builder.with_retry($retry).build().map_err(|e| e.to_string())?) as Arc<dyn ObjectStore>
    }};
}

fn cloud_store(mount: &Mount, url: &url::Url) -> Result<Arc<dyn ObjectStore>> {
    use object_store::ObjectStoreScheme as S;
    install_tls_provider();
    let mut options: Vec<(String, String)> = mount.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let plain_http = mount.uri.starts_with("http://")
        || mount.options.iter().any(|(k, v)| k.contains("endpoint") && v.starts_with("http://"));
    if plain_http && !mount.options.contains_key("allow_http") {
        options.push(("allow_http".into(), "true".into()));
    }
    let retry = retry_config(mount)?;
    let cannot = |e: String| Error::invalid(format!("cannot open the under store {}: {e}", redacted(mount).uri));
    let (scheme, prefix) = S::parse(url).map_err(|e| cannot(e.to_string()))?;
    let open = || -> std::result::Result<Arc<dyn ObjectStore>, String> {
        Ok(match scheme {
            S::AmazonS3 => cloud_builder!(object_store::aws::AmazonS3Builder, url.to_string(), options, retry),
            S::GoogleCloudStorage => {
                cloud_builder!(object_store::gcp::GoogleCloudStorageBuilder, url.to_string(), options, retry)
            }
            S::MicrosoftAzure => {
                cloud_builder!(object_store::azure::MicrosoftAzureBuilder, url.to_string(), options, retry)
            }
            S::Http => cloud_builder!(
                object_store::http::HttpBuilder,
                url[..url::Position::BeforePath].to_string(),
                options,
                retry
            ),
            other => return Err(format!("{other:?} is not a cloud store")),
        })
    };
    let store = open().map_err(cannot)?;
    Ok(if prefix.as_ref().is_empty() { store } else { Arc::new(object_store::prefix::PrefixStore::new(store, prefix)) })
}

/// The cloud stores' HTTP client needs rustls's process-wide crypto provider (ring) before it is
/// built; installing it twice is harmless.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A local under store folder that cannot be made: a full or read-only disk is said so (with
/// the folder's name, not the server's path: S3 users see it); anything else is internal.
fn folder_error(dir: &std::path::Path, e: std::io::Error) -> Error {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let kind = if is_storage_full(&e) {
        crate::error::ErrorKind::StorageFull
    } else if is_read_only(&e) {
        crate::error::ErrorKind::StorageReadOnly
    } else {
        return Error::internal(format!("cannot create under store folder {}: {e}", dir.display()));
    };
    let why = if kind == crate::error::ErrorKind::StorageFull {
        "is full (no space left on device): free space there or add capacity"
    } else {
        "is read-only (read-only file system): make it writable (fsck and remount)"
    };
    Error::new(kind, format!("creating the under store folder {name}: its disk {why}, then retry"))
}

fn open_store(mount: &Mount) -> Result<Arc<dyn ObjectStore>> {
    let url =
        url::Url::parse(&mount.uri).map_err(|e| Error::invalid(format!("bad under store URI {:?}: {e}", mount.uri)))?;
    match url.scheme() {
        "file" => {
            let dir =
                url.to_file_path().map_err(|_| Error::invalid(format!("{:?} is not a local folder", mount.uri)))?;
            std::fs::create_dir_all(&dir).map_err(|e| folder_error(&dir, e))?;
            let keys = crate::ufs_local::LocalKeys::new(dir.clone())
                .map_err(|e| Error::internal(format!("cannot open under store folder {}: {e}", dir.display())))?;
            Ok(Arc::new(keys))
        }
        "memory" => Ok(Arc::new(InMemory::new())),
        "hdfs" | "viewfs" => hdfs_store(mount, &url),
        "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" | "http" | "https" => cloud_store(mount, &url),
        other => Err(Error::invalid(format!(
            "under store scheme {other}:// is not supported (supported: file://, s3://, gs://, az://, \
             http(s):// (WebDAV), memory://)"
        ))),
    }
}

/// The folder of a `file://` mount.
pub fn local_folder(mount: &Mount) -> Option<std::path::PathBuf> {
    url::Url::parse(&mount.uri).ok().filter(|u| u.scheme() == "file").and_then(|u| u.to_file_path().ok())
}

/// Strata's own folder in every under store (staged writes).
pub const STAGING_DIR: &str = "%strata";

/// The folder of writes' staged files, in `STAGING_DIR`.
pub const STAGED_DIR: &str = "tmp";

/// The staging name of a write of `version` (see [`staging_path`]).
pub fn staged_name(version: u64) -> String {
    format!("{STAGED_DIR}/{version}")
}

/// The files of a multipart upload written in place, in `STAGING_DIR/uploads/<id>/`: written by
/// the worker, kept by the master's reclaimer while the upload lives.
pub mod upload_files {
    /// The folder of the uploads, in `STAGING_DIR`.
    pub const DIR: &str = "uploads";
    /// The data file, `data-<part size>`.
    pub const DATA: &str = "data-";
    /// A claimed slot, `slot-<part number>`.
    pub const SLOT: &str = "slot-";
    pub const PART_SIZE: &str = "part-size";
    pub const LOCK: &str = "lock";
    pub const SEALED: &str = "sealed";
    /// What every file of an upload's folder starts with.
    pub const ALL: [&str; 5] = [DATA, SLOT, PART_SIZE, LOCK, SEALED];
}

const ESCAPED: &AsciiSet = &CONTROLS.add(b'%').add(b'#');

/// The path of an S3 key in an under store: the same tree as the bucket, each `/`-separated
/// segment kept as it is but for `%`, `#` and control characters (percent-escaped), and the
/// segments a file system reads as navigation: `.` and `..` become `%2E` and `%2E%2E`, an empty
/// one `%`. So `../x` stays inside its mount, and the mapping is reversible ([`path_key`]).
pub fn key_path(key: &str) -> Result<Path> {
    let segments: Vec<String> = key
        .split('/')
        .map(|seg| match seg {
            "" => "%".to_string(),
            "." => "%2E".to_string(),
            ".." => "%2E%2E".to_string(),
            s => utf8_percent_encode(s, ESCAPED).to_string(),
        })
        .collect();
    Path::parse(segments.join("/")).map_err(|e| Error::invalid(format!("key {key:?} has no under-store path: {e}")))
}

/// The longest file name most file systems take (NAME_MAX).
const NAME_MAX: usize = 255;

/// Whether `key` can become a file under a local-folder mount: S3 allows keys a file system
/// does not (a segment over 255 bytes). Checked before a write commits, so that such a key is
/// refused instead of committed without its bytes. Other under stores take any key; `a`
/// beside `a/b` is placed by [`crate::ufs_local`] (a 255-byte name that needs its escaped
/// form there fails when its bytes move into place, and the commit is undone).
pub fn check_placeable(mount: &Mount, key: &str) -> Result<()> {
    if !mount.uri.starts_with("file:") {
        return Ok(());
    }
    let path = key_path(key)?;
    if let Some(long) = path.parts().map(|p| p.as_ref().to_string()).find(|p| p.len() > NAME_MAX) {
        return Err(Error::invalid(format!(
            "the bucket's under store is a local folder, which cannot hold key {key:?}: the part {}... is longer than {} bytes",
            &long[..long.len().min(32)],
            NAME_MAX
        )));
    }
    Ok(())
}

/// Strata's own files in an under store (writes in flight, multipart parts) live under
/// `%strata/`, a name [`key_path`] never produces: `%` in a key is always escaped.
pub fn staging_path(name: &str) -> Result<Path> {
    Path::parse(format!("{STAGING_DIR}/{name}")).map_err(|e| Error::internal(format!("bad staging name {name:?}: {e}")))
}

/// The S3 key of an under-store path written by [`key_path`] (or by anyone else), also one
/// a local folder placed beside a name of the other kind (`a%` for `a`, see [`crate::ufs_local`]).
pub fn path_key(path: &Path) -> String {
    path.parts()
        .map(|p| {
            let s = p.as_ref();
            let s = if s.len() > 1 { s.strip_suffix(crate::ufs_local::BESIDE).unwrap_or(s) } else { s };
            match s {
                "%" => String::new(),
                s => percent_decode_str(s).decode_utf8_lossy().into_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn keys_stay_inside_their_folder_and_map_back() {
        let root = tempfile_dir();
        let inner = root.join("bucket");
        std::fs::create_dir_all(&inner).unwrap();
        let fs = LocalFileSystem::new_with_prefix(&inner).unwrap();
        let keys = ["../x", "a/./b", "a//c", "/lead", "sp ace+%25#1?q", "a/%/d", "ü/..", "%2E%2E/y", "file#1", "dir/"];
        for k in keys {
            let p = key_path(k).unwrap();
            assert_eq!(path_key(&p), k);
            fs.put(&p, PutPayload::from_static(b"1")).await.unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        // Nothing was written beside the bucket's folder.
        let outside: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(outside, vec![std::ffi::OsString::from("bucket")]);
        // Plain keys are plain files.
        fs.put(&key_path("data/part-0.parquet").unwrap(), PutPayload::from_static(b"x")).await.unwrap();
        assert!(inner.join("data/part-0.parquet").is_file());
        assert!(inner.join("sp ace+%2525%231?q").is_file());
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn cloud_stores_over_https_open_with_the_ring_tls_provider() {
        for uri in ["s3://data", "az://data", "https://127.0.0.1:1/dav/"] {
            let mut mount = Mount { uri: uri.into(), ..Default::default() };
            if uri.starts_with("s3") {
                mount.options.insert("endpoint".into(), "https://127.0.0.1:1".into());
                mount.options.insert("region".into(), "us-east-1".into());
            }
            if uri.starts_with("az") {
                mount.options.insert("account_name".into(), "acct".into());
                mount.options.insert("access_key".into(), "a2V5".into());
            }
            open_store(&mount).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
        }
    }

    #[test]
    fn retries_give_up_within_seconds_unless_a_mount_says_otherwise() {
        let mut mount = Mount { uri: "s3://data".into(), ..Default::default() };
        let r = retry_config(&mount).unwrap();
        assert_eq!((r.max_retries, r.retry_timeout.as_secs()), (6, 45));
        mount.options.insert("max_retries".into(), "2".into());
        mount.options.insert("retry_timeout".into(), "1m 30s".into());
        let r = retry_config(&mount).unwrap();
        assert_eq!((r.max_retries, r.retry_timeout.as_secs()), (2, 90));
        mount.options.insert("retry_timeout".into(), "soon".into());
        assert!(retry_config(&mount).unwrap_err().message.contains("retry_timeout"));
    }

    #[test]
    fn a_full_disk_is_told_apart_from_other_failures() {
        let full = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from_raw_os_error(28)),
        };
        let e = ufs_error("writing b/k", full);
        assert_eq!(e.kind, crate::error::ErrorKind::StorageFull);
        assert!(e.message.starts_with("writing b/k: ") && e.message.contains("disk is full"), "{}", e.message);
        let e = folder_error(std::path::Path::new("/srv/ufs/b"), std::io::Error::from_raw_os_error(30));
        assert_eq!(e.kind, crate::error::ErrorKind::StorageReadOnly);
        assert!(e.message.starts_with("creating the under store folder b: ") && !e.message.contains("/srv"));
        let read_only = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from_raw_os_error(30)),
        };
        let e = ufs_error("writing b/k", read_only);
        assert_eq!(e.kind, crate::error::ErrorKind::StorageReadOnly);
        assert!(e.message.contains("disk is read-only"), "{}", e.message);
        let other = object_store::Error::Generic { store: "S3", source: "connection reset".into() };
        assert_eq!(ufs_error("writing b/k", other).kind, crate::error::ErrorKind::Unavailable);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("strata-ufs-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
