//! The identity service (Linkerd's `Identity/Certify`): a proxy proves which
//! service account it runs as with a token, sends a CSR for that account's
//! identity, and gets back a short-lived certificate signed by the mesh's
//! issuer.
//!
//! - `issuer`: the trust anchors and the issuer certificate + key (from
//!   files, or generated once for the local mesh), and the signing checks;
//! - `tokens`: proving a service account: the local mesh's own tokens, or a
//!   Kubernetes TokenReview;
//! - `service`: the gRPC edge, the shared (reloadable) issuer and the
//!   controller's own certificate;
//! - `tls_listener`: gRPC connections accepted over TLS, each carrying its
//!   client's identity.

mod issuer;
mod local_tokens_dir;
mod service;
mod tls_listener;
mod tokens;

pub use issuer::{CertifyError, Issuer, IssuerError, IssuerFiles, Lifetimes};
pub use local_tokens_dir::{token_path, write_pod_tokens};
pub use service::{IdentityService, SharedIssuer, keep_certified};
pub use tls_listener::{ClientIdentity, TlsConnection, accept_tls};
pub use tokens::{LocalTokens, TokenError, TokenVerifier, reviewed_account};

/// The controller's own service account: its serving certificate names it,
/// and proxies verify the identity service against it.
pub const CONTROLLER_ACCOUNT: &str = "weft-controller";

/// The audience a projected ServiceAccount token must carry for Weft.
pub const TOKEN_AUDIENCE: &str = "identity.weft.io";

/// Writes a new file with `mode`, refusing to replace one: what the
/// controller makes once (the local issuer, the token key) is never
/// silently overwritten.
fn create_new(path: &std::path::Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?
        .write_all(contents)
}
