//! What the index answers for one workload: its ordered plugins, each fully
//! resolved, the problems that kept any plugin out, and a version that
//! changes exactly when what the proxy would run changes.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::event::{PluginRef, WorkloadRef};
use crate::linkerd::TrafficRef;
use crate::module_source::{ModuleSource, PullPolicy};
use crate::resources::{Direction, PluginPhase};
use crate::validate::{FailurePolicy, Rejection};

#[derive(Clone, Debug, PartialEq)]
pub struct ChainForWorkload {
    pub workload: WorkloadRef,
    /// Which annotation chose the plugins; `None` when neither the pod nor
    /// its namespace has `weft.io/plugins` (so the chain is empty).
    pub plugins_from: Option<Origin>,
    /// In the order the proxy runs them.
    pub plugins: Vec<ResolvedPlugin>,
    /// Why plugins the workload names are missing from `plugins`. The chain
    /// still carries every plugin that is fine.
    pub problems: Vec<WorkloadProblem>,
    /// Hex digest of `plugins`: equal versions mean identical chains, across
    /// controller restarts and replicas.
    pub version: String,
}

/// One plugin as a proxy runs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPlugin {
    /// The proxy's name for it (`pluginName`, else the resource's name).
    pub name: String,
    pub resource: PluginRef,
    pub module: ModuleSource,
    pub pull_policy: PullPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    /// Declared in the WasmPlugin; the fetcher checks the module against it.
    pub sha256: Option<String>,
    pub config: serde_json::Value,
    pub config_source: ConfigSource,
    pub failure_policy: FailurePolicy,
    pub phase: PluginPhase,
    pub priority: i64,
    /// Empty means both.
    pub directions: Vec<Direction>,
    /// `None`: the proxy's default.
    pub timeout_ms: Option<u32>,
    /// `None`: the proxy's default.
    pub memory_limit_bytes: Option<u64>,
}

/// Which object an annotation was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Pod,
    Namespace,
}

/// Where a plugin's effective config came from: pod > namespace > WasmPlugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigSource {
    PodAnnotation,
    NamespaceAnnotation,
    WasmPlugin,
    /// Compiled from Linkerd's and the Gateway API's resources.
    Compiled,
}

/// Something wrong with one workload's selection. Each one keeps a plugin
/// out of the chain, except `UnusedConfig`, which is likely a typo, and
/// `RejectedChange`, whose plugin runs the version accepted before.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadProblem {
    #[error("{origin} annotation weft.io/plugins: {name:?} cannot name a resource")]
    InvalidPluginName { name: String, origin: Origin },
    #[error("weft.io/plugins names {name:?}, but there is no such WasmPlugin in {}", namespaces.join(" or "))]
    UnknownPlugin {
        name: String,
        namespaces: Vec<String>,
    },
    #[error("WasmPlugin {plugin} is rejected: {rejection}")]
    RejectedPlugin {
        plugin: PluginRef,
        rejection: Rejection,
    },
    #[error(
        "WasmPlugin {plugin}'s latest version is rejected ({rejection}); its last accepted version keeps running"
    )]
    RejectedChange {
        plugin: PluginRef,
        rejection: Rejection,
    },
    #[error(
        "{origin} annotation weft.io/plugin-config.{name} is not JSON ({error}); plugin {name} is left out"
    )]
    InvalidConfig {
        name: String,
        origin: Origin,
        error: String,
    },
    #[error(
        "pod annotation weft.io/plugin-config.{name} configures a plugin the workload does not name"
    )]
    UnusedConfig { name: String },
    #[error(
        "WasmPlugins {first} and {second} are both called {name:?} in the proxy; {second} is left out"
    )]
    DuplicateName {
        name: String,
        first: PluginRef,
        second: PluginRef,
    },
    #[error(
        "{} compile to plugin {name:?}, but the workload runs {plugin} with its own config ({config_source}); the compiled config is not applied",
        list(from)
    )]
    CompiledConfigNotApplied {
        name: String,
        plugin: PluginRef,
        config_source: ConfigSource,
        from: Vec<TrafficRef>,
    },
    #[error(
        "{} compile to plugin {name:?}, but there is no WasmPlugin {plugin} to run it",
        list(from)
    )]
    NoPluginForCompiled {
        name: String,
        plugin: PluginRef,
        from: Vec<TrafficRef>,
    },
    #[error(
        "{origin} annotation {annotation}: {value:?} is not a default inbound policy ({}); deny applies",
        crate::linkerd::INBOUND_POLICIES.join(", ")
    )]
    InvalidDefaultInboundPolicy {
        origin: Origin,
        annotation: String,
        value: String,
    },
}

/// The resources a compiled config came from; none for an `authz` config
/// that only carries the workload's default inbound policy.
fn list(resources: &[TrafficRef]) -> String {
    if resources.is_empty() {
        return "the workload's default inbound policy".to_string();
    }
    let names: Vec<String> = resources.iter().map(ToString::to_string).collect();
    names.join(", ")
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigSource::PodAnnotation => "pod annotation",
            ConfigSource::NamespaceAnnotation => "namespace annotation",
            ConfigSource::WasmPlugin => "its pluginConfig",
            ConfigSource::Compiled => "compiled",
        })
    }
}

/// Why there is no answer at all for a workload: the proxy keeps what it has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("no pod {0}")]
    UnknownWorkload(WorkloadRef),
    #[error("pod {workload}: no namespace {}", workload.namespace)]
    UnknownNamespace { workload: WorkloadRef },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Pod => "pod",
            Origin::Namespace => "namespace",
        })
    }
}

impl ResolvedPlugin {
    /// The config as the plugin's `init` receives it: a string as is,
    /// anything else as JSON, nothing as empty (the proxy's rule).
    pub fn config_text(&self) -> String {
        match &self.config {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

/// sha256 of the plugins as canonical JSON (object keys sorted), so the
/// order a config's keys were written in does not change the version.
pub(super) fn version(plugins: &[ResolvedPlugin]) -> String {
    let value = serde_json::to_value(plugins).expect("plugins serialize to JSON");
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
