//! `weft-linkerd-resources`: every problem the controller finds with a
//! ServiceProfile, TrafficSplit, HTTPRoute, GRPCRoute or Linkerd policy
//! resource, one check each. The snapshot's objects go through the same
//! index and compile step the controller runs, with the controller's
//! `--cluster-domain` and `--trust-domain` read from its Deployment, so a
//! verdict here is the controller's.

use k8s_openapi::api::apps::v1::Deployment;

use super::names::CONTROLLER;
use super::report::{Category, Check, Problem, fail, warn};
use super::snapshot::{MeshObjects, Snapshot};
use crate::index::{ClusterDomain, Event, Index, Objects, ROOT_NAMESPACE};
use crate::linkerd::{Severity, TrafficKind, TrafficRef, resource_problems};

pub const CATEGORY: &str = "weft-linkerd-resources";

pub fn linkerd_resources(snapshot: &Snapshot) -> Category {
    let objects = match &snapshot.mesh {
        Ok(objects) => objects,
        Err(why) => {
            let check = Check::new(
                "Linkerd and Gateway API resources can be read",
                Err(fail(format!("cannot list them: {why}"), "")),
            );
            return Category::new(CATEGORY, vec![check]);
        }
    };
    let index = index(objects, snapshot.deployments.as_deref().unwrap_or_default());
    let mut checks: Vec<Check> = Vec::new();
    for (key, problems) in resource_problems(&index) {
        for problem in problems {
            let verdict = match problem.severity {
                Severity::Error => fail(&problem.message, hint(&key)),
                Severity::Warning => warn(&problem.message, hint(&key)),
            };
            checks.push(Check::new(name(&key), Err(verdict)));
        }
    }
    if checks.is_empty() {
        let count = objects.traffic.len();
        checks.push(Check::new(
            format!("Linkerd and Gateway API resources are all applied ({count})"),
            Ok::<(), Problem>(()),
        ));
    }
    Category::new(CATEGORY, checks)
}

/// `kind/namespace/name`, as kubectl names an object.
fn name(key: &TrafficRef) -> String {
    format!("{}/{}/{}", key.kind, key.namespace, key.name)
}

fn hint(key: &TrafficRef) -> String {
    let resource = match key.kind {
        TrafficKind::LinkerdHttpRoute => "httproutes.policy.linkerd.io",
        TrafficKind::HttpRoute => "httproutes.gateway.networking.k8s.io",
        other => other.plural(),
    };
    format!(
        "kubectl -n {} get {resource} {} -o yaml; docs/linkerd-resources.md lists what Weft applies",
        key.namespace, key.name
    )
}

/// The index the controller would hold of `objects`.
pub fn index(objects: &MeshObjects, deployments: &[Deployment]) -> Index {
    let mut index = Index::new(ROOT_NAMESPACE);
    if let Some(domain) = controller_arg(deployments, "--cluster-domain")
        .and_then(|d| d.parse::<ClusterDomain>().ok())
    {
        index = index.with_cluster_domain(domain);
    }
    if let Some(trust) = controller_arg(deployments, "--trust-domain")
        .and_then(|d| weft_identity::TrustDomain::new(ROOT_NAMESPACE, d).ok())
    {
        index = index.with_trust_domain(trust);
    }
    index.apply(Event::Reset(Objects::Namespaces(
        objects.namespaces.clone(),
    )));
    index.apply(Event::Reset(Objects::Pods(objects.pods.clone())));
    index.apply(Event::Reset(Objects::Services(objects.services.clone())));
    index.apply(Event::Reset(Objects::WasmPlugins(objects.plugins.clone())));
    for kind in TrafficKind::ALL {
        let of_kind = objects
            .traffic
            .iter()
            .filter(|o| o.kind == kind)
            .cloned()
            .collect();
        index.apply(Event::Reset(Objects::Traffic(kind, of_kind)));
    }
    index
}

/// The value of `--name=value` in the controller container's arguments.
fn controller_arg<'a>(deployments: &'a [Deployment], name: &str) -> Option<&'a str> {
    let deployment = deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(CONTROLLER))?;
    let pod = deployment.spec.as_ref()?.template.spec.as_ref()?;
    pod.containers
        .iter()
        .flat_map(|c| c.args.iter().flatten())
        .find_map(|arg| arg.strip_prefix(name)?.strip_prefix('='))
}
