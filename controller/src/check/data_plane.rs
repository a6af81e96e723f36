//! `weft-data-plane` (`--proxy`): every meshed pod's proxy is ready and
//! runs the control plane's version.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use weft_inject::PROXY_VERSION_ANNOTATION;

use super::Options;
use super::control_plane::{name, version};
use super::names::PROXY_CONTAINER;
use super::report::{Category, Check, Problem, fail, warn};
use super::snapshot::Snapshot;

pub fn data_plane(snapshot: &Snapshot, options: &Options) -> Category {
    let mut checks = Vec::new();
    if let Some(namespace) = &options.namespace {
        checks.push(Check::new(
            "data plane namespace exists",
            match &snapshot.data_plane_namespace {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(fail(format!("namespace {namespace} does not exist"), "")),
                Err(why) => Err(fail(
                    format!("cannot read namespace {namespace}: {why}"),
                    "",
                )),
            },
        ));
    }
    let pods: Vec<&Pod> = match &snapshot.data_plane_pods {
        Ok(pods) => pods.iter().filter(|p| proxy_status(p).is_some()).collect(),
        Err(why) => {
            let problem = fail(format!("cannot list meshed pods: {why}"), "");
            checks.push(Check::new("data plane proxies are ready", Err(problem)));
            return Category::new("weft-data-plane", checks);
        }
    };
    checks.push(Check::new(
        "data plane proxies are ready",
        ready(&pods, options),
    ));
    // The control plane's version, else this CLI's.
    let expected = version(snapshot).unwrap_or(&options.cli_version);
    checks.push(Check::new(
        "data plane and control plane versions match",
        versions_match(&pods, expected),
    ));
    Category::new("weft-data-plane", checks)
}

/// The proxy container's status, `Some(None)` for a meshed pod whose
/// container has no status yet, `None` for a pod without a proxy.
fn proxy_status(pod: &Pod) -> Option<Option<&ContainerStatus>> {
    let spec = pod.spec.as_ref()?;
    let containers = spec.containers.iter();
    // A native sidecar is an init container that keeps running.
    let init = spec.init_containers.iter().flatten();
    containers.chain(init).find(|c| c.name == PROXY_CONTAINER)?;
    let status = pod.status.as_ref();
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let init_statuses = status.and_then(|s| s.init_container_statuses.as_ref());
    Some(
        statuses
            .into_iter()
            .chain(init_statuses)
            .flatten()
            .find(|c| c.name == PROXY_CONTAINER),
    )
}

fn ready(pods: &[&Pod], options: &Options) -> Result<(), Problem> {
    if pods.is_empty() {
        let scope = match &options.namespace {
            Some(namespace) => format!("in namespace {namespace}"),
            None => "in any namespace".to_string(),
        };
        return Err(warn(
            format!("no meshed pods {scope}"),
            "annotate a namespace with weft.io/inject=enabled and restart its workloads",
        ));
    }
    let unready: Vec<String> = pods
        .iter()
        .filter(|pod| !proxy_status(pod).flatten().is_some_and(|s| s.ready))
        .map(|pod| {
            format!(
                "pod {}: container {PROXY_CONTAINER} is not ready",
                name(pod)
            )
        })
        .collect();
    match unready.is_empty() {
        true => Ok(()),
        false => Err(fail(
            unready.join("\n"),
            "kubectl logs POD -c weft-proxy tells why",
        )),
    }
}

fn versions_match(pods: &[&Pod], expected: &str) -> Result<(), Problem> {
    let others: Vec<String> = pods
        .iter()
        .filter_map(|pod| {
            let annotations = pod.metadata.annotations.as_ref();
            let running = annotations.and_then(|a| a.get(PROXY_VERSION_ANNOTATION));
            match running.map(String::as_str) {
                Some(running) if running == expected => None,
                Some(running) => Some(format!("pod {} runs proxy {running}", name(pod))),
                None => Some(format!(
                    "pod {} has no {PROXY_VERSION_ANNOTATION} annotation",
                    name(pod)
                )),
            }
        })
        .collect();
    match others.is_empty() {
        true => Ok(()),
        false => Err(warn(
            format!(
                "some proxies are not running the control plane's version {expected}:\n{}",
                others.join("\n")
            ),
            "restart the workloads to inject the current proxy: kubectl rollout restart",
        )),
    }
}
