use super::*;

fn parse(doc: &str) -> S3Result<Policy> {
    Policy::parse(doc.as_bytes(), "b")
}

fn ctx<'a>(user: Option<&'a str>, action: &'a str, resource: &str, keys: &[(&'static str, &str)]) -> Context<'a> {
    Context {
        user,
        action,
        resource: format!("arn:aws:s3:::{resource}"),
        keys: keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn one(statement: &str) -> Policy {
    parse(&format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)).unwrap()
}

#[test]
fn explicit_deny_beats_allow() {
    let p = parse(
        r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*"},
        {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret/*"}]}"#,
    )
    .unwrap();
    assert_eq!(p.evaluate(&ctx(Some("u"), "s3:GetObject", "b/x", &[]), false), Decision::Allow);
    assert_eq!(p.evaluate(&ctx(Some("u"), "s3:GetObject", "b/secret/x", &[]), false), Decision::Deny);
    assert_eq!(p.evaluate(&ctx(None, "s3:PutObject", "b/secret/x", &[]), false), Decision::Allow);
    // The bucket itself is not b/*.
    assert_eq!(p.evaluate(&ctx(Some("u"), "s3:ListBucket", "b", &[]), false), Decision::None);
}

#[test]
fn principals_name_users_by_arn_or_id() {
    let p = one(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::alice:root","arn:aws:iam::123:user/team/bob","carol"]},
        "Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}"#,
    );
    for u in ["alice", "bob", "carol"] {
        assert_eq!(p.evaluate(&ctx(Some(u), "s3:ListBucket", "b", &[]), false), Decision::Allow, "{u}");
    }
    assert_eq!(p.evaluate(&ctx(Some("dave"), "s3:ListBucket", "b", &[]), false), Decision::None);
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &[]), false), Decision::None);
    assert!(!p.is_public());
    let deny_others = one(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::alice:root"},"Action":"*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}"#,
    );
    assert_eq!(deny_others.evaluate(&ctx(Some("alice"), "s3:GetObject", "b/k", &[]), false), Decision::None);
    assert_eq!(deny_others.evaluate(&ctx(None, "s3:GetObject", "b/k", &[]), false), Decision::Deny);
}

#[test]
fn actions_and_resources_take_wildcards() {
    let p =
        one(r#"{"Effect":"Allow","Principal":"*","Action":["s3:Get*","s3:List?ucket"],"Resource":"arn:aws:s3:::b*"}"#);
    assert_eq!(p.evaluate(&ctx(None, "s3:GetObjectAcl", "b/k", &[]), false), Decision::Allow);
    assert_eq!(p.evaluate(&ctx(None, "s3:getobject", "b/k", &[]), false), Decision::Allow, "actions ignore case");
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &[]), false), Decision::Allow);
    assert_eq!(p.evaluate(&ctx(None, "s3:PutObject", "b/k", &[]), false), Decision::None);
    let not =
        one(r#"{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","NotResource":"arn:aws:s3:::b/pub/*"}"#);
    assert_eq!(not.evaluate(&ctx(None, "s3:PutObject", "b/k", &[]), false), Decision::Deny);
    assert_eq!(not.evaluate(&ctx(None, "s3:GetObject", "b/k", &[]), false), Decision::None);
    assert_eq!(not.evaluate(&ctx(None, "s3:PutObject", "b/pub/k", &[]), false), Decision::None);
    assert!(wildcard("a*b?c", "aXXbYc", false) && !wildcard("a*b?c", "aXXbc", false) && wildcard("*", "", false));
}

#[test]
fn conditions_on_source_ip_prefix_and_transport() {
    let p = one(r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
        "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]},"StringLike":{"s3:prefix":"public/*"},
        "NumericLessThanEquals":{"s3:max-keys":"100"}}}"#);
    let ok = [("aws:sourceip", "10.1.2.3"), ("s3:prefix", "public/x"), ("s3:max-keys", "10")];
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &ok), false), Decision::Allow);
    let far = [("aws:sourceip", "192.168.0.1"), ("s3:prefix", "public/x"), ("s3:max-keys", "10")];
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &far), false), Decision::None);
    let v6 = [("aws:sourceip", "::1"), ("s3:prefix", "public/"), ("s3:max-keys", "100")];
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &v6), false), Decision::Allow);
    let many = [("aws:sourceip", "10.1.2.3"), ("s3:prefix", "public/x"), ("s3:max-keys", "1000")];
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &many), false), Decision::None);
    assert_eq!(p.evaluate(&ctx(None, "s3:ListBucket", "b", &ok[..1]), false), Decision::None, "a missing key fails");
    assert!(!p.is_public(), "a fixed source network is not public");

    let tls = one(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*",
        "Condition":{"Bool":{"aws:SecureTransport":false}}}"#);
    let plain = [("aws:securetransport", "false")];
    assert_eq!(tls.evaluate(&ctx(Some("u"), "s3:GetObject", "b/k", &plain), false), Decision::Deny);
    let secure = [("aws:securetransport", "true")];
    assert_eq!(tls.evaluate(&ctx(Some("u"), "s3:GetObject", "b/k", &secure), false), Decision::None);

    let not_in = one(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*",
        "Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"},"StringNotEquals":{"aws:username":"ops"}}}"#);
    let outside = [("aws:sourceip", "8.8.8.8"), ("aws:username", "u")];
    assert_eq!(not_in.evaluate(&ctx(Some("u"), "s3:GetObject", "b/k", &outside), false), Decision::Deny);
    let ops = [("aws:sourceip", "8.8.8.8"), ("aws:username", "ops")];
    assert_eq!(not_in.evaluate(&ctx(Some("ops"), "s3:GetObject", "b/k", &ops), false), Decision::None);
    let inside = [("aws:sourceip", "127.0.0.1"), ("aws:username", "u")];
    assert_eq!(not_in.evaluate(&ctx(Some("u"), "s3:GetObject", "b/k", &inside), false), Decision::None);

    let if_exists = one(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*",
        "Condition":{"StringLikeIfExists":{"aws:Referer":"http://www.example.com/*"}}}"#);
    assert_eq!(if_exists.evaluate(&ctx(None, "s3:GetObject", "b/k", &[]), false), Decision::Allow);
    let other = [("aws:referer", "http://example.com")];
    assert_eq!(if_exists.evaluate(&ctx(None, "s3:GetObject", "b/k", &other), false), Decision::None);
}

#[test]
fn public_statements_and_restrict_public_buckets() {
    let p = one(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#);
    assert!(p.is_public());
    assert_eq!(p.evaluate(&ctx(None, "s3:GetObject", "b/k", &[]), false), Decision::Allow);
    assert_eq!(p.evaluate(&ctx(None, "s3:GetObject", "b/k", &[]), true), Decision::None);
}

#[test]
fn malformed_policies_are_refused_with_aws_messages() {
    let cases = [
        ("not json", "This policy contains invalid Json"),
        ("[]", "Policies must be valid JSON and the first byte must be '{'"),
        (r#"{"Version":"2012-10-17"}"#, "Missing required field Statement"),
        (r#"{"Version":"2020-01-01","Statement":[]}"#, "The policy must contain a valid version string"),
        (r#"{"Statement":[],"Foo":1}"#, "Unknown field Foo"),
        (
            r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
            "Invalid effect: Maybe",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
            "Missing required field Principal",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"alice","Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
            "Invalid principal in policy",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ec2:Run","Resource":"arn:aws:s3:::b"}}"#,
            "Policy has invalid action",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}}"#,
            "Policy has invalid resource",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}}}"#,
            "Invalid Condition value for aws:sourceip",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b",
            "Condition":{"StringEqualz":{"s3:prefix":"a"}}}}"#,
            "Invalid Condition type : StringEqualz",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:*","Resource":"arn:aws:s3:::b"}}"#,
            "NotPrincipal is supported with Deny only",
        ),
        (
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"},
            {"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}]}"#,
            "Statement IDs (SID) in a single policy must be unique.",
        ),
    ];
    for (doc, message) in cases {
        let e = parse(doc).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::MalformedPolicy, "{doc}");
        assert!(e.message.starts_with(message), "{doc}: {}", e.message);
    }
    // Wildcard buckets fit every bucket, as AWS accepts them.
    one(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":["arn:aws:s3:::*","arn:aws:s3:::*/*"]}"#,
    );
}
