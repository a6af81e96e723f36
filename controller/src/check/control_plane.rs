//! `weft-existence`: the CRD, the namespace, the controller and its pods,
//! and whether the control plane runs the CLI's version.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use super::Options;
use super::names::{CONTROLLER, CRD, VERSION_LABEL};
use super::report::{Category, Check, Problem, fail, warn};
use super::snapshot::Snapshot;
use crate::index::ROOT_NAMESPACE;

const INSTALL_HINT: &str = "install the control plane: weft install | kubectl apply -f -";

pub fn existence(snapshot: &Snapshot, options: &Options) -> Category {
    let deployment = snapshot.deployments.as_ref().map(|d| controller(d));
    Category::new(
        "weft-existence",
        vec![
            Check::new(
                "control plane CustomResourceDefinitions exist",
                crd(snapshot),
            ),
            Check::new("control plane namespace exists", namespace(snapshot)),
            Check::new(
                "controller Deployment exists",
                match &deployment {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(fail(
                        format!("no Deployment {CONTROLLER} in namespace {ROOT_NAMESPACE}"),
                        INSTALL_HINT,
                    )),
                    Err(why) => Err(fail(format!("cannot list Deployments: {why}"), "")),
                },
            ),
            Check::new(
                "control plane pods are ready",
                pods_ready(deployment.ok().flatten(), &snapshot.pods),
            ),
            Check::new(
                "control plane and cli versions match",
                versions_match(snapshot, &options.cli_version),
            ),
        ],
    )
}

/// The control plane's version: the controller's `app.kubernetes.io/version`.
pub fn version(snapshot: &Snapshot) -> Option<&str> {
    let deployments = snapshot.deployments.as_ref().ok()?;
    let labels = controller(deployments)?.metadata.labels.as_ref()?;
    labels.get(VERSION_LABEL).map(String::as_str)
}

fn controller(deployments: &[Deployment]) -> Option<&Deployment> {
    deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(CONTROLLER))
}

fn crd(snapshot: &Snapshot) -> Result<(), Problem> {
    let crds = match &snapshot.crds {
        Ok(crds) => crds,
        Err(why) => return Err(fail(format!("cannot list CRDs: {why}"), "")),
    };
    let Some(crd) = crds
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(CRD))
    else {
        return Err(fail(
            format!("CRD {CRD} is not installed"),
            "install the CRDs: weft install --crds | kubectl apply -f -",
        ));
    };
    let conditions = crd.status.as_ref().and_then(|s| s.conditions.as_ref());
    let established = conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Established" && c.status == "True");
    if established {
        Ok(())
    } else {
        Err(fail(
            format!("CRD {CRD} is not established yet"),
            format!("kubectl describe crd {CRD} tells why"),
        ))
    }
}

fn namespace(snapshot: &Snapshot) -> Result<(), Problem> {
    match &snapshot.namespace {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(fail(
            format!("namespace {ROOT_NAMESPACE} does not exist"),
            INSTALL_HINT,
        )),
        Err(why) => Err(fail(
            format!("cannot read namespace {ROOT_NAMESPACE}: {why}"),
            "",
        )),
    }
}

/// Every replica the Deployment asks for is running and ready, and no
/// controller pod is not.
fn pods_ready(
    deployment: Option<&Deployment>,
    pods: &Result<Vec<Pod>, String>,
) -> Result<(), Problem> {
    let pods = match pods {
        Ok(pods) => pods,
        Err(why) => {
            return Err(fail(
                format!("cannot list the controller's pods: {why}"),
                "",
            ));
        }
    };
    let wanted = deployment
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let hint =
        format!("kubectl -n {ROOT_NAMESPACE} describe pods -l app.kubernetes.io/name={CONTROLLER}");
    let unready: Vec<String> = pods
        .iter()
        .filter(|p| !pod_ready(p))
        .map(|p| format!("pod {} is not ready ({})", name(p), phase(p)))
        .collect();
    let ready = pods.len() - unready.len();
    if pods.is_empty() {
        return Err(fail(format!("no running pods for {CONTROLLER}"), hint));
    }
    if !unready.is_empty() || (ready as i32) < wanted {
        let mut error = format!("{ready} of {wanted} {CONTROLLER} pods are ready");
        for line in unready {
            error += &format!("\n{line}");
        }
        return Err(fail(error, hint));
    }
    Ok(())
}

fn versions_match(snapshot: &Snapshot, cli: &str) -> Result<(), Problem> {
    match version(snapshot) {
        Some(running) if running == cli => Ok(()),
        Some(running) => Err(warn(
            format!("control plane running {running} but cli running {cli}"),
            "use the weft CLI of the control plane's version, or upgrade the control plane",
        )),
        None => Err(warn(
            format!(
                "cannot tell the control plane's version: no {VERSION_LABEL} label on {CONTROLLER}"
            ),
            "",
        )),
    }
}

/// Running, with its `Ready` condition true.
pub fn pod_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

pub fn name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The pod's phase, or the reason its first waiting container gives.
fn phase(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    waiting
        .or_else(|| status.and_then(|s| s.phase.clone()))
        .unwrap_or_else(|| "no status".to_string())
}
