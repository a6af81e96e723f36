//! A refused version of a WasmPlugin (a spec `validate` rejects, or one a
//! source could not read) keeps the last accepted version serving beside
//! the rejection; only a deletion takes a plugin away.

use serde_json::{Value, json};

use super::*;
use crate::validate::RejectReason;

fn retry() -> PluginRef {
    PluginRef::new("weft-system", "retry")
}

fn retry_at(generation: i64, spec: Value) -> WasmPlugin {
    let mut plugin = mk_plugin("weft-system", "retry", spec);
    plugin.metadata.generation = Some(generation);
    plugin
}

/// The catalogue and pod `shop/web` (running metrics and retry).
fn serving_web() -> Index {
    let mut events = catalogue();
    events.push(mk_pod("shop", "web", json!({}), json!({})).into());
    index_with(events)
}

fn unreadable_retry(generation: i64) -> Event {
    Event::Applied(Resource::UnreadableWasmPlugin(UnreadablePlugin {
        plugin: retry(),
        generation: Some(generation),
        message: "spec.phase: unknown variant `AUTHZZ`".into(),
    }))
}

#[test]
fn a_refused_edit_keeps_the_last_accepted_version_serving() {
    let mut index = serving_web();
    let before = index.plugin_set(&web()).unwrap();

    let bad_url = json!({"url": "ftp://example.com/retry.wasm", "priority": 10});
    assert!(index.apply(retry_at(2, bad_url).into()));

    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["retry", "metrics"]);
    assert_eq!(
        chain.plugins, before.plugins,
        "the old retry, config and all"
    );
    assert_eq!(chain.version, before.version);
    let [WorkloadProblem::RejectedChange { plugin, rejection }] = &chain.problems[..] else {
        panic!("{:?}", chain.problems);
    };
    assert_eq!(
        (plugin, rejection.reason),
        (&retry(), RejectReason::InvalidUrl)
    );
    assert!(
        chain.problems[0]
            .to_string()
            .ends_with("its last accepted version keeps running"),
        "{}",
        chain.problems[0]
    );

    let state = index.plugin(&retry()).unwrap();
    assert!(!state.is_accepted());
    assert_eq!(state.generation, Some(2));
    assert_eq!(state.serving.as_ref().unwrap().generation, Some(1));
    let message = state.rejection_message().unwrap();
    assert!(
        message.contains("unsupported scheme")
            && message.ends_with("generation 1, the last accepted, keeps serving"),
        "{message}"
    );
    let rejected: Vec<_> = index.rejected_plugins().map(|(p, _)| p).collect();
    assert_eq!(rejected, [&retry()]);

    // Fixed, the new version is accepted and serves.
    let fixed = json!({"url": "oci://ghcr.io/weft/retry:0.2", "priority": 10});
    assert!(index.apply(retry_at(3, fixed).into()));
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(chain.problems, []);
    assert_ne!(chain.version, before.version);
    assert!(index.plugin(&retry()).unwrap().is_accepted());
    assert_eq!(index.rejected_plugins().count(), 0);
}

#[test]
fn an_unreadable_version_keeps_the_last_accepted_version_serving() {
    let mut index = serving_web();
    let before = index.plugin_set(&web()).unwrap();

    assert!(index.apply(unreadable_retry(2)));
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins, before.plugins);
    let [WorkloadProblem::RejectedChange { rejection, .. }] = &chain.problems[..] else {
        panic!("{:?}", chain.problems);
    };
    assert_eq!(rejection.reason, RejectReason::InvalidSpec);
    assert_eq!(rejection.message, "spec.phase: unknown variant `AUTHZZ`");
    assert!(!index.apply(unreadable_retry(2)), "the same refusal again");
}

#[test]
fn a_relist_with_a_refused_version_keeps_the_last_accepted_one() {
    let mut index = serving_web();
    let before = index.plugin_set(&web()).unwrap();
    let metrics = mk_plugin("weft-system", "metrics", json!({}));
    let bad_sha = json!({"sha256": "not-hex", "priority": 10});

    let relist = vec![metrics.clone(), retry_at(2, bad_sha)];
    assert!(index.apply(Event::Reset(Objects::WasmPlugins(relist))));
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins, before.plugins);
    assert!(matches!(
        &chain.problems[..],
        [WorkloadProblem::RejectedChange { rejection, .. }] if rejection.reason == RejectReason::InvalidSha256
    ));

    // A relist without it is its deletion.
    assert!(index.apply(Event::Reset(Objects::WasmPlugins(vec![metrics]))));
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    assert!(matches!(
        &chain.problems[..],
        [WorkloadProblem::UnknownPlugin { name, .. }] if name == "retry"
    ));
}

#[test]
fn only_a_deletion_takes_a_refused_plugin_away() {
    let mut index = serving_web();
    assert!(index.apply(unreadable_retry(2)));
    assert!(index.apply(Event::Deleted(ResourceKey::WasmPlugin(retry()))));
    assert_eq!(names(&index.plugin_set(&web()).unwrap()), ["metrics"]);

    // Seen again refused, with nothing accepted since: it serves nothing.
    assert!(index.apply(unreadable_retry(3)));
    let state = index.plugin(&retry()).unwrap();
    assert_eq!(state.serving, None);
    assert_eq!(
        state.rejection_message().unwrap(),
        "spec.phase: unknown variant `AUTHZZ`"
    );
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(names(&chain), ["metrics"]);
    assert!(matches!(
        &chain.problems[..],
        [WorkloadProblem::RejectedPlugin { plugin, .. }] if plugin == &retry()
    ));
}
