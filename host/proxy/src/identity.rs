//! The proxy's identity: an ECDSA P-256 key made in memory at start, a
//! certificate for the workload's service account from the controller's
//! identity service (proved with the workload's token), renewed at 70 % of
//! its lifetime. The proxy is not ready before its first certificate; a
//! failed renewal is retried with backoff while the current certificate
//! keeps serving. The trust anchors file is read again every
//! [`ANCHORS_CHECKED_EVERY`]: a bundle that loads replaces the anchors every
//! TLS configuration of the proxy trusts, from its next handshake on.

use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::pki_types::ServerName;
use weft_api::identity::CertifyRequest;
use weft_api::identity::identity_client::IdentityClient;
use weft_identity::{
    CertificateRequest, Credentials, FollowedAnchors, SignedCertificate, TrustAnchors, TrustDomain,
    refresh_after,
};

use crate::config::IdentityConfig;
use crate::control_plane::ControlPlane;

/// How often the trust anchors file is read again.
const ANCHORS_CHECKED_EVERY: Duration = Duration::from_secs(5);

/// What the rest of the proxy uses: its name, its current certificate and
/// the anchors its peers chain to.
#[derive(Clone)]
pub struct Identity {
    pub name: String,
    pub credentials: Credentials,
    pub anchors: FollowedAnchors,
}

/// Obtains and renews the certificate.
pub struct Certifier {
    identity: Identity,
    anchors_file: PathBuf,
    request: CertificateRequest,
    token_file: PathBuf,
    service_addr: String,
    service_name: ServerName<'static>,
    metrics: IdentityMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("WEFT_PROXY_IDENTITY_TRUST_ANCHORS: cannot read {path}: {source}")]
    ReadAnchors {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("WEFT_PROXY_IDENTITY_TRUST_ANCHORS: {0}")]
    Anchors(#[from] weft_identity::TrustError),
    #[error("WEFT_PROXY_IDENTITY_LOCAL_NAME: {0}")]
    Name(String),
    #[error("WEFT_PROXY_IDENTITY_SVC_NAME: {0:?} is not a DNS name")]
    ServiceName(String),
    #[error(transparent)]
    Key(#[from] weft_identity::CredentialsError),
    #[error(transparent)]
    Tls(#[from] weft_identity::TlsError),
}

#[derive(Debug, thiserror::Error)]
enum CertifyError {
    #[error("cannot read the token {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach the identity service at {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("the identity service refused: {0}")]
    Refused(tonic::Status),
    #[error(transparent)]
    Invalid(#[from] weft_identity::CredentialsError),
}

#[derive(Clone, Default)]
struct IdentityMetrics {
    expiration: Gauge<i64, AtomicI64>,
    refreshes: Gauge<i64, AtomicI64>,
}

impl Certifier {
    /// `None` when no identity is configured (plaintext, as before mTLS).
    pub fn new(
        config: &IdentityConfig,
        registry: &mut Registry,
    ) -> Result<Option<Self>, IdentityError> {
        let Some(name) = config.identity_local_name.clone() else {
            return Ok(None);
        };
        let path = config
            .identity_trust_anchors
            .clone()
            .expect("clap requires the trust anchors with a local name");
        let pem = std::fs::read(&path).map_err(|source| IdentityError::ReadAnchors {
            path: path.clone(),
            source,
        })?;
        let anchors = FollowedAnchors::new(TrustAnchors::from_pem(&pem)?)?;
        let service_name = match &config.identity_svc_name {
            Some(name) => name.clone(),
            None => controller_identity(&name)?,
        };
        let service_name = ServerName::try_from(service_name.clone())
            .map_err(|_| IdentityError::ServiceName(service_name))?;
        let metrics = IdentityMetrics::default();
        registry.register(
            "identity_cert_expiration_timestamp_seconds",
            "When the proxy's current certificate expires, in seconds since the Unix epoch",
            metrics.expiration.clone(),
        );
        // A gauge that only goes up, so the name stays Linkerd's exactly
        // (an OpenMetrics counter would gain `_total`).
        registry.register(
            "identity_cert_refresh_count",
            "Certificates the proxy has obtained since it started",
            metrics.refreshes.clone(),
        );
        Ok(Some(Self {
            identity: Identity {
                name: name.clone(),
                credentials: Credentials::default(),
                anchors,
            },
            anchors_file: path,
            request: CertificateRequest::generate(&name)?,
            token_file: config
                .identity_token_file
                .clone()
                .expect("clap requires the token file with a local name"),
            service_addr: config
                .identity_svc_addr
                .clone()
                .expect("clap requires the service address with a local name"),
            service_name,
            metrics,
        }))
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The identity service's own identity (the controller's).
    pub fn controller_name(&self) -> String {
        self.service_name.to_str().into_owned()
    }

    /// The controller over mTLS at the identity service's address, this
    /// proxy presenting its certificate (once it has one).
    pub fn control_plane(&self) -> ControlPlane {
        let tls = weft_identity::client_config(
            Some(self.identity.credentials.clone()),
            &self.identity.anchors,
            &[b"h2"],
        )
        .expect("a TLS 1.3 client configuration with ring");
        ControlPlane::Mtls {
            addr: self.service_addr.clone(),
            server: self.service_name.clone(),
            tls,
            credentials: self.identity.credentials.clone(),
        }
    }

    /// Runs until the process exits.
    pub async fn run(self) {
        tokio::spawn(follow_anchors(
            self.anchors_file.clone(),
            self.identity.anchors.clone(),
            ANCHORS_CHECKED_EVERY,
        ));
        let mut failures = 0u32;
        loop {
            let wait = match self.certify().await {
                Ok(valid_until) => {
                    failures = 0;
                    refresh_after(SystemTime::now(), valid_until)
                }
                Err(error) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(%error, retry_in = ?wait, "could not obtain a certificate");
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn certify(&self) -> Result<SystemTime, CertifyError> {
        // A few hundred bytes, read once per renewal: not worth a thread.
        let token = std::fs::read(&self.token_file).map_err(|source| CertifyError::Token {
            path: self.token_file.clone(),
            source,
        })?;
        let mut client = IdentityClient::new(self.connect().await?);
        let response = client
            .certify(CertifyRequest {
                identity: self.identity.name.clone(),
                token,
                certificate_signing_request: self.request.csr_der().to_vec(),
            })
            .await
            .map_err(CertifyError::Refused)?
            .into_inner();
        let signed = SignedCertificate::from(response);
        let certified = self
            .request
            .certified(&signed, &self.identity.anchors.current())?;
        self.identity.credentials.set(certified);
        self.metrics.refreshes.inc();
        self.metrics
            .expiration
            .set(signed.valid_until_unix_seconds());
        tracing::info!(identity = %self.identity.name, "certified");
        Ok(signed.valid_until)
    }

    /// A channel to the identity service over TLS, verified against the
    /// anchors and the service's own identity. No client certificate: the
    /// token is the proof.
    async fn connect(&self) -> Result<tonic::transport::Channel, CertifyError> {
        let tls = weft_identity::client_config(None, &self.identity.anchors, &[b"h2"])
            .expect("a TLS 1.3 client configuration with ring");
        weft_api::tls::channel(self.service_addr.clone(), self.service_name.clone(), tls)
            .await
            .map_err(|source| CertifyError::Connect {
                addr: self.service_addr.clone(),
                source,
            })
    }
}

/// Reads `path` every `every`; when its contents change and load, they
/// replace `anchors`; when they do not load, the anchors in use stay.
async fn follow_anchors(path: PathBuf, anchors: FollowedAnchors, every: Duration) {
    let mut seen = std::fs::read(&path).ok();
    loop {
        tokio::time::sleep(every).await;
        let now = std::fs::read(&path).ok();
        if now == seen {
            continue;
        }
        let loaded = now
            .as_deref()
            .ok_or_else(|| "the file cannot be read".to_string())
            .and_then(|pem| TrustAnchors::from_pem(pem).map_err(|e| e.to_string()))
            .and_then(|new| anchors.replace(new).map_err(|e| e.to_string()));
        match loaded {
            Ok(()) => tracing::info!(path = %path.display(), "trust anchors reloaded"),
            Err(error) => tracing::warn!(
                path = %path.display(), %error,
                "trust anchors not reloaded; the ones in use stay"
            ),
        }
        seen = now;
    }
}

/// 1 s, 2 s, 4 s ... up to 60 s between failed attempts.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// The controller's identity in the same trust domain as `local`:
/// `weft-controller.<cp-ns>.serviceaccount.identity.<cp-ns>.<domain>`.
fn controller_identity(local: &str) -> Result<String, IdentityError> {
    let bad = || IdentityError::Name(format!("{local:?} is not an identity name"));
    let (_, rest) = local
        .split_once(".serviceaccount.identity.")
        .ok_or_else(bad)?;
    let (namespace, domain) = rest.split_once('.').ok_or_else(bad)?;
    let trust =
        TrustDomain::new(namespace, domain).map_err(|e| IdentityError::Name(e.to_string()))?;
    trust
        .service_account(local)
        .map_err(|e| IdentityError::Name(e.to_string()))?;
    let controller = weft_identity::ServiceAccount::new(namespace, "weft-controller")
        .map_err(|e| IdentityError::Name(e.to_string()))?;
    Ok(trust.identity(&controller))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_is_found_in_the_local_trust_domain() {
        assert_eq!(
            controller_identity("app.demo.serviceaccount.identity.weft-system.cluster.local")
                .unwrap(),
            "weft-controller.weft-system.serviceaccount.identity.weft-system.cluster.local"
        );
        assert!(controller_identity("app.demo.svc.cluster.local").is_err());
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
