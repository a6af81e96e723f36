//! The desired state of the mesh: fed Namespace, Pod, WasmPlugin, Service
//! and EndpointSlice events, it answers which plugins a workload runs,
//! which meshed workload receives at an address, and which endpoints are
//! behind a Service's authority (`services`). Pure and synchronous: sources (a
//! directory, Kubernetes watches) feed it, and the APIs to proxies read it.
//!
//! Selection rules:
//! - A pod's `weft.io/plugins` annotation names its plugins; without one,
//!   its namespace's does; with neither, it runs none. An empty value names
//!   none (a pod opting out of its namespace's default).
//! - A name is a WasmPlugin's resource name, looked up in the pod's
//!   namespace, then in the root namespace (`weft-system`): root plugins
//!   are a mesh-wide catalogue that a namespace can shadow by name.
//! - The plugin's `selector.matchLabels` then narrows which of the pods
//!   naming it run it; a pod it does not match simply goes without.
//! - Config: the pod's `weft.io/plugin-config.<name>`, else the namespace's,
//!   else the WasmPlugin's `pluginConfig` (replaced whole, not merged).
//! - Order: phase (AUTHN, AUTHZ, STATS, then unspecified), then priority
//!   (higher first), then name; the annotation's order does not matter.
//!
//! Endpoint rule (`endpoint(addr)`): among meshed pods (a `weft-proxy`
//! container) that are not on the host's network and have not finished,
//! those with `addr`'s IP in `status.podIP(s)`: if one, it, on any port; if
//! several share the IP (the local mesh runs every pod on 127.0.0.1), the
//! one whose sidecar's `weft-inbound` port is `addr`'s port; otherwise none.

mod authority;
mod chain;
mod endpoint;
mod event;
mod owner;
mod plugin_state;
mod services;
#[cfg(test)]
mod tests;
mod traffic;

use std::cmp::Reverse;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use weft_identity::{NameError, ServiceAccount, TrustDomain};

pub use authority::{Authority, AuthorityError, ClusterDomain, ClusterDomainError, DEFAULT_PORT};
pub use chain::{
    ChainError, ChainForWorkload, ConfigSource, Origin, ResolvedPlugin, WorkloadProblem,
};
pub use event::{
    EndpointSliceRef, Event, Objects, PluginRef, Resource, ResourceKey, ServiceRef,
    UnreadablePlugin, WorkloadRef,
};
pub use owner::{Owner, OwnerKind};
pub use plugin_state::{PluginState, Serving};
pub use services::{
    EndpointPod, LOAD_BALANCER_ANNOTATIONS, LoadBalancer, SERVICE_NAME_LABEL, ServiceEndpoint,
    ServiceEndpoints, ServiceProblem,
};
pub use traffic::TrafficState;

pub use endpoint::PodSummary;
use endpoint::{PodEndpoint, Receivers};
use services::{ServiceEntry, SliceEntry, service_entry, slice_entry};

use crate::linkerd::TrafficRef;
use crate::resources::PluginAnnotations;
use crate::validate::{Rejection, ValidPlugin};

/// The controller's own namespace, whose WasmPlugins every namespace can
/// name (Istio's root namespace, narrowed to plugins that are asked for).
pub const ROOT_NAMESPACE: &str = "weft-system";

#[derive(Clone, Debug)]
pub struct Index {
    root_namespace: String,
    namespaces: BTreeMap<String, NamespaceEntry>,
    pods: BTreeMap<WorkloadRef, PodEntry>,
    /// The meshed pods of `pods` by address, kept in step with them.
    receivers: Receivers,
    plugins: BTreeMap<PluginRef, PluginState>,
    services: BTreeMap<ServiceRef, ServiceEntry>,
    slices: BTreeMap<EndpointSliceRef, SliceEntry>,
    /// ServiceProfiles, TrafficSplits and routes, compiled into chains.
    traffic: BTreeMap<TrafficRef, TrafficState>,
    /// The DNS suffix of Services' names, for the authorities compiled
    /// plugins match.
    cluster_domain: ClusterDomain,
    /// Where identities are named, for the identities compiled `authz`
    /// rules name.
    trust_domain: TrustDomain,
    /// The cluster's default inbound policy, for pods and namespaces
    /// without the annotation.
    default_inbound_policy: String,
    revision: u64,
}

/// What the index keeps of a namespace: its plugin annotations, and the
/// ones that steer sidecar injection, for the admission webhook.
#[derive(Clone, Debug, PartialEq)]
struct NamespaceEntry {
    plugins: PluginAnnotations,
    injection: BTreeMap<String, String>,
}

/// What the index keeps of a pod: only what selection and endpoint lookup
/// read, so a status update counts as a change only when it moves where a
/// meshed pod receives (a new IP, a finished pod), not for readiness churn.
#[derive(Clone, Debug, PartialEq)]
struct PodEntry {
    labels: BTreeMap<String, String>,
    annotations: PluginAnnotations,
    /// `spec.serviceAccountName`, the pod's identity.
    service_account: String,
    /// `None` unless a client should expect its proxy at its addresses.
    endpoint: Option<PodEndpoint>,
    /// Its workload, for metric labels.
    owner: Option<Owner>,
    /// Its containers' ports by name (a Server's port may name one).
    named_ports: BTreeMap<String, u16>,
    /// Its `default-inbound-policy` annotation: name and value.
    inbound_policy: Option<(String, String)>,
}

impl Default for Index {
    fn default() -> Self {
        Self::new(ROOT_NAMESPACE)
    }
}

impl Index {
    pub fn new(root_namespace: impl Into<String>) -> Self {
        Self {
            root_namespace: root_namespace.into(),
            namespaces: BTreeMap::new(),
            pods: BTreeMap::new(),
            receivers: Receivers::default(),
            plugins: BTreeMap::new(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            traffic: BTreeMap::new(),
            cluster_domain: ClusterDomain::default(),
            trust_domain: TrustDomain::default(),
            default_inbound_policy: "all-unauthenticated".to_string(),
            revision: 0,
        }
    }

    /// The cluster's DNS suffix (`cluster.local` unless set).
    pub fn with_cluster_domain(mut self, domain: ClusterDomain) -> Self {
        self.cluster_domain = domain;
        self
    }

    /// The trust domain identities are named in (`cluster.local`, issued
    /// from `weft-system`, unless set).
    pub fn with_trust_domain(mut self, trust: TrustDomain) -> Self {
        self.trust_domain = trust;
        self
    }

    /// The cluster's default inbound policy (`all-unauthenticated` unless
    /// set), for workloads without the annotation.
    pub fn with_default_inbound_policy(mut self, policy: impl Into<String>) -> Self {
        self.default_inbound_policy = policy.into();
        self
    }

    pub fn root_namespace(&self) -> &str {
        &self.root_namespace
    }

    /// Goes up by one with every event that changed what the index answers;
    /// readers compare it to know whether to look again.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies one event; true when anything the index answers changed.
    /// Objects without a name (or namespace, for namespaced kinds) are
    /// ignored: the API server never sends them.
    pub fn apply(&mut self, event: Event) -> bool {
        let changed = match event {
            Event::Applied(Resource::Namespace(ns)) => match namespace_entry(&ns) {
                Some((name, entry)) => upsert(&mut self.namespaces, name, entry),
                None => false,
            },
            Event::Applied(Resource::Pod(pod)) => match pod_entry(&pod) {
                Some((key, entry)) => self.upsert_pod(key, entry),
                None => false,
            },
            Event::Applied(Resource::WasmPlugin(plugin)) => match PluginRef::of(&plugin) {
                Some(key) => {
                    let state = PluginState::applied(&plugin, &key.name, self.plugins.get(&key));
                    upsert(&mut self.plugins, key, state)
                }
                None => false,
            },
            Event::Applied(Resource::UnreadableWasmPlugin(plugin)) => {
                let state = PluginState::unreadable(&plugin, self.plugins.get(&plugin.plugin));
                upsert(&mut self.plugins, plugin.plugin, state)
            }
            Event::Applied(Resource::Service(service)) => match service_entry(&service) {
                Some((key, entry)) => upsert(&mut self.services, key, entry),
                None => false,
            },
            Event::Applied(Resource::EndpointSlice(slice)) => match slice_entry(&slice) {
                Some((key, entry)) => upsert(&mut self.slices, key, entry),
                None => false,
            },
            Event::Applied(Resource::Traffic(object)) => match object.key() {
                Some(key) => {
                    let state = TrafficState::applied(&object, self.traffic.get(&key));
                    upsert(&mut self.traffic, key, state)
                }
                None => false,
            },
            Event::Deleted(ResourceKey::Traffic(key)) => self.traffic.remove(&key).is_some(),
            Event::Reset(Objects::Traffic(kind, all)) => self.reset_traffic(kind, &all),
            Event::Deleted(ResourceKey::Namespace(name)) => self.namespaces.remove(&name).is_some(),
            Event::Deleted(ResourceKey::Pod(key)) => self.remove_pod(&key),
            Event::Deleted(ResourceKey::WasmPlugin(key)) => self.plugins.remove(&key).is_some(),
            Event::Deleted(ResourceKey::Service(key)) => self.services.remove(&key).is_some(),
            Event::Deleted(ResourceKey::EndpointSlice(key)) => self.slices.remove(&key).is_some(),
            Event::Reset(Objects::Namespaces(all)) => {
                replace(&mut self.namespaces, all.iter().filter_map(namespace_entry))
            }
            Event::Reset(Objects::Pods(all)) => self.reset_pods(&all),
            Event::Reset(Objects::Services(all)) => {
                replace(&mut self.services, all.iter().filter_map(service_entry))
            }
            Event::Reset(Objects::EndpointSlices(all)) => {
                replace(&mut self.slices, all.iter().filter_map(slice_entry))
            }
            Event::Reset(Objects::WasmPlugins(all)) => {
                // Each plugin's state follows its own previous one, so a
                // relist that brings a refused version keeps the last good.
                let previous = &self.plugins;
                let fresh: BTreeMap<PluginRef, PluginState> = all
                    .iter()
                    .filter_map(|plugin| {
                        let key = PluginRef::of(plugin)?;
                        let state = PluginState::applied(plugin, &key.name, previous.get(&key));
                        Some((key, state))
                    })
                    .collect();
                replace(&mut self.plugins, fresh.into_iter())
            }
        };
        if changed {
            self.revision += 1;
        }
        changed
    }

    /// Every pod the index knows.
    pub fn workloads(&self) -> impl Iterator<Item = &WorkloadRef> {
        self.pods.keys()
    }

    /// Each pod's service account (`default` when its spec names none).
    pub fn service_accounts(&self) -> impl Iterator<Item = (&WorkloadRef, &str)> {
        self.pods
            .iter()
            .map(|(pod, entry)| (pod, entry.service_account.as_str()))
    }

    /// `workload`'s service account, if the index knows the pod.
    pub fn service_account(&self, workload: &WorkloadRef) -> Option<&str> {
        self.pods
            .get(workload)
            .map(|entry| entry.service_account.as_str())
    }

    /// The identity `workload`'s proxy proves in `trust`, named after its
    /// service account: `None` for a pod the index does not know, an error
    /// for a service account that is not a DNS label (the identity service
    /// refuses to certify it, so that proxy proves no identity).
    pub fn identity(
        &self,
        workload: &WorkloadRef,
        trust: &TrustDomain,
    ) -> Option<Result<String, NameError>> {
        let account = self.service_account(workload)?;
        Some(ServiceAccount::new(&workload.namespace, account).map(|sa| trust.identity(&sa)))
    }

    /// A WasmPlugin's last verdict, the version it serves and its
    /// generation, for its status.
    pub fn plugin(&self, plugin: &PluginRef) -> Option<&PluginState> {
        self.plugins.get(plugin)
    }

    /// Every WasmPlugin, with its verdict.
    pub fn plugins(&self) -> impl Iterator<Item = (&PluginRef, &PluginState)> {
        self.plugins.iter()
    }

    /// Every WasmPlugin whose version last seen the index refuses, and why
    /// (an earlier, accepted version may still serve).
    pub fn rejected_plugins(&self) -> impl Iterator<Item = (&PluginRef, &Rejection)> {
        self.plugins
            .iter()
            .filter_map(|(key, state)| state.rejection.as_ref().map(|r| (key, r)))
    }

    /// The annotations of `namespace` that steer sidecar injection
    /// (`weft.io/inject`, `config.weft.io/*` and Linkerd's names); `None`
    /// while the namespace is not known.
    pub fn injection_annotations(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(namespace).map(|entry| &entry.injection)
    }

    /// The plugins `workload` runs, in order.
    pub fn plugin_set(&self, workload: &WorkloadRef) -> Result<ChainForWorkload, ChainError> {
        let pod = self
            .pods
            .get(workload)
            .ok_or_else(|| ChainError::UnknownWorkload(workload.clone()))?;
        // A pod seen before its namespace would otherwise briefly lose the
        // namespace's plugins; no answer keeps the proxy on its last chain.
        let namespace = &self
            .namespaces
            .get(&workload.namespace)
            .ok_or_else(|| ChainError::UnknownNamespace {
                workload: workload.clone(),
            })?
            .plugins;

        let mut problems = Vec::new();
        let (names, plugins_from): (&[String], _) =
            match (&pod.annotations.plugins, &namespace.plugins) {
                (Some(names), _) => (names, Some(Origin::Pod)),
                (None, Some(names)) => (names, Some(Origin::Namespace)),
                (None, None) => (&[], None),
            };
        let invalid_names = match plugins_from {
            Some(Origin::Pod) => &pod.annotations.invalid_names[..],
            Some(Origin::Namespace) => &namespace.invalid_names[..],
            None => &[],
        };
        for name in invalid_names {
            problems.push(WorkloadProblem::InvalidPluginName {
                name: name.clone(),
                origin: plugins_from.expect("invalid names come from an annotation"),
            });
        }
        for name in pod.annotations.configs.keys() {
            if !names.contains(name) {
                problems.push(WorkloadProblem::UnusedConfig { name: name.clone() });
            }
        }

        let mut plugins = Vec::new();
        for name in names {
            let Some((key, state)) = self.lookup(&workload.namespace, name) else {
                let mut namespaces = vec![workload.namespace.clone()];
                if workload.namespace != self.root_namespace {
                    namespaces.push(self.root_namespace.clone());
                }
                problems.push(WorkloadProblem::UnknownPlugin {
                    name: name.clone(),
                    namespaces,
                });
                continue;
            };
            let valid = match (&state.serving, &state.rejection) {
                (Some(serving), None) => &serving.plugin,
                (Some(serving), Some(rejection)) => {
                    problems.push(WorkloadProblem::RejectedChange {
                        plugin: key.clone(),
                        rejection: rejection.clone(),
                    });
                    &serving.plugin
                }
                (None, rejection) => {
                    problems.extend(rejection.iter().map(|rejection| {
                        WorkloadProblem::RejectedPlugin {
                            plugin: key.clone(),
                            rejection: rejection.clone(),
                        }
                    }));
                    continue;
                }
            };
            if !selects(valid, &pod.labels) {
                continue;
            }
            let (config, config_source) = match effective_config(name, pod, namespace, valid) {
                Ok(found) => found,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            plugins.push(resolve(key, valid, config, config_source));
        }

        self.add_compiled(workload, &mut plugins, &mut problems);

        plugins.sort_by(|a, b| {
            (a.phase, Reverse(a.priority), &a.name, &a.resource).cmp(&(
                b.phase,
                Reverse(b.priority),
                &b.name,
                &b.resource,
            ))
        });
        let mut kept: Vec<ResolvedPlugin> = Vec::with_capacity(plugins.len());
        for plugin in plugins {
            match kept.iter().find(|k| k.name == plugin.name) {
                Some(first) => problems.push(WorkloadProblem::DuplicateName {
                    name: plugin.name.clone(),
                    first: first.resource.clone(),
                    second: plugin.resource,
                }),
                None => kept.push(plugin),
            }
        }

        Ok(ChainForWorkload {
            workload: workload.clone(),
            plugins_from,
            version: chain::version(&kept),
            plugins: kept,
            problems,
        })
    }

    /// The pod's namespace shadows the root namespace.
    fn lookup(&self, namespace: &str, name: &str) -> Option<(&PluginRef, &PluginState)> {
        [namespace, &self.root_namespace]
            .into_iter()
            .find_map(|ns| self.plugins.get_key_value(&PluginRef::new(ns, name)))
    }
}

fn selects(plugin: &ValidPlugin, labels: &BTreeMap<String, String>) -> bool {
    plugin
        .match_labels
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// Pod annotation, else namespace annotation, else the WasmPlugin's own.
/// A bad override keeps the plugin out rather than running it with a
/// config the workload meant to replace.
fn effective_config(
    name: &str,
    pod: &PodEntry,
    namespace: &PluginAnnotations,
    plugin: &ValidPlugin,
) -> Result<(serde_json::Value, ConfigSource), WorkloadProblem> {
    let overrides = [
        (&pod.annotations, Origin::Pod, ConfigSource::PodAnnotation),
        (
            namespace,
            Origin::Namespace,
            ConfigSource::NamespaceAnnotation,
        ),
    ];
    for (annotations, origin, source) in overrides {
        match annotations.configs.get(name) {
            Some(Ok(config)) => return Ok((config.clone(), source)),
            Some(Err(error)) => {
                return Err(WorkloadProblem::InvalidConfig {
                    name: name.to_string(),
                    origin,
                    error: error.clone(),
                });
            }
            None => {}
        }
    }
    Ok((plugin.config.clone(), ConfigSource::WasmPlugin))
}

fn resolve(
    key: &PluginRef,
    plugin: &ValidPlugin,
    config: serde_json::Value,
    config_source: ConfigSource,
) -> ResolvedPlugin {
    ResolvedPlugin {
        name: plugin.name.clone(),
        resource: key.clone(),
        module: plugin.module.clone(),
        pull_policy: plugin.pull_policy,
        image_pull_secret: plugin.image_pull_secret.clone(),
        sha256: plugin.sha256.clone(),
        config,
        config_source,
        failure_policy: plugin.failure_policy,
        phase: plugin.phase,
        priority: plugin.priority,
        directions: plugin.directions.clone(),
        timeout_ms: plugin.timeout_ms,
        memory_limit_bytes: plugin.memory_limit_bytes,
    }
}

// === what the index keeps of each object ===

fn namespace_entry(namespace: &Namespace) -> Option<(String, NamespaceEntry)> {
    use weft_inject::annotations::{INJECT, LINKERD_CONFIG_PREFIX, WEFT_CONFIG_PREFIX};
    let name = namespace.metadata.name.clone()?;
    let annotations = namespace.metadata.annotations.as_ref();
    let injection = annotations
        .into_iter()
        .flatten()
        .filter(|(key, _)| {
            INJECT.contains(&key.as_str())
                || key.starts_with(WEFT_CONFIG_PREFIX)
                || key.starts_with(LINKERD_CONFIG_PREFIX)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let entry = NamespaceEntry {
        plugins: PluginAnnotations::parse(annotations),
        injection,
    };
    Some((name, entry))
}

fn pod_entry(pod: &Pod) -> Option<(WorkloadRef, PodEntry)> {
    let entry = PodEntry {
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        annotations: PluginAnnotations::parse(pod.metadata.annotations.as_ref()),
        service_account: pod
            .spec
            .as_ref()
            .and_then(|spec| spec.service_account_name.clone())
            .unwrap_or_else(|| "default".to_string()),
        endpoint: PodEndpoint::of(pod),
        owner: Owner::of(pod),
        named_ports: named_ports(pod),
        inbound_policy: inbound_policy(pod.metadata.annotations.as_ref()),
    };
    Some((WorkloadRef::of(pod)?, entry))
}

/// The app containers' named ports (not the sidecar's).
fn named_ports(pod: &Pod) -> BTreeMap<String, u16> {
    let containers = pod.spec.iter().flat_map(|spec| &spec.containers);
    containers
        .filter(|container| container.name != endpoint::PROXY_CONTAINER)
        .flat_map(|container| container.ports.iter().flatten())
        .filter_map(|port| Some((port.name.clone()?, u16::try_from(port.container_port).ok()?)))
        .collect()
}

/// `config.weft.io/default-inbound-policy`, else Linkerd's name.
fn inbound_policy(annotations: Option<&BTreeMap<String, String>>) -> Option<(String, String)> {
    use weft_inject::annotations::{
        LINKERD_CONFIG_PREFIX, WEFT_CONFIG_PREFIX, config::DEFAULT_INBOUND_POLICY,
    };
    let annotations = annotations?;
    [WEFT_CONFIG_PREFIX, LINKERD_CONFIG_PREFIX]
        .into_iter()
        .map(|prefix| format!("{prefix}{DEFAULT_INBOUND_POLICY}"))
        .find_map(|name| Some((name.clone(), annotations.get(&name)?.clone())))
}

fn upsert<K: Ord, V: PartialEq>(map: &mut BTreeMap<K, V>, key: K, value: V) -> bool {
    match map.get(&key) {
        Some(old) if *old == value => false,
        _ => {
            map.insert(key, value);
            true
        }
    }
}

fn replace<K: Ord, V: PartialEq>(
    map: &mut BTreeMap<K, V>,
    entries: impl Iterator<Item = (K, V)>,
) -> bool {
    let fresh: BTreeMap<K, V> = entries.collect();
    let changed = *map != fresh;
    *map = fresh;
    changed
}
