//! The chart grants `weft-controller --kubernetes` what it uses: a watch on
//! each kind it reads, patch on WasmPlugins' status and TokenReviews for
//! the identity service, checked against the
//! resource types themselves (group and plural), with no cluster.

use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Resource;
use serde::Deserialize;
use weft_controller::WasmPlugin;

const RBAC: &str = "charts/weft/templates/controller-rbac.yaml";

fn documents() -> Vec<serde_json::Value> {
    let path = format!("{}/../{RBAC}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::Deserializer::from_str(&text)
        .map(|document| serde_json::Value::deserialize(document).expect(RBAC))
        .collect()
}

fn only<T: for<'de> Deserialize<'de>>(kind: &str) -> T {
    let mut found: Vec<_> = documents()
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in {RBAC}");
    serde_json::from_value(found.remove(0)).expect(kind)
}

fn grants(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|rule| {
        let has = |list: &Option<Vec<String>>, item: &str| {
            list.iter().flatten().any(|x| x == item || x == "*")
        };
        has(&rule.api_groups, group)
            && has(&rule.resources, resource)
            && rule.verbs.iter().any(|v| v == verb || v == "*")
    })
}

#[test]
fn the_cluster_role_grants_what_the_controller_watches_and_writes() {
    let role: ClusterRole = only("ClusterRole");
    let watched = [
        (Namespace::group(&()), Namespace::plural(&())),
        (Pod::group(&()), Pod::plural(&())),
        (WasmPlugin::group(&()), WasmPlugin::plural(&())),
        (Service::group(&()), Service::plural(&())),
        (EndpointSlice::group(&()), EndpointSlice::plural(&())),
    ];
    for (group, plural) in &watched {
        for verb in ["get", "list", "watch"] {
            assert!(
                grants(&role, group, plural, verb),
                "{verb} {group}/{plural}"
            );
        }
    }
    let status = format!("{}/status", WasmPlugin::plural(&()));
    assert!(grants(&role, &WasmPlugin::group(&()), &status, "patch"));
    // The identity service checks proxies' tokens.
    assert!(grants(
        &role,
        &TokenReview::group(&()),
        &TokenReview::plural(&()),
        "create"
    ));
    // Least privilege: nothing the controller does not use.
    assert!(!grants(&role, "", "pods", "patch"));
    assert!(!grants(&role, "weft.io", "wasmplugins", "patch"));
    assert!(!grants(&role, "", "secrets", "get"));
}

#[test]
fn the_binding_gives_the_role_to_the_chart_s_service_account() {
    let role: ClusterRole = only("ClusterRole");
    let binding: ClusterRoleBinding = only("ClusterRoleBinding");
    let account = &only::<serde_json::Value>("ServiceAccount")["metadata"];
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(account["name"], subjects[0].name.as_str());
    assert_eq!(
        account["namespace"],
        subjects[0].namespace.as_deref().unwrap()
    );
}
