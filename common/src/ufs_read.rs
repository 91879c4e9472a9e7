//! Reading a byte range of an object from its under store: the worker's page fill and the
//! gateway's read when no worker is alive. The read is refused (UfsChanged) if the object's
//! under-store ETag is no longer the one recorded at write time.

use std::ops::Range;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore};

use crate::api::ByteStream;
use crate::error::{Error, ErrorKind, Result};
use crate::ufs::ufs_error;

/// One range of one under-store object.
#[derive(Clone)]
pub struct UfsRange<'a> {
    pub store: &'a dyn ObjectStore,
    pub path: &'a Path,
    pub range: Range<u64>,
    /// The ETag the under store gave when the object was written; empty: not checked.
    pub ufs_etag: &'a str,
    /// What is being read, for errors ("reading bucket/key").
    pub what: &'a str,
}

impl UfsRange<'_> {
    async fn get(&self) -> Result<GetResult> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(self.range.clone())),
            if_match: (!self.ufs_etag.is_empty()).then(|| self.ufs_etag.to_string()),
            ..Default::default()
        };
        self.store.get_opts(self.path, opts).await.map_err(|e| ufs_error(self.what, e))
    }

    /// The range as a stream, as the under store sends it.
    pub async fn open(self) -> Result<ByteStream> {
        let got = self.get().await?;
        let what = self.what.to_string();
        Ok(got.into_stream().map_err(move |e| ufs_error(&what, e)).boxed())
    }

    /// The whole range in memory; an object shorter than the range changed behind Strata's back.
    pub async fn read(self) -> Result<Bytes> {
        let got = self.get().await?;
        let data = got.bytes().await.map_err(|e| ufs_error(self.what, e))?;
        let want = self.range.end - self.range.start;
        if data.len() as u64 != want {
            return Err(Error::new(
                ErrorKind::UfsChanged,
                format!("{}: the under store returned {} bytes for a {want}-byte page", self.what, data.len()),
            ));
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    async fn store() -> (InMemory, Path, String) {
        let s = InMemory::new();
        let p = Path::from("b/k");
        let put = s.put(&p, PutPayload::from_static(b"0123456789")).await.unwrap();
        (s, p, put.e_tag.unwrap_or_default())
    }

    fn range<'a>(s: &'a InMemory, p: &'a Path, r: Range<u64>, etag: &'a str) -> UfsRange<'a> {
        UfsRange { store: s, path: p, range: r, ufs_etag: etag, what: "reading b/k" }
    }

    #[tokio::test]
    async fn reads_and_streams_the_range() {
        let (s, p, etag) = store().await;
        assert_eq!(range(&s, &p, 2..5, &etag).read().await.unwrap(), Bytes::from_static(b"234"));
        let streamed: Vec<Bytes> = range(&s, &p, 5..10, "").open().await.unwrap().try_collect().await.unwrap();
        assert_eq!(streamed.concat(), b"56789");
    }

    #[tokio::test]
    async fn a_changed_etag_is_ufs_changed() {
        let (s, p, _) = store().await;
        let e = range(&s, &p, 0..3, "not-the-etag").read().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::UfsChanged);
        assert!(e.message.starts_with("reading b/k: "), "{}", e.message);
        let e = range(&s, &p, 0..3, "not-the-etag").open().await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::UfsChanged);
    }

    #[tokio::test]
    async fn a_missing_or_shorter_object_is_ufs_changed() {
        let (s, _, _) = store().await;
        let gone = Path::from("b/gone");
        assert_eq!(range(&s, &gone, 0..3, "").read().await.unwrap_err().kind, ErrorKind::UfsChanged);
        let (s, p, _) = store().await;
        let e = range(&s, &p, 5..20, "").read().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::UfsChanged);
        assert!(e.message.contains("returned 5 bytes for a 15-byte page"), "{}", e.message);
    }
}
