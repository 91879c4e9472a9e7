//! Bucket policies: AWS's JSON grammar (the subset that matters), parsed once into typed
//! statements and checked when put, then evaluated per request: an explicit Deny wins, then an
//! Allow, else the policy says nothing ([`Decision::None`]) and ACLs and grants decide.
//!
//! Supported: Version, Id, Statement (one or many) with Sid, Effect, Principal ("*",
//! {"AWS": ...} with "*", account ids, `arn:aws:iam::<id>:root` or `:user/<name>`,
//! {"CanonicalUser": ...}), NotPrincipal (with Deny), Action/NotAction and Resource/NotResource
//! with `*` and `?`, and Condition with the String*, Numeric*, Bool, IpAddress/NotIpAddress and
//! Null operators (each with IfExists) over the keys the request gives ([`Context`]).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{S3Error, S3ErrorCode, S3Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Deny,
    Allow,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// Who a statement names: everyone, or user ids (an account id is a user id here).
#[derive(Debug, Clone, PartialEq)]
enum Who {
    Anyone,
    Ids(Vec<String>),
}

/// A list of patterns, or (`Not*`) everything but them.
#[derive(Debug, Clone, PartialEq)]
struct Patterns {
    not: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    principal: Who,
    not_principal: bool,
    actions: Patterns,
    resources: Patterns,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    Bool,
    IpAddress,
    Null,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    op: Op,
    /// StringNotEquals, NotIpAddress, ...: true when no value matches.
    negated: bool,
    if_exists: bool,
    /// Lower case: condition keys are case-insensitive.
    key: String,
    values: Vec<String>,
    nets: Vec<IpNet>,
}

/// The request as a policy sees it.
pub struct Context<'a> {
    /// The requester's user id; None for anonymous requests.
    pub user: Option<&'a str>,
    /// "s3:GetObject", ...
    pub action: &'a str,
    /// "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key".
    pub resource: String,
    /// Condition keys in lower case ("aws:sourceip", "s3:prefix") with their values.
    pub keys: BTreeMap<String, String>,
}

fn malformed(msg: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPolicy, msg)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawPolicy {
    version: Option<String>,
    #[serde(rename = "Id")]
    _id: Option<String>,
    statement: Option<OneOrMany<RawStatement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawStatement {
    sid: Option<String>,
    effect: Option<String>,
    principal: Option<Value>,
    not_principal: Option<Value>,
    action: Option<OneOrMany<String>>,
    not_action: Option<OneOrMany<String>>,
    resource: Option<OneOrMany<String>>,
    not_resource: Option<OneOrMany<String>>,
    /// Operator → key → a value or an array of them.
    condition: Option<BTreeMap<String, BTreeMap<String, Value>>>,
}

/// The most a policy may weigh (AWS: 20 KiB).
pub const MAX_POLICY: usize = 20 << 10;

impl Policy {
    /// Parses and checks a policy put on `bucket`; errors are MalformedPolicy as AWS words them.
    pub fn parse(raw: &[u8], bucket: &str) -> S3Result<Policy> {
        if raw.len() > MAX_POLICY {
            return Err(malformed(format!("Policies must not exceed {MAX_POLICY} bytes")));
        }
        let value: Value = serde_json::from_slice(raw).map_err(|_| malformed("This policy contains invalid Json"))?;
        if !value.is_object() {
            return Err(malformed("Policies must be valid JSON and the first byte must be '{'"));
        }
        let p: RawPolicy = serde_json::from_value(value).map_err(|e| {
            let m = e.to_string();
            match m.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                Some(field) => malformed(format!("Unknown field {field}")),
                None => malformed(format!("Invalid policy syntax. ({m})")),
            }
        })?;
        if let Some(v) = &p.version
            && v != "2012-10-17"
            && v != "2008-10-17"
        {
            return Err(malformed("The policy must contain a valid version string"));
        }
        let raw_statements = p.statement.map(OneOrMany::into_vec).unwrap_or_default();
        if raw_statements.is_empty() {
            return Err(malformed("Missing required field Statement"));
        }
        let mut sids = HashSet::new();
        let mut statements = Vec::new();
        for s in raw_statements {
            if let Some(sid) = &s.sid
                && !sids.insert(sid.clone())
            {
                return Err(malformed("Statement IDs (SID) in a single policy must be unique."));
            }
            statements.push(statement(s, bucket)?);
        }
        Ok(Policy { statements })
    }

    /// Deny if a Deny statement matches, else Allow if an Allow one does. With `skip_public`
    /// (RestrictPublicBuckets), public Allow statements give nothing.
    pub fn evaluate(&self, ctx: &Context, skip_public: bool) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if !s.matches(ctx) {
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow if skip_public && s.is_public() => {}
                Effect::Allow => allowed = true,
            }
        }
        if allowed { Decision::Allow } else { Decision::None }
    }

    /// Whether a condition names a key that starts with `prefix` (lower case).
    pub fn mentions(&self, prefix: &str) -> bool {
        self.statements.iter().flat_map(|s| &s.conditions).any(|c| c.key.starts_with(prefix))
    }

    /// Whether an Allow statement lets in anyone (AWS's "public" policy).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

fn statement(s: RawStatement, bucket: &str) -> S3Result<Statement> {
    let effect = match s.effect.as_deref() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(malformed(format!("Invalid effect: {other}"))),
        None => return Err(malformed("Missing required field Effect")),
    };
    let (principal, not_principal) = match (s.principal, s.not_principal) {
        (Some(p), None) => (who(&p)?, false),
        (None, Some(p)) if effect == Effect::Deny => (who(&p)?, true),
        (None, Some(_)) => {
            return Err(malformed("NotPrincipal is supported with Deny only: name the principals in Principal"));
        }
        (Some(_), Some(_)) => return Err(malformed("Statement has both Principal and NotPrincipal: give one")),
        (None, None) => return Err(malformed("Missing required field Principal")),
    };
    let actions = patterns(s.action, s.not_action, "Action")?;
    for a in &actions.patterns {
        let ok = a == "*" || a.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("s3:")) && a.len() > 3;
        if !ok {
            return Err(malformed("Policy has invalid action"));
        }
    }
    let resources = patterns(s.resource, s.not_resource, "Resource")?;
    for r in &resources.patterns {
        if !resource_fits(r, bucket) {
            return Err(malformed("Policy has invalid resource"));
        }
    }
    let mut conditions = Vec::new();
    for (op, keys) in s.condition.unwrap_or_default() {
        for (key, values) in keys {
            let values = match values {
                Value::Array(a) => a,
                v => vec![v],
            };
            conditions.push(condition(&op, &key, values)?);
        }
    }
    Ok(Statement { effect, principal, not_principal, actions, resources, conditions })
}

fn who(v: &Value) -> S3Result<Who> {
    let invalid = || malformed("Invalid principal in policy");
    let strings = |v: &Value| -> S3Result<Vec<String>> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(invalid)).collect(),
            _ => Err(invalid()),
        }
    };
    match v {
        Value::String(s) if s == "*" => Ok(Who::Anyone),
        Value::Object(m) if !m.is_empty() => {
            let mut ids = Vec::new();
            for (kind, v) in m {
                for s in strings(v)? {
                    match kind.as_str() {
                        "AWS" if s == "*" => return Ok(Who::Anyone),
                        "AWS" => ids.push(user_of_arn(&s).ok_or_else(invalid)?),
                        "CanonicalUser" if !s.is_empty() => ids.push(s),
                        // AWS services are no Strata user: such statements never match.
                        "Service" | "Federated" if !s.is_empty() => {}
                        _ => return Err(invalid()),
                    }
                }
            }
            Ok(Who::Ids(ids))
        }
        _ => Err(invalid()),
    }
}

/// The user id an AWS principal names: `arn:aws:iam::<id>:root` and a bare account id are the
/// user `<id>`; `arn:aws:iam::<account>:user/<path/>name` the user `name`.
fn user_of_arn(s: &str) -> Option<String> {
    let Some(rest) = s.strip_prefix("arn:aws:iam::") else {
        return (!s.is_empty() && !s.contains(':')).then(|| s.to_string());
    };
    let (account, what) = rest.split_once(':')?;
    if what == "root" && !account.is_empty() {
        return Some(account.to_string());
    }
    let name = what.strip_prefix("user/")?.rsplit('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

fn patterns(yes: Option<OneOrMany<String>>, no: Option<OneOrMany<String>>, field: &str) -> S3Result<Patterns> {
    match (yes, no) {
        (Some(p), None) => Ok(Patterns { not: false, patterns: p.into_vec() }),
        (None, Some(p)) => Ok(Patterns { not: true, patterns: p.into_vec() }),
        (Some(_), Some(_)) => Err(malformed(format!("Statement has both {field} and Not{field}: give one"))),
        (None, None) => Err(malformed(format!("Missing required field {field}"))),
    }
    .and_then(|p| if p.patterns.is_empty() { Err(malformed(format!("Missing required field {field}"))) } else { Ok(p) })
}

/// Whether a Resource pattern can name this bucket or its objects (AWS refuses the others).
fn resource_fits(pattern: &str, bucket: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some(rest) = pattern.strip_prefix("arn:aws:s3:::") else { return false };
    let bucket_part = rest.split('/').next().unwrap_or(rest);
    wildcard(bucket_part, bucket, false) || (bucket_part.contains('*') && wildcard(rest, bucket, false))
}

fn condition(op: &str, key: &str, values: Vec<Value>) -> S3Result<Condition> {
    let (name, if_exists) = match op.strip_suffix("IfExists") {
        Some(n) if n != "Null" => (n, true),
        _ => (op, false),
    };
    let (op, negated) = match name {
        "StringEquals" => (Op::StringEquals, false),
        "StringNotEquals" => (Op::StringEquals, true),
        "StringEqualsIgnoreCase" => (Op::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Op::StringEqualsIgnoreCase, true),
        "StringLike" | "ArnLike" => (Op::StringLike, false),
        "StringNotLike" | "ArnNotLike" => (Op::StringLike, true),
        "ArnEquals" => (Op::StringEquals, false),
        "ArnNotEquals" => (Op::StringEquals, true),
        "NumericEquals" => (Op::NumericEquals, false),
        "NumericNotEquals" => (Op::NumericEquals, true),
        "NumericLessThan" => (Op::NumericLessThan, false),
        "NumericLessThanEquals" => (Op::NumericLessThanEquals, false),
        "NumericGreaterThan" => (Op::NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (Op::NumericGreaterThanEquals, false),
        "Bool" => (Op::Bool, false),
        "IpAddress" => (Op::IpAddress, false),
        "NotIpAddress" => (Op::IpAddress, true),
        "Null" => (Op::Null, false),
        _ => return Err(malformed(format!("Invalid Condition type : {op}"))),
    };
    let key = key.to_ascii_lowercase();
    if !(key.starts_with("aws:") || key.starts_with("s3:")) || key.len() < 5 {
        return Err(malformed(format!("Policy has an invalid condition key: {key}")));
    }
    let mut strings = Vec::new();
    for v in values {
        match v {
            Value::String(s) => strings.push(s),
            Value::Bool(b) => strings.push(b.to_string()),
            Value::Number(n) => strings.push(n.to_string()),
            _ => return Err(malformed(format!("Invalid Condition value for {key}: give strings"))),
        }
    }
    if strings.is_empty() {
        return Err(malformed(format!("Missing Condition value for {key}")));
    }
    let bad_value = |v: &str| malformed(format!("Invalid Condition value for {key}: {v:?} ({op:?})"));
    let mut nets = Vec::new();
    for v in &strings {
        match op {
            Op::IpAddress => nets.push(parse_net(v).ok_or_else(|| bad_value(v))?),
            Op::NumericEquals
            | Op::NumericLessThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThan
            | Op::NumericGreaterThanEquals => {
                v.parse::<f64>().map_err(|_| bad_value(v))?;
            }
            Op::Bool | Op::Null if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
                return Err(bad_value(v));
            }
            _ => {}
        }
    }
    Ok(Condition { op, negated, if_exists, key, values: strings, nets })
}

/// A CIDR block, or one address.
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Statement {
    fn matches(&self, ctx: &Context) -> bool {
        let named = match &self.principal {
            Who::Anyone => true,
            Who::Ids(ids) => ctx.user.is_some_and(|u| ids.iter().any(|i| i == u)),
        };
        named != self.not_principal
            && self.actions.matches(ctx.action, true)
            && self.resources.matches(&ctx.resource, false)
            && self.conditions.iter().all(|c| c.holds(&ctx.keys))
    }

    fn is_public(&self) -> bool {
        let anyone = self.principal == Who::Anyone || self.not_principal;
        self.effect == Effect::Allow && anyone && !self.conditions.iter().any(Condition::narrows)
    }
}

impl Patterns {
    fn matches(&self, value: &str, ignore_case: bool) -> bool {
        self.patterns.iter().any(|p| wildcard(p, value, ignore_case)) != self.not
    }
}

impl Condition {
    fn holds(&self, keys: &BTreeMap<String, String>) -> bool {
        let Some(v) = keys.get(self.key.as_str()) else {
            return match self.op {
                Op::Null => self.values.iter().any(|x| x.eq_ignore_ascii_case("true")),
                _ => self.if_exists || self.negated,
            };
        };
        let any = match self.op {
            Op::Null => return self.values.iter().any(|x| x.eq_ignore_ascii_case("false")),
            Op::IpAddress => v.parse::<IpAddr>().is_ok_and(|ip| self.nets.iter().any(|n| n.contains(&ip))),
            Op::StringEquals => self.values.iter().any(|x| x == v),
            Op::StringEqualsIgnoreCase => self.values.iter().any(|x| x.eq_ignore_ascii_case(v)),
            Op::StringLike => self.values.iter().any(|x| wildcard(x, v, false)),
            Op::Bool => self.values.iter().any(|x| x.eq_ignore_ascii_case(v)),
            Op::NumericEquals
            | Op::NumericLessThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThan
            | Op::NumericGreaterThanEquals => {
                let Ok(n) = v.parse::<f64>() else { return false };
                self.values.iter().filter_map(|x| x.parse::<f64>().ok()).any(|x| match self.op {
                    Op::NumericLessThan => n < x,
                    Op::NumericLessThanEquals => n <= x,
                    Op::NumericGreaterThan => n > x,
                    Op::NumericGreaterThanEquals => n >= x,
                    _ => n == x,
                })
            }
        };
        any != self.negated
    }

    /// Whether this condition keeps a statement from being public (AWS: a fixed source
    /// network or requester).
    fn narrows(&self) -> bool {
        match self.key.as_str() {
            "aws:sourceip" => self.op == Op::IpAddress && !self.negated && self.nets.iter().all(|n| n.prefix_len() > 0),
            "aws:userid"
            | "aws:username"
            | "aws:principalaccount"
            | "aws:sourceaccount"
            | "aws:sourcearn"
            | "aws:sourcevpc"
            | "aws:sourcevpce"
            | "aws:principalorgid" => matches!(self.op, Op::StringEquals | Op::StringEqualsIgnoreCase) && !self.negated,
            _ => false,
        }
    }
}

/// `*` matches any run of characters, `?` any one.
pub fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: char, b: char| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], v[vi]))) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
