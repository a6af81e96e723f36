//! The status each HTTPRoute (either group's) and GRPCRoute should show,
//! from the index: Gateway API's `status.parents[]`, one entry per
//! `parentRef` under Weft's `controllerName`, with the `Accepted` and
//! `ResolvedRefs` conditions the Gateway API defines. Entries other
//! controllers wrote are kept as they are.
//!
//! - a refused version: `Accepted` `False`, `UnsupportedValue`, with the
//!   refusal (and that the last accepted version keeps applying); nothing
//!   is said of its references, which were not read;
//! - a parent Service that does not exist, or lacks the port named:
//!   `Accepted` `False`, `NoMatchingParent`;
//! - a backend Service that does not exist, or lacks the port named:
//!   `ResolvedRefs` `False`, `BackendNotFound`.
//!
//! ServiceProfile, TrafficSplit and Linkerd's policy resources have no
//! status subresource in their CRDs (upstream's nor the chart's): their
//! problems are in `weft check` and the controller's log.

use serde_json::{Value, json};

use crate::index::Index;
use crate::linkerd::{TrafficKind, TrafficRef};

/// The `controllerName` of the entries Weft writes.
pub const CONTROLLER_NAME: &str = "weft.io/controller";

/// Whether the CRD of `kind` has a status Weft writes.
pub fn has_route_status(kind: TrafficKind) -> bool {
    matches!(
        kind,
        TrafficKind::HttpRoute | TrafficKind::LinkerdHttpRoute | TrafficKind::GrpcRoute
    )
}

/// The `status` to write for `route` (the object as last observed, JSON),
/// or `None` when there is nothing to write: the index has not seen this
/// generation of it yet, or its status already says what the index does.
/// `now` (RFC 3339) is the transition time of a condition that changed.
pub fn route_status_update(
    index: &Index,
    kind: TrafficKind,
    route: &Value,
    now: &str,
) -> Option<Value> {
    let metadata = &route["metadata"];
    let key = TrafficRef::new(
        kind,
        metadata["namespace"].as_str()?,
        metadata["name"].as_str()?,
    );
    let generation = metadata["generation"].as_i64();
    let (_, state) = index.traffic().find(|(k, _)| **k == key)?;
    if state.generation != generation {
        return None;
    }
    let problems: Vec<String> = index
        .traffic_problems()
        .into_iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, problem)| problem)
        .collect();
    let refused = state.rejection_message();
    let backend_problems: Vec<&String> = problems
        .iter()
        .filter(|p| p.starts_with("backend "))
        .collect();
    let observed = route.get("status");
    let observed_parents = observed
        .and_then(|s| s["parents"].as_array())
        .cloned()
        .unwrap_or_default();
    let mut parents: Vec<Value> = observed_parents
        .iter()
        .filter(|p| p["controllerName"] != CONTROLLER_NAME)
        .cloned()
        .collect();
    let parent_refs = route["spec"]["parentRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for parent_ref in parent_refs {
        let before = observed_parents
            .iter()
            .find(|p| p["controllerName"] == CONTROLLER_NAME && p["parentRef"] == parent_ref);
        let condition = |type_: &str, ok: bool, reason: &str, message: String| {
            let status = if ok { "True" } else { "False" };
            let since = before
                .and_then(|p| p["conditions"].as_array())
                .into_iter()
                .flatten()
                .find(|c| c["type"] == type_ && c["status"] == status)
                .and_then(|c| c["lastTransitionTime"].as_str())
                .unwrap_or(now);
            json!({
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": since,
            })
        };
        let mut conditions = Vec::new();
        if let Some(refusal) = &refused {
            conditions.push(condition(
                "Accepted",
                false,
                "UnsupportedValue",
                refusal.clone(),
            ));
        } else {
            let service = format!(
                "parent {}/{}:",
                parent_ref["namespace"].as_str().unwrap_or(&key.namespace),
                parent_ref["name"].as_str().unwrap_or_default()
            );
            let unmatched: Vec<&str> = problems
                .iter()
                .filter(|p| p.starts_with(&service))
                .map(String::as_str)
                .collect();
            conditions.push(match unmatched.is_empty() {
                true => condition("Accepted", true, "Accepted", "applied by Weft".into()),
                false => condition("Accepted", false, "NoMatchingParent", unmatched.join("; ")),
            });
            conditions.push(match backend_problems.is_empty() {
                true => condition(
                    "ResolvedRefs",
                    true,
                    "ResolvedRefs",
                    "every reference resolved".into(),
                ),
                false => condition(
                    "ResolvedRefs",
                    false,
                    "BackendNotFound",
                    backend_problems
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            });
        }
        parents.push(json!({
            "parentRef": parent_ref,
            "controllerName": CONTROLLER_NAME,
            "conditions": conditions,
        }));
    }
    let desired = json!({ "parents": parents });
    let unchanged = observed.is_some_and(|o| o["parents"] == desired["parents"]);
    (!unchanged).then_some(desired)
}
