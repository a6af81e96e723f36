//! The webhook's serving certificate, from the files a `kubernetes.io/tls`
//! Secret mounts (`tls.crt`, `tls.key`). They are read again when they
//! change, so a rotated Secret is served without a restart; each handshake
//! takes the current pair whole, never the old certificate with a new key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;

/// Where the certificate (PEM, leaf first, then its chain) and its key
/// (PEM: PKCS#8, PKCS#1 or SEC1) are.
#[derive(Clone, Debug)]
pub struct CertificateFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key: {reason}")]
    NoKey { path: PathBuf, reason: String },
    #[error("the key in {path} cannot sign: {source}")]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the key in {key} is not the key of the certificate in {certificate}")]
    Mismatch { certificate: PathBuf, key: PathBuf },
}

/// The pair handshakes present right now.
#[derive(Clone, Debug)]
pub struct ServingCertificate {
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl ServingCertificate {
    pub fn load(files: &CertificateFiles) -> Result<Self, CertificateError> {
        Ok(Self {
            current: Arc::new(RwLock::new(load(files)?)),
        })
    }

    /// A TLS server presenting the current pair; HTTP/2 or HTTP/1.1, as the
    /// API server offers.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reads the files again every `every`, replacing the pair when they
    /// changed and load; a change that does not load (a key written before
    /// its certificate) is logged and the old pair keeps serving until the
    /// next change.
    pub async fn follow(self, files: CertificateFiles, every: Duration) {
        let paths = [&files.certificate, &files.key].map(Clone::clone);
        crate::file_changes::on_change(paths, every, || match load(&files) {
            Ok(pair) => {
                *self.current.write().expect("certificate lock") = pair;
                tracing::info!(certificate = %files.certificate.display(), "webhook certificate reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "webhook certificate not reloaded; the old one keeps serving")
            }
        })
        .await
    }
}

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(files: &CertificateFiles) -> Result<Arc<CertifiedKey>, CertificateError> {
    let certificate = read(&files.certificate)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&certificate)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: files.certificate.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|error| {
        CertificateError::NoKey {
            path: files.key.clone(),
            reason: error.to_string(),
        }
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|source| CertificateError::Key {
            path: files.key.clone(),
            source,
        })?;
    let pair = CertifiedKey::new(chain, signing_key);
    pair.keys_match().map_err(|_| CertificateError::Mismatch {
        certificate: files.certificate.clone(),
        key: files.key.clone(),
    })?;
    Ok(Arc::new(pair))
}

fn read(path: &Path) -> Result<Vec<u8>, CertificateError> {
    std::fs::read(path).map_err(|source| CertificateError::Read {
        path: path.to_path_buf(),
        source,
    })
}
