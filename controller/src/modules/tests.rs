use weft_plugins::Runtime;

use super::*;
use crate::fetch::Fetcher;
use crate::fixtures::{self, cluster};
use crate::index::{Event, WorkloadRef};
use crate::state::State;

const CANARY: &str = "web-canary-5f8c7d9b4-7hr2n";

fn checked(index: &crate::Index) -> Modules {
    let runtime = Runtime::new().unwrap();
    Modules::check(
        &runtime,
        &Fetcher::offline(),
        &State::resolved_plugins(index),
        &Modules::default(),
    )
}

#[test]
fn checks_are_current_until_the_modules_that_run_change() {
    let mut index = cluster();
    let modules = checked(&index);
    assert!(modules.is_current_for(&State::resolved_plugins(&index)));

    // Another pod running plugins already checked changes nothing.
    let mut twin = fixtures::pod(CANARY);
    twin.metadata.name = Some("web-canary-5f8c7d9b4-second".into());
    assert!(index.apply(Event::from(twin)));
    assert!(modules.is_current_for(&State::resolved_plugins(&index)));

    // A pod overriding a plugin's config needs that config checked.
    let mut overridden = fixtures::pod(CANARY);
    overridden
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(
            "weft.io/plugin-config.retry".into(),
            r#"{"routes": []}"#.into(),
        );
    assert!(index.apply(Event::from(overridden)));
    assert!(!modules.is_current_for(&State::resolved_plugins(&index)));
}

#[test]
fn checks_are_not_current_when_a_plugin_stops_running() {
    let mut index = cluster();
    let modules = checked(&index);
    let canary = WorkloadRef::new("shop", CANARY);
    assert!(index.apply(Event::Deleted(crate::index::ResourceKey::Pod(canary))));
    // canary-header ran only there: its check would be stale.
    assert!(!modules.is_current_for(&State::resolved_plugins(&index)));
    assert!(modules.is_current_for(&State::resolved_plugins(&cluster())));
}
