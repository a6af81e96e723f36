//! Which plugins a workload gets, in which order, with which config.

use serde_json::{Value, json};

use super::*;
use crate::module_source::ModuleSource;
use crate::resources::PluginPhase;
use crate::validate::{FailurePolicy, RejectReason};

#[test]
fn a_pod_without_the_annotation_runs_its_namespace_s_plugins() {
    let mut events = catalogue();
    events.push(mk_pod("shop", "web", json!({}), json!({})).into());
    let chain = index_with(events).plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins_from, Some(Origin::Namespace));
    assert_eq!(names(&chain), ["retry", "metrics"]);
    assert_eq!(chain.problems, []);
    let retry = &chain.plugins[0];
    assert_eq!(retry.resource, PluginRef::new("weft-system", "retry"));
    assert_eq!(
        retry.module,
        ModuleSource::Oci("ghcr.io/weft/retry:0.1".into())
    );
    assert_eq!(retry.config, json!({"routes": []}));
    assert_eq!(retry.config_source, ConfigSource::WasmPlugin);
    assert_eq!(retry.failure_policy, FailurePolicy::FailClosed);
}

#[test]
fn a_pod_s_annotation_overrides_its_namespace_s() {
    let mut events = catalogue();
    events.push(
        mk_pod(
            "shop",
            "web",
            json!({}),
            json!({"weft.io/plugins": "authz, metrics"}),
        )
        .into(),
    );
    let chain = index_with(events).plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins_from, Some(Origin::Pod));
    assert_eq!(names(&chain), ["authz", "metrics"]);
}

#[test]
fn an_empty_pod_annotation_opts_out() {
    let mut events = catalogue();
    events.push(mk_pod("shop", "web", json!({}), json!({"weft.io/plugins": ""})).into());
    let chain = index_with(events).plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins_from, Some(Origin::Pod));
    assert_eq!(chain.plugins, []);
}

#[test]
fn no_annotation_anywhere_means_no_plugins() {
    let index = index_with([
        mk_namespace("plain", json!({})).into(),
        mk_plugin("plain", "metrics", json!({})).into(),
        mk_pod("plain", "db", json!({}), json!({})).into(),
    ]);
    let chain = index.plugin_set(&WorkloadRef::new("plain", "db")).unwrap();
    assert_eq!(chain.plugins_from, None);
    assert_eq!(chain.plugins, []);
    assert_eq!(chain.problems, []);
}

#[test]
fn an_unknown_name_is_a_problem_and_the_rest_still_run() {
    let mut events = catalogue();
    events.push(
        mk_pod(
            "shop",
            "web",
            json!({}),
            json!({"weft.io/plugins": "metrics,ratelimit,Bad_Name"}),
        )
        .into(),
    );
    let chain = index_with(events).plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    assert_eq!(
        chain.problems,
        [
            WorkloadProblem::InvalidPluginName {
                name: "Bad_Name".into(),
                origin: Origin::Pod
            },
            WorkloadProblem::UnknownPlugin {
                name: "ratelimit".into(),
                namespaces: vec!["shop".into(), "weft-system".into()]
            },
        ]
    );
    assert_eq!(
        chain.problems[1].to_string(),
        "weft.io/plugins names \"ratelimit\", but there is no such WasmPlugin in shop or weft-system"
    );
}

#[test]
fn a_namespace_s_plugin_shadows_the_root_one_of_the_same_name() {
    let mut events = catalogue();
    events.push(mk_plugin("shop", "metrics", json!({"url": "/opt/shop/metrics.wasm"})).into());
    events.push(mk_pod("shop", "web", json!({}), json!({})).into());
    let chain = index_with(events).plugin_set(&web()).unwrap();
    let metrics = chain.plugins.iter().find(|p| p.name == "metrics").unwrap();
    assert_eq!(metrics.resource, PluginRef::new("shop", "metrics"));
    assert_eq!(
        metrics.module,
        ModuleSource::File("/opt/shop/metrics.wasm".into())
    );
}

#[test]
fn another_namespace_s_plugins_are_not_visible() {
    let index = index_with([
        mk_namespace("a", json!({})).into(),
        mk_namespace("b", json!({"weft.io/plugins": "secret"})).into(),
        mk_plugin("a", "secret", json!({})).into(),
        mk_pod("b", "x", json!({}), json!({})).into(),
    ]);
    let chain = index.plugin_set(&WorkloadRef::new("b", "x")).unwrap();
    assert_eq!(chain.plugins, []);
    assert!(matches!(
        &chain.problems[..],
        [WorkloadProblem::UnknownPlugin { .. }]
    ));
}

#[test]
fn selectors_narrow_which_pods_run_a_plugin() {
    let mut events = catalogue();
    events.push(
        mk_plugin(
            "weft-system",
            "canary",
            json!({"selector": {"matchLabels": {"track": "canary"}}}),
        )
        .into(),
    );
    events.push(mk_namespace("shop", json!({"weft.io/plugins": "metrics,canary"})).into());
    events.push(
        mk_pod(
            "shop",
            "web",
            json!({"app": "web", "track": "canary"}),
            json!({}),
        )
        .into(),
    );
    events.push(mk_pod("shop", "web-stable", json!({"app": "web"}), json!({})).into());
    let index = index_with(events);
    let canary = index.plugin_set(&web()).unwrap();
    assert_eq!(names(&canary), ["canary", "metrics"]);
    let stable = index
        .plugin_set(&WorkloadRef::new("shop", "web-stable"))
        .unwrap();
    assert_eq!(names(&stable), ["metrics"]);
    assert_eq!(
        stable.problems,
        [],
        "a selector that does not match is not a problem"
    );
}

#[test]
fn order_is_phase_then_priority_then_name() {
    let index = index_with([
        mk_namespace(
            "o",
            json!({"weft.io/plugins": "z-last,b-low,a-low,high,stats,authn,authz"}),
        )
        .into(),
        mk_plugin("o", "z-last", json!({"priority": -1})).into(),
        mk_plugin("o", "b-low", json!({})).into(),
        mk_plugin("o", "a-low", json!({"phase": "UNSPECIFIED_PHASE"})).into(),
        mk_plugin("o", "high", json!({"priority": 100})).into(),
        mk_plugin("o", "stats", json!({"phase": "STATS", "priority": -50})).into(),
        mk_plugin("o", "authn", json!({"phase": "AUTHN"})).into(),
        mk_plugin("o", "authz", json!({"phase": "AUTHZ", "priority": 1000})).into(),
        mk_pod("o", "p", json!({}), json!({})).into(),
    ]);
    let chain = index.plugin_set(&WorkloadRef::new("o", "p")).unwrap();
    assert_eq!(
        names(&chain),
        [
            "authn", "authz", "stats", "high", "a-low", "b-low", "z-last"
        ]
    );
    assert_eq!(chain.plugins[2].phase, PluginPhase::Stats);
}

#[test]
fn config_comes_from_the_pod_then_the_namespace_then_the_plugin() {
    let mut events = catalogue();
    events.push(
        mk_namespace(
            "shop",
            json!({
                "weft.io/plugins": "metrics,retry,authz",
                "weft.io/plugin-config.retry": r#"{"routes": [{"name": "ns"}]}"#,
                "weft.io/plugin-config.authz": r#"{"defaultPolicy": "deny"}"#,
            }),
        )
        .into(),
    );
    events.push(
        mk_pod(
            "shop",
            "web",
            json!({}),
            json!({"weft.io/plugin-config.retry": r#"{"routes": [{"name": "pod"}]}"#}),
        )
        .into(),
    );
    events.push(mk_pod("shop", "api", json!({}), json!({})).into());
    let index = index_with(events);

    let config = |pod: &str, plugin: &str| {
        let chain = index.plugin_set(&WorkloadRef::new("shop", pod)).unwrap();
        let found = chain
            .plugins
            .into_iter()
            .find(|p| p.name == plugin)
            .unwrap();
        (found.config, found.config_source)
    };
    assert_eq!(
        config("web", "retry"),
        (
            json!({"routes": [{"name": "pod"}]}),
            ConfigSource::PodAnnotation
        )
    );
    assert_eq!(
        config("api", "retry"),
        (
            json!({"routes": [{"name": "ns"}]}),
            ConfigSource::NamespaceAnnotation
        )
    );
    assert_eq!(
        config("web", "authz"),
        (
            json!({"defaultPolicy": "deny"}),
            ConfigSource::NamespaceAnnotation
        )
    );
    assert_eq!(
        config("web", "metrics"),
        (Value::Null, ConfigSource::WasmPlugin)
    );
}

#[test]
fn a_bad_override_keeps_its_plugin_out_and_an_unused_one_is_reported() {
    let mut events = catalogue();
    events.push(
        mk_pod(
            "shop",
            "web",
            json!({}),
            json!({
                "weft.io/plugin-config.retry": "{oops",
                "weft.io/plugin-config.ratelimit": "{}",
            }),
        )
        .into(),
    );
    let chain = index_with(events).plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    assert_eq!(chain.problems.len(), 2, "{:?}", chain.problems);
    assert_eq!(
        chain.problems[0],
        WorkloadProblem::UnusedConfig {
            name: "ratelimit".into()
        }
    );
    let WorkloadProblem::InvalidConfig { name, origin, .. } = &chain.problems[1] else {
        panic!("{:?}", chain.problems[1]);
    };
    assert_eq!((name.as_str(), *origin), ("retry", Origin::Pod));
    assert!(
        chain.problems[1]
            .to_string()
            .starts_with("pod annotation weft.io/plugin-config.retry is not JSON")
    );
}

#[test]
fn a_rejected_plugin_is_reported_by_the_index_and_per_workload() {
    // Never accepted: a refused edit of an accepted plugin keeps serving
    // (tests/refusals.rs).
    let mut events = catalogue();
    events.retain(|event| {
        !matches!(event, Event::Applied(Resource::WasmPlugin(p))
            if p.metadata.name.as_deref() == Some("retry"))
    });
    events.push(
        mk_plugin(
            "weft-system",
            "retry",
            json!({"url": "ftp://example.com/retry.wasm"}),
        )
        .into(),
    );
    events.push(mk_pod("shop", "web", json!({}), json!({})).into());
    let index = index_with(events);

    let rejected: Vec<_> = index.rejected_plugins().collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, &PluginRef::new("weft-system", "retry"));
    assert_eq!(rejected[0].1.reason, RejectReason::InvalidUrl);
    let state = index
        .plugin(&PluginRef::new("weft-system", "retry"))
        .unwrap();
    assert_eq!(state.generation, Some(1));

    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    let [WorkloadProblem::RejectedPlugin { plugin, rejection }] = &chain.problems[..] else {
        panic!("{:?}", chain.problems);
    };
    assert_eq!(plugin, &PluginRef::new("weft-system", "retry"));
    assert!(rejection.message.contains("unsupported scheme"));
}

#[test]
fn two_plugins_with_one_proxy_name_keep_the_first() {
    let index = index_with([
        mk_namespace("d", json!({"weft.io/plugins": "one,two"})).into(),
        mk_plugin("d", "one", json!({"pluginName": "same"})).into(),
        mk_plugin("d", "two", json!({"pluginName": "same", "priority": 5})).into(),
        mk_pod("d", "p", json!({}), json!({})).into(),
    ]);
    let chain = index.plugin_set(&WorkloadRef::new("d", "p")).unwrap();
    assert_eq!(chain.plugins.len(), 1);
    assert_eq!(chain.plugins[0].resource, PluginRef::new("d", "two"));
    assert_eq!(
        chain.problems,
        [WorkloadProblem::DuplicateName {
            name: "same".into(),
            first: PluginRef::new("d", "two"),
            second: PluginRef::new("d", "one"),
        }]
    );
}

#[test]
fn the_root_namespace_can_be_another() {
    let mut index = Index::new("mesh");
    assert_eq!(index.root_namespace(), "mesh");
    for event in [
        mk_namespace("mesh", json!({})).into(),
        mk_namespace("weft-system", json!({})).into(),
        mk_namespace("app", json!({"weft.io/plugins": "m,n"})).into(),
        mk_plugin("mesh", "m", json!({})).into(),
        mk_plugin("weft-system", "n", json!({})).into(),
        mk_pod("app", "p", json!({}), json!({})).into(),
    ] {
        index.apply(event);
    }
    let chain = index.plugin_set(&WorkloadRef::new("app", "p")).unwrap();
    assert_eq!(names(&chain), ["m"]);
    assert!(
        matches!(&chain.problems[..], [WorkloadProblem::UnknownPlugin { name, .. }] if name == "n")
    );
}
