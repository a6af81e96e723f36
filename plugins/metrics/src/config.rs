//! The optional JSON configuration: routes, as a ServiceProfile's, that
//! get metrics of their own and decide what a failure is. Empty text and
//! `{}` mean no routes: the golden metrics alone, classified by 5xx.

use serde::Deserialize;
use weft_plugin_sdk::route_match::{self, MAX_DEPTH, MatchConfig, RequestMatch};

use crate::response_class::{Condition, ResponseClass};

/// Routes: each is a label value in three families, and a request is tried
/// against them in order, so keep the count sane.
pub const MAX_ROUTES: usize = 1000;

/// A configured route, validated.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// The `rt_route` label.
    pub name: String,
    pub matcher: RequestMatch,
    pub classes: Vec<ResponseClass>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRoute {
    name: String,
    #[serde(rename = "match")]
    matcher: Option<MatchConfig>,
    #[serde(default)]
    response_classes: Vec<RawResponseClass>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawResponseClass {
    condition: RawCondition,
    #[serde(default)]
    is_failure: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCondition {
    status: Option<RawStatus>,
    all: Option<Vec<RawCondition>>,
    any: Option<Vec<RawCondition>>,
    not: Option<Box<RawCondition>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStatus {
    min: Option<u16>,
    max: Option<u16>,
}

/// Parses and checks `text`.
pub fn parse(text: &str) -> Result<Vec<Route>, String> {
    let raw: RawConfig = match text.trim() {
        "" => return Ok(Vec::new()),
        text => {
            serde_json::from_str(text).map_err(|err| format!("invalid metrics config: {err}"))?
        }
    };
    if raw.routes.len() > MAX_ROUTES {
        return Err(format!(
            "routes: {} routes, more than the {MAX_ROUTES} allowed",
            raw.routes.len()
        ));
    }
    route_match::named_routes(raw.routes, route, |route| &route.name)
}

fn route(raw: RawRoute) -> Result<Route, String> {
    if raw.name.is_empty() {
        return Err("name must not be empty".to_string());
    }
    let in_route = |err: String| format!("route {:?}: {err}", raw.name);
    let matcher = match &raw.matcher {
        Some(config) => {
            RequestMatch::compile(config).map_err(|err| in_route(format!("match.{err}")))?
        }
        None => RequestMatch::default(),
    };
    let classes = raw
        .response_classes
        .iter()
        .enumerate()
        .map(|(i, class)| {
            Ok(ResponseClass {
                condition: condition(&class.condition, 0)
                    .map_err(|err| in_route(format!("responseClasses[{i}].condition{err}")))?,
                is_failure: class.is_failure,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Route {
        name: raw.name,
        matcher,
        classes,
    })
}

/// Errors start with the path to the field from the condition (`.status:
/// …`, `.all[0].not: …`), to follow `condition`.
fn condition(raw: &RawCondition, depth: usize) -> Result<Condition, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            ": `all`, `any` and `not` nest deeper than {MAX_DEPTH} levels"
        ));
    }
    if raw.status.is_none() && raw.all.is_none() && raw.any.is_none() && raw.not.is_none() {
        return Err(": give `status`, `all`, `any` or `not`".to_string());
    }
    let status = match &raw.status {
        Some(RawStatus { min, max }) => {
            let (min, max) = (min.unwrap_or(100), max.unwrap_or(599));
            if !(100..=599).contains(&min) || !(100..=599).contains(&max) || min > max {
                return Err(format!(
                    ".status: {min}..{max} is not a range of statuses (100 <= min <= max <= 599)"
                ));
            }
            Some((min, max))
        }
        None => None,
    };
    let list = |field: &str, raws: &[RawCondition]| {
        raws.iter()
            .enumerate()
            .map(|(i, raw)| condition(raw, depth + 1).map_err(|err| format!(".{field}[{i}]{err}")))
            .collect::<Result<Vec<_>, _>>()
    };
    let all = list("all", raw.all.as_deref().unwrap_or_default())?;
    let any = match &raw.any {
        Some(any) if any.is_empty() => {
            return Err(".any: must not be empty (it would hold for nothing)".to_string());
        }
        Some(any) => Some(list("any", any)?),
        None => None,
    };
    let not = match &raw.not {
        Some(not) => Some(Box::new(
            condition(not, depth + 1).map_err(|err| format!(".not{err}"))?,
        )),
        None => None,
    };
    Ok(Condition {
        status,
        all,
        any,
        not,
    })
}

#[cfg(test)]
mod tests;
