//! `kubectl get -o json` output of a small cluster (`tests/fixtures/`), for
//! unit tests: namespaces `shop` (annotated) and `plain`, four pods, and
//! WasmPlugins in `weft-system` and `shop` (one of them malformed), each
//! with the status a controller wrote.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::Deserialize;

use crate::index::{Event, Index, Objects};
use crate::resources::WasmPlugin;

/// What `kubectl get KIND -o json` prints.
#[derive(Deserialize)]
struct List<T> {
    items: Vec<T>,
}

fn read<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let list: List<T> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    list.items
}

pub fn namespaces() -> Vec<Namespace> {
    read("namespaces.json")
}

pub fn pods() -> Vec<Pod> {
    read("pods.json")
}

pub fn plugins() -> Vec<WasmPlugin> {
    read("wasmplugins.json")
}

pub fn pod(name: &str) -> Pod {
    pods()
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no pod {name} in the fixtures"))
}

pub fn plugin(name: &str) -> WasmPlugin {
    plugins()
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no WasmPlugin {name} in the fixtures"))
}

/// Every object of the fixtures, as a relist delivers them (pods last).
/// The fixture cluster has no Services: the index's discovery tests have
/// their own (`index/tests/discovery.yaml`).
pub fn listed() -> Vec<Event> {
    vec![
        Event::Reset(Objects::Namespaces(namespaces())),
        Event::Reset(Objects::WasmPlugins(plugins())),
        Event::Reset(Objects::Services(Vec::new())),
        Event::Reset(Objects::EndpointSlices(Vec::new())),
    ]
    .into_iter()
    .chain(policy_listed())
    .chain([Event::Reset(Objects::Pods(pods()))])
    .collect()
}

/// Linkerd's policy kinds, none of them in the fixture cluster: each
/// listed empty, as a watch whose CRD is missing reports it.
pub fn policy_listed() -> Vec<Event> {
    crate::linkerd::TrafficKind::ALL
        .into_iter()
        .filter(|kind| kind.is_policy())
        .map(|kind| Event::Reset(Objects::Traffic(kind, Vec::new())))
        .collect()
}

pub fn cluster() -> Index {
    let mut index = Index::default();
    for event in listed() {
        index.apply(event);
    }
    index
}
