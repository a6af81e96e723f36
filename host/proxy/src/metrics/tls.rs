//! The `tls` label of a connection's transport metrics, with the labels
//! Linkerd sets beside it, so dashboards and alerts written for Linkerd's
//! proxy select the same series here.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};

/// What a connection turned out to be, as far as mTLS goes.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Tls {
    /// The proxy has no identity, or (outbound) the peer is not meshed:
    /// `tls="disabled"`.
    Disabled,
    /// Inbound mTLS terminated here: `tls="true"`, and `client_id` the
    /// identity the client proved (empty when it sent no certificate).
    Accepted { client_id: Option<Arc<str>> },
    /// Outbound mTLS to a peer proxy: `tls="true"`.
    Originated,
    /// Inbound to a proxy with an identity, without mTLS for it:
    /// `tls="no_identity"` and Linkerd's `no_tls_reason`.
    NoIdentity(NoTlsReason),
    /// TLS meant for the app (its SNI is not this proxy's), relayed
    /// untouched: `tls="opaque"`.
    Passthrough,
}

/// Why an inbound connection to a proxy with an identity carries no mTLS.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum NoTlsReason {
    /// The client spoke plaintext: `no_tls_from_remote`.
    FromRemote,
}

impl NoTlsReason {
    fn as_str(self) -> &'static str {
        match self {
            NoTlsReason::FromRemote => "no_tls_from_remote",
        }
    }
}

impl EncodeLabelSet for Tls {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        match self {
            Tls::Disabled => ("tls", "disabled").encode(encoder.encode_label()),
            Tls::Originated => ("tls", "true").encode(encoder.encode_label()),
            Tls::Accepted { client_id } => {
                ("tls", "true").encode(encoder.encode_label())?;
                let client_id = client_id.as_deref().unwrap_or("");
                ("client_id", client_id).encode(encoder.encode_label())
            }
            Tls::NoIdentity(reason) => {
                ("tls", "no_identity").encode(encoder.encode_label())?;
                ("no_tls_reason", reason.as_str()).encode(encoder.encode_label())
            }
            Tls::Passthrough => ("tls", "opaque").encode(encoder.encode_label()),
        }
    }
}
