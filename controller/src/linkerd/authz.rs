//! One workload's `authz` config from Linkerd's policy resources: a pure
//! function, tested on manifests without a cluster.
//!
//! Linkerd's rules, as the authz plugin expresses them:
//! - a Server in the pod's namespace whose `podSelector` matches the pod
//!   covers its `port` (a number, or the name of one of the pod's container
//!   ports): the port's own default is the Server's `accessPolicy` (`deny`
//!   unless given), in `portPolicies`; when two Servers cover one port of a
//!   pod, the first by name does;
//! - each ServerAuthorization naming or selecting that Server, and each
//!   AuthorizationPolicy targeting it (or its namespace), becomes allow
//!   rules on that port: identities in Linkerd's format
//!   (`<sa>.<ns>.serviceaccount.identity.<control-plane ns>.<trust domain>`),
//!   one rule per client network, with its `except`;
//! - an AuthorizationPolicy whose required authentication does not exist
//!   authorizes nothing (Linkerd ignores it), and is reported;
//! - every other port follows the workload's default inbound policy.
//!
//! A workload no Server selects, whose default is `all-unauthenticated`
//! (the plugin's own default), gets nothing compiled: its chain is as it
//! was.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use weft_identity::TrustDomain;

use super::compile::CompiledPlugin;
use super::object::{TrafficKind, TrafficRef};
use super::policy::{
    AuthorizationPolicySpec, Network, Port, Required, Server, ServerAuthorizationSpec, Target,
    cidr_text,
};
use super::read::TrafficResource;

#[cfg(test)]
mod tests;

/// What the compile step needs of the workload, as a server.
#[derive(Clone, Copy, Debug)]
pub struct Workload<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// Its containers' ports by name, which a Server's port may name.
    pub named_ports: &'a BTreeMap<String, u16>,
    /// Its default inbound policy, checked (annotation, else the cluster's).
    pub default_policy: &'a str,
}

/// A pod as `policy_problems` looks at it: its labels and named ports.
pub type PodLabelsAndPorts<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, u16>);

/// The default inbound policy that needs no plugin: the authz plugin's own.
const OPEN: &str = "all-unauthenticated";

/// `workload`'s `authz` config; `None` when nothing but the open default
/// applies to it.
pub fn compile_authz(
    resources: &[(&TrafficRef, &TrafficResource)],
    workload: &Workload<'_>,
    trust: &TrustDomain,
) -> Option<CompiledPlugin> {
    let servers = servers_of(resources, workload);
    if servers.is_empty() && workload.default_policy == OPEN {
        return None;
    }
    let mut from = BTreeSet::new();
    let mut rules = Vec::new();
    let mut port_policies = Map::new();
    for (key, server, port) in &servers {
        port_policies.insert(port.to_string(), server.spec.access_policy().into());
        from.insert((*key).clone());
        for (auth_key, resource) in resources {
            if auth_key.namespace != key.namespace {
                continue;
            }
            let compiled = match resource {
                TrafficResource::ServerAuthorization(spec)
                    if authorizes(spec, &key.name, server) =>
                {
                    Some(server_authorization(auth_key, spec, *port, trust))
                }
                TrafficResource::AuthorizationPolicy(spec) if targets(spec, &key.name) => {
                    authorization_policy(auth_key, spec, *port, resources, trust).map(
                        |(rules, authentications)| {
                            from.extend(authentications);
                            rules
                        },
                    )
                }
                _ => None,
            };
            if let Some(compiled) = compiled {
                from.insert((*auth_key).clone());
                rules.extend(compiled);
            }
        }
    }
    let mut config = Map::new();
    config.insert("defaultPolicy".into(), workload.default_policy.into());
    if !port_policies.is_empty() {
        config.insert("portPolicies".into(), port_policies.into());
    }
    if !rules.is_empty() {
        config.insert("rules".into(), rules.into());
    }
    Some(CompiledPlugin {
        name: "authz",
        config: config.into(),
        from,
    })
}

/// Problems that depend on the rest of the cluster: a Server that selects
/// no pod, an authorization whose Server or authentication does not
/// exist. `pods` are the labels of the pods in the resource's namespace,
/// with their named ports.
pub fn policy_problems(
    key: &TrafficRef,
    resource: &TrafficResource,
    resources: &[(&TrafficRef, &TrafficResource)],
    pods: &[PodLabelsAndPorts<'_>],
) -> Vec<String> {
    let servers = || {
        resources
            .iter()
            .filter_map(|(other, resource)| match resource {
                TrafficResource::Server(server) if other.namespace == key.namespace => {
                    Some((other.name.as_str(), server))
                }
                _ => None,
            })
    };
    let exists = |kind: TrafficKind, namespace: &str, name: &str| {
        resources.iter().any(|(other, _)| {
            other.kind == kind && other.namespace == namespace && other.name == name
        })
    };
    let mut problems = Vec::new();
    match resource {
        TrafficResource::Server(server) => {
            let selected: Vec<_> = pods
                .iter()
                .filter(|(labels, _)| server.spec.pod_selector.matches(labels))
                .collect();
            if selected.is_empty() {
                problems
                    .push("spec.podSelector selects no pod: the Server applies to nothing".into());
            } else if let Port::Name(name) = &server.spec.port
                && !selected.iter().any(|(_, ports)| ports.contains_key(name))
            {
                problems.push(format!(
                    "spec.port {name:?}: no pod it selects has a container port of that name"
                ));
            }
        }
        TrafficResource::ServerAuthorization(spec)
            if !servers().any(|(name, server)| authorizes(spec, name, server)) =>
        {
            let what = match &spec.server.name {
                Some(name) => format!("spec.server.name: no Server {}/{name}", key.namespace),
                None => "spec.server.selector selects no Server".to_string(),
            };
            problems.push(format!("{what}: the authorization applies to nothing"));
        }
        TrafficResource::AuthorizationPolicy(spec) => {
            if let Ok(Target::Server(name)) = spec.target()
                && !exists(TrafficKind::Server, &key.namespace, name)
            {
                problems.push(format!(
                    "spec.targetRef: no Server {}/{name}: the policy applies to nothing",
                    key.namespace
                ));
            }
            for required in spec.required(&key.namespace).unwrap_or_default() {
                let (kind, namespace, name) = match required {
                    Required::MeshTls { namespace, name } => {
                        (TrafficKind::MeshTlsAuthentication, namespace, name)
                    }
                    Required::Network { namespace, name } => {
                        (TrafficKind::NetworkAuthentication, namespace, name)
                    }
                    Required::ServiceAccount { .. } => continue,
                };
                if !exists(kind, namespace, name) {
                    problems.push(format!(
                        "spec.requiredAuthenticationRefs: no {kind} {namespace}/{name}: \
                         the policy authorizes no one, as in Linkerd"
                    ));
                }
            }
        }
        _ => {}
    }
    problems
}

/// The Servers covering `workload`, each with its port, the first by name
/// for each port.
fn servers_of<'a>(
    resources: &[(&'a TrafficRef, &'a TrafficResource)],
    workload: &Workload<'_>,
) -> Vec<(&'a TrafficRef, &'a Server, u16)> {
    let mut ports = BTreeSet::new();
    let mut servers = Vec::new();
    for &(key, resource) in resources {
        let TrafficResource::Server(server) = resource else {
            continue;
        };
        if key.namespace != workload.namespace || !server.spec.pod_selector.matches(workload.labels)
        {
            continue;
        }
        let port = match &server.spec.port {
            Port::Number(port) => Some(*port),
            Port::Name(name) => workload.named_ports.get(name).copied(),
        };
        if let Some(port) = port
            && ports.insert(port)
        {
            servers.push((key, server, port));
        }
    }
    servers
}

fn authorizes(spec: &ServerAuthorizationSpec, server_name: &str, server: &Server) -> bool {
    match (&spec.server.name, &spec.server.selector) {
        (Some(name), _) => name == server_name,
        (None, Some(selector)) => selector.matches(&server.labels),
        (None, None) => false,
    }
}

fn targets(spec: &AuthorizationPolicySpec, server_name: &str) -> bool {
    match spec.target() {
        Ok(Target::Server(name)) => name == server_name,
        Ok(Target::Namespace) => true,
        Err(_) => false,
    }
}

fn identity(trust: &TrustDomain, namespace: &str, account: &str) -> String {
    format!("{account}.{namespace}.{}", trust.suffix())
}

/// One allow rule per network (or one for any network), each on `port`.
fn rules(
    name: &str,
    port: u16,
    identities: Option<Vec<String>>,
    networks: Option<&[Network]>,
) -> Vec<Value> {
    let rule = |suffix: String, network: Option<&Network>| {
        let mut rule = json!({"name": format!("{name}:{port}{suffix}"), "ports": [port]});
        if let Some(identities) = &identities {
            rule["identities"] = json!(identities);
        }
        if let Some(network) = network {
            rule["clientCidrs"] = json!([cidr_text(&network.cidr)]);
            if !network.except.is_empty() {
                let except: Vec<String> = network.except.iter().map(|c| cidr_text(c)).collect();
                rule["clientCidrsExcept"] = json!(except);
            }
        }
        rule
    };
    match networks {
        None => vec![rule(String::new(), None)],
        Some([one]) => vec![rule(String::new(), Some(one))],
        Some(networks) => networks
            .iter()
            .enumerate()
            .map(|(index, network)| rule(format!("/{index}"), Some(network)))
            .collect(),
    }
}

fn server_authorization(
    key: &TrafficRef,
    spec: &ServerAuthorizationSpec,
    port: u16,
    trust: &TrustDomain,
) -> Vec<Value> {
    let client = &spec.client;
    let identities = client.mesh_tls.as_ref().map(|mesh_tls| {
        let accounts = mesh_tls.service_accounts.iter().map(|account| {
            let namespace = account.namespace.as_deref().unwrap_or(&key.namespace);
            identity(trust, namespace, &account.name)
        });
        accounts
            .chain(mesh_tls.identities.iter().cloned())
            .collect()
    });
    let name = format!("serverauthorization/{}", key.name);
    rules(&name, port, identities, client.networks.as_deref())
}

/// The policy's rules on `port` and the authentications they came from;
/// `None` when an authentication it requires does not exist.
fn authorization_policy<'a>(
    key: &TrafficRef,
    spec: &AuthorizationPolicySpec,
    port: u16,
    resources: &[(&'a TrafficRef, &'a TrafficResource)],
    trust: &TrustDomain,
) -> Option<(Vec<Value>, Vec<TrafficRef>)> {
    let find = |kind: TrafficKind, namespace: &str, name: &str| {
        resources
            .iter()
            .find(|(other, _)| {
                other.kind == kind && other.namespace == namespace && other.name == name
            })
            .map(|(other, resource)| (*other, *resource))
    };
    let mut identities = None;
    let mut networks = None;
    let mut from = Vec::new();
    for required in spec.required(&key.namespace).ok()? {
        match required {
            Required::ServiceAccount { namespace, name } => {
                identities = Some(vec![identity(trust, namespace, name)]);
            }
            Required::MeshTls { namespace, name } => {
                let (other, resource) = find(TrafficKind::MeshTlsAuthentication, namespace, name)?;
                let TrafficResource::MeshTlsAuthentication(authn) = resource else {
                    return None;
                };
                let refs = authn.identity_refs.iter().map(|reference| {
                    let ns = reference.namespace.as_deref().unwrap_or(namespace);
                    match reference.kind.as_str() {
                        "Namespace" => format!("*.{}.{}", reference.name, trust.suffix()),
                        _ => identity(trust, ns, &reference.name),
                    }
                });
                identities = Some(authn.identities.iter().cloned().chain(refs).collect());
                from.push(other.clone());
            }
            Required::Network { namespace, name } => {
                let (other, resource) = find(TrafficKind::NetworkAuthentication, namespace, name)?;
                let TrafficResource::NetworkAuthentication(authn) = resource else {
                    return None;
                };
                networks = Some(authn.networks.as_slice());
                from.push(other.clone());
            }
        }
    }
    let name = format!("authorizationpolicy/{}", key.name);
    Some((rules(&name, port, identities, networks), from))
}
