//! S3 users and their access keys, beside the root key of the credentials file. A key's secret
//! is answered once, when it is created; listings leave it blank. In the store it is sealed
//! with the master's secrets key (`credentials::SecretsKey`); records from before are sealed at
//! start ([`Users::seal_clear_secrets`]). A revoked or disabled key is refused by the master at
//! once; gateways stop trusting their cached copy within their secret TTL.

use std::sync::Arc;

use strata_common::kv::{KvStore, transact};
use strata_common::proto::{AccessKey, CredentialResponse, User};
use strata_common::{Error, ErrorKind, Result, ids};

use crate::credentials::RootCredentials;
use crate::schema::UserSchema;

pub(crate) struct Users {
    store: Arc<dyn KvStore>,
    root: RootCredentials,
}

fn no_such_key() -> Error {
    Error::new(ErrorKind::InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
}

fn no_such_user(id: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("no user {id:?}: `strata admin user list` shows them"))
}

/// A user id is shown in ACLs and typed by operators: printable ASCII, no spaces or quotes.
fn check_user_id(id: &str) -> Result<()> {
    // "anonymous" owns what anonymous requests write (where an ACL lets them): no user takes it.
    if id.eq_ignore_ascii_case("anonymous") {
        return Err(Error::invalid("user id \"anonymous\" is reserved for unsigned requests: choose another"));
    }
    let ok = (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"$._-@+=:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "user id {id:?}: use 1 to 128 letters, digits or any of $._-@+=: (it is the canonical id in ACLs)"
        )))
    }
}

impl Users {
    pub(crate) fn new(store: Arc<dyn KvStore>, root: RootCredentials) -> Users {
        Users { store, root }
    }

    /// The secret and the principal of an access key: the root key, or a user's.
    /// The secret of a stored key: sealed, or (a record from before sealing) in clear.
    fn secret_of(&self, k: &AccessKey) -> Result<String> {
        if k.sealed_secret.is_empty() {
            return Ok(k.secret_key.clone());
        }
        self.root.secrets_key.open(&k.access_key, &k.sealed_secret)
    }

    /// Seals every secret still kept in clear; returns how many.
    pub(crate) async fn seal_clear_secrets(&self) -> Result<usize> {
        let sealer = self.root.secrets_key.clone();
        let n = transact(self.store.as_ref(), |t| {
            let sealer = sealer.clone();
            Box::pin(async move {
                let mut n = 0;
                for mut k in t.access_keys().await?.into_iter().filter(|k| !k.secret_key.is_empty()) {
                    k.sealed_secret = sealer.seal(&k.access_key, &k.secret_key)?;
                    k.secret_key.clear();
                    t.put_access_key(&k);
                    n += 1;
                }
                Ok(n)
            })
        })
        .await?;
        if n > 0 {
            tracing::info!(keys = n, "secret keys kept in clear are sealed now");
        }
        Ok(n)
    }

    pub(crate) async fn credential(&self, access_key: &str) -> Result<CredentialResponse> {
        if ids::secret_eq(access_key, &self.root.access_key) {
            return Ok(CredentialResponse {
                access_key: access_key.into(),
                secret_key: self.root.secret_key.clone(),
                user_id: self.root.access_key.clone(),
                display_name: self.root.access_key.clone(),
                root: true,
            });
        }
        let ak = access_key.to_string();
        let found = transact(self.store.as_ref(), |t| {
            let ak = ak.clone();
            Box::pin(async move {
                let Some(k) = t.access_key(&ak).await? else { return Ok(None) };
                let user = t.user(&k.user_id).await?.filter(|u| !u.deleted);
                Ok(user.map(|u| (k, u)))
            })
        })
        .await?;
        // AWS answers an inactive key as an unknown one.
        let (k, u) = found.filter(|(k, _)| !k.disabled).ok_or_else(no_such_key)?;
        Ok(CredentialResponse {
            secret_key: self.secret_of(&k)?,
            access_key: k.access_key,
            user_id: u.id,
            display_name: u.display_name,
            root: false,
        })
    }

    pub(crate) async fn create_user(&self, mut user: User) -> Result<User> {
        check_user_id(&user.id)?;
        if user.id == self.root.access_key {
            return Err(Error::invalid("that id is the root key's: choose another"));
        }
        if user.display_name.is_empty() {
            user.display_name = user.id.clone();
        }
        user.created_ms = ids::now_ms();
        transact(self.store.as_ref(), |t| {
            let u = user.clone();
            Box::pin(async move {
                match t.user(&u.id).await? {
                    Some(old) if old.deleted => {
                        return Err(Error::invalid(format!(
                            "user id {:?} was deleted and is not reused (ACLs and policies may name it): choose another",
                            u.id
                        )));
                    }
                    Some(_) => return Err(Error::invalid(format!("user {:?} exists already", u.id))),
                    None => {}
                }
                t.put_user(&u);
                Ok(())
            })
        })
        .await?;
        tracing::info!(user = %user.id, "user created");
        Ok(user)
    }

    pub(crate) async fn list_users(&self) -> Result<Vec<User>> {
        let mut users = transact(self.store.as_ref(), |t| Box::pin(async move { t.users().await })).await?;
        users.retain(|u| !u.deleted);
        Ok(users)
    }

    /// The user and every key of theirs; buckets they own stay (the root key can reach them).
    /// A tombstone keeps the id from being taken again.
    pub(crate) async fn delete_user(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        transact(self.store.as_ref(), |t| {
            let id = id.clone();
            Box::pin(async move {
                let u = t.user(&id).await?.filter(|u| !u.deleted).ok_or_else(|| no_such_user(&id))?;
                for k in t.access_keys().await?.into_iter().filter(|k| k.user_id == id) {
                    t.remove_access_key(&k.access_key);
                }
                t.put_user(&User { deleted: true, ..u });
                Ok(())
            })
        })
        .await?;
        tracing::info!(user = %id, "user deleted with its keys");
        Ok(())
    }

    /// A new key of `user_id`, with its secret (the only time it is answered).
    pub(crate) async fn create_key(&self, user_id: &str) -> Result<AccessKey> {
        let key = AccessKey {
            access_key: ids::access_key_id(),
            secret_key: ids::secret_key(),
            user_id: user_id.to_string(),
            created_ms: ids::now_ms(),
            ..Default::default()
        };
        let stored = AccessKey {
            sealed_secret: self.root.secrets_key.seal(&key.access_key, &key.secret_key)?,
            secret_key: String::new(),
            ..key.clone()
        };
        transact(self.store.as_ref(), |t| {
            let k = stored.clone();
            Box::pin(async move {
                t.user(&k.user_id).await?.filter(|u| !u.deleted).ok_or_else(|| no_such_user(&k.user_id))?;
                t.put_access_key(&k);
                Ok(())
            })
        })
        .await?;
        tracing::info!(user = %user_id, access_key = %key.access_key, "access key created");
        Ok(key)
    }

    /// The keys of `user_id` ("" = every user's), secrets blank.
    pub(crate) async fn list_keys(&self, user_id: &str) -> Result<Vec<AccessKey>> {
        let mut keys = transact(self.store.as_ref(), |t| Box::pin(async move { t.access_keys().await })).await?;
        keys.retain(|k| user_id.is_empty() || k.user_id == user_id);
        for k in &mut keys {
            k.secret_key.clear();
            k.sealed_secret.clear();
        }
        Ok(keys)
    }

    pub(crate) async fn revoke_key(&self, access_key: &str) -> Result<()> {
        if ids::secret_eq(access_key, &self.root.access_key) {
            return Err(Error::invalid(
                "the root key is not revoked here: change root_access_key/root_secret_key (or the credentials file) and restart the master",
            ));
        }
        let ak = access_key.to_string();
        transact(self.store.as_ref(), |t| {
            let ak = ak.clone();
            Box::pin(async move {
                t.access_key(&ak).await?.ok_or_else(no_such_key)?;
                t.remove_access_key(&ak);
                Ok(())
            })
        })
        .await?;
        tracing::info!(access_key, "access key revoked");
        Ok(())
    }

    /// Disables (refused as if unknown) or enables a key.
    pub(crate) async fn set_key_disabled(&self, access_key: &str, disabled: bool) -> Result<()> {
        if ids::secret_eq(access_key, &self.root.access_key) {
            return Err(Error::invalid(
                "the root key is not disabled here: change root_access_key/root_secret_key (or the credentials file) and restart the master",
            ));
        }
        let ak = access_key.to_string();
        transact(self.store.as_ref(), |t| {
            let ak = ak.clone();
            Box::pin(async move {
                let mut k = t.access_key(&ak).await?.ok_or_else(no_such_key)?;
                k.disabled = disabled;
                t.put_access_key(&k);
                Ok(())
            })
        })
        .await?;
        tracing::info!(access_key, disabled, "access key state changed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn users() -> Users {
        let store = crate::store::open("memory://").await.unwrap();
        Users::new(store, RootCredentials::new("ROOT".into(), "rs".into()))
    }

    #[tokio::test]
    async fn a_key_finds_its_user_until_revoked() {
        let u = users().await;
        u.create_user(User { id: "alice".into(), display_name: "Alice".into(), ..Default::default() }).await.unwrap();
        let k = u.create_key("alice").await.unwrap();
        assert_eq!(k.secret_key.len(), 40);
        let c = u.credential(&k.access_key).await.unwrap();
        assert_eq!(
            (c.secret_key.as_str(), c.user_id.as_str(), c.display_name.as_str(), c.root),
            (k.secret_key.as_str(), "alice", "Alice", false)
        );
        let listed = u.list_keys("alice").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].secret_key.is_empty(), "listings never show a secret");
        u.revoke_key(&k.access_key).await.unwrap();
        assert_eq!(u.credential(&k.access_key).await.unwrap_err().kind, ErrorKind::InvalidAccessKeyId);
        assert_eq!(u.revoke_key(&k.access_key).await.unwrap_err().kind, ErrorKind::InvalidAccessKeyId);
    }

    #[tokio::test]
    async fn secrets_are_sealed_in_the_store_and_disabled_keys_refused() {
        let store = crate::store::open("memory://").await.unwrap();
        let u = Users::new(store.clone(), RootCredentials::new("ROOT".into(), "rs".into()));
        u.create_user(User { id: "eve".into(), ..Default::default() }).await.unwrap();
        let k = u.create_key("eve").await.unwrap();
        // An old record in clear is sealed by the migration.
        let old = AccessKey {
            access_key: "OLDKEY".into(),
            secret_key: "old-clear-secret".into(),
            user_id: "eve".into(),
            ..Default::default()
        };
        let o = old.clone();
        transact(store.as_ref(), |t| {
            let o = o.clone();
            Box::pin(async move {
                t.put_access_key(&o);
                Ok(())
            })
        })
        .await
        .unwrap();
        assert_eq!(u.credential("OLDKEY").await.unwrap().secret_key, "old-clear-secret");
        assert_eq!(u.seal_clear_secrets().await.unwrap(), 1);
        assert_eq!(u.seal_clear_secrets().await.unwrap(), 0);
        let rows = transact(store.as_ref(), |t| Box::pin(async move { t.get_range(&[], &[0xFF], 0, false).await }))
            .await
            .unwrap();
        let dump: Vec<u8> = rows.into_iter().flat_map(|(k, v)| [k, v].concat()).collect();
        for secret in [k.secret_key.as_str(), "old-clear-secret"] {
            assert!(!dump.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the store");
        }
        assert_eq!(u.credential(&k.access_key).await.unwrap().secret_key, k.secret_key);
        assert_eq!(u.credential("OLDKEY").await.unwrap().secret_key, "old-clear-secret");
        u.set_key_disabled(&k.access_key, true).await.unwrap();
        assert_eq!(u.credential(&k.access_key).await.unwrap_err().kind, ErrorKind::InvalidAccessKeyId);
        assert_eq!(u.list_keys("eve").await.unwrap().iter().filter(|k| k.disabled).count(), 1);
        u.set_key_disabled(&k.access_key, false).await.unwrap();
        assert_eq!(u.credential(&k.access_key).await.unwrap().secret_key, k.secret_key);
        assert!(u.set_key_disabled("ROOT", true).await.is_err());
        assert!(u.set_key_disabled("NOKEY", true).await.is_err());
    }

    #[tokio::test]
    async fn root_is_the_bootstrap_key_and_cannot_be_revoked_here() {
        let u = users().await;
        let c = u.credential("ROOT").await.unwrap();
        assert!(c.root);
        assert_eq!(c.secret_key, "rs");
        assert!(u.revoke_key("ROOT").await.is_err());
        assert!(u.create_user(User { id: "ROOT".into(), ..Default::default() }).await.is_err());
        // The owner id of anonymous writes is no user's.
        assert!(u.create_user(User { id: "anonymous".into(), ..Default::default() }).await.is_err());
    }

    #[tokio::test]
    async fn deleting_a_user_takes_its_keys() {
        let u = users().await;
        u.create_user(User { id: "bob".into(), ..Default::default() }).await.unwrap();
        assert!(u.create_user(User { id: "bob".into(), ..Default::default() }).await.is_err());
        assert!(u.create_user(User { id: "bad id".into(), ..Default::default() }).await.is_err());
        let k1 = u.create_key("bob").await.unwrap();
        let k2 = u.create_key("bob").await.unwrap();
        assert!(u.create_key("nobody").await.is_err());
        assert_eq!(u.list_users().await.unwrap()[0].display_name, "bob");
        u.delete_user("bob").await.unwrap();
        for k in [k1, k2] {
            assert_eq!(u.credential(&k.access_key).await.unwrap_err().kind, ErrorKind::InvalidAccessKeyId);
        }
        assert!(u.list_keys("").await.unwrap().is_empty());
        assert!(u.delete_user("bob").await.is_err());
        assert!(u.list_users().await.unwrap().is_empty());
        let again = u.create_user(User { id: "bob".into(), ..Default::default() }).await.unwrap_err();
        assert!(again.message.contains("not reused"), "{}", again.message);
        assert!(u.create_key("bob").await.is_err());
    }
}
