//! A `WasmPlugin`'s status: one `Accepted` condition, shaped like
//! Kubernetes' `metav1.Condition` so `kubectl wait --for=condition=Accepted`
//! works, and the generation it describes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::Rejection;

/// The condition type the controller writes.
pub const ACCEPTED: &str = "Accepted";

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase, for machines: `Accepted`, `InvalidUrl`, `InvalidSha256`, …
    pub reason: String,
    /// For people.
    #[serde(default)]
    pub message: String,
    /// RFC 3339; when `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl WasmPluginStatus {
    /// The status for a validation verdict. `now` (RFC 3339) becomes the
    /// transition time unless `previous` already says the same thing, so
    /// writing the same status again changes nothing.
    pub fn for_verdict(
        verdict: Result<(), &Rejection>,
        generation: Option<i64>,
        now: &str,
        previous: Option<&WasmPluginStatus>,
    ) -> Self {
        let (status, reason, message) = match verdict {
            Ok(()) => ("True", ACCEPTED.to_string(), String::new()),
            Err(rejection) => (
                "False",
                rejection.reason.as_str().to_string(),
                rejection.message.clone(),
            ),
        };
        let previous = previous
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == ACCEPTED))
            .filter(|c| c.status == status);
        let last_transition_time = previous
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.to_string());
        WasmPluginStatus {
            observed_generation: generation,
            conditions: vec![Condition {
                type_: ACCEPTED.to_string(),
                status: status.to_string(),
                reason,
                message,
                last_transition_time: Some(last_transition_time),
                observed_generation: generation,
            }],
        }
    }

    /// Whether the controller has accepted the plugin at its current
    /// generation.
    pub fn is_accepted(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == ACCEPTED && c.status == "True")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::RejectReason;

    fn rejection() -> Rejection {
        Rejection {
            reason: RejectReason::InvalidSha256,
            message: "sha256 must be 64 hex digits".into(),
        }
    }

    #[test]
    fn accepted_then_rejected_records_the_transition() {
        let accepted = WasmPluginStatus::for_verdict(Ok(()), Some(1), "2026-01-01T00:00:00Z", None);
        assert!(accepted.is_accepted());
        assert_eq!(accepted.observed_generation, Some(1));

        let rejection = rejection();
        let rejected = WasmPluginStatus::for_verdict(
            Err(&rejection),
            Some(2),
            "2026-01-02T00:00:00Z",
            Some(&accepted),
        );
        assert!(!rejected.is_accepted());
        let condition = &rejected.conditions[0];
        assert_eq!(condition.status, "False");
        assert_eq!(condition.reason, "InvalidSha256");
        assert_eq!(condition.message, "sha256 must be 64 hex digits");
        assert_eq!(
            condition.last_transition_time.as_deref(),
            Some("2026-01-02T00:00:00Z")
        );
    }

    #[test]
    fn the_same_verdict_keeps_its_transition_time() {
        let first = WasmPluginStatus::for_verdict(Ok(()), Some(1), "2026-01-01T00:00:00Z", None);
        let again =
            WasmPluginStatus::for_verdict(Ok(()), Some(2), "2026-03-01T00:00:00Z", Some(&first));
        assert_eq!(
            again.conditions[0].last_transition_time.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(again.observed_generation, Some(2));
    }
}
