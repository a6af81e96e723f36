//! The chart's values: `charts/weft/values.yaml` (and `values-ha.yaml`)
//! embedded, with values files merged over them as helm merges `-f` files,
//! read into the settings the manifests are built from.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The chart's defaults, the one place they are written.
pub const DEFAULT_VALUES: &str = include_str!("../../../charts/weft/values.yaml");
/// What `--ha` (helm: `-f values-ha.yaml`) sets over them.
pub const HA_VALUES: &str = include_str!("../../../charts/weft/values-ha.yaml");

/// The values the templates read; names as in values.yaml.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Values {
    #[serde(deserialize_with = "scalar")]
    pub identity_trust_domain: String,
    #[serde(deserialize_with = "scalar")]
    pub cluster_domain: String,
    #[serde(rename = "identityTrustAnchorsPEM", deserialize_with = "scalar")]
    pub identity_trust_anchors_pem: String,
    pub identity: Identity,
    pub image: Image,
    pub controller_replicas: u32,
    #[serde(deserialize_with = "scalar")]
    pub controller_log_level: String,
    /// The Prometheus the stats API asks; empty: the controller scrapes.
    #[serde(deserialize_with = "scalar")]
    pub prometheus_url: String,
    pub controller_resources: Resources,
    pub enable_pod_anti_affinity: bool,
    pub enable_pod_disruption_budget: bool,
    pub cni_enabled: bool,
    #[serde(deserialize_with = "scalar")]
    pub webhook_failure_policy: String,
    pub webhook: Webhook,
    pub proxy: Proxy,
    pub controller: Controller,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Identity {
    pub issuer: Issuer,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issuer {
    #[serde(deserialize_with = "scalar")]
    pub issuance_lifetime: String,
    #[serde(deserialize_with = "scalar")]
    pub clock_skew_allowance: String,
    pub tls: Pem,
}

/// A certificate and its key, PEM; empty when not given.
#[derive(Clone, Debug, Deserialize)]
pub struct Pem {
    #[serde(default, rename = "crtPEM", deserialize_with = "scalar")]
    pub crt_pem: String,
    #[serde(default, rename = "keyPEM", deserialize_with = "scalar")]
    pub key_pem: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(deserialize_with = "scalar")]
    pub registry: String,
    #[serde(deserialize_with = "scalar")]
    pub tag: String,
    #[serde(deserialize_with = "scalar")]
    pub pull_policy: String,
}

/// `{cpu: {request, limit}, memory: {request, limit}}`; empty is unset.
#[derive(Clone, Debug, Deserialize)]
pub struct Resources {
    pub cpu: Quantities,
    pub memory: Quantities,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Quantities {
    #[serde(default, deserialize_with = "scalar")]
    pub request: String,
    #[serde(default, deserialize_with = "scalar")]
    pub limit: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(default, rename = "crtPEM", deserialize_with = "scalar")]
    pub crt_pem: String,
    #[serde(default, rename = "keyPEM", deserialize_with = "scalar")]
    pub key_pem: String,
    #[serde(default, deserialize_with = "scalar")]
    pub ca_bundle: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    #[serde(deserialize_with = "scalar")]
    pub log_level: String,
    pub resources: Resources,
    #[serde(deserialize_with = "scalar")]
    pub opaque_ports: String,
    #[serde(deserialize_with = "scalar")]
    pub default_inbound_policy: String,
    pub native_sidecar: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Controller {
    #[serde(deserialize_with = "scalar")]
    pub service_account_name: String,
}

impl Values {
    /// The chart's defaults, values-ha.yaml over them with `ha`, then each
    /// file in order.
    pub fn load(ha: bool, files: &[impl AsRef<Path>]) -> anyhow::Result<Self> {
        let mut merged = parse(DEFAULT_VALUES).context("charts/weft/values.yaml")?;
        if ha {
            merge(
                &mut merged,
                parse(HA_VALUES).context("charts/weft/values-ha.yaml")?,
            );
        }
        for file in files {
            let path = file.as_ref();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            merge(
                &mut merged,
                parse(&text).with_context(|| path.display().to_string())?,
            );
        }
        serde_path_to_error::deserialize(merged).context("the merged values")
    }
}

fn parse(yaml: &str) -> anyhow::Result<Value> {
    let value: Value = serde_norway::from_str(yaml)?;
    // An empty file is no values at all.
    Ok(if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    })
}

/// Helm's coalescing: maps merge key by key, anything else replaces, and a
/// null removes the key.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match (base.get_mut(&key), value) {
                    (_, Value::Null) => {
                        base.remove(&key);
                    }
                    (Some(existing), value @ Value::Object(_)) if existing.is_object() => {
                        merge(existing, value)
                    }
                    (_, value) => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// A scalar as the templates print it: `3306` and `"3306"` alike.
fn scalar<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha_values_raise_replicas_and_keep_the_rest() {
        let values = Values::load(true, &[] as &[&Path]).unwrap();
        assert_eq!(values.controller_replicas, 3);
        assert!(values.enable_pod_anti_affinity && values.enable_pod_disruption_budget);
        assert_eq!(values.proxy.resources.memory.limit, "250Mi");
    }

    #[test]
    fn later_maps_merge_and_null_removes() {
        let mut base = serde_json::json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(
            &mut base,
            serde_json::json!({"a": {"c": 4, "e": 5}, "d": null}),
        );
        assert_eq!(base, serde_json::json!({"a": {"b": 1, "c": 4, "e": 5}}));
    }
}
