//! What an injection puts into a pod when no annotation says otherwise: the
//! defaults the Helm chart's values carry, and the ports and addresses the
//! proxy and the controller agree on. The controller reads [`Settings`] from
//! the chart's inject config (`inject.yaml`, camelCase, every field optional).

use serde::Deserialize;

/// The sidecar's container name; a pod with a container of this name is
/// already injected (the controller's index looks for it too).
pub const PROXY_CONTAINER: &str = "weft-proxy";
/// The init container that installs the iptables rules (`weft-proxy init`).
pub const INIT_CONTAINER: &str = "weft-init";

/// The proxy's listeners: the defaults of `weft-proxy` (`host/proxy/src/config.rs`),
/// written out in every injected pod so the init container and the proxy
/// agree on them in one place.
pub const OUTBOUND_PORT: u16 = 4140;
pub const INBOUND_PORT: u16 = 4143;
pub const ADMIN_PORT: u16 = 4191;
/// The tap server (`weft tap`), for the controller's identity only.
pub const TAP_PORT: u16 = 4190;
/// The container port names; the controller finds a pod's inbound port by
/// `weft-inbound`.
pub const INBOUND_PORT_NAME: &str = "weft-inbound";
pub const ADMIN_PORT_NAME: &str = "weft-admin";
pub const TAP_PORT_NAME: &str = "weft-tap";
/// The proxy's user: `weft-proxy init` exempts its connections from the
/// outbound redirect by this UID.
pub const PROXY_UID: i64 = 2102;

/// The controller's Service in the control plane's namespace, and its two
/// listeners (`weft-controller --listen` and `--identity-listen`, whose
/// defaults are ports 8090 and 8091): the plaintext plugin and destination
/// APIs, and the TLS port serving identity and, to proxies that proved an
/// identity, the plugin and destination APIs again.
pub const CONTROLLER_SERVICE: &str = "weft-controller";
pub const CONTROLLER_PLAINTEXT_PORT: u16 = 8090;
pub const CONTROLLER_IDENTITY_PORT: u16 = 8091;

/// The audience of the projected ServiceAccount token the controller's
/// identity service accepts (docs/identity.md).
pub const TOKEN_AUDIENCE: &str = "identity.weft.io";
/// A day, as Linkerd's identity token.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 86_400;
/// The ConfigMap (in the pod's namespace) holding the trust anchors as
/// `ca-bundle.crt`, as Linkerd's `linkerd-identity-trust-roots`.
pub const TRUST_ROOTS_CONFIG_MAP: &str = "weft-identity-trust-roots";
pub const TRUST_ROOTS_KEY: &str = "ca-bundle.crt";

/// Linkerd's default opaque ports: protocols where the server speaks first
/// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached), on
/// which protocol detection would otherwise wait for its timeout.
pub const DEFAULT_OPAQUE_PORTS: &str = "25,587,3306,4444,5432,6379,9300,11211";

/// The values `default-inbound-policy` takes, as Linkerd's.
pub const INBOUND_POLICIES: [&str; 6] = [
    "all-unauthenticated",
    "all-authenticated",
    "cluster-unauthenticated",
    "cluster-authenticated",
    "deny",
    "audit",
];

/// The control plane's choices for every injected pod. `Default` gives the
/// chart's default values; [`Settings::from_yaml`] reads the inject config,
/// where a missing field keeps its default and an unknown one is refused
/// (a misspelt setting would otherwise be silently ignored).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Settings {
    /// Where the images are: the proxy image is `<registry>/weft-proxy:<version>`.
    pub registry: String,
    /// The proxy image's tag, and what `weft.io/proxy-version` records.
    pub proxy_version: String,
    pub image_pull_policy: String,
    /// The control plane's namespace: in identities and the controller's address.
    pub control_plane_namespace: String,
    /// The identity trust domain (`--trust-domain` of the controller).
    pub trust_domain: String,
    /// The DNS suffix of the cluster's Services.
    pub cluster_domain: String,
    /// A CNI plugin installs the iptables rules: no init container.
    pub cni: bool,
    /// The proxy as a native sidecar (an init container that keeps
    /// running, Kubernetes 1.29+): it starts before the app and stops
    /// after it, so a Job's pod completes.
    pub native_sidecar: bool,
    /// The proxy's log filter (`WEFT_LOG`).
    pub log_level: String,
    pub opaque_ports: String,
    pub default_inbound_policy: String,
    pub resources: Resources,
}

/// The proxy container's resources; `None` leaves one unset. In the inject
/// config a missing field keeps the chart's default and `null` unsets it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "chart::cpu_request")]
    pub cpu_request: Option<String>,
    #[serde(default = "chart::cpu_limit")]
    pub cpu_limit: Option<String>,
    #[serde(default = "chart::memory_request")]
    pub memory_request: Option<String>,
    #[serde(default = "chart::memory_limit")]
    pub memory_limit: Option<String>,
}

/// The chart's default proxy resources, one function per field for serde.
mod chart {
    pub fn cpu_request() -> Option<String> {
        Some("100m".into())
    }
    pub fn cpu_limit() -> Option<String> {
        None
    }
    pub fn memory_request() -> Option<String> {
        Some("20Mi".into())
    }
    pub fn memory_limit() -> Option<String> {
        Some("250Mi".into())
    }
}

/// An inject config that cannot be read; the message names the field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(#[from] serde_norway::Error);

impl Default for Settings {
    fn default() -> Self {
        Self {
            registry: "localhost:5000/weft".into(),
            proxy_version: env!("CARGO_PKG_VERSION").into(),
            image_pull_policy: "IfNotPresent".into(),
            control_plane_namespace: "weft-system".into(),
            trust_domain: "cluster.local".into(),
            cluster_domain: "cluster.local".into(),
            cni: false,
            native_sidecar: false,
            log_level: "warn,weft_proxy=info".into(),
            opaque_ports: DEFAULT_OPAQUE_PORTS.into(),
            default_inbound_policy: "all-unauthenticated".into(),
            resources: Resources {
                cpu_request: chart::cpu_request(),
                cpu_limit: chart::cpu_limit(),
                memory_request: chart::memory_request(),
                memory_limit: chart::memory_limit(),
            },
        }
    }
}

impl Settings {
    /// Reads the inject config (YAML, camelCase). An empty document (or
    /// one of comments only) is all defaults.
    pub fn from_yaml(text: &str) -> Result<Self, SettingsError> {
        // Read as a struct, not via a `Value`, so errors keep their line.
        if serde_norway::from_str::<serde_norway::Value>(text)?.is_null() {
            return Ok(Self::default());
        }
        Ok(serde_norway::from_str(text)?)
    }

    /// The proxy image without its tag.
    pub fn proxy_image(&self) -> String {
        format!("{}/{PROXY_CONTAINER}", self.registry.trim_end_matches('/'))
    }

    /// The controller's Service, fully qualified.
    pub fn controller_host(&self) -> String {
        format!(
            "{CONTROLLER_SERVICE}.{}.svc.{}",
            self.control_plane_namespace, self.cluster_domain
        )
    }

    /// `WEFT_PROXY_CONTROLLER_ADDR`: the plaintext plugin API (a URI, as
    /// tonic dials it). A proxy with an identity reaches the controller at
    /// [`identity_addr`](Self::identity_addr) instead, over mTLS.
    pub fn controller_addr(&self) -> String {
        format!(
            "http://{}:{CONTROLLER_PLAINTEXT_PORT}",
            self.controller_host()
        )
    }

    /// `WEFT_PROXY_IDENTITY_SVC_ADDR`: the identity service, `host:port`.
    pub fn identity_addr(&self) -> String {
        format!("{}:{CONTROLLER_IDENTITY_PORT}", self.controller_host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inject_config_reads_camel_case_and_keeps_defaults_for_what_it_omits() {
        let settings = Settings::from_yaml(
            "registry: registry.example:5000/mesh\n\
             proxyVersion: \"0.2.0\"\n\
             cni: true\n\
             nativeSidecar: true\n\
             resources: {cpuLimit: 500m, memoryLimit: null}\n",
        )
        .unwrap();
        let expected = Settings {
            registry: "registry.example:5000/mesh".into(),
            proxy_version: "0.2.0".into(),
            cni: true,
            native_sidecar: true,
            resources: Resources {
                cpu_limit: Some("500m".into()),
                memory_limit: None,
                ..Settings::default().resources
            },
            ..Settings::default()
        };
        assert_eq!(settings, expected);
        assert_eq!(
            settings.proxy_image(),
            "registry.example:5000/mesh/weft-proxy"
        );
    }

    #[test]
    fn the_contracts_full_config_is_the_default() {
        let full = "registry: localhost:5000/weft\n\
                    proxyVersion: \"0.1.0\"\n\
                    imagePullPolicy: IfNotPresent\n\
                    controlPlaneNamespace: weft-system\n\
                    trustDomain: cluster.local\n\
                    clusterDomain: cluster.local\n\
                    cni: false\n\
                    logLevel: warn,weft_proxy=info\n\
                    opaquePorts: \"25,587,3306,4444,5432,6379,9300,11211\"\n\
                    defaultInboundPolicy: all-unauthenticated\n\
                    nativeSidecar: false\n\
                    resources: {cpuRequest: 100m, cpuLimit: null, memoryRequest: 20Mi, memoryLimit: 250Mi}\n";
        let default = Settings {
            proxy_version: "0.1.0".into(),
            ..Settings::default()
        };
        assert_eq!(Settings::from_yaml(full).unwrap(), default);
        assert_eq!(Settings::from_yaml("").unwrap(), Settings::default());
        assert_eq!(
            Settings::from_yaml("# nothing set\n").unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        for (yaml, field) in [
            ("registyr: example\n", "registyr"),
            ("resources: {cpuRequets: 1}\n", "cpuRequets"),
            ("proxy_version: \"1\"\n", "proxy_version"),
        ] {
            let error = Settings::from_yaml(yaml).unwrap_err().to_string();
            assert!(
                error.contains(&format!("unknown field `{field}`")),
                "{error}"
            );
        }
        let error = Settings::from_yaml("cni: maybe\n").unwrap_err().to_string();
        assert!(error.contains("cni"), "{error}");
    }
}
