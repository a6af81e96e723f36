//! What runs: a chain of plugins, each with its module, configuration and
//! failure policy, as written in the proxy's plugin configuration file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The plugin configuration file: an ordered chain.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginSpec {
    /// Names the plugin in logs, errors and `x-weft-proxy-error`.
    pub name: String,
    /// The component file (`.wasm`). Relative paths are relative to the
    /// configuration file.
    pub module: PathBuf,
    /// When set, the module must hash to this (hex sha256) or it is refused.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Handed to the plugin's `init` as text (JSON).
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// The most time one hook call may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The most linear memory the plugin may grow to.
    #[serde(default = "default_memory_limit")]
    pub memory_limit_bytes: usize,
    /// The most series the plugin may create in each metric family it
    /// records into; samples for new label sets past it are dropped and
    /// counted in `weft_plugin_metric_series_dropped_total`.
    #[serde(default = "default_metric_series_limit")]
    pub metric_series_limit: u32,
    /// Which traffic the plugin sees; both directions when empty.
    #[serde(default)]
    pub directions: Vec<SpecDirection>,
}

/// What happens to a request when the plugin traps, times out or exceeds
/// its memory: skip the plugin, or fail the request with a 5xx naming it.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    FailOpen,
    #[default]
    FailClosed,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SpecDirection {
    Inbound,
    Outbound,
}

/// The most time one hook call may take unless a plugin says otherwise.
pub const DEFAULT_TIMEOUT_MS: u64 = 50;
/// The most linear memory a plugin may grow to unless it says otherwise.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// Series per plugin and metric family unless a plugin says otherwise:
/// enough for every authority and status of a busy workload, while a
/// client sending a new `Host` per request cannot grow the proxy (or its
/// `/metrics`) without bound.
pub const DEFAULT_METRIC_SERIES_LIMIT: u32 = 2000;

fn default_metric_series_limit() -> u32 {
    DEFAULT_METRIC_SERIES_LIMIT
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_memory_limit() -> usize {
    DEFAULT_MEMORY_LIMIT_BYTES
}

impl PluginSpec {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The configuration as `init` receives it: strings as they are, other
    /// values as JSON.
    pub fn config_text(&self) -> String {
        match &self.config {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_reads_from_json_with_defaults() {
        let spec: ChainSpec = serde_json::from_str(
            r#"{"plugins": [
                {"name": "metrics", "module": "metrics.wasm", "failurePolicy": "fail-open"},
                {"name": "hdr", "module": "/m/h.wasm", "config": {"name": "x"}, "timeoutMs": 5,
                 "directions": ["inbound"], "metricSeriesLimit": 10}
            ]}"#,
        )
        .unwrap();
        let [metrics, hdr] = &spec.plugins[..] else {
            panic!("two plugins")
        };
        assert_eq!(metrics.failure_policy, FailurePolicy::FailOpen);
        assert_eq!(metrics.timeout(), Duration::from_millis(50));
        assert_eq!(metrics.config_text(), "");
        assert_eq!(metrics.metric_series_limit, DEFAULT_METRIC_SERIES_LIMIT);
        assert_eq!(hdr.failure_policy, FailurePolicy::FailClosed);
        assert_eq!(hdr.config_text(), r#"{"name":"x"}"#);
        assert_eq!(hdr.directions, [SpecDirection::Inbound]);
        assert_eq!(hdr.metric_series_limit, 10);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = serde_json::from_str::<ChainSpec>(
            r#"{"plugins": [{"name": "a", "module": "a.wasm", "failStrategy": "x"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("failStrategy"), "{err}");
    }
}
