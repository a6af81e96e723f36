//! The gRPC edge of the identity service, and the controller's TLS: the
//! issuer is shared (and replaced whole when its files change), the
//! controller's own certificate is signed by it and refreshed at 70 % of its
//! lifetime, and connections are accepted over TLS 1.3 with it.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tonic::{Request, Response, Status};
use weft_api::identity::identity_server::{Identity, IdentityServer};
use weft_api::identity::{CertifyRequest, CertifyResponse};
use weft_identity::{Credentials, FollowedAnchors, ServiceAccount, TlsError, refresh_after};

use super::{CertifyError, Issuer, IssuerError, IssuerFiles, Lifetimes, TokenError, TokenVerifier};

/// The issuer in use; a reload swaps it whole, and its anchors become
/// those the controller's own TLS trusts.
#[derive(Clone)]
pub struct SharedIssuer {
    issuer: Arc<RwLock<Arc<Issuer>>>,
    anchors: FollowedAnchors,
}

impl SharedIssuer {
    pub fn new(issuer: Issuer) -> Result<Self, TlsError> {
        Ok(Self {
            anchors: FollowedAnchors::new(issuer.anchors().clone())?,
            issuer: Arc::new(RwLock::new(Arc::new(issuer))),
        })
    }

    pub fn current(&self) -> Arc<Issuer> {
        self.issuer.read().expect("issuer lock").clone()
    }

    /// The anchors of the issuer in use, followed across reloads: TLS
    /// configurations built on them trust a reloaded bundle at once.
    pub fn anchors(&self) -> &FollowedAnchors {
        &self.anchors
    }

    fn replace(&self, issuer: Issuer) -> Result<(), TlsError> {
        self.anchors.replace(issuer.anchors().clone())?;
        *self.issuer.write().expect("issuer lock") = Arc::new(issuer);
        Ok(())
    }

    /// Loads the issuer from `files` again and swaps it in whole, once it
    /// passed every check `Issuer::load` makes (a CA, chained to one of the
    /// anchors, matching its key, not expired); otherwise the current one
    /// stays.
    pub fn reload(&self, files: &IssuerFiles, lifetimes: Lifetimes) -> Result<(), IssuerError> {
        let trust = self.current().trust_domain().clone();
        let issuer = Issuer::load(trust, files, lifetimes)?;
        Ok(self.replace(issuer)?)
    }

    /// Reads the issuer's files again every `every`, replacing the issuer
    /// when they change and load; a change that does not load is logged and
    /// the old issuer keeps signing.
    pub async fn follow(self, files: IssuerFiles, lifetimes: Lifetimes, every: Duration) {
        let paths = [&files.trust_anchors, &files.certificate, &files.key].map(Clone::clone);
        crate::file_changes::on_change(paths, every, || match self.reload(&files, lifetimes) {
            Ok(()) => tracing::info!("identity issuer reloaded"),
            Err(error) => {
                tracing::warn!(%error, "identity issuer not reloaded; the old one keeps signing")
            }
        })
        .await
    }
}

/// Keeps `credentials` holding a certificate for `account` from the current
/// issuer, renewed at 70 % of its lifetime (at least every 10 s, at most
/// every 24 h) and whenever the issuer changes.
pub async fn keep_certified(
    issuer: SharedIssuer,
    account: ServiceAccount,
    credentials: Credentials,
) {
    loop {
        let current = issuer.current();
        let wait = match current.certify_self(&account, SystemTime::now()) {
            Ok((certified, valid_until)) => {
                credentials.set(certified);
                refresh_after(SystemTime::now(), valid_until)
            }
            Err(error) => {
                tracing::error!(%error, "the controller cannot sign its own certificate");
                Duration::from_secs(10)
            }
        };
        let deadline = tokio::time::Instant::now() + wait;
        // Re-check the issuer now and then so a reload re-signs promptly.
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1).min(wait)).await;
            if !Arc::ptr_eq(&current, &issuer.current()) {
                break;
            }
        }
    }
}

pub struct IdentityService {
    issuer: SharedIssuer,
    tokens: TokenVerifier,
}

impl IdentityService {
    pub fn new(issuer: SharedIssuer, tokens: TokenVerifier) -> Self {
        Self { issuer, tokens }
    }

    pub fn into_service(self) -> IdentityServer<Self> {
        IdentityServer::new(self)
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn certify(
        &self,
        request: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let request = request.into_inner();
        let account = self.tokens.verify(&request.token).await.map_err(|error| {
            tracing::info!(identity = %request.identity, %error, "certify refused");
            token_status(error)
        })?;
        let signed = self
            .issuer
            .current()
            .certify(
                &request.identity,
                &account,
                &request.certificate_signing_request,
                SystemTime::now(),
            )
            .map_err(|error| {
                tracing::info!(identity = %request.identity, %error, "certify refused");
                certify_status(error)
            })?;
        let valid_until = signed.valid_until_unix_seconds();
        tracing::info!(identity = %request.identity, valid_until, "certified");
        Ok(Response::new(signed.into()))
    }
}

fn token_status(error: TokenError) -> Status {
    match error {
        TokenError::Review(_) => Status::unavailable(error.to_string()),
        _ => Status::unauthenticated(error.to_string()),
    }
}

fn certify_status(error: CertifyError) -> Status {
    match error {
        CertifyError::NotYours { .. } => Status::permission_denied(error.to_string()),
        CertifyError::IssuerExpired | CertifyError::Own(_) => {
            Status::failed_precondition(error.to_string())
        }
        CertifyError::Sign(_) => Status::internal(error.to_string()),
        _ => Status::invalid_argument(error.to_string()),
    }
}

#[cfg(test)]
mod tests;
