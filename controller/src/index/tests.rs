//! Builders for the objects the index is fed, shared by the index tests.

mod authority;
mod changes;
mod discovery;
mod endpoints;
mod refusals;
mod selection;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::{Value, json};

use super::*;
use crate::resources::WasmPlugin;

fn mk_namespace(name: &str, annotations: Value) -> Namespace {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "annotations": annotations},
    }))
    .unwrap()
}

fn mk_pod(namespace: &str, name: &str, labels: Value, annotations: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }))
    .unwrap()
}

fn mk_plugin(namespace: &str, name: &str, spec: Value) -> WasmPlugin {
    let mut spec = spec;
    if spec.get("url").is_none() {
        spec["url"] = json!(format!("oci://ghcr.io/weft/{name}:0.1"));
    }
    serde_json::from_value(json!({
        "apiVersion": "weft.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"namespace": namespace, "name": name, "generation": 1},
        "spec": spec,
    }))
    .unwrap()
}

fn index_with(events: impl IntoIterator<Item = Event>) -> Index {
    let mut index = Index::default();
    for event in events {
        index.apply(event);
    }
    index
}

fn web() -> WorkloadRef {
    WorkloadRef::new("shop", "web")
}

fn names(chain: &ChainForWorkload) -> Vec<&str> {
    chain.plugins.iter().map(|p| p.name.as_str()).collect()
}

/// weft-system has metrics, retry and authz; `shop` says metrics,retry.
fn catalogue() -> Vec<Event> {
    vec![
        mk_namespace("weft-system", json!({})).into(),
        mk_namespace("shop", json!({"weft.io/plugins": "metrics,retry"})).into(),
        mk_plugin("weft-system", "metrics", json!({})).into(),
        mk_plugin(
            "weft-system",
            "retry",
            json!({"pluginConfig": {"routes": []}, "priority": 10}),
        )
        .into(),
        mk_plugin("weft-system", "authz", json!({"phase": "AUTHZ"})).into(),
    ]
}
