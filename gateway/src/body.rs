//! Request bodies on their way to a worker: hashed as they stream (MD5 for the ETag, the
//! SHA-256 of a signed payload, the `x-amz-checksum-*` algorithm) and checked at their end.
//! A body that fails a check ends in an error instead of its end, so the worker aborts the
//! write and nothing is stored; the S3 error to answer is left in the [`Outcome`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use strata_common::api::ByteStream;

use crate::error::{S3Error, S3ErrorCode, S3Result};

pub type BodyStream = Pin<Box<dyn Stream<Item = S3Result<Bytes>> + Send>>;

/// Trailers found at the end of an aws-chunked body, lower-cased names.
pub type Trailers = Arc<Mutex<HashMap<String, String>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

pub const ALL_ALGOS: [ChecksumAlgo; 5] =
    [ChecksumAlgo::Crc32, ChecksumAlgo::Crc32c, ChecksumAlgo::Crc64Nvme, ChecksumAlgo::Sha1, ChecksumAlgo::Sha256];

impl ChecksumAlgo {
    pub fn parse(name: &str) -> Option<ChecksumAlgo> {
        ALL_ALGOS.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgo::Crc32 => "CRC32",
            ChecksumAlgo::Crc32c => "CRC32C",
            ChecksumAlgo::Crc64Nvme => "CRC64NVME",
            ChecksumAlgo::Sha1 => "SHA1",
            ChecksumAlgo::Sha256 => "SHA256",
        }
    }
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgo::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgo::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgo::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgo::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgo::Sha256 => "x-amz-checksum-sha256",
        }
    }
    pub fn hasher(self) -> Hasher {
        match self {
            ChecksumAlgo::Crc32 => Hasher::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc), 4),
            ChecksumAlgo::Crc32c => Hasher::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi), 4),
            ChecksumAlgo::Crc64Nvme => Hasher::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme), 8),
            ChecksumAlgo::Sha1 => Hasher::Sha1(Sha1::new()),
            ChecksumAlgo::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }
}

pub enum Hasher {
    Crc(crc_fast::Digest, usize),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }
    /// The digest's bytes (big-endian for CRCs, as S3 sends them).
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, width) => d.finalize().to_be_bytes()[8 - width..].to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// What the body must turn out to be.
#[derive(Default)]
pub struct Expect {
    pub content_md5: Option<String>,
    pub sha256_hex: Option<String>,
    /// The algorithm, and its value when given as a header (else it comes in a trailer, or
    /// without `trailers` it is only computed).
    pub checksum: Option<(ChecksumAlgo, Option<String>)>,
    pub length: Option<u64>,
    pub trailers: Option<Trailers>,
}

#[derive(Debug, Clone)]
pub struct Verified {
    pub md5: [u8; 16],
    pub size: u64,
    pub checksum: Option<(ChecksumAlgo, String)>,
}

/// Where the verifying stream leaves its verdict.
pub type Outcome = Arc<Mutex<Option<S3Result<Verified>>>>;

struct Verify {
    inner: BodyStream,
    expect: Expect,
    md5: Md5,
    sha256: Option<Sha256>,
    checksum: Option<Hasher>,
    size: u64,
    outcome: Outcome,
}

impl Verify {
    fn conclude(&mut self) -> S3Result<Verified> {
        if let Some(len) = self.expect.length
            && self.size != len
        {
            return Err(S3Error::new(
                S3ErrorCode::IncompleteBody,
                format!("You did not provide the number of bytes specified ({len}); {} arrived", self.size),
            ));
        }
        let md5: [u8; 16] = std::mem::take(&mut self.md5).finalize().into();
        if let Some(given) = &self.expect.content_md5
            && B64.decode(given).map(|g| g != md5).unwrap_or(true)
        {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
        if let (Some(h), Some(want)) = (self.sha256.take(), &self.expect.sha256_hex)
            && hex::encode(h.finalize()) != *want
        {
            return Err(S3Error::new(
                S3ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        let checksum = match (self.expect.checksum.take(), self.checksum.take()) {
            (Some((algo, given)), Some(h)) => {
                let value = B64.encode(h.finish());
                let given = given.or_else(|| {
                    self.expect
                        .trailers
                        .as_ref()
                        .and_then(|t| t.lock().unwrap_or_else(|p| p.into_inner()).get(algo.header()).cloned())
                });
                match given {
                    Some(g) if g == value => Some((algo, value)),
                    Some(_) => {
                        return Err(S3Error::new(
                            S3ErrorCode::BadDigest,
                            format!("The {} you specified did not match the calculated checksum.", algo.name()),
                        ));
                    }
                    // Asked to compute it (a copy), not to check it.
                    None if self.expect.trailers.is_none() => Some((algo, value)),
                    None => {
                        return Err(S3Error::invalid_request(format!(
                            "x-amz-trailer announced {} but the body carried no such trailer",
                            algo.header()
                        )));
                    }
                }
            }
            _ => None,
        };
        Ok(Verified { md5, size: self.size, checksum })
    }
}

/// Wraps `body` so that it is checked against `expect` as it streams to a worker.
pub fn verify(body: BodyStream, expect: Expect, outcome: Outcome) -> ByteStream {
    let state = Verify {
        inner: body,
        md5: Md5::new(),
        sha256: expect.sha256_hex.as_ref().map(|_| Sha256::new()),
        checksum: expect.checksum.as_ref().map(|(a, _)| a.hasher()),
        expect,
        size: 0,
        outcome,
    };
    futures::stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        let fail = |st: &Verify, e: S3Error| {
            let msg = format!("request body rejected: {}", e.message);
            *st.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(Err(e));
            strata_common::Error::invalid(msg)
        };
        match st.inner.next().await {
            Some(Ok(b)) => {
                st.size += b.len() as u64;
                if st.expect.length.is_some_and(|l| st.size > l) {
                    let e = fail(&st, S3Error::invalid_request("the body is longer than its declared length"));
                    return Some((Err(e), None));
                }
                st.md5.update(&b);
                if let Some(h) = st.sha256.as_mut() {
                    h.update(&b);
                }
                if let Some(h) = st.checksum.as_mut() {
                    h.update(&b);
                }
                Some((Ok(b), Some(st)))
            }
            Some(Err(e)) => {
                let e = fail(&st, e);
                Some((Err(e), None))
            }
            None => match st.conclude() {
                Ok(v) => {
                    *st.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ok(v));
                    None
                }
                Err(e) => {
                    let e = fail(&st, e);
                    Some((Err(e), None))
                }
            },
        }
    })
    .boxed()
}

/// The checksum of a multipart object: the checksum of the parts' checksums, with `-N`.
pub fn composite(algo: ChecksumAlgo, parts: &[String]) -> Option<String> {
    let mut h = algo.hasher();
    for p in parts {
        h.update(&B64.decode(p).ok()?);
    }
    Some(format!("{}-{}", B64.encode(h.finish()), parts.len()))
}

impl ChecksumAlgo {
    /// The CRC algorithms, whose values of consecutive pieces combine into the whole's.
    fn crc(self) -> Option<(crc_fast::CrcAlgorithm, usize)> {
        match self {
            ChecksumAlgo::Crc32 => Some((crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4)),
            ChecksumAlgo::Crc32c => Some((crc_fast::CrcAlgorithm::Crc32Iscsi, 4)),
            ChecksumAlgo::Crc64Nvme => Some((crc_fast::CrcAlgorithm::Crc64Nvme, 8)),
            ChecksumAlgo::Sha1 | ChecksumAlgo::Sha256 => None,
        }
    }
    pub fn is_crc(self) -> bool {
        self.crc().is_some()
    }
}

/// The full-object checksum of a multipart object: the parts' CRCs (base64, with each part's
/// size) combined into the CRC of the whole, without reading its bytes. None for a hash
/// algorithm, an empty list or a value that is not a CRC of this width.
pub fn full_object(algo: ChecksumAlgo, parts: &[(String, u64)]) -> Option<String> {
    let (crc, width) = algo.crc()?;
    let value = |b64: &str| -> Option<u64> {
        let bytes = B64.decode(b64).ok().filter(|b| b.len() == width)?;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    let (first, rest) = parts.split_first()?;
    let mut whole = value(&first.0)?;
    for (v, size) in rest {
        whole = crc_fast::checksum_combine(crc, whole, value(v)?, *size);
    }
    Some(B64.encode(&whole.to_be_bytes()[8 - width..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[test]
    fn full_object_crcs_combine_the_parts() {
        let data = b"the quick brown fox jumps over the lazy dog, twice over";
        for algo in [ChecksumAlgo::Crc32, ChecksumAlgo::Crc32c, ChecksumAlgo::Crc64Nvme] {
            let of = |b: &[u8]| {
                let mut h = algo.hasher();
                h.update(b);
                B64.encode(h.finish())
            };
            let pieces = [&data[..10], &data[10..11], &data[11..11], &data[11..]];
            let parts: Vec<(String, u64)> = pieces.iter().map(|p| (of(p), p.len() as u64)).collect();
            assert_eq!(full_object(algo, &parts), Some(of(data)), "{}", algo.name());
            assert_eq!(full_object(algo, &parts[..1]), Some(of(&data[..10])));
        }
        assert_eq!(full_object(ChecksumAlgo::Sha256, &[("AAAA".into(), 3)]), None);
        assert_eq!(full_object(ChecksumAlgo::Crc32, &[]), None);
        assert_eq!(full_object(ChecksumAlgo::Crc32, &[("AAAAAAAAAAA=".into(), 3)]), None);
    }

    async fn run(
        data: &'static [u8],
        expect: Expect,
    ) -> (Result<Vec<Bytes>, strata_common::Error>, Option<S3Result<Verified>>) {
        let outcome = Outcome::default();
        let body: BodyStream = futures::stream::iter(data.chunks(3).map(|c| Ok(Bytes::from_static(c)))).boxed();
        let r = verify(body, expect, outcome.clone()).try_collect().await;
        let o = outcome.lock().unwrap().take();
        (r, o)
    }

    #[tokio::test]
    async fn checks_each_digest() {
        // CRC32 of "hello" is 0x3610a686.
        let (r, o) = run(
            b"hello",
            Expect { checksum: Some((ChecksumAlgo::Crc32, Some("NhCmhg==".into()))), ..Default::default() },
        )
        .await;
        assert!(r.is_ok());
        let v = o.unwrap().unwrap();
        assert_eq!(hex::encode(v.md5), "5d41402abc4b2a76b9719d911017c592");
        let (r, o) = run(
            b"hellp",
            Expect { checksum: Some((ChecksumAlgo::Crc32, Some("NhCmhg==".into()))), ..Default::default() },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(o.unwrap().unwrap_err().code, S3ErrorCode::BadDigest);
        let (_, o) =
            run(b"hello", Expect { content_md5: Some("XUFAKrxLKna5cZ2REBfFkg==".into()), ..Default::default() }).await;
        assert!(o.unwrap().is_ok());
        let (_, o) = run(b"hello", Expect { sha256_hex: Some("00".repeat(32)), ..Default::default() }).await;
        assert_eq!(o.unwrap().unwrap_err().code, S3ErrorCode::XAmzContentSHA256Mismatch);
        let (_, o) = run(b"hello", Expect { length: Some(6), ..Default::default() }).await;
        assert_eq!(o.unwrap().unwrap_err().code, S3ErrorCode::IncompleteBody);
        let (_, o) = run(
            b"hello",
            Expect {
                checksum: Some((ChecksumAlgo::Crc64Nvme, None)),
                trailers: Some(Trailers::default()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(o.unwrap().unwrap_err().code, S3ErrorCode::InvalidRequest);
    }

    #[test]
    fn algorithms_by_name_in_any_case() {
        for a in ALL_ALGOS {
            assert_eq!(ChecksumAlgo::parse(&a.name().to_ascii_lowercase()), Some(a));
            assert_eq!(a.header(), format!("x-amz-checksum-{}", a.name().to_ascii_lowercase()));
        }
        assert_eq!(ChecksumAlgo::parse("MD5"), None);
        assert_eq!(ChecksumAlgo::parse(""), None);
    }

    #[test]
    fn crc_digests_are_big_endian_of_their_width() {
        let mut h = ChecksumAlgo::Crc32.hasher();
        h.update(b"hello");
        assert_eq!(h.finish(), vec![0x36, 0x10, 0xa6, 0x86]);
        let mut h = ChecksumAlgo::Crc64Nvme.hasher();
        h.update(b"hello");
        assert_eq!(h.finish().len(), 8);
        assert_eq!(ChecksumAlgo::Sha256.hasher().finish().len(), 32);
    }

    #[test]
    fn a_composite_checksum_hashes_the_part_checksums() {
        // CRC32 of the bytes 36 10 a6 86 (the CRC32 of "hello"), then "-1".
        let mut h = ChecksumAlgo::Crc32.hasher();
        h.update(&[0x36, 0x10, 0xa6, 0x86]);
        let want = format!("{}-1", B64.encode(h.finish()));
        assert_eq!(composite(ChecksumAlgo::Crc32, &["NhCmhg==".into()]), Some(want));
        assert_eq!(composite(ChecksumAlgo::Crc32, &["not base64!".into()]), None);
    }

    #[tokio::test]
    async fn a_longer_body_than_declared_fails_before_its_end() {
        let (r, o) = run(b"hello world", Expect { length: Some(4), ..Default::default() }).await;
        assert!(r.is_err());
        assert_eq!(o.unwrap().unwrap_err().code, S3ErrorCode::InvalidRequest);
    }
}
