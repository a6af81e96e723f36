//! SMI's TrafficSplit (`split.smi-spec.io/v1alpha1` and `v1alpha2`): requests
//! to the apex service go to backend services by weight, on the same port.

use serde::Deserialize;

use super::duration::parse_weight;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitSpec {
    /// The apex service, in the split's namespace.
    pub service: String,
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// v1alpha2's HTTPRouteGroup matches: accepted only empty.
    #[serde(default)]
    pub matches: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Backend {
    pub service: String,
    /// A number (v1alpha2) or a quantity such as `900m` (v1alpha1).
    pub weight: serde_json::Value,
}

impl TrafficSplitSpec {
    pub fn check(&self) -> Result<(), String> {
        if self.service.is_empty() {
            return Err("spec.service is required".to_string());
        }
        if !self.matches.is_empty() {
            return Err(
                "spec.matches (HTTPRouteGroup) is not supported: use an HTTPRoute with backendRefs"
                    .to_string(),
            );
        }
        if self.backends.is_empty() {
            return Err("spec.backends: at least one backend is required".to_string());
        }
        let mut total = 0;
        for (index, backend) in self.backends.iter().enumerate() {
            if backend.service.is_empty() {
                return Err(format!("spec.backends[{index}].service is required"));
            }
            total += parse_weight(&backend.weight)
                .map_err(|e| format!("spec.backends[{index}]: {e}"))?;
        }
        if total == 0 {
            return Err("spec.backends: every weight is 0".to_string());
        }
        Ok(())
    }

    /// Each backend's weight in thousandths (checked by `check`).
    pub fn weights(&self) -> impl Iterator<Item = (&str, u64)> {
        self.backends.iter().map(|backend| {
            (
                backend.service.as_str(),
                parse_weight(&backend.weight).unwrap_or(0),
            )
        })
    }
}
