//! S3's rules for bucket names and object keys.

use crate::error::{Error, ErrorKind, Result};

/// The rules of general purpose buckets: 3-63 of `a-z 0-9 . -`, a letter or digit at both
/// ends, no `..`, not an IP address, none of the reserved prefixes and suffixes.
pub fn check_bucket_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::new(ErrorKind::InvalidBucketName, format!("bucket name {name:?} {why}")));
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return bad("may hold only lower-case letters, digits, '.' and '-'");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(name.as_bytes()[0]) || !alnum(name.as_bytes()[name.len() - 1]) {
        return bad("must begin and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("must not hold '..', '.-' or '-.'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be an IP address");
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(p) {
            return bad(&format!("must not begin with {p}"));
        }
    }
    for s in ["-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap"] {
        if name.ends_with(s) {
            return bad(&format!("must not end with {s}"));
        }
    }
    Ok(())
}

pub const MAX_KEY_LEN: usize = 1024;

pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("the object key must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::new(ErrorKind::InvalidArgument, "KeyTooLongError: the key is longer than 1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.v2", "0bucket9", &"a".repeat(63)] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in
            ["ab", "ABC", "-abc", "abc-", "a..b", "192.168.1.1", "xn--abc", "a_b", &"a".repeat(64), "bucket-s3alias"]
        {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
