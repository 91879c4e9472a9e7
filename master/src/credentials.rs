//! The root S3 credentials: generated on first start and kept in the data folder (mode 0600),
//! or given by configuration (`root_access_key` / `root_secret_key`, `STRATA_ROOT_*`); and the
//! key that seals users' secret keys in the metadata store (AES-256-GCM): `STRATA_SECRETS_KEY`
//! (64 hex digits); else, for masters that share a store under an election, one derived from
//! their common cluster secret; else `<data_dir>/secrets.key`, made on first start (mode 0600).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use strata_common::{Error, Result, ids};

#[derive(Clone)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub secrets_key: SecretsKey,
}

/// Seals and opens users' secret keys.
#[derive(Clone)]
pub struct SecretsKey(Arc<LessSafeKey>);

const SECRETS_FILE: &str = "secrets.key";
pub const SECRETS_ENV: &str = "STRATA_SECRETS_KEY";

impl SecretsKey {
    fn from_bytes(b: &[u8]) -> Result<SecretsKey> {
        let key = UnboundKey::new(&AES_256_GCM, b).map_err(|_| Error::invalid("a secrets key is 32 bytes"))?;
        Ok(SecretsKey(Arc::new(LessSafeKey::new(key))))
    }

    /// A key for this process only (tests).
    pub fn random() -> SecretsKey {
        let mut b = [0u8; 32];
        SystemRandom::new().fill(&mut b).expect("the system's random source");
        SecretsKey::from_bytes(&b).expect("32 bytes")
    }

    fn from_hex(text: &str, from: &str) -> Result<SecretsKey> {
        let b = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::invalid(format!("{from}: give 64 hex digits (e.g. `openssl rand -hex 32`)")))?;
        SecretsKey::from_bytes(&b)
    }

    /// `env` (the value of STRATA_SECRETS_KEY) wins; then a key derived from `shared` (the
    /// cluster secret of elected masters, which must all open the same records); else
    /// `<data_dir>/secrets.key`, made once.
    pub fn load_or_create(data_dir: &Path, env: Option<&str>, shared: Option<&str>) -> Result<SecretsKey> {
        if let Some(v) = env.filter(|v| !v.is_empty()) {
            return SecretsKey::from_hex(v, SECRETS_ENV);
        }
        if let Some(s) = shared {
            let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"strata secrets key");
            let prk = salt.extract(s.as_bytes());
            let info: [&[u8]; 1] = [b"aes-256-gcm"];
            let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| Error::internal("cannot derive the secrets key"))?;
            return Ok(SecretsKey(Arc::new(LessSafeKey::new(UnboundKey::from(okm)))));
        }
        let path = data_dir.join(SECRETS_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::internal(format!("cannot read {}: {e}", path.display())))?;
            return SecretsKey::from_hex(&text, &path.display().to_string());
        }
        let mut b = [0u8; 32];
        SystemRandom::new().fill(&mut b).map_err(|_| Error::internal("no random source for the secrets key"))?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", data_dir.display())))?;
        let mut f =
            open_private(&path).map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
        writeln!(f, "{}", hex::encode(b))?;
        f.sync_all()?;
        SecretsKey::from_bytes(&b)
    }

    /// `secret` sealed for the access key `id`: nonce, then ciphertext and tag.
    pub fn seal(&self, id: &str, secret: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| Error::internal("no random source for a nonce"))?;
        let mut data = secret.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut data)
            .map_err(|_| Error::internal("cannot seal a secret key"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// The secret [`seal`](Self::seal) sealed for `id`.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<String> {
        let wrong = || {
            Error::internal(format!(
                "the secret of access key {id} does not open with this master's secrets key: was {SECRETS_ENV} or secrets.key changed?"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut data = data.to_vec();
        let clear = self.0.open_in_place(nonce, Aad::from(id.as_bytes()), &mut data).map_err(|_| wrong())?;
        String::from_utf8(clear.to_vec()).map_err(|_| wrong())
    }
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootCredentials({}, ****)", self.access_key)
    }
}

const FILE: &str = "credentials";

impl RootCredentials {
    /// Given credentials, with a secrets key for this process only (tests).
    pub fn new(access_key: String, secret_key: String) -> RootCredentials {
        RootCredentials { access_key, secret_key, secrets_key: SecretsKey::random() }
    }

    /// Configured values win; otherwise `<data_dir>/credentials`, created on first start. The
    /// secrets key as [`SecretsKey::load_or_create`], `shared` being elected masters' secret.
    pub fn load_or_create(
        data_dir: &Path,
        access: Option<&str>,
        secret: Option<&str>,
        shared: Option<&str>,
    ) -> Result<RootCredentials> {
        let env = std::env::var(SECRETS_ENV).ok();
        let secrets_key = SecretsKey::load_or_create(data_dir, env.as_deref(), shared)?;
        if let (Some(a), Some(s)) = (access, secret) {
            return Ok(RootCredentials { access_key: a.to_string(), secret_key: s.to_string(), secrets_key });
        }
        if access.is_some() != secret.is_some() {
            return Err(Error::invalid("set both root_access_key and root_secret_key, or neither"));
        }
        let path = data_dir.join(FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::internal(format!("cannot read {}: {e}", path.display())))?;
            let field = |name: &str| {
                text.lines()
                    .filter_map(|l| l.split_once('='))
                    .find(|(k, _)| k.trim() == name)
                    .map(|(_, v)| v.trim().to_string())
                    .ok_or_else(|| {
                        Error::internal(format!(
                            "{} has no {name}; delete it to generate new credentials",
                            path.display()
                        ))
                    })
            };
            return Ok(RootCredentials {
                access_key: field("access_key")?,
                secret_key: field("secret_key")?,
                secrets_key,
            });
        }
        let creds = RootCredentials { access_key: ids::access_key_id(), secret_key: ids::secret_key(), secrets_key };
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", data_dir.display())))?;
        let mut f =
            open_private(&path).map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
        writeln!(f, "access_key = {}\nsecret_key = {}", creds.access_key, creds.secret_key)?;
        f.sync_all()?;
        Ok(creds)
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = RootCredentials::load_or_create(dir.path(), None, None, None).unwrap();
        let b = RootCredentials::load_or_create(dir.path(), None, None, None).unwrap();
        assert_eq!((a.access_key.clone(), a.secret_key.clone()), (b.access_key, b.secret_key));
        assert_eq!(a.access_key.len(), 20);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let c = RootCredentials::load_or_create(dir.path(), Some("AK"), Some("SK"), None).unwrap();
        assert_eq!(c.access_key, "AK");
    }

    #[test]
    fn secrets_seal_and_open_with_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretsKey::load_or_create(dir.path(), None, None).unwrap();
        let sealed = k.seal("AKID", "the-secret").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"the-secret"));
        // The file keeps the key across restarts; another key, or another access key id, fails.
        let again = SecretsKey::load_or_create(dir.path(), None, None).unwrap();
        assert_eq!(again.open("AKID", &sealed).unwrap(), "the-secret");
        assert!(again.open("OTHER", &sealed).is_err());
        assert!(SecretsKey::random().open("AKID", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRETS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let env = SecretsKey::load_or_create(dir.path(), Some(&"ab".repeat(32)), Some("cs")).unwrap();
        assert!(env.open("AKID", &sealed).is_err(), "the environment's key wins over the file");
        assert!(SecretsKey::load_or_create(dir.path(), Some("short"), None).is_err());
        // Elected masters derive one key from their common cluster secret.
        let other = tempfile::tempdir().unwrap();
        let a = SecretsKey::load_or_create(dir.path(), None, Some("cluster-secret")).unwrap();
        let b = SecretsKey::load_or_create(other.path(), None, Some("cluster-secret")).unwrap();
        assert_eq!(b.open("AKID", &a.seal("AKID", "s").unwrap()).unwrap(), "s");
        assert!(
            SecretsKey::load_or_create(other.path(), None, Some("another")).unwrap().open("AKID", &sealed).is_err()
        );
    }
}
