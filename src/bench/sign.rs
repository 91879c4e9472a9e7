//! SigV4 header signing of the benchmark's requests, by AWS's own signer (aws-sigv4). Bodies
//! go as UNSIGNED-PAYLOAD so that the client hashes nothing per request.

use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Signer {
        let identity = Credentials::new(access_key, secret_key, None, None, "strata-bench").into();
        Signer { identity, region: region.to_string() }
    }

    /// The headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`) that sign `method
    /// url` at `time`; `url` must already be percent-encoded as it will be sent.
    pub fn headers(&self, method: &str, url: &str, time: SystemTime) -> Result<Vec<(String, String)>> {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .context("signing parameters")?
            .into();
        let signable = SignableRequest::new(method, url, std::iter::empty(), SignableBody::UnsignedPayload)
            .with_context(|| format!("cannot sign {method} {url}"))?;
        let (instructions, _) =
            sign(signable, &params).with_context(|| format!("cannot sign {method} {url}"))?.into_parts();
        Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_the_access_key_and_an_unsigned_payload() {
        let s = Signer::new("AKEXAMPLE", "secret", "us-east-1");
        let h = s.headers("GET", "http://127.0.0.1:9000/b/k?list-type=2", SystemTime::UNIX_EPOCH).unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()).unwrap();
        assert!(get("authorization").starts_with("AWS4-HMAC-SHA256 Credential=AKEXAMPLE/19700101/us-east-1/s3/"));
        assert_eq!(get("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
        assert_eq!(get("x-amz-date"), "19700101T000000Z");
    }
}
