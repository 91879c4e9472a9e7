//! Fuzz targets' shared code: `fuzz/` (cargo-fuzz, `make fuzz`) calls the target functions of
//! each crate's `fuzzing` module, and each crate's stable tests replay the kept corpus, the
//! regressions and a bounded, seeded mutation of them through the same functions (`replay`).
//! Coverage-guided fuzzing is `make fuzz`; the replay only keeps what it found fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::codec;
use crate::keys::{self, Tuple};
use crate::proto;

/// No target reads more of an input than this: far above any header block or config body a
/// client sends, and small enough that a target's work per input stays bounded.
pub const MAX_INPUT: usize = 64 << 10;

/// The input, cut to [`MAX_INPUT`].
pub fn capped(data: &[u8]) -> &[u8] {
    &data[..data.len().min(MAX_INPUT)]
}

/// `fuzz/<kind>/<target>` in the repository (kind: `corpus` or `regressions`).
pub fn dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz").join(kind).join(target)
}

/// Every file of the target's corpus and regressions, sorted by path.
pub fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(dir(kind, target)) else { continue };
        for e in entries.flatten() {
            if e.path().is_file()
                && let Ok(b) = std::fs::read(e.path())
            {
                out.push((e.path(), b));
            }
        }
    }
    out.sort();
    out
}

/// A seeded xorshift: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Bytes that matter to the parsers: framing, separators, digits, XML and percent signs.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"0",
    b"-",
    b"=",
    b"&",
    b"%",
    b"%00",
    b"%ff",
    b";",
    b":",
    b",",
    b"/",
    b" ",
    b"<",
    b">",
    b"</",
    b"&amp;",
    b"\xff",
    b"\x00",
    b"ffffffffffffffff",
    b"18446744073709551615",
    b"bytes=",
    b"<![CDATA[",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let i = rng.below(len + 1);
                input.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let piece = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(512));
                let at = rng.below(len + 1);
                input.splice(at..at, other[i..i + n].iter().copied());
            }
            _ => input.truncate(rng.below(len + 1)),
        }
    }
    input.truncate(MAX_INPUT);
}

/// Runs `target` over every seed, then over `mutations` seeded mutations of them. A panic
/// names the input and saves it to a file for `cargo fuzz run <target> FILE`.
pub fn replay(target: &str, mutations: usize, f: impl Fn(&[u8])) {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "no corpus for fuzz target {target} in {}", dir("corpus", target).display());
    let run = |what: &str, input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
            let saved = std::env::temp_dir().join(format!("strata-fuzz-{target}-crash"));
            let _ = std::fs::write(&saved, input);
            panic!("fuzz target {target} failed on {what}; input saved to {}", saved.display());
        }
    };
    for (path, input) in &seeds {
        run(&path.display().to_string(), input);
    }
    let mut rng = Rng(0x5EED_0000_0000_0001 ^ target.len() as u64);
    for n in 0..mutations {
        let (_, base) = &seeds[rng.below(seeds.len())];
        let (_, other) = &seeds[rng.below(seeds.len())];
        let mut input = base.clone();
        mutate(&mut rng, &mut input, other);
        run(&format!("mutation {n}"), &input);
    }
}

/// Target `keys`: the tuple key codec. Decoding arbitrary keys, and encode → decode, order
/// and prefix ranges of what the helpers build.
pub fn keys(data: &[u8]) {
    let data = capped(data);
    if let Some(v) = keys::pin_version(data) {
        assert_eq!(keys::pin(v), data, "pin_version accepted a key pin() does not build");
    }
    let (bucket, rest) = match data.split_first() {
        Some((&n, rest)) => rest.split_at((n as usize).min(rest.len())),
        None => (&[][..], data),
    };
    let bucket = String::from_utf8_lossy(bucket);
    if let Some(k) = keys::object_key_of(&bucket, rest) {
        assert_eq!(keys::object(&bucket, &k), rest, "object_key_of accepted a key object() does not build");
    }
    // Two strings from the rest: encode → decode, byte order is string order, prefix ranges.
    let cut = rest.iter().position(|&b| b == 0xFE).unwrap_or(rest.len() / 2);
    let a = String::from_utf8_lossy(&rest[..cut]);
    let b = String::from_utf8_lossy(rest.get(cut + 1..).unwrap_or_default());
    for k in [&a, &b] {
        assert_eq!(keys::object_key_of(&bucket, &keys::object(&bucket, k)).as_deref(), Some(&**k));
    }
    let (ta, tb) = (Tuple::new().str(&a).into_bytes(), Tuple::new().str(&b).into_bytes());
    assert_eq!(ta.cmp(&tb), a.as_bytes().cmp(b.as_bytes()), "tuple order differs from string order: {a:?} {b:?}");
    let (oa, ob) = (keys::object(&bucket, &a), keys::object(&bucket, &b));
    assert_eq!(oa.cmp(&ob), a.cmp(&b), "object key order differs from key order: {a:?} {b:?}");
    let (begin, end) = keys::objects(&bucket, &a);
    let listed = begin <= ob && ob < end;
    assert_eq!(listed, b.starts_with(&*a), "objects({a:?}) range and prefix disagree on {b:?}");
    let word =
        |r: std::ops::Range<usize>| data.get(r).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
    if let (Some(x), Some(y)) = (word(0..8), word(8..16)) {
        assert_eq!(keys::journal(x, y).cmp(&keys::journal(y, x)), (x, y).cmp(&(y, x)));
        assert_eq!(keys::pin_version(&keys::pin(x)), Some(x));
    }
    values(data);
}

/// Stored values (schema byte + protobuf): arbitrary bytes decode or fail, never panic, and
/// what decodes encodes back to the same message.
fn values(data: &[u8]) {
    fn round_trip<M: prost::Message + Default + PartialEq>(data: &[u8]) {
        if let Ok(m) = codec::decode::<M>(data) {
            let again: M = codec::decode(&codec::encode(&m)).expect("an encoded value decodes");
            assert!(again == m, "a value changed through encode/decode");
        }
    }
    round_trip::<proto::Bucket>(data);
    round_trip::<proto::ObjectMeta>(data);
    round_trip::<proto::Upload>(data);
    round_trip::<proto::PartMeta>(data);
    round_trip::<proto::CompletedUpload>(data);
    round_trip::<proto::PublishIntent>(data);
    round_trip::<proto::WorkerInfo>(data);
    round_trip::<proto::JournalEntry>(data);
    round_trip::<proto::TtlRule>(data);
    round_trip::<proto::User>(data);
    round_trip::<proto::AccessKey>(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn fuzz_corpus_replays_keys() {
        super::replay("keys", 4000, super::keys);
    }
}
