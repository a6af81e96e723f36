//! `templates/controller-rbac.yaml`: the controller's ServiceAccount, its
//! ClusterRole and binding, and the Role for its status Lease.

use serde_json::{Value, json};

use super::{NAMESPACE, Values, labels, namespaced};

pub fn objects(values: &Values) -> Vec<Value> {
    let account = &values.controller.service_account_name;
    let subjects = json!([{
        "kind": "ServiceAccount",
        "name": account,
        "namespace": NAMESPACE,
    }]);
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": namespaced(account, values),
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "weft-controller", "labels": labels(values)},
            "rules": [
                rule("", &["namespaces", "pods", "services"], &["get", "list", "watch"]),
                rule("discovery.k8s.io", &["endpointslices"], &["get", "list", "watch"]),
                rule("weft.io", &["wasmplugins"], &["get", "list", "watch"]),
                rule("weft.io", &["wasmplugins/status"], &["patch"]),
                rule("linkerd.io", &["serviceprofiles"], &["get", "list", "watch"]),
                rule("split.smi-spec.io", &["trafficsplits"], &["get", "list", "watch"]),
                rule(
                    "policy.linkerd.io",
                    &[
                        "httproutes",
                        "servers",
                        "serverauthorizations",
                        "authorizationpolicies",
                        "meshtlsauthentications",
                        "networkauthentications",
                    ],
                    &["get", "list", "watch"],
                ),
                rule(
                    "gateway.networking.k8s.io",
                    &["httproutes", "grpcroutes"],
                    &["get", "list", "watch"],
                ),
                rule("policy.linkerd.io", &["httproutes/status"], &["patch"]),
                rule(
                    "gateway.networking.k8s.io",
                    &["httproutes/status", "grpcroutes/status"],
                    &["patch"],
                ),
                rule("authentication.k8s.io", &["tokenreviews"], &["create"]),
                rule("", &["configmaps"], &["get", "create", "update", "patch"]),
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "weft-controller", "labels": labels(values)},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "weft-controller",
            },
            "subjects": subjects,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": namespaced("weft-controller-lease", values),
            "rules": [
                rule("coordination.k8s.io", &["leases"], &["get", "create", "update", "patch"]),
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": namespaced("weft-controller-lease", values),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "weft-controller-lease",
            },
            "subjects": subjects,
        }),
    ]
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": [group], "resources": resources, "verbs": verbs})
}
