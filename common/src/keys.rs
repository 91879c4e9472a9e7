//! The metadata key layout. Every key is built here and nowhere else; the master reads and
//! writes them only through its `schema` (and the store layer, for the epoch).
//!
//! Keys are tuples whose byte order is their logical order: a string element is `0x02`, its
//! bytes with `0x00` escaped as `0x00 0xFF`, then `0x00`; a u64 element is `0x1C` and 8
//! big-endian bytes. A trailing object key is written raw (no tag, no terminator) so that a key
//! prefix is a byte prefix: listing `prefix` is the range `[base+prefix, base+prefix+0xFF)`,
//! and 0xFF never occurs in UTF-8.
//!
//! | key                                         | value                     |
//! |---------------------------------------------|---------------------------|
//! | ("meta", "epoch")                           | u64 LE, the primary epoch |
//! | ("meta", "version")                         | i64 LE, version id high-water mark |
//! | ("meta", "restoring")                       | empty: a restore did not finish |
//! | ("meta", "worker_id")                       | i64 LE, worker id counter |
//! | ("b", bucket)                               | Bucket                    |
//! | ("o", bucket) + key                         | ObjectMeta                |
//! | ("u", bucket) + key + 0x00 + upload_id      | Upload                    |
//! | ("p", bucket, upload_id, part u64)          | PartMeta                  |
//! | ("cu", bucket, upload_id)                   | CompletedUpload: kept an hour after a complete, for its retries |
//! | ("w", worker_id u64)                        | WorkerInfo                |
//! | ("pin", version u64)                        | empty: pages kept cached  |
//! | ("j", worker u64, version u64)              | JournalEntry              |
//! | ("ttl", bucket, prefix)                     | TtlRule                   |
//! | ("user", user_id)                           | User                      |
//! | ("ak", access_key)                          | AccessKey (its user's id) |
//! | ("pi", bucket, key, version u64)            | PublishIntent: a commit whose under-store change may not have happened |

const STRING: u8 = 0x02;
const U64: u8 = 0x1C;

#[derive(Default, Clone)]
pub struct Tuple(Vec<u8>);

impl Tuple {
    pub fn new() -> Tuple {
        Tuple(Vec::with_capacity(32))
    }
    pub fn str(mut self, s: &str) -> Tuple {
        self.0.push(STRING);
        for &b in s.as_bytes() {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xFF);
            }
        }
        self.0.push(0);
        self
    }
    pub fn u64(mut self, v: u64) -> Tuple {
        self.0.push(U64);
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Raw bytes: only as the last element.
    pub fn raw(mut self, b: &[u8]) -> Tuple {
        self.0.extend_from_slice(b);
        self
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Every key that starts with the tuple `t`.
fn range(t: Tuple) -> (Vec<u8>, Vec<u8>) {
    let begin = t.into_bytes();
    let end = prefix_end(&begin);
    (begin, end)
}

/// The end of the range of every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xFF);
    end
}

pub fn epoch() -> Vec<u8> {
    Tuple::new().str("meta").str("epoch").into_bytes()
}
/// Set while a restore writes the store; a master refuses to serve a store that has it.
pub fn restoring() -> Vec<u8> {
    Tuple::new().str("meta").str("restoring").into_bytes()
}
pub fn version_counter() -> Vec<u8> {
    Tuple::new().str("meta").str("version").into_bytes()
}
pub fn worker_id_counter() -> Vec<u8> {
    Tuple::new().str("meta").str("worker_id").into_bytes()
}

pub fn bucket(name: &str) -> Vec<u8> {
    Tuple::new().str("b").str(name).into_bytes()
}
pub fn buckets() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("b"))
}

fn objects_base(bucket: &str) -> Tuple {
    Tuple::new().str("o").str(bucket)
}
pub fn object(bucket: &str, key: &str) -> Vec<u8> {
    objects_base(bucket).raw(key.as_bytes()).into_bytes()
}
/// The range of the objects of `bucket` whose key starts with `prefix`.
pub fn objects(bucket: &str, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let begin = object(bucket, prefix);
    let end = prefix_end(&begin);
    (begin, end)
}
/// The object key back from a full metadata key in `objects(bucket, _)`.
pub fn object_key_of(bucket: &str, full: &[u8]) -> Option<String> {
    let base = objects_base(bucket).into_bytes();
    full.strip_prefix(base.as_slice()).and_then(|k| String::from_utf8(k.to_vec()).ok())
}

fn uploads_base(bucket: &str) -> Tuple {
    Tuple::new().str("u").str(bucket)
}
pub fn upload(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut t = uploads_base(bucket).raw(key.as_bytes()).into_bytes();
    t.push(0);
    t.extend_from_slice(upload_id.as_bytes());
    t
}
pub fn uploads(bucket: &str, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let begin = uploads_base(bucket).raw(prefix.as_bytes()).into_bytes();
    let end = prefix_end(&begin);
    (begin, end)
}

pub fn part(bucket: &str, upload_id: &str, number: u32) -> Vec<u8> {
    Tuple::new().str("p").str(bucket).str(upload_id).u64(number as u64).into_bytes()
}
pub fn parts(bucket: &str, upload_id: &str) -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("p").str(bucket).str(upload_id))
}

/// The parts of every upload of every bucket.
pub fn all_parts() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("p"))
}

pub fn completed_upload(bucket: &str, upload_id: &str) -> Vec<u8> {
    Tuple::new().str("cu").str(bucket).str(upload_id).into_bytes()
}
/// The completed uploads of `bucket`.
pub fn completed_uploads_of(bucket: &str) -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("cu").str(bucket))
}
/// The completed uploads of every bucket.
pub fn completed_uploads() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("cu"))
}

pub fn pin(version: u64) -> Vec<u8> {
    Tuple::new().str("pin").u64(version).into_bytes()
}
pub fn pins() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("pin"))
}
/// The version back from a key of `pins()`.
pub fn pin_version(key: &[u8]) -> Option<u64> {
    let tail = key.strip_prefix(Tuple::new().str("pin").into_bytes().as_slice())?.strip_prefix(&[U64])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub fn journal(worker: u64, version: u64) -> Vec<u8> {
    Tuple::new().str("j").u64(worker).u64(version).into_bytes()
}
pub fn journals(worker: u64) -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("j").u64(worker))
}

/// Every journal entry, of every worker.
pub fn all_journals() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("j"))
}

pub fn publish_intent(bucket: &str, key: &str, version: u64) -> Vec<u8> {
    Tuple::new().str("pi").str(bucket).str(key).u64(version).into_bytes()
}
/// Every publish intent, of every bucket.
pub fn publish_intents() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("pi"))
}

pub fn ttl(bucket: &str, prefix: &str) -> Vec<u8> {
    Tuple::new().str("ttl").str(bucket).str(prefix).into_bytes()
}
pub fn ttls() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("ttl"))
}

/// That a sync of `prefix` of `bucket` with its under store ran to the end (value: the bucket's
/// `created_ms`, so that a bucket mounted again under the name starts afresh).
pub fn synced(bucket: &str, prefix: &str) -> Vec<u8> {
    Tuple::new().str("sync").str(bucket).str(prefix).into_bytes()
}
pub fn synced_of(bucket: &str) -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("sync").str(bucket))
}

pub fn user(id: &str) -> Vec<u8> {
    Tuple::new().str("user").str(id).into_bytes()
}
pub fn users() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("user"))
}
pub fn access_key(access_key: &str) -> Vec<u8> {
    Tuple::new().str("ak").str(access_key).into_bytes()
}
pub fn access_keys() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("ak"))
}

pub fn worker(id: u64) -> Vec<u8> {
    Tuple::new().str("w").u64(id).into_bytes()
}
pub fn workers() -> (Vec<u8>, Vec<u8>) {
    range(Tuple::new().str("w"))
}

/// What a written key means to a gateway's metadata cache (see `master/src/watch.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Object {
        bucket: String,
        key: String,
    },
    Bucket(String),
    /// A user or an access key.
    Credentials,
    /// Nothing a gateway caches.
    Other,
}

/// A string element at the start of `b` and what follows it.
fn take_str(b: &[u8]) -> Option<(String, &[u8])> {
    let rest = b.strip_prefix(&[STRING])?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            0 if rest.get(i + 1) == Some(&0xFF) => {
                out.push(0);
                i += 2;
            }
            0 => return Some((String::from_utf8(out).ok()?, &rest[i + 1..])),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Whether a range starting at `begin` may hold keys that gateways cache.
pub fn range_is_cached(begin: &[u8]) -> bool {
    match take_str(begin) {
        Some((kind, _)) => matches!(kind.as_str(), "o" | "b" | "user" | "ak"),
        // A range from the very start, or not of tuples: it may hold anything.
        None => true,
    }
}

/// The cached thing a metadata key holds.
pub fn classify(key: &[u8]) -> Changed {
    let Some((kind, rest)) = take_str(key) else { return Changed::Other };
    match kind.as_str() {
        "o" => match take_str(rest) {
            Some((bucket, k)) => match String::from_utf8(k.to_vec()) {
                Ok(key) => Changed::Object { bucket, key },
                // Not a key a gateway can ask for, but say the bucket changed all the same.
                Err(_) => Changed::Bucket(bucket),
            },
            None => Changed::Other,
        },
        "b" => take_str(rest).map(|(b, _)| Changed::Bucket(b)).unwrap_or(Changed::Other),
        "user" | "ak" => Changed::Credentials,
        _ => Changed::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keys_classify_as_what_gateways_cache() {
        let obj = |b: &str, k: &str| Changed::Object { bucket: b.into(), key: k.into() };
        assert_eq!(classify(&object("b\0x", "a/\0k")), obj("b\0x", "a/\0k"));
        assert_eq!(classify(&object("b", "")), obj("b", ""));
        assert_eq!(classify(&bucket("bkt")), Changed::Bucket("bkt".into()));
        assert_eq!(classify(&user("u1")), Changed::Credentials);
        assert_eq!(classify(&access_key("AK")), Changed::Credentials);
        for k in
            [version_counter(), epoch(), worker(3), pin(9), upload("b", "k", "u"), ttl("b", "p"), vec![], vec![2, 0x6f]]
        {
            assert_eq!(classify(&k), Changed::Other, "{k:?}");
        }
    }

    #[test]
    fn byte_order_is_logical_order() {
        let mut names = ["b", "a", "a\0", "a\0b", "ab", "", "zz"];
        let mut encoded: Vec<_> = names.iter().map(|n| bucket(n)).collect();
        encoded.sort();
        names.sort();
        assert_eq!(encoded, names.iter().map(|n| bucket(n)).collect::<Vec<_>>());
        assert!(part("b", "u", 2) < part("b", "u", 10));
        assert!(Tuple::new().u64(255).into_bytes() < Tuple::new().u64(256).into_bytes());
    }

    #[test]
    fn bucket_names_do_not_bleed_into_each_other() {
        let (begin, end) = objects("ab", "");
        let other = object("abc", "x");
        assert!(!(begin.as_slice() <= other.as_slice() && other.as_slice() < end.as_slice()));
        assert_eq!(object_key_of("ab", &object("ab", "k/ü")).as_deref(), Some("k/ü"));
        assert_eq!(object_key_of("ab", &other), None);
    }

    #[test]
    fn prefix_range_holds_exactly_the_prefixed_keys() {
        let (begin, end) = objects("b", "dir/");
        for (k, inside) in [("dir/", true), ("dir/x", true), ("dir/\u{10FFFF}", true), ("dir0", false), ("dir", false)]
        {
            let full = object("b", k);
            assert_eq!(begin <= full && full < end, inside, "{k}");
        }
    }

    /// The bytes existing stores and backups hold: a change here makes them unreadable.
    #[test]
    fn keys_keep_their_stored_bytes() {
        assert_eq!(bucket("b"), b"\x02b\x00\x02b\x00");
        assert_eq!(object("bk", "a/b"), b"\x02o\x00\x02bk\x00a/b");
        assert_eq!(upload("b", "k", "u1"), b"\x02u\x00\x02b\x00k\x00u1");
        assert_eq!(part("b", "u", 3), [b"\x02p\x00\x02b\x00\x02u\x00\x1c".as_slice(), &3u64.to_be_bytes()].concat());
        assert_eq!(completed_upload("b", "u1"), b"\x02cu\x00\x02b\x00\x02u1\x00");
        assert_eq!(pin(258), [b"\x02pin\x00\x1c".as_slice(), &258u64.to_be_bytes()].concat());
        assert_eq!(
            journal(1, 2),
            [b"\x02j\x00\x1c".as_slice(), &1u64.to_be_bytes(), b"\x1c", &2u64.to_be_bytes()].concat()
        );
        assert_eq!(ttl("b", "p/"), b"\x02ttl\x00\x02b\x00\x02p/\x00");
        assert_eq!(worker(7), [b"\x02w\x00\x1c".as_slice(), &7u64.to_be_bytes()].concat());
        assert_eq!(epoch(), b"\x02meta\x00\x02epoch\x00");
        assert_eq!(version_counter(), b"\x02meta\x00\x02version\x00");
        assert_eq!(worker_id_counter(), b"\x02meta\x00\x02worker_id\x00");
        assert_eq!(restoring(), b"\x02meta\x00\x02restoring\x00");
        assert_eq!(user("u1"), b"\x02user\x00\x02u1\x00");
        assert_eq!(access_key("AK"), b"\x02ak\x00\x02AK\x00");
    }

    #[test]
    fn a_zero_byte_in_a_name_is_escaped() {
        assert_eq!(bucket("a\0b"), b"\x02b\x00\x02a\x00\xffb\x00");
    }

    #[test]
    fn pins_round_trip_and_only_pins_decode() {
        for v in [0, 1, 255, 256, u64::MAX] {
            assert_eq!(pin_version(&pin(v)), Some(v));
        }
        assert_eq!(pin_version(&worker(3)), None);
        assert_eq!(pin_version(&pin(1)[..5]), None);
        let (b, e) = pins();
        assert!(b <= pin(0) && pin(u64::MAX) < e);
    }

    #[test]
    fn ranges_hold_their_own_keys_only() {
        let inside = |(b, e): (Vec<u8>, Vec<u8>), k: Vec<u8>| b <= k && k < e;
        assert!(inside(journals(1), journal(1, 9)));
        assert!(!inside(journals(1), journal(2, 0)));
        assert!(inside(all_journals(), journal(2, 0)));
        assert!(inside(parts("b", "u"), part("b", "u", 1)));
        assert!(!inside(parts("b", "u"), part("b", "u2", 1)));
        assert!(inside(completed_uploads_of("b"), completed_upload("b", "u")));
        assert!(!inside(completed_uploads_of("b"), completed_upload("bb", "u")));
        assert!(inside(completed_uploads(), completed_upload("zz", "u")));
        assert!(!inside(completed_uploads(), upload("b", "k", "u")));
        assert!(inside(uploads("b", "dir/"), upload("b", "dir/x", "id")));
        assert!(!inside(uploads("b", "dir/"), upload("b", "dir", "id")));
        assert!(inside(buckets(), bucket("zz")));
        assert!(!inside(buckets(), object("zz", "")));
        assert!(inside(ttls(), ttl("b", "")));
        assert!(inside(workers(), worker(u64::MAX)));
        assert!(inside(users(), user("zz")));
        assert!(!inside(users(), access_key("zz")));
        assert!(inside(access_keys(), access_key("AK")));
        assert!(!inside(access_keys(), user("AK")));
    }
}
