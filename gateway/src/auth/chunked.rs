//! aws-chunked bodies: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n` repeated, a zero-size
//! chunk, then trailer lines (`x-amz-checksum-crc32:<b64>`, `x-amz-trailer-signature:<sig>`)
//! and an empty line. Each chunk's signature chains on the previous one; a chunk is streamed
//! on as it arrives and its signature checked at its end, so a bad chunk fails the body before
//! it ends and nothing is stored.

use aws_sigv4::sign::v4::calculate_signature;
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use strata_common::ids::secret_eq;

use super::sigv4::{Auth, EMPTY_SHA256};
use crate::body::{BodyStream, Trailers};
use crate::error::{S3Error, S3ErrorCode, S3Result};

const MAX_LINE: usize = 4096;

struct Signer {
    key: Vec<u8>,
    date: String,
    scope: String,
    prev: String,
}

impl Signer {
    fn chunk(&mut self, data_hash: &str) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_hash}",
            self.date, self.scope, self.prev
        );
        calculate_signature(&self.key, sts.as_bytes())
    }
    fn trailer(&mut self, trailer_text: &str) -> String {
        let hash = hex::encode(Sha256::digest(trailer_text.as_bytes()));
        let sts = format!("AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{hash}", self.date, self.scope, self.prev);
        calculate_signature(&self.key, sts.as_bytes())
    }
}

enum Phase {
    Header,
    Data { left: u64, sig: Option<String>, hash: Sha256 },
    DataEnd,
    Trailer { text: String },
    Done,
}

struct State {
    inner: BodyStream,
    buf: BytesMut,
    phase: Phase,
    signer: Option<Signer>,
    trailers: Trailers,
    eof: bool,
    /// A signed chunk under [`MIN_CHUNK`] was seen: it must have been the last with data.
    short_chunk: bool,
}

/// AWS's least size of a signed chunk other than the last.
const MIN_CHUNK: u64 = 8 << 10;

fn incomplete() -> S3Error {
    S3Error::new(
        S3ErrorCode::IncompleteBody,
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    )
}

fn bad_signature() -> S3Error {
    S3Error::new(
        S3ErrorCode::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

impl State {
    async fn fill(&mut self) -> S3Result<bool> {
        if self.eof {
            return Ok(false);
        }
        match self.inner.next().await {
            Some(Ok(b)) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            Some(Err(e)) => Err(e),
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    async fn line(&mut self) -> S3Result<String> {
        // Each byte is looked at once, however small the pieces; the limit holds for any.
        let mut from = 0;
        loop {
            let end = self.buf.len().min(MAX_LINE + 2);
            if let Some(i) = self.buf[from..end].windows(2).position(|w| w == b"\r\n").map(|i| from + i) {
                let line = self.buf.split_to(i + 2);
                return String::from_utf8(line[..i].to_vec())
                    .map_err(|_| S3Error::invalid_argument("aws-chunked framing is not text"));
            }
            if self.buf.len() >= MAX_LINE + 2 {
                return Err(S3Error::invalid_argument("aws-chunked chunk header too long"));
            }
            from = end.saturating_sub(1);
            if !self.fill().await? {
                return Err(incomplete());
            }
        }
    }

    /// The next piece of decoded data, or None at the end of the body.
    async fn next_data(&mut self) -> S3Result<Option<Bytes>> {
        loop {
            match &mut self.phase {
                Phase::Header => {
                    let line = self.line().await?;
                    let (size, ext) = line.split_once(';').unwrap_or((line.as_str(), ""));
                    let size = u64::from_str_radix(size.trim(), 16)
                        .map_err(|_| S3Error::invalid_argument("aws-chunked chunk size is not hexadecimal"))?;
                    let sig = ext.trim().strip_prefix("chunk-signature=").map(str::to_string);
                    if self.signer.is_some() && sig.is_none() {
                        return Err(bad_signature());
                    }
                    if size > 0 && self.short_chunk {
                        return Err(S3Error::new(
                            S3ErrorCode::InvalidChunkSizeError,
                            "Only the last chunk is allowed to have a size less than 8192 bytes",
                        ));
                    }
                    self.short_chunk = self.signer.is_some() && size < MIN_CHUNK;
                    if size == 0 {
                        self.check_chunk(sig, Sha256::new())?;
                        self.phase = Phase::Trailer { text: String::new() };
                    } else {
                        self.phase = Phase::Data { left: size, sig, hash: Sha256::new() };
                    }
                }
                Phase::Data { .. } => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(incomplete());
                    }
                    let Phase::Data { left, .. } = &self.phase else { continue };
                    let n = (*left).min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(n).freeze();
                    if let Phase::Data { left, sig, hash } = &mut self.phase {
                        *left -= n as u64;
                        hash.update(&data);
                        if *left == 0 {
                            let (sig, hash) = (sig.take(), std::mem::take(hash));
                            self.check_chunk(sig, hash)?;
                            self.phase = Phase::DataEnd;
                        }
                    }
                    return Ok(Some(data));
                }
                Phase::DataEnd => {
                    if !self.line().await?.is_empty() {
                        return Err(S3Error::invalid_argument("aws-chunked chunk longer than its declared size"));
                    }
                    self.phase = Phase::Header;
                }
                Phase::Trailer { .. } => {
                    let line = if self.buf.is_empty() && self.eof { String::new() } else { self.line().await? };
                    if line.is_empty() {
                        self.phase = Phase::Done;
                        continue;
                    }
                    let (name, value) = line
                        .split_once(':')
                        .ok_or_else(|| S3Error::invalid_argument("malformed aws-chunked trailer"))?;
                    let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
                    if name == "x-amz-trailer-signature" {
                        let Phase::Trailer { text } = &self.phase else { continue };
                        let text = text.clone();
                        if let Some(s) = self.signer.as_mut()
                            && !secret_eq(&s.trailer(&text), &value)
                        {
                            return Err(bad_signature());
                        }
                    } else {
                        if let Phase::Trailer { text } = &mut self.phase {
                            text.push_str(&format!("{name}:{value}\n"));
                        }
                        self.trailers.lock().unwrap_or_else(|p| p.into_inner()).insert(name, value);
                    }
                }
                Phase::Done => {
                    // Anything after the final empty line is not part of the object.
                    if !self.buf.is_empty() || self.fill().await? {
                        self.buf.advance(self.buf.len());
                        return Err(S3Error::invalid_argument("data after the end of the aws-chunked body"));
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn check_chunk(&mut self, sig: Option<String>, hash: Sha256) -> S3Result<()> {
        if let Some(s) = self.signer.as_mut() {
            let expected = s.chunk(&hex::encode(hash.finalize()));
            match sig {
                Some(given) if secret_eq(&expected, &given) => s.prev = expected,
                _ => return Err(bad_signature()),
            }
        }
        Ok(())
    }
}

/// Decodes an aws-chunked body; `auth` set checks every chunk signature (and the trailer's).
pub fn decode(
    body: BodyStream,
    auth: Option<&Auth>,
    trailers: Trailers,
) -> impl Stream<Item = S3Result<Bytes>> + Send + 'static {
    let signer = auth.map(|a| Signer {
        key: a.signing_key.clone(),
        date: a.amz_date.clone(),
        scope: a.scope.clone(),
        prev: a.signature.clone(),
    });
    let state = State {
        inner: body,
        buf: BytesMut::new(),
        phase: Phase::Header,
        signer,
        trailers,
        eof: false,
        short_chunk: false,
    };
    futures::stream::unfold(Some(state), |st| async move {
        let mut st = st?;
        match st.next_data().await {
            Ok(Some(b)) => Some((Ok(b), Some(st))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    //! The example of AWS's "Signature Calculations for the Authorization Header: Transferring
    //! Payload in Multiple Chunks" page: 66560 bytes of 'a' in chunks of 64 KiB and 1 KiB.
    use super::*;
    use futures::TryStreamExt;

    fn auth() -> Auth {
        let key =
            crate::auth::sigv4::signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
                .unwrap();
        Auth {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            payload: crate::auth::Payload::StreamingSigned { trailer: false },
            signing_key: key,
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        }
    }

    fn body(sigs: [&str; 3]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(format!("10000;chunk-signature={}\r\n", sigs[0]).as_bytes());
        b.extend_from_slice(&[b'a'; 65536]);
        b.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", sigs[1]).as_bytes());
        b.extend_from_slice(&[b'a'; 1024]);
        b.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n\r\n", sigs[2]).as_bytes());
        b
    }

    const SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    async fn run(raw: Vec<u8>, auth: Option<&Auth>, piece: usize) -> S3Result<(Vec<u8>, Trailers)> {
        let pieces: Vec<S3Result<Bytes>> = raw.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let trailers = Trailers::default();
        let out: Vec<Bytes> =
            decode(futures::stream::iter(pieces).boxed(), auth, trailers.clone()).try_collect().await?;
        Ok((out.concat(), trailers))
    }

    #[tokio::test]
    async fn aws_example_decodes_and_verifies() {
        for piece in [7, 1000, 1 << 20] {
            let (data, _) = run(body(SIGS), Some(&auth()), piece).await.unwrap();
            assert_eq!(data, vec![b'a'; 66560]);
        }
    }

    #[tokio::test]
    async fn tampered_chunk_or_signature_is_rejected() {
        let mut raw = body(SIGS);
        raw[200] = b'b';
        assert_eq!(run(raw, Some(&auth()), 4096).await.unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch);
        let mut sigs = SIGS;
        sigs[2] = "0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(run(body(sigs), Some(&auth()), 4096).await.unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch);
    }

    #[tokio::test]
    async fn unsigned_with_trailer_and_truncation() {
        let raw = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n".to_vec();
        let (data, trailers) = run(raw.clone(), None, 3).await.unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(trailers.lock().unwrap().get("x-amz-checksum-crc32").map(String::as_str), Some("NhCmhg=="));
        assert_eq!(run(raw[..9].to_vec(), None, 3).await.unwrap_err().code, S3ErrorCode::IncompleteBody);
    }

    /// Found with the fuzz target's piece-size check: a line longer than the limit was
    /// accepted when the body came in one piece and refused when it came in small ones.
    #[tokio::test]
    async fn the_line_limit_holds_whatever_the_pieces() {
        let body =
            |n: usize| format!("1\r\nx\r\n0\r\nx-amz-checksum-crc32:{}\r\n\r\n", "A".repeat(n - 21)).into_bytes();
        for piece in [1, 7, 4096, 1 << 20] {
            assert!(run(body(MAX_LINE), None, piece).await.is_ok(), "piece {piece}");
            let e = run(body(MAX_LINE + 1), None, piece).await.unwrap_err();
            assert_eq!(e.code, S3ErrorCode::InvalidArgument, "piece {piece}");
        }
    }
}
