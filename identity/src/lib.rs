//! Workload identities, shared by the proxy and the controller: the names
//! (Linkerd's DNS form and a SPIFFE URI), trust anchors, a proxy's
//! credentials (an in-memory key and the certificate the controller signed
//! for it), and the rustls configurations that speak mTLS with them.
//!
//! The certificate authority itself lives in the controller; this crate only
//! knows how to ask for a certificate and how to use one.

mod credentials;
mod followed;
mod name;
mod tls;
mod trust;

pub use credentials::{
    CertificateRequest, Credentials, CredentialsError, SignedCertificate, refresh_after,
};
pub use followed::{Anchors, FollowedAnchors};
pub use name::{NameError, ServiceAccount, TrustDomain};
pub use tls::{TlsError, client_config, peer_identity, server_config};
pub use trust::{TrustAnchors, TrustError};
