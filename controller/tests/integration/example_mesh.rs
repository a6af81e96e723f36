//! The example mesh in `examples/mesh/` loads cleanly, its plugins are the
//! ones docs/plugins.md documents, its workloads get the chains its
//! comments promise, each sidecar's inbound address names its pod, and each
//! Service's name gives its pods' sidecars.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use weft_api::destination::{LoadBalancer, ProtocolHint};
use weft_controller::destination::{endpoint, endpoint_set};
use weft_controller::index::{Authority, ClusterDomain, ConfigSource, Index, Origin, WorkloadRef};
use weft_controller::local::{Directory, read_dir};
use weft_controller::module_source::ModuleSource;
use weft_identity::TrustDomain;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn example() -> Directory {
    read_dir(&repo().join("controller/examples/mesh")).unwrap()
}

fn index() -> Index {
    let directory = example();
    assert_eq!(directory.errors, [], "the example mesh has errors");
    let mut index = Index::default();
    for event in directory.events() {
        index.apply(event);
    }
    index
}

fn chain(pod: &str) -> Vec<(String, ConfigSource)> {
    let chain = index().plugin_set(&WorkloadRef::new("demo", pod)).unwrap();
    assert_eq!(chain.problems, [], "{pod}");
    chain
        .plugins
        .into_iter()
        .map(|p| (p.name, p.config_source))
        .collect()
}

fn named(names: &[(&str, ConfigSource)]) -> Vec<(String, ConfigSource)> {
    names.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

#[test]
fn every_workload_gets_its_documented_chain() {
    use ConfigSource::*;
    // traffic.yaml's TrafficSplit gives every client `split`, and its
    // ServiceProfile gives `metrics` backend's routes.
    assert_eq!(
        chain("app"),
        named(&[
            ("authz", WasmPlugin),
            ("split", Compiled),
            ("retry", WasmPlugin),
            ("metrics", Compiled)
        ])
    );
    assert_eq!(
        chain("backend"),
        named(&[
            ("split", Compiled),
            ("retry", WasmPlugin),
            ("metrics", Compiled)
        ])
    );
    assert_eq!(
        chain("load"),
        named(&[("split", Compiled), ("metrics", Compiled)])
    );
    assert_eq!(index().traffic_problems(), []);
    let load = index()
        .plugin_set(&WorkloadRef::new("demo", "load"))
        .unwrap();
    let split = &load.plugins[0].config["routes"][0];
    assert_eq!(split["authority"], "backend.demo.svc.cluster.local:8081");
    assert_eq!(
        split["backends"],
        json!([
            {"name": "backend", "namespace": "demo", "port": 8081, "weight": 900},
            {"name": "app", "namespace": "demo", "port": 8080, "weight": 100},
        ])
    );
    let backend = index()
        .plugin_set(&WorkloadRef::new("demo", "backend"))
        .unwrap();
    assert_eq!(backend.plugins_from, Some(Origin::Namespace));
}

#[test]
fn each_sidecar_s_inbound_address_names_its_pod() {
    let index = index();
    // The inbound ports `cargo xtask demo` gives the sidecars.
    for (port, pod) in [(4143, "app"), (4243, "backend"), (4343, "load")] {
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let (workload, account) = index.endpoint(addr).expect(pod);
        assert_eq!((workload, account), (&WorkloadRef::new("demo", pod), pod));
    }

    let trust = TrustDomain::default();
    let backend = "127.0.0.1:4243".parse().unwrap();
    let answer = endpoint(&index, &trust, "127.0.0.1:4243".into(), backend);
    assert_eq!(
        answer.identity,
        "backend.demo.serviceaccount.identity.weft-system.cluster.local"
    );
    assert_eq!(answer.protocol_hint, i32::from(ProtocolHint::H2));
    let discard = "127.0.0.1:9".parse().unwrap();
    let answer = endpoint(&index, &trust, "127.0.0.1:9".into(), discard);
    assert_eq!(answer.identity, "", "no sidecar receives on :9");
}

#[test]
fn each_service_s_name_gives_its_pods_sidecars() {
    let index = index();
    let trust = TrustDomain::default();
    for (authority, sidecar) in [
        ("backend.demo.svc.cluster.local:8081", "127.0.0.1:4243"),
        ("app.demo.svc.cluster.local:8080", "127.0.0.1:4143"),
    ] {
        let parsed = Authority::parse(authority, &ClusterDomain::default()).unwrap();
        let set = endpoint_set(&index, &trust, &parsed).expect(authority);
        assert!(set.addrs.contains_key(sidecar), "{authority}: {set:?}");
        assert_eq!(set.load_balancer, LoadBalancer::Ewma, "{authority}");
        // Each endpoint is a pod's sidecar, which proves that pod's identity.
        for (address, addr) in &set.addrs {
            let (pod, account) = index.endpoint(address.parse().unwrap()).expect(address);
            assert_eq!(addr.metric_labels["pod"], pod.name, "{address}");
            assert_eq!(
                addr.identity,
                format!("{account}.demo.serviceaccount.identity.weft-system.cluster.local")
            );
        }
    }
    assert_eq!(index.service_problems().count(), 0);
}

#[test]
fn modules_are_the_plugins_built_in_this_repository() {
    let chain = index()
        .plugin_set(&WorkloadRef::new("demo", "app"))
        .unwrap();
    for plugin in chain.plugins {
        let expected = repo().join(format!(
            "plugins/target/wasm32-wasip2/release/{}.wasm",
            plugin.name
        ));
        assert_eq!(plugin.module, ModuleSource::File(expected));
    }
}

/// The chain in docs/plugins.md, which the example must configure the same
/// way: its first ```json block.
fn documented_chain() -> Vec<Value> {
    let doc = std::fs::read_to_string(repo().join("docs/plugins.md")).unwrap();
    let start = doc
        .find("```json\n")
        .expect("docs/plugins.md has a json block")
        + 8;
    let end = start + doc[start..].find("```").unwrap();
    let chain: Value = serde_json::from_str(&doc[start..end]).unwrap();
    chain["plugins"].as_array().unwrap().clone()
}

#[test]
fn the_shipped_plugins_are_configured_as_documented() {
    let plugins = example().plugins;
    let documented = documented_chain();
    assert_eq!(plugins.len(), documented.len());
    for doc in &documented {
        let name = doc["name"].as_str().unwrap();
        let plugin = plugins
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("examples/mesh has no WasmPlugin {name}"));
        let config = plugin.spec.plugin_config.clone().unwrap_or(Value::Null);
        assert_eq!(
            config, doc["config"],
            "{name}'s pluginConfig differs from docs/plugins.md"
        );
        let directions = serde_json::to_value(&plugin.spec.directions).unwrap();
        let documented_directions = match &doc["directions"] {
            Value::Null => Value::Null,
            directions => directions.clone(),
        };
        assert_eq!(directions, documented_directions, "{name}'s directions");
    }

    // And in the documented order, for a workload that names all four.
    let mut index = index();
    let all: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"namespace": "demo", "name": "all",
                     "annotations": {"weft.io/plugins": "metrics,retry,split,authz"}},
    }))
    .unwrap();
    index.apply(all.into());
    let chain = index.plugin_set(&WorkloadRef::new("demo", "all")).unwrap();
    let order: Vec<&str> = chain.plugins.iter().map(|p| p.name.as_str()).collect();
    let documented_order: Vec<&str> = documented
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, documented_order);
}
