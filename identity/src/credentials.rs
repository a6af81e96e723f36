//! A proxy's credentials: an ECDSA P-256 key made in memory at start (never
//! written anywhere), the CSR for its identity (made once and reused for
//! every refresh, as Linkerd's proxy does), and the certificate currently
//! signed for it, shared with every TLS handshake through [`Credentials`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use weft_api::identity::CertifyResponse;

use crate::TrustAnchors;
use crate::tls::provider;

/// The key and CSR for one identity.
pub struct CertificateRequest {
    name: String,
    key: KeyPair,
    csr: Vec<u8>,
}

/// What the identity service signed: the leaf, the chain up to (not
/// including) a trust anchor, and when it expires.
#[derive(Clone, Debug)]
pub struct SignedCertificate {
    pub leaf: Vec<u8>,
    pub intermediates: Vec<Vec<u8>>,
    pub valid_until: SystemTime,
}

/// The wire form, as the identity service sends it.
impl From<CertifyResponse> for SignedCertificate {
    fn from(response: CertifyResponse) -> Self {
        Self {
            leaf: response.leaf_certificate,
            intermediates: response.intermediate_certificates,
            valid_until: SystemTime::UNIX_EPOCH
                + Duration::from_secs(response.valid_until_unix_seconds.max(0) as u64),
        }
    }
}

impl From<SignedCertificate> for CertifyResponse {
    fn from(signed: SignedCertificate) -> Self {
        Self {
            valid_until_unix_seconds: signed.valid_until_unix_seconds(),
            leaf_certificate: signed.leaf,
            intermediate_certificates: signed.intermediates,
        }
    }
}

impl SignedCertificate {
    pub fn valid_until_unix_seconds(&self) -> i64 {
        self.valid_until
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot make a key or CSR for {name:?}: {source}")]
    Generate { name: String, source: rcgen::Error },
    #[error("the signed certificate is not valid for {name:?}: {source}")]
    Invalid { name: String, source: rustls::Error },
    #[error("the signed certificate is not for this proxy's key")]
    KeyMismatch,
}

impl CertificateRequest {
    pub fn generate(name: &str) -> Result<Self, CredentialsError> {
        let generate = |source| CredentialsError::Generate {
            name: name.to_string(),
            source,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = CertificateParams::new(vec![name.to_string()]).map_err(generate)?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let csr = params.serialize_request(&key).map_err(generate)?;
        Ok(Self {
            name: name.to_string(),
            key,
            csr: csr.der().to_vec(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CSR, DER-encoded: one DNS SAN, the identity.
    pub fn csr_der(&self) -> &[u8] {
        &self.csr
    }

    /// Checks a signed certificate (it chains to the anchors, names this
    /// identity, is valid now, and carries this key) and pairs it with the
    /// key for TLS.
    pub fn certified(
        &self,
        signed: &SignedCertificate,
        anchors: &TrustAnchors,
    ) -> Result<Arc<CertifiedKey>, CredentialsError> {
        let invalid = |source| CredentialsError::Invalid {
            name: self.name.clone(),
            source,
        };
        let leaf = CertificateDer::from(signed.leaf.clone());
        let intermediates: Vec<_> = signed
            .intermediates
            .iter()
            .map(|der| CertificateDer::from(der.clone()))
            .collect();
        let server_name = ServerName::try_from(self.name.clone())
            .map_err(|e| invalid(rustls::Error::General(e.to_string())))?;
        WebPkiServerVerifier::builder_with_provider(anchors.roots(), provider())
            .build()
            .map_err(|e| invalid(rustls::Error::General(e.to_string())))?
            .verify_server_cert(&leaf, &intermediates, &server_name, &[], UnixTime::now())
            .map_err(invalid)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let signing_key = provider()
            .key_provider
            .load_private_key(der)
            .map_err(invalid)?;
        let mut chain = vec![leaf];
        chain.extend(intermediates);
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => Ok(Arc::new(certified)),
            Err(_) => Err(CredentialsError::KeyMismatch),
        }
    }
}

/// The certificate TLS handshakes use right now; replaced whole when it is
/// refreshed, so a handshake sees the old one or the new one, never a mix.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
}

impl Credentials {
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().expect("credentials lock") = Some(key);
    }

    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().expect("credentials lock").clone()
    }

    pub fn is_ready(&self) -> bool {
        self.current().is_some()
    }
}

impl rustls::server::ResolvesServerCert for Credentials {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl rustls::client::ResolvesClientCert for Credentials {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        self.is_ready()
    }
}

/// When to renew a certificate valid until `valid_until`: at 70 % of what
/// is left, clamped to [10 s, 24 h] (Linkerd's figures).
pub fn refresh_after(now: SystemTime, valid_until: SystemTime) -> Duration {
    let left = valid_until.duration_since(now).unwrap_or_default();
    left.mul_f64(0.7)
        .clamp(Duration::from_secs(10), Duration::from_secs(24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_at_seventy_percent_within_bounds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let after = |secs| refresh_after(now, now + Duration::from_secs(secs));
        assert_eq!(after(24 * 3600), Duration::from_secs(60480));
        assert_eq!(after(100), Duration::from_secs(70));
        assert_eq!(after(5), Duration::from_secs(10), "10 s floor");
        assert_eq!(
            after(10 * 24 * 3600),
            Duration::from_secs(24 * 3600),
            "24 h ceiling"
        );
        assert_eq!(
            refresh_after(now, now - Duration::from_secs(1)),
            Duration::from_secs(10)
        );
    }
}
