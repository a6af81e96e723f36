//! How the proxy reaches the controller for its chain and its peers: in
//! the clear at `WEFT_PROXY_CONTROLLER_ADDR`, or, once it has an identity,
//! over mTLS at the controller's TLS port (the identity service's
//! address), proving who it is so that it is given only its own
//! workload's chain.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tonic::transport::{Channel, Endpoint};
use weft_identity::Credentials;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often to look whether the first certificate has come.
const CERTIFIED_POLL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub enum ControlPlane {
    Plaintext(String),
    Mtls {
        addr: String,
        /// The controller's identity.
        server: ServerName<'static>,
        tls: Arc<ClientConfig>,
        /// What `tls` presents.
        credentials: Credentials,
    },
}

impl ControlPlane {
    /// Returns once the proxy can prove who it is (at once in the clear),
    /// so that its first call is not refused for want of a certificate.
    pub async fn certified(&self) {
        if let Self::Mtls { credentials, .. } = self {
            while !credentials.is_ready() {
                tokio::time::sleep(CERTIFIED_POLL).await;
            }
        }
    }

    /// A channel, connected now.
    pub async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        match self {
            Self::Plaintext(addr) => {
                Endpoint::from_shared(addr.clone())?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect()
                    .await
            }
            Self::Mtls {
                addr, server, tls, ..
            } => weft_api::tls::channel(addr.clone(), server.clone(), tls.clone()).await,
        }
    }

    /// A channel that connects when first used.
    pub fn connect_lazy(&self) -> Result<Channel, tonic::transport::Error> {
        match self {
            Self::Plaintext(addr) => Ok(Endpoint::from_shared(addr.clone())?
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_lazy()),
            Self::Mtls {
                addr, server, tls, ..
            } => Ok(weft_api::tls::lazy_channel(
                addr.clone(),
                server.clone(),
                tls.clone(),
            )),
        }
    }
}

impl fmt::Display for ControlPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plaintext(addr) => f.write_str(addr),
            Self::Mtls { addr, .. } => write!(f, "{addr} (mTLS)"),
        }
    }
}
