//! Backups and checkpoints: a consistent snapshot of the whole metadata store (one read
//! transaction) as a file any backend can be restored from.
//!
//! Format: the 16-byte magic, then records `u32 key length, key, u32 value length, value`
//! (big-endian), then the trailer `u32 0xFFFFFFFF, u64 record count, u32 CRC32C` of all bytes
//! before the CRC. A restore checks the whole file before it writes anything.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use crc_fast::{CrcAlgorithm, Digest};
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_common::kv::{KvStore, transact};
use strata_common::proto::Mount;
use strata_common::ufs::UfsRegistry;
use strata_common::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::schema::Schema;

pub const MAGIC: &[u8; 16] = b"STRATA-BACKUP-01";
const END: u32 = u32::MAX;
const PAGE: usize = 1000;
const CHUNK: usize = 1 << 20;
/// Rows per restore transaction: under etcd's default of 128 operations.
const RESTORE_BATCH: usize = 100;
/// No key or value the master writes comes near this: a larger length is damage.
const MAX_RECORD: u32 = 64 << 20;

/// A chunk of a snapshot and the number of keys in it and before it.
pub type Chunk = (Bytes, u64);

/// Streams a snapshot of `store` in chunks of about 1 MiB.
pub fn snapshot(store: Arc<dyn KvStore>) -> mpsc::Receiver<Result<Chunk>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(e) = write_snapshot(store.as_ref(), &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

async fn write_snapshot(store: &dyn KvStore, tx: &mpsc::Sender<Result<Chunk>>) -> Result<()> {
    let gone = || Error::unavailable("the backup's reader went away");
    let mut txn = store.begin().await?;
    let mut crc = Digest::new(CrcAlgorithm::Crc32Iscsi);
    let mut buf = BytesMut::with_capacity(CHUNK + 4096);
    buf.put_slice(MAGIC);
    let mut count = 0u64;
    let mut from = Vec::new();
    loop {
        let rows = txn.get_range(&from, &[0xFF], PAGE, false).await?;
        let Some((last, _)) = rows.last() else { break };
        from = last.clone();
        from.push(0);
        let n = rows.len();
        for (k, v) in rows {
            buf.put_u32(k.len() as u32);
            buf.put_slice(&k);
            buf.put_u32(v.len() as u32);
            buf.put_slice(&v);
            count += 1;
        }
        if buf.len() >= CHUNK {
            crc.update(&buf);
            tx.send(Ok((buf.split().freeze(), count))).await.map_err(|_| gone())?;
        }
        if n < PAGE {
            break;
        }
    }
    buf.put_u32(END);
    buf.put_u64(count);
    crc.update(&buf);
    buf.put_u32(crc.finalize() as u32);
    tx.send(Ok((buf.freeze(), count))).await.map_err(|_| gone())
}

/// Reads a backup batch by batch; the last call checks the trailer.
pub(crate) struct BackupReader<R> {
    inner: R,
    crc: Digest,
    count: u64,
    done: bool,
}

impl<R: AsyncRead + Unpin> BackupReader<R> {
    pub(crate) async fn new(inner: R) -> Result<BackupReader<R>> {
        let mut r = BackupReader { inner, crc: Digest::new(CrcAlgorithm::Crc32Iscsi), count: 0, done: false };
        if r.exact(MAGIC.len()).await? != MAGIC {
            return Err(Error::invalid("not a Strata backup (wrong magic bytes)"));
        }
        Ok(r)
    }

    /// The next `n` bytes; memory grows with what is read, not with a (damaged) length.
    async fn exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut b = Vec::with_capacity(n.min(CHUNK));
        let got = (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut b)
            .await
            .map_err(|e| Error::invalid(format!("the backup file is unreadable: {e}")))?;
        if got < n {
            return Err(Error::invalid(format!("the backup file is truncated: {n} bytes expected, {got} left")));
        }
        self.crc.update(&b);
        Ok(b)
    }

    async fn u32(&mut self) -> Result<u32> {
        let b = self.exact(4).await?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Up to `RESTORE_BATCH` rows; an empty batch at the end, once the trailer checked out.
    pub(crate) async fn next_batch(&mut self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut batch = Vec::with_capacity(RESTORE_BATCH);
        while !self.done && batch.len() < RESTORE_BATCH {
            let klen = self.u32().await?;
            if klen == END {
                self.check_trailer().await?;
                self.done = true;
                break;
            }
            if klen > MAX_RECORD {
                return Err(Error::invalid(format!("the backup file is damaged: a {klen}-byte key")));
            }
            let key = self.exact(klen as usize).await?;
            let vlen = self.u32().await?;
            if vlen > MAX_RECORD {
                return Err(Error::invalid(format!("the backup file is damaged: a {vlen}-byte value")));
            }
            let value = self.exact(vlen as usize).await?;
            batch.push((key, value));
            self.count += 1;
        }
        Ok(batch)
    }

    async fn check_trailer(&mut self) -> Result<()> {
        let n = self.exact(8).await?;
        let expected = u64::from_be_bytes(n.try_into().map_err(|_| Error::internal("8 bytes"))?);
        let sum = self.crc.clone().finalize() as u32;
        let mut b = [0u8; 4];
        self.inner
            .read_exact(&mut b)
            .await
            .map_err(|e| Error::invalid(format!("the backup file is truncated: {e}")))?;
        let stored = u32::from_be_bytes(b);
        let trailing =
            self.inner.read(&mut b).await.map_err(|e| Error::invalid(format!("the backup file is unreadable: {e}")))?;
        if trailing > 0 {
            return Err(Error::invalid("the backup file is damaged: bytes after its trailer"));
        }
        if expected != self.count || stored != sum {
            return Err(Error::invalid(format!(
                "the backup file is damaged: {} records (trailer says {expected}), CRC32C {sum:08x} (trailer says {stored:08x})",
                self.count
            )));
        }
        Ok(())
    }
}

/// Checks a whole backup file without writing anything; returns its number of keys.
pub async fn verify(path: &std::path::Path) -> Result<u64> {
    let mut r = BackupReader::new(open(path).await?).await?;
    while !r.next_batch().await?.is_empty() {}
    Ok(r.count)
}

async fn open(path: &std::path::Path) -> Result<tokio::io::BufReader<tokio::fs::File>> {
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::invalid(format!("cannot open the backup {}: {e}", path.display())))?;
    Ok(tokio::io::BufReader::with_capacity(1 << 20, f))
}

/// Loads the backup at `path` into `store`, which must be empty. The file is checked whole
/// first, so a damaged one writes nothing. `progress` is told the keys written so far.
pub async fn restore(store: &dyn KvStore, path: &std::path::Path, progress: impl Fn(u64, u64)) -> Result<u64> {
    let total = verify(path).await?;
    // Empty (or left by a restore that did not finish): marked until the last batch is in.
    transact(store, |t| {
        Box::pin(async move {
            let unfinished = t.restoring().await?;
            if !unfinished && !t.get_range(&[], &[0xFF], 1, false).await?.is_empty() {
                return Err(Error::invalid(
                    "the metadata store is not empty: restore only into a new store (a new embedded file, etcd \
                     prefix or FDB cluster)",
                ));
            }
            t.set_restoring(true);
            Ok(())
        })
    })
    .await?;
    let mut r = BackupReader::new(open(path).await?).await?;
    let mut done = 0u64;
    loop {
        let rows = r.next_batch().await?;
        if rows.is_empty() {
            transact(store, |t| {
                Box::pin(async move {
                    t.set_restoring(false);
                    Ok(())
                })
            })
            .await?;
            return Ok(done);
        }
        let n = rows.len() as u64;
        transact(store, |t| {
            let rows = rows.clone();
            Box::pin(async move {
                for (k, v) in rows {
                    t.set(&k, &v);
                }
                Ok(())
            })
        })
        .await?;
        done += n;
        progress(done, total);
    }
}

/// Writes a checkpoint into the under-store folder `uri` as `checkpoint-<time>.strata`, and
/// keeps the newest `keep` there.
pub async fn write_checkpoint(store: Arc<dyn KvStore>, uri: &str, keep: usize) -> Result<String> {
    let ufs: Arc<dyn ObjectStore> =
        UfsRegistry::default().open(&Mount { uri: uri.trim_end_matches('/').to_string(), ..Default::default() })?;
    let name = format!("checkpoint-{}.strata", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let path = object_store::path::Path::from(name.as_str());
    let ufs_err = |e: object_store::Error| Error::unavailable(format!("checkpoint store {uri}: {e}"));
    let mut upload = object_store::WriteMultipart::new(ufs.put_multipart(&path).await.map_err(ufs_err)?);
    let mut rx = snapshot(store);
    let mut keys = 0;
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok((data, n)) => {
                upload.write(&data);
                keys = n;
            }
            Err(e) => {
                let _ = upload.abort().await;
                return Err(e);
            }
        }
    }
    upload.finish().await.map_err(ufs_err)?;
    let mut names: Vec<object_store::path::Path> = ufs
        .list(None)
        .filter_map(|m| async move { m.ok().map(|m| m.location) })
        .filter(|p| {
            let n = p.filename().unwrap_or_default().to_string();
            async move { n.starts_with("checkpoint-") && n.ends_with(".strata") }
        })
        .collect()
        .await;
    names.sort();
    let old = names.len().saturating_sub(keep);
    for p in &names[..old] {
        let _ = ufs.delete(p).await;
    }
    tracing::info!(keys, checkpoint = %format!("{uri}/{name}"), "wrote a metadata checkpoint");
    Ok(name)
}

/// Fails when a restore into `store` did not finish.
pub async fn check_not_restoring(store: &dyn KvStore) -> Result<()> {
    let marked = transact(store, |t| Box::pin(async move { t.restoring().await })).await?;
    if marked {
        return Err(Error::invalid(
            "a restore into this metadata store did not finish: run `strata master --restore FILE` again \
             (it starts over), or point the master at another store",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fill(store: &dyn KvStore, n: u32) {
        transact(store, |t| {
            Box::pin(async move {
                for i in 0..n {
                    t.set(format!("\x02k{i:05}").as_bytes(), &i.to_le_bytes());
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    }

    async fn rows(store: &dyn KvStore) -> Vec<(Vec<u8>, Vec<u8>)> {
        transact(store, |t| Box::pin(async move { t.get_range(&[], &[0xFF], 0, false).await })).await.unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_restores_whole_and_a_damaged_or_unfinished_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = crate::store::open("memory://").await.unwrap();
        fill(src.as_ref(), 2500).await;
        let mut rx = snapshot(src.clone());
        let mut file = Vec::new();
        while let Some(c) = rx.recv().await {
            file.extend_from_slice(&c.unwrap().0);
        }
        let path = dir.path().join("b");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(verify(&path).await.unwrap(), 2500);

        let dst = crate::store::open("memory://").await.unwrap();
        assert_eq!(restore(dst.as_ref(), &path, |_, _| {}).await.unwrap(), 2500);
        assert_eq!(rows(dst.as_ref()).await, rows(src.as_ref()).await);
        check_not_restoring(dst.as_ref()).await.unwrap();
        let again = restore(dst.as_ref(), &path, |_, _| {}).await.unwrap_err();
        assert!(again.message.contains("not empty"), "{again}");

        let mut bad = file.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let fresh = crate::store::open("memory://").await.unwrap();
        let e = restore(fresh.as_ref(), &path, |_, _| {}).await.unwrap_err();
        assert!(e.message.contains("damaged") || e.message.contains("truncated"), "{e}");
        assert!(rows(fresh.as_ref()).await.is_empty(), "nothing written from a damaged file");

        // A restore cut short leaves its mark: the store is refused until a restore finishes.
        transact(fresh.as_ref(), |t| {
            Box::pin(async move {
                t.set_restoring(true);
                t.set(b"\x02partial", b"x");
                Ok(())
            })
        })
        .await
        .unwrap();
        assert!(check_not_restoring(fresh.as_ref()).await.is_err());
        std::fs::write(&path, &file).unwrap();
        restore(fresh.as_ref(), &path, |_, _| {}).await.unwrap();
        check_not_restoring(fresh.as_ref()).await.unwrap();
    }
}
