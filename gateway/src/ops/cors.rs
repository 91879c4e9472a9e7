//! Bucket CORS: PutBucketCors, GetBucketCors, DeleteBucketCors, the `OPTIONS` preflight, and
//! the `Access-Control-*` headers of requests that carry an `Origin`.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use strata_common::proto::{CorsRule, SetCorsRequest};

use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::headers::{empty, set};
use crate::request::{Ctx, small_body};
use crate::state::Gateway;
use crate::xml::{self, NS};

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
const MAX_RULES: usize = 100;

#[derive(Deserialize, Serialize, Default)]
pub(crate) struct CorsConfiguration {
    #[serde(rename = "@xmlns", skip_deserializing)]
    xmlns: &'static str,
    #[serde(rename = "CORSRule", default)]
    rules: Vec<CorsRuleXml>,
}

#[derive(Deserialize, Serialize, Default)]
struct CorsRuleXml {
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds", default, skip_serializing_if = "Option::is_none")]
    max_age_seconds: Option<i32>,
}

/// A CORS configuration's rules, checked as AWS checks them.
pub(crate) fn parse_rules(raw: &[u8]) -> S3Result<Vec<CorsRule>> {
    let conf: CorsConfiguration = xml::parse(raw)?;
    if conf.rules.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if conf.rules.len() > MAX_RULES {
        return Err(S3Error::invalid_request(format!("A CORS configuration holds at most {MAX_RULES} rules")));
    }
    let mut out = Vec::new();
    for r in conf.rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        if let Some(m) = r.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(S3Error::invalid_request(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        let two_stars = |v: &String| v.matches('*').count() > 1;
        if let Some(o) = r.allowed_origins.iter().chain(&r.allowed_headers).find(|v| two_stars(v)) {
            return Err(S3Error::invalid_request(format!("{o} can not have more than one wildcard.")));
        }
        out.push(CorsRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers,
            expose_headers: r.expose_headers,
            max_age_seconds: r.max_age_seconds.unwrap_or(-1),
        });
    }
    Ok(out)
}

pub async fn put(ctx: &Ctx, body: Body) -> S3Result<Response> {
    let rules = parse_rules(&small_body(body, 64 << 10).await?)?;
    ctx.gw.master.set_bucket_cors(SetCorsRequest { bucket: ctx.bucket.clone(), rules }).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete(ctx: &Ctx) -> S3Result<Response> {
    ctx.gw.master.set_bucket_cors(SetCorsRequest { bucket: ctx.bucket.clone(), rules: Vec::new() }).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn get(ctx: &Ctx) -> S3Result<Response> {
    let bucket = ctx.gw.master.get_bucket(&ctx.bucket).await?;
    if bucket.cors.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchCORSConfiguration, "The CORS configuration does not exist"));
    }
    xml::response("CORSConfiguration", &to_xml(bucket.cors))
}

/// The stored rules as GetBucketCors answers them.
pub(crate) fn to_xml(rules: Vec<CorsRule>) -> CorsConfiguration {
    let rules = rules
        .into_iter()
        .map(|r| CorsRuleXml {
            id: r.id,
            allowed_headers: r.allowed_headers,
            allowed_methods: r.allowed_methods,
            allowed_origins: r.allowed_origins,
            expose_headers: r.expose_headers,
            max_age_seconds: (r.max_age_seconds >= 0).then_some(r.max_age_seconds),
        })
        .collect();
    CorsConfiguration { xmlns: NS, rules }
}

/// `pattern` with at most one `*` (any run of characters) against `value`.
fn wildcard(pattern: &str, value: &str, fold_case: bool) -> bool {
    let (p, v) = if fold_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match p.split_once('*') {
        None => p == v,
        Some((a, b)) => v.len() >= a.len() + b.len() && v.starts_with(a) && v.ends_with(b),
    }
}

/// The first rule allowing `origin` to use `method` with request `headers`.
fn matching<'a>(rules: &'a [CorsRule], origin: &str, method: &str, headers: &[&str]) -> Option<&'a CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| r.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    })
}

/// The `Access-Control-*` headers of an allowed request.
fn allow(h: &mut HeaderMap, rule: &CorsRule, origin: &str, requested_headers: &[&str]) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    set(h, "access-control-allow-origin", if any { "*" } else { origin });
    set(h, "access-control-allow-methods", &rule.allowed_methods.join(", "));
    if !requested_headers.is_empty() {
        set(h, "access-control-allow-headers", &requested_headers.join(", "));
    }
    if !rule.expose_headers.is_empty() {
        set(h, "access-control-expose-headers", &rule.expose_headers.join(", "));
    }
    if rule.max_age_seconds >= 0 {
        set(h, "access-control-max-age", &rule.max_age_seconds.to_string());
    }
    if !any {
        set(h, "access-control-allow-credentials", "true");
    }
    set(h, "vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn requested_headers(h: &HeaderMap) -> Vec<&str> {
    header(h, "access-control-request-headers")
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// An `OPTIONS` preflight: allowed by a rule of the bucket's CORS configuration, or refused.
pub async fn preflight(gw: &Gateway, bucket: &str, headers: &HeaderMap) -> S3Result<Response> {
    let Some(origin) = header(headers, "origin") else {
        return Err(S3Error::new(S3ErrorCode::BadRequest, "Insufficient information. Origin request header needed."));
    };
    let Some(method) = header(headers, "access-control-request-method") else {
        return Err(S3Error::new(S3ErrorCode::BadRequest, "Invalid Access-Control-Request-Method: null"));
    };
    let rules = gw.master.get_bucket(bucket).await?.cors;
    let wanted = requested_headers(headers);
    let Some(rule) = matching(&rules, origin, method, &wanted) else {
        return Err(S3Error::new(
            S3ErrorCode::AccessForbidden,
            format!(
                "CORSResponse: This CORS request is not allowed: no CORS rule of the bucket allows origin {origin}, \
                 method {method} and these headers"
            ),
        ));
    };
    let mut r = empty(StatusCode::OK);
    allow(r.headers_mut(), rule, origin, &wanted);
    Ok(r)
}

/// Adds the `Access-Control-*` headers to the answer of a request with an `Origin` that a rule
/// allows (its method, or the `Access-Control-Request-Method` it names).
pub async fn decorate(gw: &Gateway, bucket: &str, method: &Method, headers: &HeaderMap, resp: &mut Response) {
    let Some(origin) = header(headers, "origin") else { return };
    let Ok(b) = gw.master.get_bucket(bucket).await else { return };
    let method = header(headers, "access-control-request-method").unwrap_or(method.as_str());
    if let Some(rule) = matching(&b.cors, origin, method, &[]) {
        allow(resp.headers_mut(), rule, origin, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_with_one_wildcard() {
        assert!(wildcard("*suffix", "foo.suffix", false));
        assert!(!wildcard("*suffix", "foo.suffix.get", false));
        assert!(wildcard("start*end", "startend", false));
        assert!(!wildcard("start*end", "0start12end", false));
        assert!(!wildcard("ab*ba", "aba", false));
        assert!(wildcard("x-amz-*", "X-Amz-Date", true));
    }

    #[test]
    fn rules_are_checked() {
        let ok = b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
                   <MaxAgeSeconds>30</MaxAgeSeconds></CORSRule></CORSConfiguration>";
        let rules = parse_rules(ok).unwrap();
        assert_eq!((rules[0].allowed_methods.as_slice(), rules[0].max_age_seconds), (&["GET".to_string()][..], 30));
        let bad_method = b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>\
                           <AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>";
        assert_eq!(parse_rules(bad_method).unwrap_err().code, S3ErrorCode::InvalidRequest);
        let no_origin =
            b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
        assert_eq!(parse_rules(no_origin).unwrap_err().code, S3ErrorCode::MalformedXML);
        let stars = b"<CORSConfiguration><CORSRule><AllowedOrigin>*a*</AllowedOrigin>\
                      <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
        assert_eq!(parse_rules(stars).unwrap_err().code, S3ErrorCode::InvalidRequest);
    }
}
