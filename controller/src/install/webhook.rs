//! `templates/identity.yaml` and `webhook.yaml`: the identity trust anchors
//! and issuer, the injector's serving certificate, its Service and the
//! MutatingWebhookConfiguration that sends new pods to it.

use serde_json::{Value, json};

use super::certificates::{IdentityPems, WebhookPems};
use super::{NAMESPACE, Values, labels, namespaced, pem_data, selector_labels};

/// The Service the API server calls, as its certificate names it.
pub fn host() -> String {
    format!("weft-webhook.{NAMESPACE}.svc")
}

pub fn identity(values: &Values, pems: &IdentityPems) -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": namespaced(weft_inject::settings::TRUST_ROOTS_CONFIG_MAP, values),
            "data": {
                weft_inject::settings::TRUST_ROOTS_KEY: format!("{}\n", pems.trust_anchors.trim()),
            },
        }),
        tls_secret(
            "weft-identity-issuer",
            values,
            &pems.issuer_certificate,
            &pems.issuer_key,
        ),
    ]
}

pub fn webhook(values: &Values, pems: &WebhookPems) -> Vec<Value> {
    vec![
        tls_secret("weft-webhook-tls", values, &pems.certificate, &pems.key),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": namespaced("weft-webhook", values),
            "spec": {
                "type": "ClusterIP",
                "selector": selector_labels(),
                "ports": [{"name": "webhook", "port": 443, "targetPort": "webhook"}],
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "weft-proxy-injector", "labels": labels(values)},
            "webhooks": [{
                "name": "weft-proxy-injector.weft.io",
                "clientConfig": {
                    "service": {
                        "name": "weft-webhook",
                        "namespace": NAMESPACE,
                        "path": "/inject",
                        "port": 443,
                    },
                    "caBundle": pem_data(&pems.ca_bundle),
                },
                "failurePolicy": values.webhook_failure_policy,
                "timeoutSeconds": 10,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "rules": [{
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                    "scope": "Namespaced",
                }],
                "namespaceSelector":
                    not_in("kubernetes.io/metadata.name", &["kube-system", NAMESPACE]),
                "objectSelector": not_in("weft.io/inject", &["disabled"]),
            }],
        }),
    ]
}

fn tls_secret(name: &str, values: &Values, certificate: &str, key: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": namespaced(name, values),
        "data": {"tls.crt": pem_data(certificate), "tls.key": pem_data(key)},
    })
}

/// A label selector matching what has no `key` or another value.
fn not_in(key: &str, values: &[&str]) -> Value {
    json!({"matchExpressions": [{"key": key, "operator": "NotIn", "values": values}]})
}
