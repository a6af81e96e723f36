use weft_plugins::Runtime;

use crate::fetch::Fetcher;
use crate::fixtures::{self, cluster};
use crate::index::{Event, Index, ResourceKey, WorkloadRef};
use crate::kubernetes::status_update;
use crate::modules::Modules;
use crate::resources::{ACCEPTED, WasmPluginStatus};
use crate::state::State;

const NOW: &str = "2026-05-01T12:00:00Z";
const LATER: &str = "2026-05-02T12:00:00Z";

/// `index` with every module that runs checked, as the controller
/// publishes it, except that nothing is fetched: modules from oci:// and
/// https:// are refused, so every plugin a workload runs is refused by the
/// module check.
fn state(index: Index) -> State {
    let fetcher = Fetcher::offline();
    State::build(
        index,
        &Runtime::new().unwrap(),
        &fetcher,
        &Modules::default(),
    )
}

/// The cluster without the canary pod, the only one running `authz` and
/// `canary-header`: their modules are not checked.
fn without_canary() -> State {
    let mut index = cluster();
    let canary = WorkloadRef::new("shop", "web-canary-5f8c7d9b4-7hr2n");
    assert!(index.apply(Event::Deleted(ResourceKey::Pod(canary))));
    state(index)
}

fn accepted(status: &WasmPluginStatus) -> (&str, &str, &str) {
    let condition = &status.conditions[0];
    assert_eq!(condition.type_, ACCEPTED);
    (&condition.status, &condition.reason, &condition.message)
}

#[test]
fn a_plugin_that_already_says_accepted_needs_no_patch() {
    let state = without_canary();
    assert_eq!(status_update(&state, &fixtures::plugin("authz"), NOW), None);
}

#[test]
fn a_new_plugin_is_accepted_at_its_generation() {
    let state = without_canary();
    let mut authz = fixtures::plugin("authz");
    authz.status = None;
    let status = status_update(&state, &authz, NOW).unwrap();
    assert_eq!(accepted(&status), ("True", "Accepted", ""));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.conditions[0].observed_generation, Some(1));
    assert_eq!(
        status.conditions[0].last_transition_time.as_deref(),
        Some(NOW)
    );

    // Written, it is seen again unchanged: no second patch.
    authz.status = Some(status);
    assert_eq!(status_update(&state, &authz, LATER), None);
}

#[test]
fn a_plugin_the_index_rejects_says_why() {
    let state = state(cluster());
    // The fixture already carries this verdict: nothing to write.
    let mut broken = fixtures::plugin("broken");
    assert_eq!(status_update(&state, &broken, NOW), None);

    broken.status = Some(WasmPluginStatus::for_verdict(
        Ok(()),
        Some(1),
        "2026-03-01T00:00:00Z",
        None,
    ));
    let status = status_update(&state, &broken, NOW).unwrap();
    assert_eq!(
        accepted(&status),
        (
            "False",
            "InvalidSha256",
            "sha256 \"not-a-digest\" is not 64 hex digits"
        )
    );
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(
        status.conditions[0].last_transition_time.as_deref(),
        Some(NOW)
    );
}

#[test]
fn a_plugin_whose_module_is_refused_says_why() {
    let state = state(cluster());
    let mut canary_header = fixtures::plugin("canary-header");
    assert!(canary_header.status.as_ref().unwrap().is_accepted());

    let status = status_update(&state, &canary_header, NOW).unwrap();
    let (condition, reason, message) = accepted(&status);
    assert_eq!((condition, reason), ("False", "ModuleRefused"));
    assert!(
        message.contains("https://plugins.example.com/canary-header-0.3.0.wasm"),
        "{message}"
    );
    assert_eq!(
        status.conditions[0].last_transition_time.as_deref(),
        Some(NOW)
    );

    canary_header.status = Some(status);
    assert_eq!(status_update(&state, &canary_header, LATER), None);
}

#[test]
fn a_new_generation_with_the_same_verdict_keeps_its_transition_time() {
    let mut index = cluster();
    let mut broken = fixtures::plugin("broken");
    broken.metadata.generation = Some(3);
    broken.spec.sha256 = Some("still-not-a-digest".into());
    assert!(index.apply(broken.clone().into()));
    let status = status_update(&state(index), &broken, NOW).unwrap();
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!(
        status.conditions[0].last_transition_time.as_deref(),
        Some("2026-03-03T12:00:00Z")
    );
    assert_eq!(
        status.conditions[0].message,
        "sha256 \"still-not-a-digest\" is not 64 hex digits"
    );
}

#[test]
fn nothing_is_written_for_a_generation_the_state_has_not_seen() {
    let state = state(cluster());
    let mut broken = fixtures::plugin("broken");
    broken.metadata.generation = Some(3);
    broken.status = None;
    assert_eq!(status_update(&state, &broken, NOW), None);

    let mut unknown = fixtures::plugin("authz");
    unknown.metadata.namespace = Some("elsewhere".into());
    unknown.status = None;
    assert_eq!(status_update(&state, &unknown, NOW), None);
}

#[test]
fn a_refused_edit_says_which_generation_keeps_serving() {
    let mut index = cluster();
    let mut authz = fixtures::plugin("authz");
    let accepted_at = authz.metadata.generation.unwrap();
    authz.metadata.generation = Some(accepted_at + 1);
    authz.spec.sha256 = Some("not-hex".into());
    assert!(index.apply(authz.clone().into()));

    let status = status_update(&state(index), &authz, NOW).unwrap();
    let (condition, reason, message) = accepted(&status);
    assert_eq!((condition, reason), ("False", "InvalidSha256"));
    assert_eq!(
        message,
        format!(
            "sha256 \"not-hex\" is not 64 hex digits; generation {accepted_at}, the last \
             accepted, keeps serving"
        )
    );
    assert_eq!(status.observed_generation, Some(accepted_at + 1));
}
