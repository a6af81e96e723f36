//! What the index keeps of each traffic resource (ServiceProfile,
//! TrafficSplit, HTTPRoute, GRPCRoute) and policy resource (Server,
//! ServerAuthorization, AuthorizationPolicy, MeshTLSAuthentication,
//! NetworkAuthentication), and how their compiled configs join a
//! workload's chain.
//!
//! As for WasmPlugins, a refused version never takes a resource's routes
//! away: the version accepted last keeps applying, and only a deletion
//! removes it, so a typo in a ServiceProfile leaves workloads on the
//! chains they had.
//!
//! Joining a chain (docs/linkerd-resources.md): a compiled config runs in
//! the root namespace's WasmPlugin of the plugin's name (its module, phase,
//! priority, failure policy), added to the chain even when the workload
//! does not name it. When the workload does name it: if it resolves to that
//! same root WasmPlugin with its own `pluginConfig`, the compiled config
//! takes the place of that default; a config the workload chose itself (a
//! WasmPlugin of that name in its namespace, or a `weft.io/plugin-config.`
//! annotation) wins, and the compiled one is reported as not applied.
//! Compiled `split` and `retry` run outbound only: they describe clients'
//! requests, and a server retrying to its own app would retry twice;
//! compiled `authz` runs inbound only: it describes who may call the
//! workload. A workload's default inbound policy is its pod's
//! `default-inbound-policy` annotation (`config.weft.io/`, else
//! `config.linkerd.io/`), else its namespace's, else the cluster's; a value
//! that is none of Linkerd's is reported and taken as `deny`.

use super::chain::{ConfigSource, Origin, ResolvedPlugin, WorkloadProblem};
use super::event::{PluginRef, ServiceRef, WorkloadRef};
use super::{Index, inbound_policy, resolve};
use crate::linkerd::{
    self, CompiledPlugin, INBOUND_POLICIES, PodLabelsAndPorts, ServicePorts, TrafficObject,
    TrafficRef, TrafficResource,
};
use crate::resources::Direction;

#[derive(Clone, Debug, PartialEq)]
pub struct TrafficState {
    /// `metadata.generation` of the version last seen.
    pub generation: Option<i64>,
    /// The version accepted last, which applies.
    pub serving: Option<TrafficResource>,
    /// Why the version last seen was refused; `None` when it is `serving`.
    pub rejection: Option<String>,
}

impl TrafficState {
    pub(super) fn applied(object: &TrafficObject, previous: Option<&Self>) -> Self {
        let generation = object.metadata.generation;
        match linkerd::read(object) {
            Ok(resource) => TrafficState {
                generation,
                serving: Some(resource),
                rejection: None,
            },
            Err(rejection) => TrafficState {
                generation,
                serving: previous.and_then(|p| p.serving.clone()),
                rejection: Some(rejection),
            },
        }
    }

    /// Why the version last seen was refused, and whether an earlier one
    /// still applies.
    pub fn rejection_message(&self) -> Option<String> {
        let message = self.rejection.as_ref()?;
        Some(match self.serving {
            Some(_) => format!("{message}; the last accepted version keeps applying"),
            None => message.clone(),
        })
    }
}

impl ServicePorts for Index {
    fn ports(&self, service: &ServiceRef) -> Option<Vec<u16>> {
        self.service_ports(service)
    }
}

impl Index {
    /// Every traffic resource, with its verdict.
    pub fn traffic(&self) -> impl Iterator<Item = (&TrafficRef, &TrafficState)> {
        self.traffic.iter()
    }

    /// What is wrong with each traffic resource: refused versions, and
    /// targets that match nothing.
    pub fn traffic_problems(&self) -> Vec<(TrafficRef, String)> {
        let mut problems = Vec::new();
        for (key, state) in &self.traffic {
            if let Some(message) = state.rejection_message() {
                problems.push((key.clone(), message));
            }
            if let Some(resource) = &state.serving {
                for problem in linkerd::target_problems(key, resource, &self.cluster_domain, self) {
                    problems.push((key.clone(), problem));
                }
            }
        }
        let accepted = self.accepted_traffic();
        for (key, resource) in &accepted {
            if !key.kind.is_policy() {
                continue;
            }
            let pods: Vec<PodLabelsAndPorts<'_>> = self
                .pods
                .iter()
                .filter(|(pod, _)| pod.namespace == key.namespace)
                .map(|(_, entry)| (&entry.labels, &entry.named_ports))
                .collect();
            for problem in linkerd::policy_problems(key, resource, &accepted, &pods) {
                problems.push(((*key).clone(), problem));
            }
        }
        problems
    }

    fn accepted_traffic(&self) -> Vec<(&TrafficRef, &TrafficResource)> {
        self.traffic
            .iter()
            .filter_map(|(key, state)| Some((key, state.serving.as_ref()?)))
            .collect()
    }

    /// `workload`'s compiled `authz`, if anything but the open default
    /// applies to it.
    fn compiled_authz(
        &self,
        workload: &WorkloadRef,
        accepted: &[(&TrafficRef, &TrafficResource)],
        problems: &mut Vec<WorkloadProblem>,
    ) -> Option<CompiledPlugin> {
        let pod = self.pods.get(workload)?;
        let namespace = self
            .namespaces
            .get(&workload.namespace)
            .and_then(|ns| inbound_policy(Some(&ns.injection)));
        let found = match (&pod.inbound_policy, namespace) {
            (Some(found), _) => Some((Origin::Pod, found.clone())),
            (None, Some(found)) => Some((Origin::Namespace, found)),
            (None, None) => None,
        };
        let default_policy = match found {
            None => self.default_inbound_policy.clone(),
            Some((_, (_, value))) if INBOUND_POLICIES.contains(&value.as_str()) => value,
            Some((origin, (annotation, value))) => {
                problems.push(WorkloadProblem::InvalidDefaultInboundPolicy {
                    origin,
                    annotation,
                    value,
                });
                "deny".to_string()
            }
        };
        let server = linkerd::Workload {
            namespace: &workload.namespace,
            labels: &pod.labels,
            named_ports: &pod.named_ports,
            default_policy: &default_policy,
        };
        linkerd::compile_authz(accepted, &server, &self.trust_domain)
    }

    /// Adds the compiled plugins to `workload`'s chain (the rule in this
    /// module's doc).
    pub(super) fn add_compiled(
        &self,
        workload: &WorkloadRef,
        plugins: &mut Vec<ResolvedPlugin>,
        problems: &mut Vec<WorkloadProblem>,
    ) {
        let accepted = self.accepted_traffic();
        let authz = self.compiled_authz(workload, &accepted, problems);
        let compiled = linkerd::compile(&accepted, &workload.namespace, &self.cluster_domain, self);
        for plugin in authz.into_iter().chain(compiled) {
            let root = PluginRef::new(&self.root_namespace, plugin.name);
            let directions = match plugin.name {
                "metrics" => None,
                "authz" => Some(vec![Direction::Inbound]),
                _ => Some(vec![Direction::Outbound]),
            };
            let from: Vec<TrafficRef> = plugin.from.into_iter().collect();
            match plugins.iter_mut().find(|p| p.name == plugin.name) {
                Some(chosen)
                    if chosen.resource == root
                        && chosen.config_source == ConfigSource::WasmPlugin =>
                {
                    chosen.config = plugin.config;
                    chosen.config_source = ConfigSource::Compiled;
                    if let Some(directions) = directions {
                        chosen.directions = directions;
                    }
                }
                Some(chosen) => problems.push(WorkloadProblem::CompiledConfigNotApplied {
                    name: plugin.name.to_string(),
                    plugin: chosen.resource.clone(),
                    config_source: chosen.config_source,
                    from,
                }),
                None => match self.plugins.get(&root).and_then(|s| s.serving.as_ref()) {
                    Some(serving) => {
                        let mut resolved = resolve(
                            &root,
                            &serving.plugin,
                            plugin.config,
                            ConfigSource::Compiled,
                        );
                        if let Some(directions) = directions {
                            resolved.directions = directions;
                        }
                        plugins.push(resolved);
                    }
                    None => problems.push(WorkloadProblem::NoPluginForCompiled {
                        name: plugin.name.to_string(),
                        plugin: root,
                        from,
                    }),
                },
            }
        }
    }

    /// Replaces every resource of `kind` with `all`.
    pub(super) fn reset_traffic(
        &mut self,
        kind: linkerd::TrafficKind,
        all: &[TrafficObject],
    ) -> bool {
        let before = self.traffic.clone();
        self.traffic.retain(|key, _| key.kind != kind);
        for object in all.iter().filter(|object| object.kind == kind) {
            let Some(key) = object.key() else { continue };
            let state = TrafficState::applied(object, before.get(&key));
            self.traffic.insert(key, state);
        }
        before != self.traffic
    }
}
