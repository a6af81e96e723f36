//! Turns a WasmPlugin's spec into what a chain needs, or a rejection with a
//! reason: done once when the resource arrives, so every workload that
//! names the plugin sees the same verdict.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::module_source::{ModuleSource, PullPolicy, parse_sha256};
use crate::resources::{
    Direction, FailStrategy, ImagePullPolicy, PluginPhase, WasmPluginSpec, WorkloadMode,
};

/// The proxy's failure policy, spelled as its plugin file spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    FailClosed,
    FailOpen,
}

/// A WasmPlugin the controller accepted: defaults applied, Istio's
/// spellings mapped to the proxy's.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidPlugin {
    pub name: String,
    pub module: ModuleSource,
    pub pull_policy: PullPolicy,
    pub image_pull_secret: Option<String>,
    pub sha256: Option<String>,
    pub config: serde_json::Value,
    pub failure_policy: FailurePolicy,
    pub phase: PluginPhase,
    pub priority: i64,
    /// Empty means both.
    pub directions: Vec<Direction>,
    pub match_labels: BTreeMap<String, String>,
    pub timeout_ms: Option<u32>,
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

/// The `reason` of a rejected plugin's `Accepted` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    InvalidUrl,
    InvalidSha256,
    InvalidPluginName,
    InvalidLimits,
    UnsupportedMatch,
    ConflictingDirections,
    /// The spec could not be read at all: a field unknown, or of the wrong
    /// type or value (the local source reads WasmPlugins strictly).
    InvalidSpec,
    /// The module failed its check (fetch, sha256, compile, world, `init`):
    /// found by `Modules::check`, never by `validate`.
    ModuleRefused,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidUrl => "InvalidUrl",
            RejectReason::InvalidSha256 => "InvalidSha256",
            RejectReason::InvalidPluginName => "InvalidPluginName",
            RejectReason::InvalidLimits => "InvalidLimits",
            RejectReason::UnsupportedMatch => "UnsupportedMatch",
            RejectReason::ConflictingDirections => "ConflictingDirections",
            RejectReason::InvalidSpec => "InvalidSpec",
            RejectReason::ModuleRefused => "ModuleRefused",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn reject(reason: RejectReason, message: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        message: message.into(),
    }
}

/// `resource_name` is the WasmPlugin's `metadata.name`, the default
/// `pluginName`.
pub fn validate(resource_name: &str, spec: &WasmPluginSpec) -> Result<ValidPlugin, Rejection> {
    let module = ModuleSource::parse(&spec.url)
        .map_err(|e| reject(RejectReason::InvalidUrl, e.to_string()))?;

    let sha256 = match &spec.sha256 {
        None => None,
        Some(text) => Some(parse_sha256(text).ok_or_else(|| {
            reject(
                RejectReason::InvalidSha256,
                format!("sha256 {text:?} is not 64 hex digits"),
            )
        })?),
    };
    let plain_http = matches!(&module, ModuleSource::Http(url)
        if url.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("http:")));
    if sha256.is_none() && plain_http {
        return Err(reject(
            RejectReason::InvalidSha256,
            "a module fetched over plain http:// needs sha256: nothing else protects it in transit",
        ));
    }

    let name = spec.plugin_name.as_deref().unwrap_or(resource_name);
    if !is_plugin_name(name) {
        return Err(reject(
            RejectReason::InvalidPluginName,
            format!("pluginName {name:?} must be 1 to 63 letters, digits, '.', '_' or '-'"),
        ));
    }

    if let Some(ms) = spec.timeout_ms
        && !(1..=60_000).contains(&ms)
    {
        return Err(reject(
            RejectReason::InvalidLimits,
            format!("timeoutMs {ms} must be between 1 and 60000"),
        ));
    }
    if let Some(bytes) = spec.memory_limit_bytes
        && !(65_536..=1 << 32).contains(&bytes)
    {
        return Err(reject(
            RejectReason::InvalidLimits,
            format!(
                "memoryLimitBytes {bytes} must be between 65536 (one Wasm page) and 4294967296"
            ),
        ));
    }

    let pull_policy = match spec.image_pull_policy {
        Some(ImagePullPolicy::Always) => PullPolicy::Always,
        Some(ImagePullPolicy::IfNotPresent) => PullPolicy::IfNotPresent,
        Some(ImagePullPolicy::Unspecified) | None => module.default_pull_policy(),
    };

    Ok(ValidPlugin {
        name: name.to_string(),
        pull_policy,
        module,
        image_pull_secret: spec.image_pull_secret.clone(),
        sha256,
        config: spec
            .plugin_config
            .clone()
            .unwrap_or(serde_json::Value::Null),
        failure_policy: match spec.fail_strategy.unwrap_or_default() {
            FailStrategy::FailClose => FailurePolicy::FailClosed,
            FailStrategy::FailOpen => FailurePolicy::FailOpen,
        },
        phase: spec.phase.unwrap_or_default(),
        priority: spec.priority.unwrap_or(0),
        directions: directions(spec)?,
        match_labels: spec
            .selector
            .as_ref()
            .map(|s| s.match_labels.clone())
            .unwrap_or_default(),
        timeout_ms: spec.timeout_ms,
        memory_limit_bytes: spec.memory_limit_bytes,
    })
}

/// `directions`, or Istio's `match[].mode` (CLIENT is the workload's
/// outbound traffic, SERVER its inbound). Sorted; empty means both.
fn directions(spec: &WasmPluginSpec) -> Result<Vec<Direction>, Rejection> {
    let mut directions = match (&spec.directions, &spec.traffic) {
        (Some(_), Some(_)) => {
            return Err(reject(
                RejectReason::ConflictingDirections,
                "set directions or match, not both",
            ));
        }
        (Some(directions), None) => directions.clone(),
        (None, Some(selectors)) => {
            if let Some(ports) = selectors.iter().find(|s| !s.ports.is_empty()) {
                let numbers: Vec<u32> = ports.ports.iter().map(|p| p.number).collect();
                return Err(reject(
                    RejectReason::UnsupportedMatch,
                    format!(
                        "match ports {numbers:?} are not supported yet; use match mode or directions"
                    ),
                ));
            }
            let mut directions = Vec::new();
            for selector in selectors {
                match selector.mode {
                    Some(WorkloadMode::Client) => directions.push(Direction::Outbound),
                    Some(WorkloadMode::Server) => directions.push(Direction::Inbound),
                    _ => return Ok(Vec::new()),
                }
            }
            directions
        }
        (None, None) => Vec::new(),
    };
    directions.sort();
    directions.dedup();
    if directions.len() == 2 {
        directions.clear();
    }
    Ok(directions)
}

/// The proxy puts the name in logs, metric labels and the
/// `x-weft-proxy-error` header, so it stays a plain token.
fn is_plugin_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{PortSelector, TrafficSelector, WorkloadSelector};
    use serde_json::json;

    fn spec(url: &str) -> WasmPluginSpec {
        WasmPluginSpec {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_istio_and_the_proxy() {
        let valid = validate("metrics", &spec("oci://ghcr.io/weft/metrics:0.1")).unwrap();
        assert_eq!(valid.name, "metrics");
        assert_eq!(valid.failure_policy, FailurePolicy::FailClosed);
        assert_eq!(valid.phase, PluginPhase::UnspecifiedPhase);
        assert_eq!(valid.priority, 0);
        assert_eq!(valid.pull_policy, PullPolicy::IfNotPresent);
        assert_eq!(valid.config, serde_json::Value::Null);
        assert!(valid.directions.is_empty());
        assert!(valid.match_labels.is_empty());
        assert_eq!((valid.timeout_ms, valid.memory_limit_bytes), (None, None));
    }

    #[test]
    fn every_field_maps_to_the_proxy_s_terms() {
        let spec = WasmPluginSpec {
            url: "https://example.com/authz.wasm".into(),
            sha256: Some("AB".repeat(32)),
            plugin_config: Some(json!({"defaultPolicy": "deny"})),
            plugin_name: Some("authz-v2".into()),
            priority: Some(-5),
            phase: Some(PluginPhase::Authz),
            fail_strategy: Some(FailStrategy::FailOpen),
            image_pull_policy: Some(ImagePullPolicy::Always),
            image_pull_secret: Some("registry".into()),
            selector: Some(WorkloadSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
            }),
            traffic: None,
            directions: Some(vec![Direction::Inbound, Direction::Inbound]),
            timeout_ms: Some(20),
            memory_limit_bytes: Some(1 << 20),
        };
        let valid = validate("authz", &spec).unwrap();
        assert_eq!(valid.name, "authz-v2");
        assert_eq!(valid.sha256, Some("ab".repeat(32)));
        assert_eq!(valid.failure_policy, FailurePolicy::FailOpen);
        assert_eq!(valid.pull_policy, PullPolicy::Always);
        assert_eq!(valid.directions, [Direction::Inbound]);
        assert_eq!(valid.match_labels["app"], "web");
        assert_eq!(
            (valid.timeout_ms, valid.memory_limit_bytes),
            (Some(20), Some(1 << 20))
        );
    }

    #[test]
    fn istio_match_modes_become_directions() {
        let with_modes = |modes: &[Option<WorkloadMode>]| {
            let mut spec = spec("/m.wasm");
            spec.traffic = Some(
                modes
                    .iter()
                    .map(|mode| TrafficSelector {
                        mode: *mode,
                        ports: vec![],
                    })
                    .collect(),
            );
            validate("p", &spec).map(|v| v.directions)
        };
        assert_eq!(
            with_modes(&[Some(WorkloadMode::Client)]),
            Ok(vec![Direction::Outbound])
        );
        assert_eq!(
            with_modes(&[Some(WorkloadMode::Server)]),
            Ok(vec![Direction::Inbound])
        );
        assert_eq!(
            with_modes(&[Some(WorkloadMode::Server), Some(WorkloadMode::Client)]),
            Ok(vec![])
        );
        assert_eq!(
            with_modes(&[Some(WorkloadMode::ClientAndServer)]),
            Ok(vec![])
        );
        assert_eq!(with_modes(&[None]), Ok(vec![]));
    }

    #[test]
    fn bad_specs_are_rejected_with_a_reason() {
        let mut ports = spec("/m.wasm");
        ports.traffic = Some(vec![TrafficSelector {
            mode: None,
            ports: vec![PortSelector { number: 8080 }],
        }]);
        let mut both = spec("/m.wasm");
        both.traffic = Some(vec![]);
        both.directions = Some(vec![]);
        let mut sha = spec("/m.wasm");
        sha.sha256 = Some("abc".into());
        let mut name = spec("/m.wasm");
        name.plugin_name = Some("has space".into());
        let mut timeout = spec("/m.wasm");
        timeout.timeout_ms = Some(0);
        let mut memory = spec("/m.wasm");
        memory.memory_limit_bytes = Some(1024);

        let cases = [
            (
                spec("ftp://x/y.wasm"),
                RejectReason::InvalidUrl,
                "unsupported scheme",
            ),
            (
                spec("http://x/y.wasm"),
                RejectReason::InvalidSha256,
                "plain http://",
            ),
            (sha, RejectReason::InvalidSha256, "\"abc\""),
            (name, RejectReason::InvalidPluginName, "\"has space\""),
            (timeout, RejectReason::InvalidLimits, "timeoutMs 0"),
            (memory, RejectReason::InvalidLimits, "memoryLimitBytes 1024"),
            (ports, RejectReason::UnsupportedMatch, "[8080]"),
            (both, RejectReason::ConflictingDirections, "not both"),
        ];
        for (spec, reason, message) in cases {
            let rejection = validate("p", &spec).unwrap_err();
            assert_eq!(rejection.reason, reason, "{rejection}");
            assert!(rejection.message.contains(message), "{rejection}");
        }
    }
}
