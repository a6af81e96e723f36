//! Why a pod was not injected. Every refusal names its cause, so neither the
//! CLI nor the webhook ever leaves a pod without a proxy silently.

/// Why [`inject`](crate::inject) left a pod as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither the pod nor its namespace asked for a proxy (the webhook
    /// needs `weft.io/inject: enabled`; `weft inject` does not).
    #[error("neither the pod nor its namespace is annotated weft.io/inject: enabled")]
    NotEnabled,
    /// `weft.io/inject: disabled`, or `linkerd.io/inject: disabled`.
    #[error("injection is disabled by the {annotation}")]
    Disabled { annotation: String },
    /// The pod shares its node's network: iptables rules in it would
    /// redirect the node's traffic.
    #[error("the pod has hostNetwork: true")]
    HostNetwork,
    /// A `weft-proxy` container is there already.
    #[error("the pod already has a weft-proxy container")]
    AlreadyInjected,
    /// Another mesh's sidecar is there; two proxies would both redirect.
    #[error("the pod already has another mesh's sidecar, {container}")]
    OtherSidecar { container: String },
    /// Something injection adds is there already under the same name.
    #[error("the pod already has a {what} named {name}")]
    NameTaken { what: &'static str, name: String },
    /// An annotation's value cannot be used.
    #[error("the {annotation} cannot be used: {reason}")]
    BadAnnotation { annotation: String, reason: String },
    /// One of the control plane's settings cannot be used.
    #[error("the setting {setting} cannot be used: {reason}")]
    BadSetting { setting: String, reason: String },
    /// The object has no pod spec to inject.
    #[error("not a pod: {reason}")]
    NotAPod { reason: String },
}

impl Refusal {
    /// A short, stable name for the cause, for logs and metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotEnabled => "injection_not_enabled",
            Self::Disabled { .. } => "injection_disabled",
            Self::HostNetwork => "host_network_enabled",
            Self::AlreadyInjected => "already_injected",
            Self::OtherSidecar { .. } => "other_sidecar_present",
            Self::NameTaken { .. } => "name_taken",
            Self::BadAnnotation { .. } => "bad_annotation",
            Self::BadSetting { .. } => "bad_setting",
            Self::NotAPod { .. } => "not_a_pod",
        }
    }

    /// Whether the pod was meant to stay without a proxy. The others are
    /// worth a warning to whoever created the pod: it asked for a proxy and
    /// did not get one.
    pub fn is_expected(&self) -> bool {
        matches!(
            self,
            Self::NotEnabled | Self::Disabled { .. } | Self::AlreadyInjected
        )
    }
}
