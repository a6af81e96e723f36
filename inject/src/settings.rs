//! What an injection puts into a pod when no annotation says otherwise: the
//! defaults the Helm chart's values carry, and the ports and addresses the
//! proxy and the controller agree on.

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
/// The container port names; the controller finds a pod's inbound port by
/// `weft-inbound`.
pub const INBOUND_PORT_NAME: &str = "weft-inbound";
pub const ADMIN_PORT_NAME: &str = "weft-admin";
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
/// chart's default values.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The proxy's log filter (`WEFT_LOG`).
    pub log_level: String,
    pub opaque_ports: String,
    pub default_inbound_policy: String,
    pub resources: Resources,
}

/// The proxy container's resources; `None` leaves one unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

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
            log_level: "warn,weft_proxy=info".into(),
            opaque_ports: DEFAULT_OPAQUE_PORTS.into(),
            default_inbound_policy: "all-unauthenticated".into(),
            resources: Resources {
                cpu_request: Some("100m".into()),
                cpu_limit: None,
                memory_request: Some("20Mi".into()),
                memory_limit: Some("250Mi".into()),
            },
        }
    }
}

impl Settings {
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
