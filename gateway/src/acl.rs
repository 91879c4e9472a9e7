//! ACLs as S3 writes them: canned ACLs (`x-amz-acl`), the `AccessControlPolicy` XML of
//! Get/Put{Bucket,Object}Acl, and the PublicAccessBlock configuration's XML.

use serde::{Deserialize, Serialize};
use strata_common::proto::{Grant, PublicAccessBlock};

use crate::error::{S3Error, S3Result};
use crate::xml::NS;

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const PERMISSIONS: &[&str] = &["FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP"];

/// Whom a resource belongs to: a canonical user id and its display name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

fn user_grant(o: &Owner, permission: &str) -> Grant {
    Grant { id: o.id.clone(), display_name: o.display_name.clone(), uri: String::new(), permission: permission.into() }
}

fn group_grant(uri: &str, permission: &str) -> Grant {
    Grant { uri: uri.into(), permission: permission.into(), ..Default::default() }
}

/// A grant to everyone, or to every signed-in requester: what BlockPublicAcls refuses and
/// IgnorePublicAcls disregards.
pub fn is_public(g: &Grant) -> bool {
    g.uri == ALL_USERS || g.uri == AUTHENTICATED_USERS
}

/// The grants of a canned ACL. `bucket_owner`: the owner of the object's bucket (the
/// `bucket-owner-*` ACLs, objects only).
pub fn canned(name: &str, owner: &Owner, bucket_owner: Option<&Owner>) -> S3Result<Vec<Grant>> {
    let mut grants = vec![user_grant(owner, "FULL_CONTROL")];
    match (name, bucket_owner) {
        ("private", _) => {}
        ("public-read", _) => grants.push(group_grant(ALL_USERS, "READ")),
        ("public-read-write", _) => {
            grants.push(group_grant(ALL_USERS, "READ"));
            grants.push(group_grant(ALL_USERS, "WRITE"));
        }
        ("authenticated-read", _) => grants.push(group_grant(AUTHENTICATED_USERS, "READ")),
        ("bucket-owner-read", Some(b)) if b.id != owner.id => grants.push(user_grant(b, "READ")),
        ("bucket-owner-full-control", Some(b)) if b.id != owner.id => grants.push(user_grant(b, "FULL_CONTROL")),
        ("bucket-owner-read" | "bucket-owner-full-control", Some(_)) => {}
        _ => {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-acl {name:?} is not a canned ACL here: use private, public-read, public-read-write, \
                 authenticated-read{}",
                if bucket_owner.is_some() { ", bucket-owner-read or bucket-owner-full-control" } else { "" }
            )));
        }
    }
    Ok(grants)
}

#[derive(Debug, Default, Deserialize)]
struct GranteeIn {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "DisplayName", default)]
    display_name: Option<String>,
    #[serde(rename = "URI", default)]
    uri: Option<String>,
    #[serde(rename = "EmailAddress", default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GrantIn {
    #[serde(rename = "Grantee")]
    grantee: GranteeIn,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Debug, Default, Deserialize)]
struct GrantsIn {
    #[serde(rename = "Grant", default)]
    grant: Vec<GrantIn>,
}

#[derive(Debug, Deserialize)]
struct PolicyIn {
    #[serde(rename = "AccessControlList", default)]
    list: GrantsIn,
}

/// The grants of an `AccessControlPolicy` body. Its `Owner` is not a change of owner (the
/// stored owner stays) and is not compared: clients send the id they know the owner by.
pub fn parse_policy(body: &[u8]) -> S3Result<Vec<Grant>> {
    let p: PolicyIn = crate::xml::parse(body)?;
    let mut grants = Vec::new();
    for g in p.list.grant {
        if !PERMISSIONS.contains(&g.permission.as_str()) {
            return Err(S3Error::malformed_xml());
        }
        let grant = match (g.grantee.id, g.grantee.uri, g.grantee.email) {
            (Some(id), None, None) if !id.is_empty() => {
                let display_name = g.grantee.display_name.unwrap_or_default();
                Grant { id, display_name, uri: String::new(), permission: g.permission }
            }
            (None, Some(uri), None) if uri == ALL_USERS || uri == AUTHENTICATED_USERS => {
                group_grant(&uri, &g.permission)
            }
            (None, Some(uri), None) => {
                return Err(S3Error::invalid_argument(format!(
                    "Invalid group uri {uri:?}: use AllUsers or AuthenticatedUsers"
                )));
            }
            (None, None, Some(_)) => {
                return Err(S3Error::not_implemented(
                    "a grant to an e-mail address (grant to the user's canonical ID)",
                ));
            }
            _ => return Err(S3Error::malformed_xml()),
        };
        grants.push(grant);
    }
    Ok(grants)
}

/// The `AccessControlPolicy` document of a resource.
pub fn policy_xml(owner: &Owner, grants: &[Grant]) -> String {
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let mut list = String::new();
    for g in grants {
        let grantee = if g.uri.is_empty() {
            let name = if g.display_name.is_empty() { &g.id } else { &g.display_name };
            format!(
                "<Grantee {xsi} xsi:type=\"CanonicalUser\"><ID>{}</ID><DisplayName>{}</DisplayName></Grantee>",
                esc(&g.id),
                esc(name)
            )
        } else {
            format!("<Grantee {xsi} xsi:type=\"Group\"><URI>{}</URI></Grantee>", esc(&g.uri))
        };
        list += &format!("<Grant>{grantee}<Permission>{}</Permission></Grant>", esc(&g.permission));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy xmlns=\"{NS}\"><Owner><ID>{}</ID>\
         <DisplayName>{}</DisplayName></Owner><AccessControlList>{list}</AccessControlList></AccessControlPolicy>",
        esc(&owner.id),
        esc(&owner.display_name)
    )
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PublicAccessBlockXml {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    xmlns: &'static str,
    #[serde(rename = "BlockPublicAcls", default)]
    block_public_acls: bool,
    #[serde(rename = "IgnorePublicAcls", default)]
    ignore_public_acls: bool,
    #[serde(rename = "BlockPublicPolicy", default)]
    block_public_policy: bool,
    #[serde(rename = "RestrictPublicBuckets", default)]
    restrict_public_buckets: bool,
}

impl PublicAccessBlockXml {
    pub fn parse(body: &[u8]) -> S3Result<PublicAccessBlock> {
        let x: PublicAccessBlockXml = crate::xml::parse(body)?;
        Ok(PublicAccessBlock {
            block_public_acls: x.block_public_acls,
            ignore_public_acls: x.ignore_public_acls,
            block_public_policy: x.block_public_policy,
            restrict_public_buckets: x.restrict_public_buckets,
        })
    }
    pub fn of(p: &PublicAccessBlock) -> PublicAccessBlockXml {
        PublicAccessBlockXml {
            xmlns: NS,
            block_public_acls: p.block_public_acls,
            ignore_public_acls: p.ignore_public_acls,
            block_public_policy: p.block_public_policy,
            restrict_public_buckets: p.restrict_public_buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::S3ErrorCode;

    fn o(id: &str) -> Owner {
        Owner { id: id.into(), display_name: format!("{id}-name") }
    }

    #[test]
    fn canned_acls_give_the_owner_full_control_and_the_groups_what_they_say() {
        let uris = |g: Vec<Grant>| g.iter().map(|g| format!("{}{}:{}", g.id, g.uri, g.permission)).collect::<Vec<_>>();
        assert_eq!(uris(canned("private", &o("a"), None).unwrap()), ["a:FULL_CONTROL"]);
        assert_eq!(
            uris(canned("public-read", &o("a"), None).unwrap()),
            ["a:FULL_CONTROL", &format!("{ALL_USERS}:READ")]
        );
        assert_eq!(canned("public-read-write", &o("a"), None).unwrap().len(), 3);
        assert!(canned("authenticated-read", &o("a"), None).unwrap().iter().any(|g| g.uri == AUTHENTICATED_USERS));
        assert_eq!(uris(canned("bucket-owner-read", &o("a"), Some(&o("b"))).unwrap()), ["a:FULL_CONTROL", "b:READ"]);
        assert_eq!(canned("bucket-owner-full-control", &o("a"), Some(&o("a"))).unwrap().len(), 1);
        assert_eq!(canned("bucket-owner-read", &o("a"), None).unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert_eq!(canned("public", &o("a"), None).unwrap_err().code, S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn a_policy_round_trips_and_bad_ones_are_refused() {
        let grants = vec![
            Grant {
                id: "alt".into(),
                display_name: "Alt".into(),
                uri: String::new(),
                permission: "FULL_CONTROL".into(),
            },
            group_grant(ALL_USERS, "READ"),
        ];
        let doc = policy_xml(&o("a"), &grants);
        assert_eq!(parse_policy(doc.as_bytes()).unwrap(), grants);
        let bad = doc.replace("FULL_CONTROL", "EVERYTHING");
        assert_eq!(parse_policy(bad.as_bytes()).unwrap_err().code, S3ErrorCode::MalformedXML);
        let bad = doc.replace("AllUsers", "Everybody");
        assert_eq!(parse_policy(bad.as_bytes()).unwrap_err().code, S3ErrorCode::InvalidArgument);
        let mail = doc.replace("<ID>alt</ID>", "<EmailAddress>a@b</EmailAddress>");
        assert_eq!(parse_policy(mail.as_bytes()).unwrap_err().code, S3ErrorCode::NotImplemented);
        assert_eq!(parse_policy(b"<nope").unwrap_err().code, S3ErrorCode::MalformedXML);
    }

    #[test]
    fn public_access_block_xml() {
        let body = b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>\
            <RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>";
        let p = PublicAccessBlockXml::parse(body).unwrap();
        assert!(p.block_public_acls && p.restrict_public_buckets && !p.ignore_public_acls);
        let x = quick_xml::se::to_string_with_root("PublicAccessBlockConfiguration", &PublicAccessBlockXml::of(&p));
        assert!(x.unwrap().contains("<IgnorePublicAcls>false</IgnorePublicAcls>"));
    }
}
