//! `templates/config.yaml`, `controller.yaml` and `pdb.yaml`: the injector's
//! settings, the controller's Deployment and Service, and its disruption
//! budget.

use serde_json::{Value, json};

use super::values::Resources;
use super::{NAMESPACE, Values, labels, namespaced, selector_labels};

/// Where the contract with `weft-controller` mounts what it reads.
const TRUST_ROOTS_DIR: &str = "/var/run/weft/identity/trust-roots";
const ISSUER_DIR: &str = "/var/run/weft/identity/issuer";
const WEBHOOK_DIR: &str = "/var/run/weft/webhook";
const CONFIG_DIR: &str = "/var/run/weft/config";
const STATE_DIR: &str = "/var/run/weft/state";

/// ConfigMap `weft-config`: `inject.yaml`, as the template writes it, line
/// for line, so `kubectl diff` sees no change between the two.
pub fn config(values: &Values) -> Value {
    let proxy = &values.proxy;
    let resources = &proxy.resources;
    let inject = format!(
        "registry: {}\nproxyVersion: {}\nimagePullPolicy: {}\ncontrolPlaneNamespace: {}\n\
         trustDomain: {}\nclusterDomain: {}\ncni: {}\nlogLevel: {}\nopaquePorts: {}\n\
         defaultInboundPolicy: {}\nnativeSidecar: {}\nresources:\n  cpuRequest: {}\n  cpuLimit: {}\n  \
         memoryRequest: {}\n  memoryLimit: {}\n",
        quote(&values.image.registry),
        quote(&values.image.tag),
        quote(&values.image.pull_policy),
        quote(NAMESPACE),
        quote(&values.identity_trust_domain),
        quote(&values.cluster_domain),
        values.cni_enabled,
        quote(&proxy.log_level),
        quote(&proxy.opaque_ports),
        quote(&proxy.default_inbound_policy),
        proxy.native_sidecar,
        optional(&resources.cpu.request),
        optional(&resources.cpu.limit),
        optional(&resources.memory.request),
        optional(&resources.memory.limit),
    );
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": namespaced("weft-config", values),
        "data": {"inject.yaml": inject},
    })
}

pub fn deployment(values: &Values) -> Value {
    let registry = &values.image.registry;
    let image = format!(
        "{}/weft-controller:{}",
        registry.strip_suffix('/').unwrap_or(registry),
        values.image.tag
    );
    let issuer = &values.identity.issuer;
    let mut args = vec![
        "--kubernetes".to_string(),
        "--listen=0.0.0.0:8090".into(),
        // Injected proxies have an identity and take their chains over
        // mTLS, where each may read only its own workload's.
        "--plaintext-plugin-api=false".into(),
        "--identity-listen=0.0.0.0:8091".into(),
        "--webhook-listen=0.0.0.0:8443".into(),
        format!("--trust-domain={}", values.identity_trust_domain),
        format!("--cluster-domain={}", values.cluster_domain),
        format!("--identity-trust-anchors={TRUST_ROOTS_DIR}/ca-bundle.crt"),
        format!("--identity-issuer-certificate={ISSUER_DIR}/tls.crt"),
        format!("--identity-issuer-key={ISSUER_DIR}/tls.key"),
        format!("--identity-issuance-lifetime={}", issuer.issuance_lifetime),
        format!("--identity-clock-skew={}", issuer.clock_skew_allowance),
        format!("--webhook-certificate={WEBHOOK_DIR}/tls.crt"),
        format!("--webhook-key={WEBHOOK_DIR}/tls.key"),
        format!("--inject-config={CONFIG_DIR}/inject.yaml"),
        format!("--state-dir={STATE_DIR}"),
        format!("--log={}", values.controller_log_level),
    ];
    if !values.prometheus_url.is_empty() {
        args.push(format!("--prometheus-url={}", values.prometheus_url));
    }
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let probe =
        |path: &str| json!({"httpGet": {"path": path, "port": "webhook", "scheme": "HTTPS"}});
    let mount = |name: &str, path: &str| json!({"name": name, "mountPath": path, "readOnly": true});
    let container = json!({
        "name": "weft-controller",
        "image": image,
        "imagePullPolicy": values.image.pull_policy,
        "args": args,
        "env": [
            {"name": "POD_NAME", "valueFrom": field("metadata.name")},
            {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
        ],
        "ports": [
            {"name": "api", "containerPort": 8090},
            {"name": "identity", "containerPort": 8091},
            {"name": "webhook", "containerPort": 8443},
        ],
        "livenessProbe": probe("/live"),
        "readinessProbe": probe("/ready"),
        "resources": resources(&values.controller_resources),
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 2103,
            "runAsGroup": 2103,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            mount("trust-roots", TRUST_ROOTS_DIR),
            mount("issuer", ISSUER_DIR),
            mount("webhook-tls", WEBHOOK_DIR),
            mount("config", CONFIG_DIR),
            {"name": "state", "mountPath": STATE_DIR},
        ],
    });
    let mut pod = json!({
        "serviceAccountName": values.controller.service_account_name,
        "containers": [container],
        "volumes": [
            {"name": "trust-roots", "configMap": {"name": "weft-identity-trust-roots"}},
            {"name": "issuer", "secret": {"secretName": "weft-identity-issuer"}},
            {"name": "webhook-tls", "secret": {"secretName": "weft-webhook-tls"}},
            {"name": "config", "configMap": {"name": "weft-config"}},
            {"name": "state", "emptyDir": {}},
        ],
    });
    if values.enable_pod_anti_affinity {
        let selector = json!({"matchLabels": selector_labels()});
        pod["affinity"] = json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": selector,
                "topologyKey": "kubernetes.io/hostname",
            }],
            "preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": selector,
                    "topologyKey": "topology.kubernetes.io/zone",
                },
            }],
        }});
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": namespaced("weft-controller", values),
        "spec": {
            "replicas": values.controller_replicas,
            "selector": {"matchLabels": selector_labels()},
            "template": {
                "metadata": {"labels": labels(values)},
                "spec": pod,
            },
        },
    })
}

pub fn service(values: &Values) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": namespaced("weft-controller", values),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(),
            "ports": [
                {"name": "api", "port": 8090, "targetPort": "api"},
                {"name": "identity", "port": 8091, "targetPort": "identity"},
            ],
        },
    })
}

pub fn disruption_budget(values: &Values) -> Option<Value> {
    values.enable_pod_disruption_budget.then(|| {
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": namespaced("weft-controller", values),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector_labels()},
            },
        })
    })
}

/// `weft.resources`: requests and limits, each left out when empty.
fn resources(resources: &Resources) -> Value {
    let mut requests = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    for (name, quantities) in [("cpu", &resources.cpu), ("memory", &resources.memory)] {
        if !quantities.request.is_empty() {
            requests.insert(name.into(), quantities.request.clone().into());
        }
        if !quantities.limit.is_empty() {
            limits.insert(name.into(), quantities.limit.clone().into());
        }
    }
    let mut out = serde_json::Map::new();
    if !requests.is_empty() {
        out.insert("requests".into(), requests.into());
    }
    if !limits.is_empty() {
        out.insert("limits".into(), limits.into());
    }
    out.into()
}

/// Helm's `quote`: a double-quoted string (Go's escapes agree with JSON's
/// for everything a value here holds).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// `weft.optional`: empty is YAML's null.
fn optional(s: &str) -> String {
    if s.is_empty() {
        "null".into()
    } else {
        quote(s)
    }
}
