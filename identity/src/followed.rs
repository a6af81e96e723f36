//! Trust anchors that can be replaced under TLS configurations in use, for
//! rotating them without a restart: the configurations' verifiers ask for
//! the current anchors on every handshake. To rotate, the bundle first holds
//! the old and the new anchor (certificates of either issuer verify), then
//! the issuer changes, then the old anchor goes.

use std::sync::{Arc, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::tls::provider;
use crate::{TlsError, TrustAnchors};

/// The anchors in use, shared by every configuration built on them.
#[derive(Clone, Debug)]
pub struct FollowedAnchors(Arc<RwLock<Arc<Verifiers>>>);

#[derive(Debug)]
struct Verifiers {
    anchors: TrustAnchors,
    servers: Arc<WebPkiServerVerifier>,
    clients: Arc<dyn ClientCertVerifier>,
}

impl Verifiers {
    fn of(anchors: TrustAnchors) -> Result<Self, TlsError> {
        let config = |e: &dyn std::fmt::Display| TlsError::Config(e.to_string());
        let servers = WebPkiServerVerifier::builder_with_provider(anchors.roots(), provider())
            .build()
            .map_err(|e| config(&e))?;
        let clients = WebPkiClientVerifier::builder_with_provider(anchors.roots(), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| config(&e))?;
        Ok(Self {
            anchors,
            servers,
            clients,
        })
    }
}

impl FollowedAnchors {
    pub fn new(anchors: TrustAnchors) -> Result<Self, TlsError> {
        Ok(Self(Arc::new(RwLock::new(Arc::new(Verifiers::of(
            anchors,
        )?)))))
    }

    pub fn current(&self) -> TrustAnchors {
        self.verifiers().anchors.clone()
    }

    /// Every configuration built on these anchors trusts `anchors` from its
    /// next handshake on.
    pub fn replace(&self, anchors: TrustAnchors) -> Result<(), TlsError> {
        let verifiers = Arc::new(Verifiers::of(anchors)?);
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = verifiers;
        Ok(())
    }

    fn verifiers(&self) -> Arc<Verifiers> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn server_verifier(&self) -> Arc<dyn ServerCertVerifier> {
        Arc::new(FollowingServers(self.clone()))
    }

    pub(crate) fn client_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(FollowingClients(self.clone()))
    }
}

/// What the TLS configurations are built on: fixed anchors, or followed
/// ones.
pub trait Anchors {
    fn followed(&self) -> Result<FollowedAnchors, TlsError>;
}

impl Anchors for TrustAnchors {
    fn followed(&self) -> Result<FollowedAnchors, TlsError> {
        FollowedAnchors::new(self.clone())
    }
}

impl Anchors for FollowedAnchors {
    fn followed(&self) -> Result<FollowedAnchors, TlsError> {
        Ok(self.clone())
    }
}

#[derive(Debug)]
struct FollowingServers(FollowedAnchors);

impl ServerCertVerifier for FollowingServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.verifiers().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures::schemes()
    }
}

#[derive(Debug)]
struct FollowingClients(FollowedAnchors);

impl ClientCertVerifier for FollowingClients {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: they would borrow from anchors that may be replaced, and
    /// the mesh's clients present their one certificate regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .verifiers()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signatures::verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signatures::schemes()
    }
}

/// Handshake signatures, checked alike for both sides: they depend on the
/// provider's algorithms, not on the anchors.
mod signatures {
    use std::sync::LazyLock;

    use rustls::client::danger::HandshakeSignatureValid;
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::CertificateDer;
    use rustls::{DigitallySignedStruct, SignatureScheme};

    static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> =
        LazyLock::new(|| crate::tls::provider().signature_verification_algorithms);

    pub fn verify_tls12(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &ALGORITHMS)
    }

    pub fn verify_tls13(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &ALGORITHMS)
    }

    pub fn schemes() -> Vec<SignatureScheme> {
        ALGORITHMS.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;

    /// A root (PEM), and a leaf for `a.example` it signed.
    fn root_and_leaf() -> (String, CertificateDer<'static>) {
        let root_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = params.self_signed(&root_key).unwrap();
        let issuer = Issuer::new(params, root_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (root.pem(), leaf.der().clone())
    }

    fn anchors(pem: &str) -> TrustAnchors {
        TrustAnchors::from_pem(pem.as_bytes()).unwrap()
    }

    #[test]
    fn verifiers_built_once_trust_the_anchors_of_the_moment() {
        let (old_root, old_leaf) = root_and_leaf();
        let (new_root, new_leaf) = root_and_leaf();
        let followed = FollowedAnchors::new(anchors(&old_root)).unwrap();
        // As a TLS configuration holds them, built before any rotation.
        let (servers, clients) = (followed.server_verifier(), followed.client_verifier());
        let name = ServerName::try_from("a.example").unwrap();
        let trusted = |leaf: &CertificateDer<'static>| {
            let now = UnixTime::now();
            let as_server = servers.verify_server_cert(leaf, &[], &name, &[], now);
            let as_client = clients.verify_client_cert(leaf, &[], now);
            (as_server.is_ok(), as_client.is_ok())
        };
        assert_eq!(trusted(&old_leaf), (true, true));
        assert_eq!(trusted(&new_leaf), (false, false));

        // The rotation's bundle: both.
        followed.replace(anchors(&(old_root + &new_root))).unwrap();
        assert_eq!(trusted(&old_leaf), (true, true));
        assert_eq!(trusted(&new_leaf), (true, true));
        assert_eq!(followed.current().certificates().len(), 2);

        // The old anchor gone.
        followed.replace(anchors(&new_root)).unwrap();
        assert_eq!(trusted(&old_leaf), (false, false));
        assert_eq!(trusted(&new_leaf), (true, true));
    }
}
