//! The plugin's JSON configuration: parsing and validation. Everything an
//! operator can get wrong is refused here, at `init`, with a message naming
//! the field, rather than showing up as requests that are never retried.

use serde::Deserialize;
use weft_plugin_sdk::path::PathPrefix;

use crate::conditions::{DEFAULT_RETRY_ON, RetryOn};
use crate::route::{Match, Route};

/// Linkerd's default: one retry per request.
const DEFAULT_LIMIT: u32 = 1;

/// The validated configuration.
#[derive(Debug, PartialEq)]
pub struct Config {
    pub routes: Vec<Route>,
    pub budget: BudgetConfig,
}

/// Linkerd's retry budget; defaults are Linkerd's.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Retries allowed per original request, on top of the reserve.
    pub retry_ratio: f64,
    /// Retries allowed per second however few requests there are.
    pub min_retries_per_second: f64,
    /// How long requests and retries count towards the budget.
    pub ttl_seconds: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            retry_ratio: 0.2,
            min_retries_per_second: 10.0,
            ttl_seconds: 10,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
    #[serde(default)]
    budget: BudgetConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRoute {
    name: String,
    #[serde(rename = "match")]
    matcher: Option<RawMatch>,
    retry_on: Option<Vec<String>>,
    limit: Option<u32>,
    timeout_ms: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMatch {
    path_prefix: Option<String>,
    methods: Option<Vec<String>>,
    authority: Option<String>,
}

/// Parses and validates `text`.
pub fn parse(text: &str) -> Result<Config, String> {
    let raw: RawConfig =
        serde_json::from_str(text).map_err(|err| format!("invalid retry config: {err}"))?;
    if raw.routes.is_empty() {
        return Err("routes: at least one route is required".to_string());
    }
    let mut routes: Vec<Route> = Vec::with_capacity(raw.routes.len());
    for (index, raw_route) in raw.routes.into_iter().enumerate() {
        let route = validate_route(raw_route).map_err(|err| format!("routes[{index}]: {err}"))?;
        // Routes are metric labels: two with one name would share series.
        if routes.iter().any(|other| other.name == route.name) {
            return Err(format!(
                "routes[{index}]: name {:?} is used by an earlier route",
                route.name
            ));
        }
        routes.push(route);
    }
    validate_budget(&raw.budget)?;
    Ok(Config {
        routes,
        budget: raw.budget,
    })
}

fn validate_route(raw: RawRoute) -> Result<Route, String> {
    if raw.name.is_empty() {
        return Err("name must not be empty".to_string());
    }
    let in_route = |err: String| format!("route {:?}: {err}", raw.name);
    let matcher = match raw.matcher {
        Some(raw_match) => validate_match(raw_match).map_err(in_route)?,
        None => Match::default(),
    };
    let retry_on = match &raw.retry_on {
        Some(conditions) => RetryOn::parse(conditions),
        None => RetryOn::parse(&DEFAULT_RETRY_ON),
    }
    .map_err(|err| in_route(format!("retryOn: {err}")))?;
    if raw.timeout_ms == Some(0) {
        return Err(in_route("timeoutMs must be at least 1".to_string()));
    }
    Ok(Route {
        name: raw.name,
        matcher,
        retry_on,
        limit: raw.limit.unwrap_or(DEFAULT_LIMIT),
        timeout_ms: raw.timeout_ms,
    })
}

fn validate_match(raw: RawMatch) -> Result<Match, String> {
    let path_prefix = raw
        .path_prefix
        .as_deref()
        .map(PathPrefix::parse)
        .transpose()
        .map_err(|err| format!("match.pathPrefix: {err}"))?;
    if let Some(methods) = &raw.methods {
        if methods.is_empty() {
            return Err("match.methods must not be empty (leave it out to match any)".to_string());
        }
        for method in methods {
            validate_method(method).map_err(|err| format!("match.methods: {err}"))?;
        }
    }
    if raw.authority.as_deref() == Some("") {
        return Err("match.authority must not be empty".to_string());
    }
    Ok(Match {
        methods: raw.methods,
        authority: raw.authority,
        path_prefix,
    })
}

/// A method is an RFC 9110 token; methods compare case-sensitively and
/// every method in use is uppercase, so `get` is a typo, not a method.
fn validate_method(method: &str) -> Result<(), String> {
    let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(format!("{method:?} is not a method"));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "{method:?} must be uppercase (methods compare case-sensitively)"
        ));
    }
    Ok(())
}

fn validate_budget(budget: &BudgetConfig) -> Result<(), String> {
    // The same bounds as tower's TpsBudget, which Linkerd's budget is.
    if !(0.0..=1000.0).contains(&budget.retry_ratio) {
        return Err(format!(
            "budget.retryRatio must be between 0 and 1000, not {}",
            budget.retry_ratio
        ));
    }
    if !(budget.min_retries_per_second >= 0.0 && budget.min_retries_per_second.is_finite()) {
        return Err(format!(
            "budget.minRetriesPerSecond must be 0 or more, not {}",
            budget.min_retries_per_second
        ));
    }
    if !(1..=60).contains(&budget.ttl_seconds) {
        return Err(format!(
            "budget.ttlSeconds must be between 1 and 60, not {}",
            budget.ttl_seconds
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_route(route: &str) -> String {
        format!(r#"{{"routes": [{route}]}}"#)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn accepts_the_documented_example() {
        let config = parse(
            r#"{
                "routes": [
                    {
                        "name": "api",
                        "match": {"pathPrefix": "/api/", "methods": ["GET", "PUT"], "authority": "web.default:8080"},
                        "retryOn": ["5xx", "gateway-error", "connect-failure", "reset", "timeout", "retriable-4xx", "503", "500-504"],
                        "limit": 2,
                        "timeoutMs": 2000
                    }
                ],
                "budget": {"retryRatio": 0.5, "minRetriesPerSecond": 3, "ttlSeconds": 20}
            }"#,
        )
        .unwrap();
        let route = &config.routes[0];
        assert_eq!(route.name, "api");
        assert_eq!(
            route.matcher,
            Match {
                methods: Some(vec!["GET".to_string(), "PUT".to_string()]),
                authority: Some("web.default:8080".to_string()),
                path_prefix: Some(PathPrefix::parse("/api").unwrap()),
            }
        );
        assert_eq!(
            route.retry_on,
            RetryOn::parse(&[
                "5xx",
                "gateway-error",
                "connect-failure",
                "reset",
                "timeout",
                "retriable-4xx"
            ])
            .unwrap()
        );
        assert_eq!((route.limit, route.timeout_ms), (2, Some(2000)));
        assert_eq!(
            config.budget,
            BudgetConfig {
                retry_ratio: 0.5,
                min_retries_per_second: 3.0,
                ttl_seconds: 20,
            }
        );
    }

    #[test]
    fn defaults_are_linkerds() {
        let config = parse(&one_route(r#"{"name": "all"}"#)).unwrap();
        let route = &config.routes[0];
        assert_eq!(route.matcher, Match::default());
        assert_eq!(route.retry_on, RetryOn::parse(&DEFAULT_RETRY_ON).unwrap());
        assert_eq!((route.limit, route.timeout_ms), (1, None));
        assert_eq!(config.budget, BudgetConfig::default());

        let partial = parse(r#"{"routes": [{"name": "a"}], "budget": {"ttlSeconds": 5}}"#).unwrap();
        assert_eq!(
            partial.budget,
            BudgetConfig {
                ttl_seconds: 5,
                ..BudgetConfig::default()
            }
        );
    }

    #[test]
    fn a_root_prefix_and_an_empty_retry_list_are_allowed() {
        let config = parse(&one_route(
            r#"{"name": "t", "match": {"pathPrefix": "/"}, "retryOn": [], "limit": 0}"#,
        ))
        .unwrap();
        let route = &config.routes[0];
        assert_eq!(
            route.matcher.path_prefix,
            Some(PathPrefix::parse("/").unwrap())
        );
        assert_eq!(route.retry_on, RetryOn::default());
        assert_eq!(route.limit, 0);
    }

    #[test]
    fn rejects_unknown_fields_everywhere() {
        assert!(
            error(r#"{"routes": [{"name": "a"}], "retries": 3}"#).starts_with(
                "invalid retry config: unknown field `retries`, expected `routes` or `budget`"
            )
        );
        assert!(
            error(&one_route(r#"{"name": "a", "retry_on": []}"#))
                .starts_with("invalid retry config: unknown field `retry_on`")
        );
        assert!(
            error(&one_route(r#"{"name": "a", "match": {"path": "/"}}"#))
                .starts_with("invalid retry config: unknown field `path`")
        );
        assert!(
            error(r#"{"routes": [{"name": "a"}], "budget": {"ttl": 1}}"#)
                .starts_with("invalid retry config: unknown field `ttl`")
        );
    }

    #[test]
    fn rejects_malformed_json_and_missing_fields() {
        assert!(error("").starts_with("invalid retry config: EOF"));
        assert!(error("{}").starts_with("invalid retry config: missing field `routes`"));
        assert!(error(&one_route("{}")).starts_with("invalid retry config: missing field `name`"));
        assert!(
            error(&one_route(r#"{"name": "a", "limit": -1}"#))
                .starts_with("invalid retry config: invalid value: integer `-1`")
        );
    }

    #[test]
    fn rejects_no_routes() {
        assert_eq!(
            error(r#"{"routes": []}"#),
            "routes: at least one route is required"
        );
    }

    #[test]
    fn rejects_bad_route_names() {
        assert_eq!(
            error(&one_route(r#"{"name": ""}"#)),
            "routes[0]: name must not be empty"
        );
        assert_eq!(
            error(r#"{"routes": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}"#),
            "routes[2]: name \"a\" is used by an earlier route"
        );
    }

    #[test]
    fn rejects_unknown_conditions_naming_the_route() {
        assert_eq!(
            error(&one_route(
                r#"{"name": "api", "retryOn": ["5xx", "500-50"]}"#
            )),
            "routes[0]: route \"api\": retryOn: unknown retry condition \"500-50\"; expected \
             5xx, gateway-error, connect-failure, reset, timeout, retriable-4xx, a status such \
             as 503, or a range such as 500-504"
        );
    }

    #[test]
    fn rejects_bad_matches() {
        let match_error =
            |m: &str| error(&one_route(&format!(r#"{{"name": "api", "match": {m}}}"#)));
        assert_eq!(
            match_error(r#"{"pathPrefix": "api"}"#),
            "routes[0]: route \"api\": match.pathPrefix: path prefix `api` must start with `/`"
        );
        assert_eq!(
            match_error(r#"{"pathPrefix": "/api?x=1"}"#),
            "routes[0]: route \"api\": match.pathPrefix: path prefix `/api?x=1` must not \
             contain a query or fragment"
        );
        assert_eq!(
            match_error(r#"{"pathPrefix": "/api#top"}"#),
            "routes[0]: route \"api\": match.pathPrefix: path prefix `/api#top` must not \
             contain a query or fragment"
        );
        assert_eq!(
            match_error(r#"{"methods": []}"#),
            "routes[0]: route \"api\": match.methods must not be empty (leave it out to match any)"
        );
        assert_eq!(
            match_error(r#"{"methods": ["GET", "get"]}"#),
            "routes[0]: route \"api\": match.methods: \"get\" must be uppercase (methods compare \
             case-sensitively)"
        );
        assert_eq!(
            match_error(r#"{"methods": ["GET POST"]}"#),
            "routes[0]: route \"api\": match.methods: \"GET POST\" is not a method"
        );
        assert_eq!(
            match_error(r#"{"authority": ""}"#),
            "routes[0]: route \"api\": match.authority must not be empty"
        );
    }

    #[test]
    fn rejects_a_zero_timeout() {
        assert_eq!(
            error(&one_route(r#"{"name": "api", "timeoutMs": 0}"#)),
            "routes[0]: route \"api\": timeoutMs must be at least 1"
        );
    }

    #[test]
    fn rejects_budgets_out_of_bounds() {
        let budget_error = |b: &str| {
            error(&format!(
                r#"{{"routes": [{{"name": "a"}}], "budget": {b}}}"#
            ))
        };
        assert_eq!(
            budget_error(r#"{"retryRatio": -0.1}"#),
            "budget.retryRatio must be between 0 and 1000, not -0.1"
        );
        assert_eq!(
            budget_error(r#"{"retryRatio": 1000.5}"#),
            "budget.retryRatio must be between 0 and 1000, not 1000.5"
        );
        assert_eq!(
            budget_error(r#"{"minRetriesPerSecond": -1}"#),
            "budget.minRetriesPerSecond must be 0 or more, not -1"
        );
        assert_eq!(
            budget_error(r#"{"ttlSeconds": 0}"#),
            "budget.ttlSeconds must be between 1 and 60, not 0"
        );
        assert_eq!(
            budget_error(r#"{"ttlSeconds": 61}"#),
            "budget.ttlSeconds must be between 1 and 60, not 61"
        );
        // The bounds themselves are allowed.
        for ok in [
            r#"{"retryRatio": 0, "minRetriesPerSecond": 0, "ttlSeconds": 1}"#,
            r#"{"retryRatio": 1000, "ttlSeconds": 60}"#,
        ] {
            assert!(
                parse(&format!(
                    r#"{{"routes": [{{"name": "a"}}], "budget": {ok}}}"#
                ))
                .is_ok()
            );
        }
    }
}
