//! The root S3 credentials: generated on first start and kept in the data folder (mode 0600),
//! or given by configuration (`root_access_key` / `root_secret_key`, `STRATA_ROOT_*`).

use std::io::Write;
use std::path::Path;

use strata_common::{Error, Result, ids};

#[derive(Clone)]
pub struct RootCredentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootCredentials({}, ****)", self.access_key)
    }
}

const FILE: &str = "credentials";

impl RootCredentials {
    /// Configured values win; otherwise `<data_dir>/credentials`, created on first start.
    pub fn load_or_create(data_dir: &Path, access: Option<&str>, secret: Option<&str>) -> Result<RootCredentials> {
        if let (Some(a), Some(s)) = (access, secret) {
            return Ok(RootCredentials { access_key: a.to_string(), secret_key: s.to_string() });
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
            return Ok(RootCredentials { access_key: field("access_key")?, secret_key: field("secret_key")? });
        }
        let creds = RootCredentials { access_key: ids::access_key_id(), secret_key: ids::secret_key() };
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
        let a = RootCredentials::load_or_create(dir.path(), None, None).unwrap();
        let b = RootCredentials::load_or_create(dir.path(), None, None).unwrap();
        assert_eq!((a.access_key.clone(), a.secret_key.clone()), (b.access_key, b.secret_key));
        assert_eq!(a.access_key.len(), 20);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let c = RootCredentials::load_or_create(dir.path(), Some("AK"), Some("SK")).unwrap();
        assert_eq!(c.access_key, "AK");
    }
}
