//! The master's fuzz target (see `strata_common::fuzzing`): the backup reader, which reads
//! files an operator hands to `strata master --restore`.

use crc_fast::{CrcAlgorithm, Digest};
use strata_common::Result;
use strata_common::fuzzing::capped;

use crate::backup::{BackupReader, MAGIC};

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn read_all(file: &[u8]) -> Result<Rows> {
    futures::executor::block_on(async {
        let mut r = BackupReader::new(file).await?;
        let mut rows = Vec::new();
        loop {
            let batch = r.next_batch().await?;
            if batch.is_empty() {
                return Ok(rows);
            }
            rows.extend(batch);
        }
    })
}

/// The format as `backup.rs` documents it, written independently of its writer.
fn encode(rows: &Rows) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (k, v) in rows {
        for part in [k, v] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(&u32::MAX.to_be_bytes());
    out.extend_from_slice(&(rows.len() as u64).to_be_bytes());
    let mut crc = Digest::new(CrcAlgorithm::Crc32Iscsi);
    crc.update(&out);
    out.extend_from_slice(&(crc.finalize() as u32).to_be_bytes());
    out
}

/// Target `backup`: the input as a backup file (accepted only if it is exactly the encoding
/// of what was read), then as rows (split at 0xFE) written, read back whole, and read back
/// truncated or with one byte changed (always refused).
pub fn backup(data: &[u8]) {
    let data = capped(data);
    if let Ok(rows) = read_all(data) {
        assert!(encode(&rows) == data, "a backup was accepted that is not the encoding of its {} rows", rows.len());
    }
    let mut fields = data.split(|&b| b == 0xFE);
    let mut rows = Rows::new();
    while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
        rows.push((k.to_vec(), v.to_vec()));
    }
    let file = encode(&rows);
    assert_eq!(read_all(&file).ok().as_ref(), Some(&rows), "rows did not read back");
    let h = data.iter().fold(7usize, |h, &b| h.wrapping_mul(31).wrapping_add(b as usize));
    assert!(read_all(&file[..h % file.len()]).is_err(), "a truncated backup was accepted");
    let mut flipped = file.clone();
    flipped[h % file.len()] ^= 1 << (h % 8);
    assert!(read_all(&flipped).is_err(), "a backup with a changed byte was accepted");
}

#[cfg(test)]
mod tests {
    //! Coverage-guided fuzzing is `make fuzz`; this replays its corpus and regressions.
    #[test]
    fn fuzz_corpus_replays_backup() {
        strata_common::fuzzing::replay("backup", 3000, super::backup);
    }

    /// Found by the target's round-trip check: the reader stopped at the CRC and accepted
    /// whatever followed it.
    #[test]
    fn a_backup_with_bytes_after_its_trailer_is_refused() {
        let rows = vec![(b"k".to_vec(), b"v".to_vec())];
        let mut file = super::encode(&rows);
        assert_eq!(super::read_all(&file).ok(), Some(rows));
        file.push(b'x');
        let e = super::read_all(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("bytes after its trailer"), "{e}");
    }

    /// A damaged length near the 64 MiB limit is refused as a truncation, having read (and
    /// allocated) only what the file holds.
    #[test]
    fn a_huge_length_in_a_short_file_is_a_truncation() {
        let mut file = crate::backup::MAGIC.to_vec();
        file.extend_from_slice(&(63u32 << 20).to_be_bytes());
        file.extend_from_slice(b"abc");
        let e = super::read_all(&file).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("truncated"), "{e}");
    }
}
