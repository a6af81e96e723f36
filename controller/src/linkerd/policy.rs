//! Linkerd's policy resources as Weft reads them: `policy.linkerd.io`
//! Server and ServerAuthorization (`v1beta1`), AuthorizationPolicy,
//! MeshTLSAuthentication and NetworkAuthentication (`v1alpha1`). Each spec
//! is checked alone here (shapes, CIDRs, identity patterns, kinds of
//! references); what they refer to is resolved when compiling.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

/// Linkerd's default inbound policies, the values of `accessPolicy` and of
/// the `default-inbound-policy` annotation.
pub const INBOUND_POLICIES: [&str; 6] = weft_inject::settings::INBOUND_POLICIES;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    pub pod_selector: LabelSelector,
    pub port: Port,
    /// Accepted: the proxy detects HTTP itself, and opaque ports are its
    /// own configuration (`config.weft.io/opaque-ports`).
    pub proxy_protocol: Option<String>,
    /// What the port does with traffic no authorization allows (`deny`).
    pub access_policy: Option<String>,
    /// Weft meshes no external workloads: refused when given.
    pub external_workload_selector: Option<serde_json::Value>,
}

/// A Server as compiled: its spec and the labels ServerAuthorizations
/// select it by.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub spec: ServerSpec,
    pub labels: BTreeMap<String, String>,
}

/// A port by number, or by the name of a container port of the pod.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Number(u16),
    Name(String),
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelRequirement>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LabelRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerAuthorizationSpec {
    pub server: ServerRef,
    pub client: Client,
}

/// A Server in the authorization's namespace, by name or by its labels.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ServerRef {
    pub name: Option<String>,
    pub selector: Option<LabelSelector>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub networks: Option<Vec<Network>>,
    #[serde(default)]
    pub unauthenticated: bool,
    #[serde(rename = "meshTLS")]
    pub mesh_tls: Option<MeshTls>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTls {
    /// TLS without a mesh identity: Weft's proxies only tell meshed mTLS
    /// from plaintext, so this is refused.
    #[serde(default, rename = "unauthenticatedTLS")]
    pub unauthenticated_tls: bool,
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountRef>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ServiceAccountRef {
    pub name: String,
    /// The authorization's own namespace when left out.
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Network {
    pub cidr: String,
    #[serde(default)]
    pub except: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    pub target_ref: TargetRef,
    #[serde(default)]
    pub required_authentication_refs: Vec<AuthenticationRef>,
}

/// A reference to another object by group, kind and name, as Linkerd's
/// policy resources write them (`targetRef`, `requiredAuthenticationRefs`,
/// `identityRefs`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ObjectRef {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

pub type TargetRef = ObjectRef;
pub type AuthenticationRef = ObjectRef;
pub type IdentityRef = ObjectRef;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTlsAuthenticationSpec {
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub identity_refs: Vec<IdentityRef>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct NetworkAuthenticationSpec {
    pub networks: Vec<Network>,
}

/// What an AuthorizationPolicy's target is, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Server(&'a str),
    Namespace,
}

/// An authentication an AuthorizationPolicy requires, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Required<'a> {
    MeshTls { namespace: &'a str, name: &'a str },
    Network { namespace: &'a str, name: &'a str },
    ServiceAccount { namespace: &'a str, name: &'a str },
}

impl ServerSpec {
    pub fn check(&self) -> Result<(), String> {
        self.pod_selector.check("spec.podSelector")?;
        match &self.port {
            Port::Number(0) => return Err("spec.port: 0 is no port".to_string()),
            Port::Name(name) if name.is_empty() => {
                return Err("spec.port: a name must not be empty".to_string());
            }
            _ => {}
        }
        if let Some(protocol) = &self.proxy_protocol {
            let known = ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"];
            if !known.contains(&protocol.as_str()) {
                return Err(format!(
                    "spec.proxyProtocol {protocol:?}: expected one of {}",
                    known.join(", ")
                ));
            }
        }
        if let Some(policy) = &self.access_policy {
            check_policy("spec.accessPolicy", policy)?;
        }
        if self.external_workload_selector.is_some() {
            return Err(
                "spec.externalWorkloadSelector is not supported: Weft meshes pods only".to_string(),
            );
        }
        Ok(())
    }

    /// `accessPolicy`, `deny` when left out (Linkerd's default).
    pub fn access_policy(&self) -> &str {
        self.access_policy.as_deref().unwrap_or("deny")
    }
}

impl LabelSelector {
    fn check(&self, field: &str) -> Result<(), String> {
        for (index, requirement) in self.match_expressions.iter().enumerate() {
            let at = || format!("{field}.matchExpressions[{index}]");
            match requirement.operator.as_str() {
                "In" | "NotIn" if requirement.values.is_empty() => {
                    return Err(format!("{}: {} needs values", at(), requirement.operator));
                }
                "Exists" | "DoesNotExist" if !requirement.values.is_empty() => {
                    return Err(format!(
                        "{}: {} takes no values",
                        at(),
                        requirement.operator
                    ));
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(format!(
                        "{}.operator {other:?}: expected In, NotIn, Exists or DoesNotExist",
                        at()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Kubernetes' rule: every label and every expression must hold; an
    /// empty selector selects everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self.match_expressions.iter().all(|requirement| {
                let value = labels.get(&requirement.key);
                match requirement.operator.as_str() {
                    "In" => value.is_some_and(|v| requirement.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !requirement.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

impl ServerAuthorizationSpec {
    pub fn check(&self) -> Result<(), String> {
        match (&self.server.name, &self.server.selector) {
            (Some(_), Some(_)) => {
                return Err("spec.server: give name or selector, not both".to_string());
            }
            (None, None) => return Err("spec.server: name or selector is required".to_string()),
            (None, Some(selector)) => selector.check("spec.server.selector")?,
            (Some(name), None) if name.is_empty() => {
                return Err("spec.server.name must not be empty".to_string());
            }
            (Some(_), None) => {}
        }
        let client = &self.client;
        match (&client.mesh_tls, client.unauthenticated) {
            (Some(_), true) => {
                return Err(
                    "spec.client: meshTLS and unauthenticated exclude each other".to_string(),
                );
            }
            (None, false) => {
                return Err("spec.client: meshTLS or unauthenticated: true is required".to_string());
            }
            _ => {}
        }
        if let Some(networks) = &client.networks {
            check_networks("spec.client.networks", networks)?;
        }
        if let Some(mesh_tls) = &client.mesh_tls {
            if mesh_tls.unauthenticated_tls {
                return Err(
                    "spec.client.meshTLS.unauthenticatedTLS is not supported: Weft's \
                     proxies tell only mesh identities from plaintext"
                        .to_string(),
                );
            }
            if mesh_tls.identities.is_empty() && mesh_tls.service_accounts.is_empty() {
                return Err(
                    "spec.client.meshTLS: identities or serviceAccounts is required".to_string(),
                );
            }
            check_identities("spec.client.meshTLS.identities", &mesh_tls.identities)?;
            for (index, account) in mesh_tls.service_accounts.iter().enumerate() {
                if account.name.is_empty() {
                    return Err(format!(
                        "spec.client.meshTLS.serviceAccounts[{index}].name is required"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AuthorizationPolicySpec {
    pub fn check(&self, namespace: &str) -> Result<(), String> {
        self.target()?;
        if let Some(other) = self
            .target_ref
            .namespace
            .as_deref()
            .filter(|ns| *ns != namespace)
        {
            return Err(format!(
                "spec.targetRef.namespace {other:?}: a policy targets its own namespace"
            ));
        }
        let required = self.required(namespace)?;
        let identities = required
            .iter()
            .filter(|r| !matches!(r, Required::Network { .. }))
            .count();
        let networks = required.len() - identities;
        if identities > 1 || networks > 1 {
            return Err(
                "spec.requiredAuthenticationRefs: at most one identity authentication \
                 (MeshTLSAuthentication or ServiceAccount) and one NetworkAuthentication; \
                 a client must satisfy all of them, which Weft cannot express for two"
                    .to_string(),
            );
        }
        Ok(())
    }

    pub fn target(&self) -> Result<Target<'_>, String> {
        let target = &self.target_ref;
        match (target.group.as_str(), target.kind.as_str()) {
            ("policy.linkerd.io", "Server") => Ok(Target::Server(&target.name)),
            ("" | "core", "Namespace") => Ok(Target::Namespace),
            (_, "HTTPRoute" | "GRPCRoute") => Err(format!(
                "spec.targetRef: a {} is not supported as a target yet: target its Server",
                target.kind
            )),
            (group, kind) => Err(format!(
                "spec.targetRef: kind {kind:?} of group {group:?} is not a Server or Namespace"
            )),
        }
    }

    /// The authentications, their namespaces defaulted to `namespace`.
    pub fn required<'a>(&'a self, namespace: &'a str) -> Result<Vec<Required<'a>>, String> {
        self.required_authentication_refs
            .iter()
            .enumerate()
            .map(|(index, reference)| {
                let namespace = reference.namespace.as_deref().unwrap_or(namespace);
                let name = reference.name.as_str();
                match (reference.group.as_str(), reference.kind.as_str()) {
                    ("policy.linkerd.io", "MeshTLSAuthentication") => {
                        Ok(Required::MeshTls { namespace, name })
                    }
                    ("policy.linkerd.io", "NetworkAuthentication") => {
                        Ok(Required::Network { namespace, name })
                    }
                    ("" | "core", "ServiceAccount") => {
                        Ok(Required::ServiceAccount { namespace, name })
                    }
                    (group, kind) => Err(format!(
                        "spec.requiredAuthenticationRefs[{index}]: kind {kind:?} of group \
                         {group:?} is not a MeshTLSAuthentication, NetworkAuthentication or \
                         ServiceAccount"
                    )),
                }
            })
            .collect()
    }
}

impl MeshTlsAuthenticationSpec {
    pub fn check(&self) -> Result<(), String> {
        if self.identities.is_empty() && self.identity_refs.is_empty() {
            return Err("spec: identities or identityRefs is required".to_string());
        }
        check_identities("spec.identities", &self.identities)?;
        for (index, reference) in self.identity_refs.iter().enumerate() {
            match (reference.group.as_str(), reference.kind.as_str()) {
                ("" | "core", "ServiceAccount" | "Namespace") => {}
                (group, kind) => {
                    return Err(format!(
                        "spec.identityRefs[{index}]: kind {kind:?} of group {group:?} is not a \
                         ServiceAccount or Namespace"
                    ));
                }
            }
            if reference.name.is_empty() {
                return Err(format!("spec.identityRefs[{index}].name is required"));
            }
        }
        Ok(())
    }
}

impl NetworkAuthenticationSpec {
    pub fn check(&self) -> Result<(), String> {
        if self.networks.is_empty() {
            return Err("spec.networks: at least one network is required".to_string());
        }
        check_networks("spec.networks", &self.networks)
    }
}

/// One of Linkerd's default inbound policies.
pub fn check_policy(field: &str, policy: &str) -> Result<(), String> {
    if INBOUND_POLICIES.contains(&policy) {
        Ok(())
    } else {
        Err(format!(
            "{field} {policy:?}: expected one of {}",
            INBOUND_POLICIES.join(", ")
        ))
    }
}

fn check_networks(field: &str, networks: &[Network]) -> Result<(), String> {
    for (index, network) in networks.iter().enumerate() {
        let cidr = parse_cidr(&network.cidr)
            .map_err(|e| format!("{field}[{index}].cidr {:?}: {e}", network.cidr))?;
        for (j, except) in network.except.iter().enumerate() {
            let inner = parse_cidr(except)
                .map_err(|e| format!("{field}[{index}].except[{j}] {except:?}: {e}"))?;
            if inner.0.is_ipv4() != cidr.0.is_ipv4() {
                return Err(format!(
                    "{field}[{index}].except[{j}] {except:?}: not the same address family as {}",
                    network.cidr
                ));
            }
        }
    }
    Ok(())
}

/// `ADDRESS/LENGTH`, or a bare address (Linkerd reads one as a single
/// host). The compiled config always carries the length.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (address, length) = match text.split_once('/') {
        Some((address, length)) => (address, Some(length)),
        None => (text, None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| "not an IP address or network".to_string())?;
    let most = if address.is_ipv4() { 32 } else { 128 };
    let length = match length {
        None => most,
        Some(length) => length
            .parse::<u8>()
            .ok()
            .filter(|length| *length <= most)
            .ok_or_else(|| format!("the prefix length must be 0 to {most}"))?,
    };
    Ok((address, length))
}

/// A network as the authz plugin reads it: always with its length.
pub fn cidr_text(text: &str) -> String {
    match parse_cidr(text) {
        Ok((address, length)) => format!("{address}/{length}"),
        Err(_) => text.to_string(),
    }
}

/// Identities as the authz plugin matches them: exact, `*`, or `*.suffix`.
fn check_identities(field: &str, identities: &[String]) -> Result<(), String> {
    for (index, identity) in identities.iter().enumerate() {
        let rest = identity.strip_prefix("*.").unwrap_or(identity);
        let ok = identity == "*" || (!rest.is_empty() && !rest.contains('*'));
        if !ok {
            return Err(format!(
                "{field}[{index}] {identity:?}: an identity is a name, `*`, or `*.` and a suffix"
            ));
        }
    }
    Ok(())
}
