//! Typed accessors for users and their access keys (keys `("user", id)`, `("ak", key)`).

use async_trait::async_trait;
use strata_common::kv::Txn;
use strata_common::proto::{AccessKey, User};
use strata_common::{Result, codec, keys};

use super::{value, values};

#[async_trait]
pub(crate) trait UserSchema {
    async fn user(&mut self, id: &str) -> Result<Option<User>>;
    fn put_user(&mut self, u: &User);
    async fn users(&mut self) -> Result<Vec<User>>;
    async fn access_key(&mut self, access_key: &str) -> Result<Option<AccessKey>>;
    fn put_access_key(&mut self, k: &AccessKey);
    fn remove_access_key(&mut self, access_key: &str);
    /// Every access key (of every user).
    async fn access_keys(&mut self) -> Result<Vec<AccessKey>>;
}

#[async_trait]
impl UserSchema for Txn {
    async fn user(&mut self, id: &str) -> Result<Option<User>> {
        value(self, &keys::user(id)).await
    }
    fn put_user(&mut self, u: &User) {
        self.set(&keys::user(&u.id), &codec::encode(u));
    }
    async fn users(&mut self) -> Result<Vec<User>> {
        values(self, keys::users()).await
    }
    async fn access_key(&mut self, access_key: &str) -> Result<Option<AccessKey>> {
        value(self, &keys::access_key(access_key)).await
    }
    fn put_access_key(&mut self, k: &AccessKey) {
        self.set(&keys::access_key(&k.access_key), &codec::encode(k));
    }
    fn remove_access_key(&mut self, access_key: &str) {
        self.clear(&keys::access_key(access_key));
    }
    async fn access_keys(&mut self) -> Result<Vec<AccessKey>> {
        values(self, keys::access_keys()).await
    }
}
