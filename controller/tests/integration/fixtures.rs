//! The index fed with `kubectl get -o json` output of a small cluster
//! (`tests/fixtures/`): namespaces `shop` (annotated) and `plain` (not),
//! pods owned by ReplicaSets and a StatefulSet, and WasmPlugins in
//! `weft-system` and `shop`.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::Deserialize;
use serde_json::json;
use weft_controller::WasmPlugin;
use weft_controller::index::{
    ChainError, ChainForWorkload, ConfigSource, Event, Index, Objects, Origin, PluginRef,
    ResourceKey, WorkloadProblem, WorkloadRef,
};
use weft_controller::module_source::ModuleSource;
use weft_controller::resources::PluginPhase;
use weft_controller::validate::{FailurePolicy, RejectReason};

/// What `kubectl get KIND -o json` prints.
#[derive(Deserialize)]
struct List<T> {
    items: Vec<T>,
}

fn fixture<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let list: List<T> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    list.items
}

fn namespaces() -> Vec<Namespace> {
    fixture("namespaces.json")
}

fn pods() -> Vec<Pod> {
    fixture("pods.json")
}

fn plugins() -> Vec<WasmPlugin> {
    fixture("wasmplugins.json")
}

fn cluster() -> Index {
    let mut index = Index::default();
    index.apply(Event::Reset(Objects::Namespaces(namespaces())));
    index.apply(Event::Reset(Objects::WasmPlugins(plugins())));
    index.apply(Event::Reset(Objects::Pods(pods())));
    index
}

const WEB: &str = "web-7d4b9c6f8-x2k9p";
const CANARY: &str = "web-canary-5f8c7d9b4-7hr2n";
const CHECKOUT: &str = "checkout-6c9d8b7f5-mq7vz";

fn shop(pod: &str) -> WorkloadRef {
    WorkloadRef::new("shop", pod)
}

fn names(chain: &ChainForWorkload) -> Vec<&str> {
    chain.plugins.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn the_fixtures_are_real_objects() {
    let pods = pods();
    assert_eq!(pods.len(), 4);
    let web = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(WEB))
        .unwrap();
    let owner = &web.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ReplicaSet", "web-7d4b9c6f8")
    );
    assert_eq!(
        web.status.as_ref().unwrap().pod_ip.as_deref(),
        Some("10.244.1.12")
    );

    // WasmPlugins survive a round trip unchanged: no field is lost.
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/wasmplugins.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (parsed, original) in plugins().iter().zip(raw["items"].as_array().unwrap()) {
        assert_eq!(&serde_json::to_value(parsed).unwrap(), original);
    }
}

#[test]
fn a_pod_without_the_annotation_runs_its_namespace_s_default() {
    let chain = cluster().plugin_set(&shop(WEB)).unwrap();
    assert_eq!(chain.plugins_from, Some(Origin::Namespace));
    // metrics is in the STATS phase, which runs before unphased plugins.
    assert_eq!(names(&chain), ["metrics", "retry"]);
    assert_eq!(chain.problems, []);

    let retry = &chain.plugins[1];
    assert_eq!(retry.config_source, ConfigSource::NamespaceAnnotation);
    assert_eq!(retry.config["routes"][0]["name"], "reads");
    assert_eq!(retry.timeout_ms, Some(20));
    assert_eq!(
        retry.module,
        ModuleSource::Oci("ghcr.io/weft/retry:0.1.0".into())
    );
}

#[test]
fn a_pod_annotation_overrides_the_namespace_and_orders_by_phase_then_priority() {
    let chain = cluster().plugin_set(&shop(CANARY)).unwrap();
    assert_eq!(chain.plugins_from, Some(Origin::Pod));
    assert_eq!(
        names(&chain),
        ["authz", "metrics", "canary-header", "retry"]
    );
    assert_eq!(chain.problems, []);

    let phases: Vec<_> = chain.plugins.iter().map(|p| p.phase).collect();
    assert_eq!(
        phases,
        [
            PluginPhase::Authz,
            PluginPhase::Stats,
            PluginPhase::UnspecifiedPhase,
            PluginPhase::UnspecifiedPhase
        ]
    );
    let canary = &chain.plugins[2];
    assert_eq!(canary.resource, PluginRef::new("shop", "canary-header"));
    assert_eq!(
        canary.module,
        ModuleSource::Http("https://plugins.example.com/canary-header-0.3.0.wasm".into())
    );
    assert_eq!(canary.failure_policy, FailurePolicy::FailOpen);
    assert_eq!(
        canary.config_text(),
        r#"{"header":"x-canary","value":"true"}"#
    );

    let retry = &chain.plugins[3];
    assert_eq!(retry.config_source, ConfigSource::PodAnnotation);
    assert_eq!(
        retry.config,
        json!({"routes": [{"name": "canary", "retryOn": ["5xx"], "limit": 1}]})
    );
}

#[test]
fn a_selector_keeps_a_plugin_off_pods_it_does_not_match() {
    let mut index = cluster();
    let mut web = pods()
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some(WEB))
        .unwrap();
    web.metadata
        .annotations
        .get_or_insert_default()
        .insert("weft.io/plugins".into(), "metrics,canary-header".into());
    index.apply(web.into());
    let chain = index.plugin_set(&shop(WEB)).unwrap();
    assert_eq!(
        names(&chain),
        ["metrics"],
        "canary-header selects track=canary"
    );
    assert_eq!(chain.problems, []);
}

#[test]
fn an_unknown_plugin_is_reported_for_the_workload() {
    let chain = cluster().plugin_set(&shop(CHECKOUT)).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    assert_eq!(
        chain.problems,
        [WorkloadProblem::UnknownPlugin {
            name: "ratelimit".into(),
            namespaces: vec!["shop".into(), "weft-system".into()],
        }]
    );
}

#[test]
fn a_namespace_without_the_annotation_runs_nothing() {
    let chain = cluster()
        .plugin_set(&WorkloadRef::new("plain", "db-0"))
        .unwrap();
    assert_eq!(chain.plugins_from, None);
    assert_eq!(chain.plugins, []);
    assert_eq!(chain.problems, []);
}

#[test]
fn a_malformed_plugin_is_rejected_with_its_reason() {
    let index = cluster();
    let rejected: Vec<_> = index.rejected_plugins().collect();
    assert_eq!(rejected.len(), 1);
    let (plugin, rejection) = rejected[0];
    assert_eq!(plugin, &PluginRef::new("shop", "broken"));
    assert_eq!(rejection.reason, RejectReason::InvalidSha256);
    assert_eq!(
        rejection.to_string(),
        "sha256 \"not-a-digest\" is not 64 hex digits"
    );
    assert_eq!(index.plugin(plugin).unwrap().generation, Some(2));
}

#[test]
fn deletions_change_the_answers() {
    let mut index = cluster();
    let before = index.plugin_set(&shop(CANARY)).unwrap();

    let canary_header = ResourceKey::WasmPlugin(PluginRef::new("shop", "canary-header"));
    assert!(index.apply(Event::Deleted(canary_header)));
    let after = index.plugin_set(&shop(CANARY)).unwrap();
    assert_eq!(names(&after), ["authz", "metrics", "retry"]);
    assert_ne!(after.version, before.version);
    assert!(matches!(
        &after.problems[..],
        [WorkloadProblem::UnknownPlugin { name, .. }] if name == "canary-header"
    ));

    assert!(index.apply(Event::Deleted(ResourceKey::Pod(shop(CANARY)))));
    assert_eq!(
        index.plugin_set(&shop(CANARY)),
        Err(ChainError::UnknownWorkload(shop(CANARY)))
    );
    assert!(
        index.plugin_set(&shop(WEB)).is_ok(),
        "other pods are untouched"
    );
}

#[test]
fn status_churn_does_not_change_the_index() {
    let mut index = cluster();
    let revision = index.revision();
    let version = index.plugin_set(&shop(WEB)).unwrap().version;
    for mut pod in pods() {
        let status = pod.status.get_or_insert_default();
        status.phase = Some("Succeeded".into());
        status.pod_ip = None;
        pod.metadata.resource_version = Some("99999".into());
        assert!(!index.apply(pod.into()));
    }
    assert_eq!(index.revision(), revision);
    assert_eq!(index.plugin_set(&shop(WEB)).unwrap().version, version);
}
