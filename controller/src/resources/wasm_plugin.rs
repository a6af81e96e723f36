//! The `WasmPlugin` custom resource (`weft.io/v1alpha1`): which module to run,
//! its configuration, where it goes in the chain and which workloads it may
//! apply to. Field names and enum spellings are Istio's
//! (`extensions.istio.io/v1alpha1` WasmPlugin) so its manifests carry over;
//! `directions`, `timeoutMs` and `memoryLimitBytes` are Weft's own.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::WasmPluginStatus;

/// A WebAssembly plugin that workloads can name in their `weft.io/plugins`
/// annotation.
#[allow(
    clippy::duplicated_attributes,
    reason = "printer columns repeat `type_ = \"string\"`"
)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "weft.io",
    version = "v1alpha1",
    kind = "WasmPlugin",
    namespaced,
    status = "WasmPluginStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "wp",
    category = "weft",
    doc = "A WebAssembly plugin for Weft's proxies: its module, configuration, order and failure policy. Workloads run it when their weft.io/plugins annotation names it.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".spec.phase"),
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginSpec {
    /// Where the module comes from: `file:///absolute/path.wasm` (on the proxy's
    /// filesystem), `http://` or `https://`, or `oci://registry/repository:tag`.
    /// As in Istio, a reference with no scheme is an OCI image; one that starts
    /// with `/` is a file path, and `./` or `../` a path relative to the YAML
    /// file (local directory source only).
    pub url: String,

    /// Lowercase hex sha256 of the module's bytes (for every scheme, OCI
    /// included: pin an OCI manifest with `@sha256:` in the url). Required
    /// for plain `http://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,

    /// Handed to the plugin's `init`: any JSON value, usually an object; a
    /// string is passed as is. A workload's `weft.io/plugin-config.<name>`
    /// annotation replaces it for that workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json_value")]
    pub plugin_config: Option<serde_json::Value>,

    /// The plugin's name in the proxy's logs, metrics and errors; the
    /// resource's name by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_name: Option<String>,

    /// Order within a phase: higher runs first. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,

    /// Coarse order: AUTHN, then AUTHZ, then STATS, then UNSPECIFIED_PHASE
    /// (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PluginPhase>,

    /// What a request gets when the plugin traps, times out or runs out of
    /// memory. Default FAIL_CLOSE (a 5xx naming the plugin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_strategy: Option<FailStrategy>,

    /// When to fetch the module again. Default IfNotPresent, except Always
    /// for an OCI image tagged `latest` or not tagged at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// A Secret in the plugin's namespace with OCI registry credentials.
    /// Not read yet: a plugin that names one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,

    /// Narrows which of the workloads naming this plugin run it: every label
    /// here must be on the pod. Empty or absent selects them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,

    /// Istio's traffic selectors: `mode` CLIENT is outbound, SERVER inbound.
    /// Ports are not supported yet. Use this or `directions`, not both.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Vec<TrafficSelector>>,

    /// The traffic the plugin sees: `inbound`, `outbound`; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directions: Option<Vec<Direction>>,

    /// The most time one hook call may take. The proxy's default (50) when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: Option<u32>,

    /// The most linear memory the plugin may grow to, from one Wasm page
    /// (64 KiB) to 4 GiB. The proxy's default (16 MiB) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 65536, max = 4294967296_u64))]
    pub memory_limit_bytes: Option<u64>,
}

/// Istio's plugin phases, in the order they run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PluginPhase {
    Authn,
    Authz,
    Stats,
    #[default]
    UnspecifiedPhase,
}

/// Istio's spelling of the proxy's `fail-closed` / `fail-open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailStrategy {
    #[default]
    FailClose,
    FailOpen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ImagePullPolicy {
    /// Istio's "not set": the default applies.
    #[serde(rename = "UNSPECIFIED_POLICY")]
    Unspecified,
    IfNotPresent,
    Always,
}

/// Istio's `WorkloadSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// Istio's `TrafficSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct TrafficSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
    /// Not supported yet: a plugin that sets ports is rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSelector>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    Undefined,
    Client,
    Server,
    ClientAndServer,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct PortSelector {
    pub number: u32,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Any JSON value: Kubernetes keeps it as written (a structural schema
/// allows a node with no type when it preserves unknown fields).
fn any_json_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Any JSON value, handed to the plugin's init.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
