//! Identifiers and clocks: request ids, upload ids, generated credentials, times in ms, and a
//! constant-time comparison of secrets.

use rand::Rng;
use rand::distr::Alphanumeric;

/// A request id: 16 upper-case hex digits, as S3's `x-amz-request-id`.
pub fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

pub fn random_alnum(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// An access key id in AWS's shape: 20 upper-case letters and digits.
pub fn access_key_id() -> String {
    let mut k = String::from("STR");
    k.push_str(&random_alnum(17).to_ascii_uppercase());
    k
}

pub fn secret_key() -> String {
    random_alnum(40)
}

pub fn upload_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Constant-time comparison of secrets.
pub fn secret_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
