//! rustls configurations for the mesh: TLS 1.3 only, ring, trust limited to
//! the mesh's anchors. A server presents the current credentials and asks
//! for (but does not demand) a client certificate; a client verifies the
//! server against the identity it expects and presents its own when it has
//! one. Built on [`FollowedAnchors`], a configuration trusts replaced
//! anchors from its next handshake on.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ServerConfig};
use x509_parser::extensions::GeneralName;

use crate::{Anchors, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn server_config(
    credentials: Credentials,
    anchors: &impl Anchors,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = |e: &dyn std::fmt::Display| TlsError::Config(e.to_string());
    let clients = anchors.followed()?.client_verifier();
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config(&e))?
        .with_client_cert_verifier(clients)
        .with_cert_resolver(Arc::new(credentials));
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(server))
}

/// A client that trusts only the mesh's anchors. The server's expected
/// identity is the `ServerName` given to each connection.
pub fn client_config(
    credentials: Option<Credentials>,
    anchors: &impl Anchors,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    // "Dangerous" only in name: the verifier is webpki's over the anchors
    // current at each handshake.
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(anchors.followed()?.server_verifier());
    let mut client = match credentials {
        Some(credentials) => builder.with_client_cert_resolver(Arc::new(credentials)),
        None => builder.with_no_client_auth(),
    };
    client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A resumed session keeps the identity the first handshake proved, or
    // proved none (a proxy connects before it is certified): every
    // connection presents the current certificate instead. Connections
    // between proxies are long-lived and multiplexed, so full handshakes
    // are rare anyway.
    client.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(client))
}

/// The identity a peer's leaf certificate names: its first DNS SAN, as
/// Linkerd reads it.
pub fn peer_identity(leaf: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let sans = cert.subject_alternative_name().ok()??;
    sans.value.general_names.iter().find_map(|name| match name {
        GeneralName::DNSName(dns) => Some(dns.to_string()),
        _ => None,
    })
}
