//! [`inject`]: adds the sidecar to one pod (a Pod, or a workload's pod
//! template). It works on the object as JSON rather than on typed structs,
//! so that fields this crate's Kubernetes version does not know survive,
//! and the webhook's patch touches nothing but what injection adds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::{Map, Value};

use crate::Refusal;
use crate::annotations::{Annotations, INJECT, Lookup, PodConfig};
use crate::owner::Owner;
use crate::settings::{INIT_CONTAINER, PROXY_CONTAINER, Settings};
use crate::sidecar::Sidecar;

/// The labels and annotations that record what was injected, as Linkerd's
/// `linkerd.io/*` ones.
pub const PROXY_VERSION_ANNOTATION: &str = "weft.io/proxy-version";
pub const CONTROL_PLANE_NS_LABEL: &str = "weft.io/control-plane-ns";
pub const WORKLOAD_NS_LABEL: &str = "weft.io/workload-ns";
/// `weft.io/proxy-<kind>: <name>`, e.g. `weft.io/proxy-deployment: web`.
pub const OWNER_LABEL_PREFIX: &str = "weft.io/proxy-";
/// Which container `kubectl logs` and `exec` pick without `-c`: the app's,
/// not the proxy now placed first.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// Sidecars of other meshes: two proxies in one pod would both redirect.
const OTHER_SIDECARS: [&str; 2] = ["linkerd-proxy", "istio-proxy"];

/// What is known about a pod besides its template.
#[derive(Clone, Copy, Debug)]
pub struct PodContext<'a> {
    /// The workload the pod belongs to, recorded in a label.
    pub owner: Option<&'a Owner>,
    /// The namespace the pod runs in, when known.
    pub namespace: Option<&'a str>,
    /// The namespace's annotations (empty when unknown).
    pub namespace_annotations: &'a Annotations,
    /// Inject only when `weft.io/inject: enabled` is on the pod or its
    /// namespace (the webhook); without it, inject unless disabled
    /// (`weft inject`, Linkerd's `--manual`).
    pub require_annotation: bool,
}

/// What [`inject`] added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    /// The proxy image, with its tag.
    pub image: String,
    /// Whether the init container was added (not in CNI mode).
    pub init_container: bool,
}

/// Adds the init container, the `weft-proxy` container (first among the
/// containers), their volumes, and the labels and annotations recording
/// it, to `pod`: an object with `metadata` and `spec`, a Pod or a pod
/// template. On a refusal `pod` is left as it was.
pub fn inject(
    pod: &mut Value,
    context: &PodContext<'_>,
    settings: &Settings,
) -> Result<Injected, Refusal> {
    let (spec, annotations) = read(pod)?;
    let lookup = Lookup {
        pod: &annotations,
        namespace: context.namespace_annotations,
    };
    let containers = &spec.containers;
    let init_containers: &[Container] = spec.init_containers.as_deref().unwrap_or_default();
    // A native sidecar is an init container.
    if containers
        .iter()
        .chain(init_containers)
        .any(|c| c.name == PROXY_CONTAINER)
    {
        return Err(Refusal::AlreadyInjected);
    }
    match lookup.first(&INJECT) {
        Some(found) if found.value == "enabled" => {}
        Some(found) if found.value == "disabled" => {
            return Err(Refusal::Disabled {
                annotation: found.to_string(),
            });
        }
        Some(found) => {
            return Err(Refusal::BadAnnotation {
                annotation: found.to_string(),
                reason: "expected enabled or disabled".into(),
            });
        }
        None if context.require_annotation => return Err(Refusal::NotEnabled),
        None => {}
    }
    if spec.host_network == Some(true) {
        return Err(Refusal::HostNetwork);
    }
    if let Some(other) = containers
        .iter()
        .find(|c| OTHER_SIDECARS.contains(&c.name.as_str()))
    {
        return Err(Refusal::OtherSidecar {
            container: other.name.clone(),
        });
    }
    let named_ports: BTreeMap<String, u16> = containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
        .collect();
    let config = PodConfig::read(&lookup, settings, &named_ports)?;
    let sidecar = Sidecar::new(&config, settings);

    if sidecar.init.is_some() && init_containers.iter().any(|c| c.name == INIT_CONTAINER) {
        return Err(Refusal::NameTaken {
            what: "init container",
            name: INIT_CONTAINER.into(),
        });
    }
    let volumes: Vec<&String> = spec.volumes.iter().flatten().map(|v| &v.name).collect();
    if let Some(taken) = sidecar.volumes.iter().find(|v| volumes.contains(&&v.name)) {
        return Err(Refusal::NameTaken {
            what: "volume",
            name: taken.name.clone(),
        });
    }

    // Everything is checked: from here on the pod only changes.
    let first_app_container = containers[0].name.clone();
    let injected = Injected {
        image: sidecar.proxy.image.clone().unwrap_or_default(),
        init_container: sidecar.init.is_some(),
    };
    let object = pod
        .as_object_mut()
        .expect("read checked the pod is an object");
    let spec = object_at(object, "spec");
    if config.native_sidecar {
        // After weft-init's redirect (inserted before it below) and before
        // the app's own init containers, which then go through the proxy.
        array_at(spec, "initContainers").insert(0, to_value(&sidecar.proxy));
    } else {
        array_at(spec, "containers").insert(0, to_value(&sidecar.proxy));
    }
    if let Some(init) = &sidecar.init {
        array_at(spec, "initContainers").insert(0, to_value(init));
    }
    array_at(spec, "volumes").extend(sidecar.volumes.iter().map(to_value));

    let metadata = object_at(object, "metadata");
    let labels = object_at(metadata, "labels");
    let mut label = |key: String, value: &str| {
        // A label value is at most 63 characters: a longer name is not recorded.
        if is_label_value(value) {
            labels.insert(key, value.into());
        }
    };
    label(
        CONTROL_PLANE_NS_LABEL.into(),
        &settings.control_plane_namespace,
    );
    if let Some(namespace) = context.namespace {
        label(WORKLOAD_NS_LABEL.into(), namespace);
    }
    if let Some(owner) = context.owner {
        let key = format!("{OWNER_LABEL_PREFIX}{}", owner.kind.to_ascii_lowercase());
        label(key, &owner.name);
    }
    let annotations = object_at(metadata, "annotations");
    annotations.insert(PROXY_VERSION_ANNOTATION.into(), config.version.into());
    annotations
        .entry(DEFAULT_CONTAINER_ANNOTATION)
        .or_insert(first_app_container.into());
    Ok(injected)
}

/// The pod's spec, typed for reading, and its annotations.
fn read(pod: &Value) -> Result<(PodSpec, Annotations), Refusal> {
    let not_a_pod = |reason: String| Refusal::NotAPod { reason };
    let object = pod
        .as_object()
        .ok_or_else(|| not_a_pod("not an object".into()))?;
    let spec = object
        .get("spec")
        .ok_or_else(|| not_a_pod("no spec".into()))?;
    let spec: PodSpec =
        serde_json::from_value(spec.clone()).map_err(|e| not_a_pod(format!("spec: {e}")))?;
    if spec.containers.is_empty() {
        return Err(not_a_pod("no containers".into()));
    }
    let annotations = match object.get("metadata").and_then(|m| m.get("annotations")) {
        None | Some(Value::Null) => Annotations::new(),
        Some(annotations) => serde_json::from_value(annotations.clone())
            .map_err(|e| not_a_pod(format!("metadata.annotations: {e}")))?,
    };
    Ok((spec, annotations))
}

/// The object under `key`, made when missing or null.
fn object_at<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let value = object.entry(key).or_insert(Value::Null);
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut().expect("made an object")
}

/// The array under `key`, made when missing or null.
fn array_at<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let value = object.entry(key).or_insert(Value::Null);
    if !value.is_array() {
        *value = Value::Array(Vec::new());
    }
    value.as_array_mut().expect("made an array")
}

fn to_value(object: &impl serde::Serialize) -> Value {
    serde_json::to_value(object).expect("Kubernetes objects serialize to JSON")
}

/// A Kubernetes label value: at most 63 characters, alphanumerics with
/// `-`, `_` and `.` inside.
pub fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    value.len() <= 63
        && bytes.iter().all(inner)
        && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
        && bytes.last().is_none_or(u8::is_ascii_alphanumeric)
}
