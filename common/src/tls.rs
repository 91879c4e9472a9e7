//! TLS with rustls (ring): the certificate a server presents, reloaded from its PEM files when
//! they change or on SIGHUP, and the client side of internal calls (the cluster CA, a client
//! certificate for mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;
use crate::error::{Error, Result};

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::invalid(format!("cannot read the {what} {}: {e}", path.display())))
}

fn certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::invalid(format!("{} is not PEM certificates: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

fn certified_key(cert: &Path, cert_pem: &[u8], key: &Path, key_pem: &[u8]) -> Result<CertifiedKey> {
    let chain = certs(cert_pem, cert)?;
    let der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::invalid(format!("{} holds no PEM private key: {e}", key.display())))?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| {
        Error::invalid(format!("the key {} does not fit the certificate {}: {e}", key.display(), cert.display()))
    })
}

fn roots(ca: &Path) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for c in certs(&read(ca, "CA certificate")?, ca)? {
        store.add(c).map_err(|e| Error::invalid(format!("bad CA certificate in {}: {e}", ca.display())))?;
    }
    Ok(store)
}

/// A certificate and key from PEM files; [`ReloadingCert::reload`] swaps in new files' contents
/// for the handshakes that follow (open connections keep theirs).
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    /// The files' bytes last loaded, and what they made.
    current: RwLock<(Vec<u8>, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadingCert> {
        let (cert_pem, key_pem) = (read(cert, "certificate")?, read(key, "private key")?);
        let ck = certified_key(cert, &cert_pem, key, &key_pem)?;
        let stamp = [cert_pem, key_pem].concat();
        Ok(ReloadingCert { cert: cert.into(), key: key.into(), current: RwLock::new((stamp, Arc::new(ck))) })
    }

    /// Reads the files again; true when they changed and now serve. A bad pair (e.g. a rotation
    /// half done) fails and the previous certificate stays.
    pub fn reload(&self) -> Result<bool> {
        let (cert_pem, key_pem) = (read(&self.cert, "certificate")?, read(&self.key, "private key")?);
        let stamp = [cert_pem.as_slice(), key_pem.as_slice()].concat();
        if self.current.read().unwrap_or_else(|p| p.into_inner()).0 == stamp {
            return Ok(false);
        }
        let ck = certified_key(&self.cert, &cert_pem, &self.key, &key_pem)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (stamp, Arc::new(ck));
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).1.clone())
    }
}

/// What a server speaks TLS with.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    cert: Arc<ReloadingCert>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls({})", self.cert.cert.display())
    }
}

impl ServerTls {
    /// From `cfg.cert`/`cfg.key`; None when they are unset. `client_auth`: require a client
    /// certificate signed by `cfg.ca` (internal servers with `require_client_cert`).
    pub fn from_config(cfg: &TlsConfig, client_auth: bool) -> Result<Option<ServerTls>> {
        let (cert, key) = match (&cfg.cert, &cfg.key) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => return Ok(None),
            _ => return Err(Error::invalid("tls.cert and tls.key go together: set both (PEM files) or neither")),
        };
        let cert = Arc::new(ReloadingCert::load(cert, key)?);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("rustls: {e}")))?;
        let builder = if client_auth {
            let ca = cfg.ca.as_ref().ok_or_else(|| {
                Error::invalid("tls.require_client_cert needs tls.ca, the CA that signs the cluster's certificates")
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                .build()
                .map_err(|e| Error::invalid(format!("cannot verify client certificates with {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(ServerTls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert }))
    }

    /// Reloads the certificate every `every` (when its files changed; zero: never) and on
    /// SIGHUP, until `shutdown`.
    pub fn spawn_reload(&self, every: Duration, shutdown: CancellationToken) {
        let cert = self.cert.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let tick = async {
                    if every.is_zero() { std::future::pending().await } else { tokio::time::sleep(every).await }
                };
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<Option<()>>();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick => {}
                    _ = hangup => tracing::info!("SIGHUP: reloading the TLS certificate"),
                }
                match cert.reload() {
                    Ok(true) => tracing::info!(cert = %cert.cert.display(), "TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("TLS certificate not reloaded, the previous one still serves: {e}"),
                }
            }
        });
    }
}

/// The rustls client config of internal calls to `https://` masters and workers: servers are
/// verified against `cfg.ca`; `client_cert`/`client_key` (else `cert`/`key`) are presented when
/// set. None when no CA is configured.
pub fn client_config(cfg: &TlsConfig) -> Result<Option<ClientConfig>> {
    let Some(ca) = &cfg.ca else { return Ok(None) };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("rustls: {e}")))?
        .with_root_certificates(roots(ca)?);
    let pair = match (&cfg.client_cert, &cfg.client_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => cfg.cert.as_ref().zip(cfg.key.as_ref()),
        _ => return Err(Error::invalid("tls.client_cert and tls.client_key go together: set both or neither")),
    };
    let mut config = match pair {
        Some((c, k)) => {
            let chain = certs(&read(c, "client certificate")?, c)?;
            let der = PrivateKeyDer::from_pem_slice(&read(k, "client key")?)
                .map_err(|e| Error::invalid(format!("{} holds no PEM private key: {e}", k.display())))?;
            builder
                .with_client_auth_cert(chain, der)
                .map_err(|e| Error::invalid(format!("bad client certificate {}: {e}", c.display())))?
        }
        None => builder.with_no_client_auth(),
    };
    // Workers are spoken to in HTTP/1.1, as over plain HTTP.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// tonic's client TLS for `https://` masters: `cfg.ca`, and the client certificate as in
/// [`client_config`]. None when no CA is configured.
pub fn grpc_client_config(cfg: &TlsConfig) -> Result<Option<tonic::transport::ClientTlsConfig>> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let Some(ca) = &cfg.ca else { return Ok(None) };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
    let pair = match (&cfg.client_cert, &cfg.client_key) {
        (Some(c), Some(k)) => Some((c, k)),
        _ => cfg.cert.as_ref().zip(cfg.key.as_ref()),
    };
    if let Some((c, k)) = pair {
        tls = tls.identity(Identity::from_pem(read(c, "client certificate")?, read(k, "client key")?));
    }
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_without_a_key_or_a_bad_file_is_refused_with_what_to_do() {
        let cfg = TlsConfig { cert: Some("/nonexistent/c.pem".into()), ..TlsConfig::default() };
        let e = ServerTls::from_config(&cfg, false).unwrap_err().to_string();
        assert!(e.contains("tls.cert and tls.key go together"), "{e}");
        let cfg = TlsConfig { key: Some("/nonexistent/k.pem".into()), ..cfg };
        let e = ServerTls::from_config(&cfg, false).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
        assert!(ServerTls::from_config(&TlsConfig::default(), false).unwrap().is_none());
        let dir = tempfile_dir("not-pem");
        let f = dir.join("c.pem");
        std::fs::write(&f, "hello").unwrap();
        let cfg = TlsConfig { cert: Some(f.clone()), key: Some(f.clone()), ..TlsConfig::default() };
        let e = ServerTls::from_config(&cfg, false).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("strata-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
