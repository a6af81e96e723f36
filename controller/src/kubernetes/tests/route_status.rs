//! Routes' `status.parents`, for the booksapp fixtures' HTTPRoute
//! (`tests/fixtures/linkerd/`) as the API server returns it, and for
//! versions with a missing backend, a wrong parent port and a refused field.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::index::{Event, Index};
use crate::kubernetes::route_status::{CONTROLLER_NAME, route_status_update};
use crate::linkerd::{TrafficKind, TrafficObject};
use crate::local::read_dir;

const NOW: &str = "2026-05-01T12:00:00Z";
const LATER: &str = "2026-05-02T12:00:00Z";

fn booksapp() -> Index {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linkerd");
    let directory = read_dir(&dir).unwrap();
    let mut index = Index::default();
    for event in directory.events() {
        index.apply(event);
    }
    index
}

/// The fixture's HTTPRoute as a cluster holds it, at `generation`.
fn route(generation: i64) -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linkerd/httproute.yaml");
    let mut route: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    route["metadata"]["generation"] = json!(generation);
    route
}

fn apply(index: &mut Index, route: &Value) {
    let object = TrafficObject::from_value(route.clone()).unwrap().unwrap();
    index.apply(Event::from(object));
}

/// `(type, status, reason, message)` of each condition of Weft's entries.
fn conditions(status: &Value) -> Vec<(String, String, String, String)> {
    let mut found = Vec::new();
    for parent in status["parents"].as_array().unwrap() {
        if parent["controllerName"] != CONTROLLER_NAME {
            continue;
        }
        for c in parent["conditions"].as_array().unwrap() {
            let text = |f: &str| c[f].as_str().unwrap().to_string();
            found.push((
                text("type"),
                text("status"),
                text("reason"),
                text("message"),
            ));
        }
    }
    found
}

#[test]
fn an_applied_route_is_accepted_with_its_references_resolved() {
    let mut index = booksapp();
    let mut observed = route(1);
    apply(&mut index, &observed);
    let status = route_status_update(&index, TrafficKind::HttpRoute, &observed, NOW).unwrap();
    assert_eq!(
        status,
        json!({"parents": [{
            "parentRef": {"name": "authors", "kind": "Service", "group": "core", "port": 7001},
            "controllerName": "weft.io/controller",
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "applied by Weft",
                 "observedGeneration": 1, "lastTransitionTime": NOW},
                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs",
                 "message": "every reference resolved", "observedGeneration": 1, "lastTransitionTime": NOW},
            ],
        }]})
    );
    // Written and seen again: nothing more to write.
    observed["status"] = status;
    assert_eq!(
        route_status_update(&index, TrafficKind::HttpRoute, &observed, LATER),
        None
    );
}

#[test]
fn a_missing_backend_and_a_wrong_parent_port_are_said_per_condition() {
    let mut index = booksapp();
    let mut observed = route(2);
    observed["spec"]["rules"][0]["backendRefs"][0]["name"] = json!("authors-v3");
    observed["spec"]["parentRefs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "books", "kind": "Service", "group": "core", "port": 80}));
    // Another controller's entry stays as it is.
    let theirs = json!({"parentRef": {"name": "gw"}, "controllerName": "example.com/gateway", "conditions": []});
    observed["status"] = json!({"parents": [theirs.clone()]});
    apply(&mut index, &observed);
    let status = route_status_update(&index, TrafficKind::HttpRoute, &observed, NOW).unwrap();
    assert_eq!(status["parents"][0], theirs);
    let backend = "backend booksapp/authors-v3: no such Service".to_string();
    assert_eq!(
        conditions(&status),
        [
            (
                "Accepted".into(),
                "True".into(),
                "Accepted".into(),
                "applied by Weft".into()
            ),
            (
                "ResolvedRefs".into(),
                "False".into(),
                "BackendNotFound".into(),
                backend.clone()
            ),
            (
                "Accepted".into(),
                "False".into(),
                "NoMatchingParent".into(),
                "parent booksapp/books: the Service has no port 80".into()
            ),
            (
                "ResolvedRefs".into(),
                "False".into(),
                "BackendNotFound".into(),
                backend
            ),
        ]
    );
}

#[test]
fn a_refused_version_is_not_accepted_and_the_earlier_one_keeps_applying() {
    let mut index = booksapp();
    let mut observed = route(1);
    apply(&mut index, &observed);
    observed["status"] =
        route_status_update(&index, TrafficKind::HttpRoute, &observed, NOW).unwrap();
    observed["metadata"]["generation"] = json!(2);
    observed["spec"]["rules"][0]["filters"] = json!([{"type": "RequestMirror"}]);
    // The index has not seen generation 2 yet: nothing to write.
    assert_eq!(
        route_status_update(&index, TrafficKind::HttpRoute, &observed, LATER),
        None
    );
    apply(&mut index, &observed);
    let status = route_status_update(&index, TrafficKind::HttpRoute, &observed, LATER).unwrap();
    let accepted = &status["parents"][0]["conditions"][0];
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "UnsupportedValue");
    assert_eq!(accepted["observedGeneration"], 2);
    assert_eq!(accepted["lastTransitionTime"], LATER);
    let message = accepted["message"].as_str().unwrap();
    assert!(message.contains("spec.rules.0.filters"), "{message}");
    assert!(
        message.ends_with("the last accepted version keeps applying"),
        "{message}"
    );
    assert_eq!(
        status["parents"][0]["conditions"].as_array().unwrap().len(),
        1
    );
}
