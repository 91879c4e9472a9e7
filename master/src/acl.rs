//! Stored access control: a bucket's owner, ACL and PublicAccessBlock, an object's ACL. The
//! gateway decides who may do what (its `access` module); the master only keeps the records.

use std::sync::Arc;

use strata_common::Result;
use strata_common::kv::{KvStore, transact};
use strata_common::proto::{Bucket, BucketAccessRequest, ObjectAclRequest};

use crate::schema::{Schema, no_such_key};

pub(crate) struct Acls {
    store: Arc<dyn KvStore>,
}

/// The `set_` parts of `r` applied to `b`.
pub(crate) fn apply_access(b: &mut Bucket, r: BucketAccessRequest) {
    if r.set_owner {
        b.owner = r.owner;
        b.owner_display_name = r.owner_display_name;
    }
    if r.set_grants {
        b.grants = r.grants;
    }
    if r.set_public_access_block {
        b.public_access_block = r.public_access_block;
    }
    if r.set_policy {
        b.policy = r.policy;
    }
    if r.set_user_grant {
        let g = r.user_grant.unwrap_or_default();
        b.user_grants.retain(|x| x.user_id != g.user_id);
        if g.read || g.write || g.owner {
            b.user_grants.push(g);
        }
    }
}

impl Acls {
    pub(crate) fn new(store: Arc<dyn KvStore>) -> Acls {
        Acls { store }
    }

    pub(crate) async fn set_bucket_access(&self, req: BucketAccessRequest) -> Result<Bucket> {
        transact(self.store.as_ref(), |t| {
            let r = req.clone();
            Box::pin(async move {
                let mut b = t.bucket(&r.bucket).await?;
                apply_access(&mut b, r);
                t.put_bucket(&b);
                Ok(b)
            })
        })
        .await
    }

    pub(crate) async fn set_object_acl(&self, req: ObjectAclRequest) -> Result<()> {
        transact(self.store.as_ref(), |t| {
            let r = req.clone();
            Box::pin(async move {
                t.bucket(&r.bucket).await?;
                let mut meta = t.object(&r.bucket, &r.key).await?.ok_or_else(no_such_key)?;
                meta.grants = r.grants;
                t.rewrite_object(&r.bucket, &meta);
                Ok(())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_common::proto::{Grant, PublicAccessBlock};

    #[tokio::test]
    async fn each_part_changes_only_when_asked() {
        let store = crate::store::open("memory://").await.unwrap();
        let acls = Acls::new(store.clone());
        transact(store.as_ref(), |t| {
            Box::pin(async move {
                t.put_bucket(&Bucket { name: "b".into(), owner: "o".into(), ..Default::default() });
                Ok(())
            })
        })
        .await
        .unwrap();
        let g = Grant { uri: "u".into(), permission: "READ".into(), ..Default::default() };
        let pab = PublicAccessBlock { block_public_acls: true, ..Default::default() };
        let req = BucketAccessRequest {
            bucket: "b".into(),
            set_grants: true,
            grants: vec![g.clone()],
            set_public_access_block: true,
            public_access_block: Some(pab),
            ..Default::default()
        };
        let b = acls.set_bucket_access(req).await.unwrap();
        assert_eq!((b.owner.as_str(), b.grants.clone(), b.public_access_block), ("o", vec![g.clone()], Some(pab)));
        let req = BucketAccessRequest { bucket: "b".into(), set_public_access_block: true, ..Default::default() };
        let b = acls.set_bucket_access(req).await.unwrap();
        assert_eq!((b.grants, b.public_access_block), (vec![g], None));
        let missing = ObjectAclRequest { bucket: "b".into(), key: "k".into(), grants: vec![] };
        assert_eq!(acls.set_object_acl(missing).await.unwrap_err().kind, strata_common::ErrorKind::NoSuchKey);
    }
}
