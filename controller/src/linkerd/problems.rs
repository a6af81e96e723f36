//! Everything wrong with the traffic and policy resources, per resource:
//! what `weft check` lists and what a route's status says, decided from the
//! index alone.
//!
//! A refused version is an error (Weft does not apply what was written);
//! a target that matches nothing or a missing reference is a warning (the
//! resource applies to what it does match, as in Linkerd); a compiled
//! plugin with no WasmPlugin to run it is an error (its policy is not
//! enforced anywhere), and one a workload overrides with its own config a
//! warning (a choice the workload made, docs/linkerd-resources.md).

use std::collections::BTreeMap;

use super::object::TrafficRef;
use crate::index::{Index, WorkloadProblem, WorkloadRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceProblem {
    pub severity: Severity,
    pub message: String,
}

/// Pods named in a message before the rest are only counted.
const PODS_NAMED: usize = 3;

/// Each resource with a problem, and its problems in a stable order.
pub fn resource_problems(index: &Index) -> BTreeMap<TrafficRef, Vec<ResourceProblem>> {
    let mut found: BTreeMap<TrafficRef, Vec<ResourceProblem>> = BTreeMap::new();
    let mut refusals = Vec::new();
    for (key, state) in index.traffic() {
        if let Some(message) = state.rejection_message() {
            refusals.push((key.clone(), message));
        }
    }
    for (key, message) in index.traffic_problems() {
        let severity = match refusals.contains(&(key.clone(), message.clone())) {
            true => Severity::Error,
            false => Severity::Warning,
        };
        found
            .entry(key)
            .or_default()
            .push(ResourceProblem { severity, message });
    }
    // The same problem on many pods of a workload is one line.
    let mut on_pods: BTreeMap<(TrafficRef, Severity, String), Vec<&WorkloadRef>> = BTreeMap::new();
    for workload in index.workloads() {
        let Ok(chain) = index.plugin_set(workload) else {
            continue;
        };
        for problem in chain.problems {
            let (severity, message, from) = match problem {
                WorkloadProblem::NoPluginForCompiled { name, plugin, from } => (
                    Severity::Error,
                    format!(
                        "compiles to plugin {name:?}, but there is no WasmPlugin {plugin} to run \
                         it: not applied to"
                    ),
                    from,
                ),
                WorkloadProblem::CompiledConfigNotApplied {
                    name,
                    plugin,
                    config_source,
                    from,
                } => (
                    Severity::Warning,
                    format!(
                        "compiles to plugin {name:?}, but WasmPlugin {plugin} runs with the \
                         workload's own config ({config_source}), which wins: not applied to"
                    ),
                    from,
                ),
                _ => continue,
            };
            for key in from {
                on_pods
                    .entry((key, severity, message.clone()))
                    .or_default()
                    .push(workload);
            }
        }
    }
    for ((key, severity, message), pods) in on_pods {
        let mut names: Vec<String> = pods
            .iter()
            .take(PODS_NAMED)
            .map(|pod| format!("pod {}/{}", pod.namespace, pod.name))
            .collect();
        if pods.len() > PODS_NAMED {
            names.push(format!("{} more", pods.len() - PODS_NAMED));
        }
        let message = format!("{message} {}", names.join(", "));
        found
            .entry(key)
            .or_default()
            .push(ResourceProblem { severity, message });
    }
    for problems in found.values_mut() {
        problems.sort_by(|a, b| (b.severity, &a.message).cmp(&(a.severity, &b.message)));
        problems.dedup();
    }
    found
}
