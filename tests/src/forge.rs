//! Certificates the identity service would never issue, for tests that
//! check they are refused: signed under another mesh's anchors, or expired.
//! And both ends of a raw TLS handshake to present them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weft_identity::{Credentials, TrustAnchors};

use crate::PATIENCE;

/// A leaf's validity: from the first day to the second.
pub type Validity = ((i32, u8, u8), (i32, u8, u8));
pub const VALID_NOW: Validity = ((2020, 1, 1), (2099, 1, 1));
pub const EXPIRED: Validity = ((2020, 1, 1), (2020, 1, 2));

/// A certificate authority that signs leaves.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, sent with each leaf (empty for a root).
    chain: Vec<CertificateDer<'static>>,
}

impl Signer {
    /// A root of its own, as another mesh's anchors would be.
    pub fn self_signed() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            chain: Vec::new(),
        }
    }

    /// The issuer a controller made in its state (`identity/issuer.crt`
    /// and `issuer.key`): what it signs chains to the mesh's anchors.
    pub fn issuer_in(dir: &Path) -> Self {
        let certificate = std::fs::read_to_string(dir.join("issuer.crt")).unwrap();
        let key =
            KeyPair::from_pem(&std::fs::read_to_string(dir.join("issuer.key")).unwrap()).unwrap();
        let der = pem::parse(&certificate).unwrap().into_contents();
        Self {
            issuer: Issuer::from_ca_cert_pem(&certificate, key).unwrap(),
            chain: vec![CertificateDer::from(der)],
        }
    }

    /// Credentials for `name`, valid as `validity` says.
    pub fn leaf(&self, name: &str, validity: Validity) -> Credentials {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let ((y1, m1, d1), (y2, m2, d2)) = validity;
        params.not_before = date_time_ymd(y1, m1, d1);
        params.not_after = date_time_ymd(y2, m2, d2);
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        let mut chain = vec![leaf.der().clone()];
        chain.extend(self.chain.iter().cloned());
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_ecdsa_type(&der).unwrap();
        let credentials = Credentials::default();
        credentials.set(Arc::new(CertifiedKey::new(chain, signing)));
        credentials
    }
}

/// A TLS server presenting `credentials` to whoever connects, and then
/// closing: enough for a client to judge the certificate.
pub struct TlsPeer {
    pub addr: SocketAddr,
}

impl TlsPeer {
    pub async fn start(credentials: Credentials, anchors: &TrustAnchors) -> Self {
        let config = weft_identity::server_config(credentials, anchors, &[]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                tokio::spawn(async move {
                    let _ = acceptor.accept(stream).await;
                });
            }
        });
        Self { addr }
    }
}

/// Connects to `addr` over TLS as a client presenting `credentials`,
/// expecting the server to be `server`, and sends an HTTP/1 request: `Ok`
/// with what came back once a response arrives, `Err` when the handshake
/// or the exchange failed (TLS 1.3 servers refuse a client's certificate
/// after the client thinks it is done, so the refusal can come on read).
pub async fn client_handshake(
    addr: SocketAddr,
    credentials: Credentials,
    anchors: &TrustAnchors,
    server: &str,
) -> Result<String, String> {
    let config = weft_identity::client_config(Some(credentials), anchors, &[]).unwrap();
    let server = ServerName::try_from(server.to_string()).unwrap();
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(server, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tls.write_all(b"GET / HTTP/1.1\r\nhost: backend\r\nconnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        let read = tls.read_to_end(&mut response).await;
        match (read, response.is_empty()) {
            (_, false) => Ok(String::from_utf8_lossy(&response).into_owned()),
            (Ok(_), true) => Err("closed without a response".to_string()),
            (Err(e), true) => Err(format!("read: {e}")),
        }
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .map_err(|_| "no answer in time".to_string())?
}
