//! `linkerd.io/v1alpha2` ServiceProfile: named routes for one service, with
//! the response classes that decide failure, retries and timeouts, and the
//! service's retry budget (Linkerd's `pkg/apis/serviceprofile/v1alpha2`).

use serde::Deserialize;

use super::duration::parse_millis;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProfileSpec {
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    pub retry_budget: Option<RetryBudget>,
    /// Accepted only empty: a profile's own split is not compiled.
    #[serde(default)]
    pub dst_overrides: Vec<serde_json::Value>,
    /// Accepted only empty: opaque ports are the proxy's configuration.
    #[serde(default)]
    pub opaque_ports: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    pub name: String,
    pub condition: RequestMatch,
    #[serde(default)]
    pub response_classes: Vec<ResponseClass>,
    #[serde(default)]
    pub is_retryable: bool,
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMatch {
    #[serde(default)]
    pub all: Vec<RequestMatch>,
    #[serde(default)]
    pub any: Vec<RequestMatch>,
    pub not: Option<Box<RequestMatch>>,
    pub path_regex: Option<String>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseClass {
    pub condition: ResponseMatch,
    #[serde(default)]
    pub is_failure: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseMatch {
    #[serde(default)]
    pub all: Vec<ResponseMatch>,
    #[serde(default)]
    pub any: Vec<ResponseMatch>,
    pub not: Option<Box<ResponseMatch>>,
    pub status: Option<StatusRange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
pub struct StatusRange {
    #[serde(default = "min_status")]
    pub min: u16,
    #[serde(default = "max_status")]
    pub max: u16,
}

fn min_status() -> u16 {
    100
}

fn max_status() -> u16 {
    599
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryBudget {
    pub retry_ratio: f64,
    pub min_retries_per_second: u32,
    pub ttl: String,
}

impl ServiceProfileSpec {
    /// What Weft cannot honour, naming the field.
    pub fn check(&self) -> Result<(), String> {
        if !self.dst_overrides.is_empty() {
            return Err("spec.dstOverrides is not supported: use a TrafficSplit".to_string());
        }
        if !self.opaque_ports.is_empty() {
            return Err("spec.opaquePorts is not supported: set the proxy's opaque ports (config.weft.io/opaque-ports)".to_string());
        }
        let mut names = std::collections::BTreeSet::new();
        for (index, route) in self.routes.iter().enumerate() {
            let at = format!("spec.routes[{index}]");
            if route.name.is_empty() {
                return Err(format!("{at}.name must not be empty"));
            }
            if !names.insert(&route.name) {
                return Err(format!(
                    "{at}.name {:?} is used by an earlier route",
                    route.name
                ));
            }
            route
                .condition
                .check()
                .map_err(|e| format!("{at}.condition{e}"))?;
            if let Some(timeout) = &route.timeout {
                match parse_millis(timeout) {
                    Ok(0) => return Err(format!("{at}.timeout must be more than 0")),
                    Ok(_) => {}
                    Err(e) => return Err(format!("{at}.timeout: {e}")),
                }
            }
            for (class, response) in route.response_classes.iter().enumerate() {
                response
                    .condition
                    .check()
                    .map_err(|e| format!("{at}.responseClasses[{class}].condition{e}"))?;
            }
        }
        if let Some(budget) = &self.retry_budget {
            if !(0.0..=1000.0).contains(&budget.retry_ratio) {
                return Err("spec.retryBudget.retryRatio must be from 0 to 1000".to_string());
            }
            match parse_millis(&budget.ttl) {
                // The retry plugin's window, as tower's budget bounds it.
                Ok(1000..=60_000) => {}
                Ok(_) => return Err("spec.retryBudget.ttl must be from 1s to 60s".to_string()),
                Err(e) => return Err(format!("spec.retryBudget.ttl: {e}")),
            }
        }
        Ok(())
    }
}

impl RequestMatch {
    /// `Err` holds the path below the condition, then what is wrong.
    fn check(&self) -> Result<(), String> {
        if let Some(regex) = &self.path_regex {
            regex::Regex::new(&format!("^(?:{regex})$"))
                .map_err(|e| format!(".pathRegex {regex:?} does not compile: {e}"))?;
        }
        if let Some(method) = &self.method
            && (method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(format!(".method {method:?} is not an HTTP method"));
        }
        for (index, inner) in self.all.iter().enumerate() {
            inner.check().map_err(|e| format!(".all[{index}]{e}"))?;
        }
        for (index, inner) in self.any.iter().enumerate() {
            inner.check().map_err(|e| format!(".any[{index}]{e}"))?;
        }
        if let Some(inner) = &self.not {
            inner.check().map_err(|e| format!(".not{e}"))?;
        }
        Ok(())
    }

    /// The shared request match the plugins read (docs/plugins.md).
    pub fn to_match(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        if let Some(method) = &self.method {
            out.insert("methods".into(), vec![method.to_ascii_uppercase()].into());
        }
        if let Some(regex) = &self.path_regex {
            out.insert("pathRegex".into(), regex.clone().into());
        }
        if !self.all.is_empty() {
            let all: Vec<serde_json::Value> =
                self.all.iter().map(|m| m.to_match().into()).collect();
            out.insert("all".into(), all.into());
        }
        if !self.any.is_empty() {
            let any: Vec<serde_json::Value> =
                self.any.iter().map(|m| m.to_match().into()).collect();
            out.insert("any".into(), any.into());
        }
        if let Some(not) = &self.not {
            out.insert("not".into(), not.to_match().into());
        }
        out
    }
}

impl ResponseMatch {
    fn check(&self) -> Result<(), String> {
        if let Some(status) = &self.status
            && !(100 <= status.min && status.min <= status.max && status.max <= 599)
        {
            return Err(format!(
                ".status: min {} and max {} must be from 100 to 599, min ≤ max",
                status.min, status.max
            ));
        }
        for (index, inner) in self.all.iter().enumerate() {
            inner.check().map_err(|e| format!(".all[{index}]{e}"))?;
        }
        for (index, inner) in self.any.iter().enumerate() {
            inner.check().map_err(|e| format!(".any[{index}]{e}"))?;
        }
        if let Some(inner) = &self.not {
            inner.check().map_err(|e| format!(".not{e}"))?;
        }
        Ok(())
    }

    /// Linkerd's rule: every present part must hold; an empty match holds.
    pub fn matches(&self, status: u16) -> bool {
        self.status
            .is_none_or(|range| (range.min..=range.max).contains(&status))
            && self.all.iter().all(|m| m.matches(status))
            && (self.any.is_empty() || self.any.iter().any(|m| m.matches(status)))
            && self.not.as_ref().is_none_or(|m| !m.matches(status))
    }

    /// As the `metrics` plugin reads a response class's condition.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        if let Some(range) = &self.status {
            out.insert(
                "status".into(),
                serde_json::json!({"min": range.min, "max": range.max}),
            );
        }
        if !self.all.is_empty() {
            let all: Vec<_> = self.all.iter().map(Self::to_json).collect();
            out.insert("all".into(), all.into());
        }
        if !self.any.is_empty() {
            let any: Vec<_> = self.any.iter().map(Self::to_json).collect();
            out.insert("any".into(), any.into());
        }
        if let Some(not) = &self.not {
            out.insert("not".into(), not.to_json());
        }
        out.into()
    }
}

impl RouteSpec {
    /// Whether a response with `status` is a failure: the first class whose
    /// condition holds decides; with none, 5xx is (Linkerd's default).
    pub fn is_failure(&self, status: u16) -> bool {
        self.response_classes
            .iter()
            .find(|class| class.condition.matches(status))
            .map_or(status >= 500, |class| class.is_failure)
    }

    /// The failure statuses as the `retry` plugin's `retryOn` ranges.
    pub fn failure_ranges(&self) -> Vec<String> {
        let mut ranges = Vec::new();
        let mut start: Option<u16> = None;
        for status in 100..=600u16 {
            let failure = status < 600 && self.is_failure(status);
            match (failure, start) {
                (true, None) => start = Some(status),
                (false, Some(first)) => {
                    let last = status - 1;
                    ranges.push(if first == last {
                        first.to_string()
                    } else {
                        format!("{first}-{last}")
                    });
                    start = None;
                }
                _ => {}
            }
        }
        ranges
    }
}
