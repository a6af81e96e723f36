//! Trust anchors: the root certificates every identity in the mesh chains
//! to, as a PEM bundle (Linkerd's `identityTrustAnchorsPEM`).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Clone, Debug)]
pub struct TrustAnchors {
    certificates: Vec<CertificateDer<'static>>,
    roots: Arc<RootCertStore>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("the trust anchors are not PEM certificates: {0}")]
    Pem(String),
    #[error("the trust anchor bundle holds no certificate")]
    Empty,
    #[error("trust anchor {index} cannot be used: {source}")]
    Unusable { index: usize, source: rustls::Error },
}

impl TrustAnchors {
    pub fn from_pem(pem: &[u8]) -> Result<Self, TrustError> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrustError::Pem(e.to_string()))?;
        Self::from_der(certificates)
    }

    pub fn from_der(certificates: Vec<CertificateDer<'static>>) -> Result<Self, TrustError> {
        if certificates.is_empty() {
            return Err(TrustError::Empty);
        }
        let mut roots = RootCertStore::empty();
        for (index, certificate) in certificates.iter().enumerate() {
            roots
                .add(certificate.clone())
                .map_err(|source| TrustError::Unusable { index, source })?;
        }
        Ok(Self {
            certificates,
            roots: Arc::new(roots),
        })
    }

    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// The bundle as PEM, as proxies are given it.
    pub fn to_pem(&self) -> String {
        self.certificates
            .iter()
            .map(|c| pem("CERTIFICATE", c))
            .collect()
    }
}

pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bundles_are_refused() {
        assert!(matches!(
            TrustAnchors::from_pem(b""),
            Err(TrustError::Empty)
        ));
        let garbage = pem("CERTIFICATE", b"not a certificate");
        assert!(TrustAnchors::from_pem(garbage.as_bytes()).is_err());
    }
}
