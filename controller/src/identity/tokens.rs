//! Proving a service account. In Kubernetes a proxy sends its projected
//! ServiceAccount token (audience `identity.weft.io`) and the API server
//! says whose it is (a TokenReview). The local mesh has no API server, so
//! the controller mints its own tokens: `weft-local.<ns>.<sa>.<mac>`, an
//! HMAC-SHA256 over the account under a key kept in its state directory.

use std::path::Path;

use hmac::{Hmac, Mac};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use sha2::Sha256;
use weft_identity::ServiceAccount;

use crate::modules::hex;

const LOCAL_PREFIX: &str = "weft-local";

pub enum TokenVerifier {
    Local(LocalTokens),
    Kubernetes(kube::Client),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not one this controller issued")]
    Unknown,
    #[error("the token's signature is wrong")]
    Forged,
    #[error("the token was not authenticated: {0}")]
    NotAuthenticated(String),
    #[error("the token is not for audience {0}")]
    WrongAudience(String),
    #[error("the token belongs to {0:?}, not to a service account")]
    NotAServiceAccount(String),
    #[error("the TokenReview could not be made: {0}")]
    Review(String),
}

impl TokenVerifier {
    pub async fn verify(&self, token: &[u8]) -> Result<ServiceAccount, TokenError> {
        match self {
            TokenVerifier::Local(tokens) => tokens.verify(token),
            TokenVerifier::Kubernetes(client) => {
                let token = std::str::from_utf8(token).map_err(|_| TokenError::Unknown)?;
                let review = TokenReview {
                    spec: TokenReviewSpec {
                        token: Some(token.to_string()),
                        audiences: Some(vec![super::TOKEN_AUDIENCE.to_string()]),
                    },
                    ..Default::default()
                };
                let api = kube::Api::<TokenReview>::all(client.clone());
                let reviewed = api
                    .create(&Default::default(), &review)
                    .await
                    .map_err(|e| TokenError::Review(e.to_string()))?;
                reviewed_account(&reviewed, super::TOKEN_AUDIENCE)
            }
        }
    }
}

/// The service account a TokenReview's answer authenticates.
pub fn reviewed_account(
    review: &TokenReview,
    audience: &str,
) -> Result<ServiceAccount, TokenError> {
    let status = review
        .status
        .as_ref()
        .ok_or_else(|| TokenError::NotAuthenticated("the review has no status".into()))?;
    if status.authenticated != Some(true) {
        return Err(TokenError::NotAuthenticated(
            status
                .error
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        ));
    }
    // An empty audience list means the API server's own audiences, which
    // a token minted for another purpose would also pass.
    if !status
        .audiences
        .as_ref()
        .is_some_and(|audiences| audiences.iter().any(|a| a == audience))
    {
        return Err(TokenError::WrongAudience(audience.to_string()));
    }
    let username = status
        .user
        .as_ref()
        .and_then(|user| user.username.clone())
        .unwrap_or_default();
    ServiceAccount::from_username(&username).ok_or(TokenError::NotAServiceAccount(username))
}

/// The local mesh's tokens.
#[derive(Clone)]
pub struct LocalTokens {
    key: Vec<u8>,
}

impl LocalTokens {
    /// The key in `dir/token.key`, made (0600) on first use.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("token.key");
        match std::fs::read(&path) {
            Ok(key) if key.len() >= 32 => return Ok(Self { key }),
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is shorter than 32 bytes",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(dir)?;
        let mut key = vec![0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut key)
            .map_err(|_| std::io::Error::other("no randomness for the token key"))?;
        super::create_new(&path, &key, 0o600)?;
        Ok(Self { key })
    }

    pub fn issue(&self, account: &ServiceAccount) -> String {
        let mac = hex(&self.mac(account).finalize().into_bytes());
        format!(
            "{LOCAL_PREFIX}.{}.{}.{mac}",
            account.namespace, account.name
        )
    }

    pub fn verify(&self, token: &[u8]) -> Result<ServiceAccount, TokenError> {
        let token = std::str::from_utf8(token).map_err(|_| TokenError::Unknown)?;
        let mut parts = token.trim().split('.');
        let (Some(LOCAL_PREFIX), Some(namespace), Some(name), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Unknown);
        };
        let account = ServiceAccount::new(namespace, name).map_err(|_| TokenError::Unknown)?;
        let mac = unhex(mac).ok_or(TokenError::Forged)?;
        self.mac(&account)
            .verify_slice(&mac)
            .map_err(|_| TokenError::Forged)?;
        Ok(account)
    }

    fn mac(&self, account: &ServiceAccount) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(account.username().as_bytes());
        mac
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(name: &str) -> TokenReview {
        let path = format!(
            "{}/tests/fixtures/tokenreviews/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    const AUDIENCE: &str = super::super::TOKEN_AUDIENCE;

    #[test]
    fn an_authenticated_service_account_token_proves_its_account() {
        let account = reviewed_account(&review("authenticated"), AUDIENCE).unwrap();
        assert_eq!(account, ServiceAccount::new("shop", "checkout").unwrap());
    }

    #[test]
    fn a_token_for_another_audience_is_refused_with_the_api_server_s_reason() {
        let error = reviewed_account(&review("wrong-audience"), AUDIENCE).unwrap_err();
        assert!(
            matches!(error, TokenError::NotAuthenticated(ref why) if why.contains("audiences")),
            "{error}"
        );
    }

    #[test]
    fn a_review_that_does_not_confirm_our_audience_is_refused() {
        let error = reviewed_account(&review("no-audiences"), AUDIENCE).unwrap_err();
        assert_eq!(error, TokenError::WrongAudience(AUDIENCE.into()));
    }

    #[test]
    fn a_token_that_is_not_a_service_account_s_is_refused() {
        let error = reviewed_account(&review("node"), AUDIENCE).unwrap_err();
        assert_eq!(
            error,
            TokenError::NotAServiceAccount("system:node:worker-1".into())
        );
    }

    #[test]
    fn local_tokens_prove_their_account_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("weft-tokens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tokens = LocalTokens::open(&dir).unwrap();
        let app = ServiceAccount::new("demo", "app").unwrap();
        let token = tokens.issue(&app);
        assert_eq!(tokens.verify(token.as_bytes()).unwrap(), app);
        // The same key after a restart.
        assert_eq!(
            LocalTokens::open(&dir)
                .unwrap()
                .verify(token.as_bytes())
                .unwrap(),
            app
        );

        let claimed = token.replacen(".app.", ".web.", 1);
        assert_eq!(tokens.verify(claimed.as_bytes()), Err(TokenError::Forged));
        assert_eq!(
            tokens.verify(b"weft-local.demo.app"),
            Err(TokenError::Unknown)
        );
        assert_eq!(
            tokens.verify(b"not a token at all"),
            Err(TokenError::Unknown)
        );

        let elsewhere = dir.join("other");
        let stranger = LocalTokens::open(&elsewhere).unwrap().issue(&app);
        assert_eq!(tokens.verify(stranger.as_bytes()), Err(TokenError::Forged));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("token.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
