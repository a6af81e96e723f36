//! Both ends of the admission webhook's HTTPS as a cluster has them: a CA
//! that signs the serving certificate for the webhook's Service name (what
//! the chart's `caBundle` holds), and a client that trusts only that CA and
//! verifies the name, as the API server does. And the Kubernetes schema
//! check the injector's own tests run, for the pods the webhook's patches
//! make.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_RSA_SHA256,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::PATIENCE;

/// The name the API server calls: Service `weft-webhook` in `weft-system`.
pub const WEBHOOK_HOST: &str = "weft-webhook.weft-system.svc";

/// A CA of the test's own, and the files of the serving pair it signed, as
/// the Secret `weft-webhook-tls` mounts them.
pub struct WebhookCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// What a webhook answered, and the certificate it presented.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub certificate: CertificateDer<'static>,
}

impl WebhookCa {
    /// A CA, and a serving pair for [`WEBHOOK_HOST`] written into `dir`.
    pub fn new(dir: &Path) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "weft-webhook-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().clone();
        let ca = Self {
            issuer: Issuer::new(params, key),
            der,
            certificate: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        ca.sign(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap());
        ca
    }

    /// A new serving pair for the same name, with an RSA key (what Helm's
    /// `genSignedCert` makes), replacing the files as a Secret update does:
    /// each file in one rename, the key first. Returns the new certificate.
    pub fn rotate(&self) -> CertificateDer<'static> {
        let rsa = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../controller/src/identity/issuer/rsa-test-key.pem"),
        )
        .unwrap();
        self.sign(KeyPair::from_pem_and_sign_algo(&rsa, &PKCS_RSA_SHA256).unwrap())
    }

    fn sign(&self, key: KeyPair) -> CertificateDer<'static> {
        let params = CertificateParams::new(vec![WEBHOOK_HOST.to_string()]).unwrap();
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        replace(&self.key, &key.serialize_pem());
        replace(&self.certificate, &leaf.pem());
        leaf.der().clone()
    }

    /// Sends one request over a new HTTP/2 connection, verifying the server
    /// as [`WEBHOOK_HOST`] under this CA alone.
    pub async fn request(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let exchange = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(ServerName::try_from(WEBHOOK_HOST).unwrap(), tcp)
                .await
                .expect("the webhook's certificate verifies");
            let certificate = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let request = http::Request::builder()
                .method(method)
                .uri(format!("https://{WEBHOOK_HOST}{path}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            Answer {
                status,
                body,
                certificate,
            }
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .expect("the webhook answers in time")
    }
}

fn replace(path: &Path, contents: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, contents).unwrap();
    std::fs::rename(next, path).unwrap();
}
