//! How events change the index: deletions, resets, the revision and the
//! chain's version.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::{Value, json};

use super::*;
use crate::resources::Direction;

#[test]
fn deletions_take_effect() {
    let mut events = catalogue();
    events.push(mk_pod("shop", "web", json!({}), json!({})).into());
    let mut index = index_with(events);

    assert!(
        index.apply(Event::Deleted(ResourceKey::WasmPlugin(PluginRef::new(
            "weft-system",
            "retry"
        ))))
    );
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    assert!(
        matches!(&chain.problems[..], [WorkloadProblem::UnknownPlugin { name, .. }] if name == "retry")
    );

    assert!(index.apply(Event::Deleted(ResourceKey::Namespace("shop".into()))));
    assert_eq!(
        index.plugin_set(&web()),
        Err(ChainError::UnknownNamespace { workload: web() })
    );

    assert!(index.apply(Event::Deleted(ResourceKey::Pod(web()))));
    assert_eq!(
        index.plugin_set(&web()),
        Err(ChainError::UnknownWorkload(web()))
    );
    assert!(
        !index.apply(Event::Deleted(ResourceKey::Pod(web()))),
        "already gone"
    );
}

#[test]
fn a_reset_replaces_every_object_of_its_kind() {
    let mut events = catalogue();
    events.push(mk_pod("shop", "web", json!({}), json!({})).into());
    events.push(mk_pod("shop", "old", json!({}), json!({})).into());
    let mut index = index_with(events);

    let pods = vec![
        mk_pod("shop", "web", json!({}), json!({})),
        mk_pod("shop", "new", json!({}), json!({})),
    ];
    assert!(index.apply(Event::Reset(Objects::Pods(pods.clone()))));
    let workloads: Vec<_> = index.workloads().map(ToString::to_string).collect();
    assert_eq!(workloads, ["shop/new", "shop/web"]);
    assert!(
        !index.apply(Event::Reset(Objects::Pods(pods))),
        "the same objects again"
    );

    assert!(index.apply(Event::Reset(Objects::WasmPlugins(vec![]))));
    assert_eq!(index.plugin_set(&web()).unwrap().problems.len(), 2);
}

#[test]
fn the_revision_moves_only_when_answers_can_change() {
    let mut index = index_with(catalogue());
    let pod = mk_pod("shop", "web", json!({"app": "web"}), json!({}));
    assert!(index.apply(pod.clone().into()));
    let revision = index.revision();

    // An unmeshed pod's status update changes nothing the index keeps
    // (a meshed pod's new address does: see `endpoints.rs`).
    let mut running = pod.clone();
    running.status =
        Some(serde_json::from_value(json!({"phase": "Running", "podIP": "10.0.0.7"})).unwrap());
    assert!(!index.apply(running.into()));
    assert_eq!(index.revision(), revision);

    let relabelled = mk_pod(
        "shop",
        "web",
        json!({"app": "web", "track": "canary"}),
        json!({}),
    );
    assert!(index.apply(relabelled.into()));
    assert_eq!(index.revision(), revision + 1);
}

#[test]
fn the_version_changes_exactly_when_the_chain_does() {
    let build = |retry_config: Value, metrics_directions: Value| {
        let mut events = catalogue();
        events.push(
            mk_plugin(
                "weft-system",
                "retry",
                json!({"pluginConfig": retry_config, "priority": 10}),
            )
            .into(),
        );
        events.push(
            mk_plugin(
                "weft-system",
                "metrics",
                json!({"directions": metrics_directions}),
            )
            .into(),
        );
        events.push(mk_pod("shop", "web", json!({}), json!({})).into());
        index_with(events).plugin_set(&web()).unwrap()
    };
    let base = build(json!({"a": 1, "b": 2}), json!(["inbound"]));
    assert_eq!(base.version.len(), 16);
    assert_eq!(
        base.version,
        build(json!({"b": 2, "a": 1}), json!(["inbound"])).version
    );
    assert_ne!(
        base.version,
        build(json!({"a": 1, "b": 3}), json!(["inbound"])).version
    );
    assert_ne!(
        base.version,
        build(json!({"a": 1, "b": 2}), json!(["outbound"])).version
    );
    assert_eq!(base.plugins[1].directions, [Direction::Inbound]);
}

#[test]
fn objects_without_names_are_ignored() {
    let mut index = Index::default();
    let nameless: Pod = serde_json::from_value(json!({"metadata": {"namespace": "shop"}})).unwrap();
    assert!(!index.apply(nameless.into()));
    assert!(!index.apply(Namespace::default().into()));
    assert_eq!(index.revision(), 0);
}
