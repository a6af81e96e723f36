//! The plugin's JSON configuration: parsing and validation. Everything an
//! operator can get wrong is refused here, at `init`, with a message naming
//! the field, rather than showing up as requests that are never retried.

use serde::Deserialize;
use weft_plugin_sdk::route_match::{self, AuthorityMatch, MatchConfig, RequestMatch};

use crate::conditions::{DEFAULT_RETRY_ON, RetryOn};
use crate::route::Route;

/// Linkerd's default: one retry per request.
const DEFAULT_LIMIT: u32 = 1;

/// Budgets per authority: one per ServiceProfile a workload talks to is far
/// below this, and each budget keeps 30 counters in the proxy.
pub const MAX_BUDGETS: usize = 100;

/// The validated configuration.
#[derive(Debug, PartialEq)]
pub struct Config {
    pub routes: Vec<Route>,
    /// For requests whose authority no entry of `budgets` matches.
    pub budget: BudgetConfig,
    pub budgets: Vec<AuthorityBudget>,
}

/// A budget of its own for the requests to one authority, as Linkerd keeps
/// one per ServiceProfile.
#[derive(Debug, PartialEq)]
pub struct AuthorityBudget {
    /// As written, in lower case: it names the budget's counters.
    pub name: String,
    pub authority: AuthorityMatch,
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
    #[serde(default)]
    budgets: Vec<RawAuthorityBudget>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuthorityBudget {
    authority: String,
    retry_ratio: Option<f64>,
    min_retries_per_second: Option<f64>,
    ttl_seconds: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRoute {
    name: String,
    #[serde(rename = "match")]
    matcher: Option<MatchConfig>,
    retry_on: Option<Vec<String>>,
    limit: Option<u32>,
    timeout_ms: Option<u32>,
}

/// Parses and validates `text`.
pub fn parse(text: &str) -> Result<Config, String> {
    let raw: RawConfig =
        serde_json::from_str(text).map_err(|err| format!("invalid retry config: {err}"))?;
    if raw.routes.is_empty() {
        return Err("routes: at least one route is required".to_string());
    }
    let routes = route_match::named_routes(raw.routes, validate_route, |route| &route.name)?;
    validate_budget(&raw.budget, "budget")?;
    let budgets = validate_budgets(raw.budgets)?;
    Ok(Config {
        routes,
        budget: raw.budget,
        budgets,
    })
}

fn validate_route(raw: RawRoute) -> Result<Route, String> {
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

fn validate_budgets(raw: Vec<RawAuthorityBudget>) -> Result<Vec<AuthorityBudget>, String> {
    if raw.len() > MAX_BUDGETS {
        return Err(format!(
            "budgets: {} budgets, more than the {MAX_BUDGETS} allowed",
            raw.len()
        ));
    }
    let defaults = BudgetConfig::default();
    let mut budgets: Vec<AuthorityBudget> = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let at = format!("budgets[{index}]");
        let authority = AuthorityMatch::parse(&raw.authority)
            .map_err(|err| format!("{at}.authority: {err}"))?;
        // Requests spend the first budget their authority matches.
        if budgets.iter().any(|other| other.authority == authority) {
            return Err(format!(
                "{at}.authority: {:?} has a budget already",
                raw.authority
            ));
        }
        let budget = BudgetConfig {
            retry_ratio: raw.retry_ratio.unwrap_or(defaults.retry_ratio),
            min_retries_per_second: raw
                .min_retries_per_second
                .unwrap_or(defaults.min_retries_per_second),
            ttl_seconds: raw.ttl_seconds.unwrap_or(defaults.ttl_seconds),
        };
        validate_budget(&budget, &at)?;
        budgets.push(AuthorityBudget {
            name: raw.authority.to_ascii_lowercase(),
            authority,
            budget,
        });
    }
    Ok(budgets)
}

fn validate_budget(budget: &BudgetConfig, at: &str) -> Result<(), String> {
    // The same bounds as tower's TpsBudget, which Linkerd's budget is.
    if !(0.0..=1000.0).contains(&budget.retry_ratio) {
        return Err(format!(
            "{at}.retryRatio must be between 0 and 1000, not {}",
            budget.retry_ratio
        ));
    }
    if !(budget.min_retries_per_second >= 0.0 && budget.min_retries_per_second.is_finite()) {
        return Err(format!(
            "{at}.minRetriesPerSecond must be 0 or more, not {}",
            budget.min_retries_per_second
        ));
    }
    if !(1..=60).contains(&budget.ttl_seconds) {
        return Err(format!(
            "{at}.ttlSeconds must be between 1 and 60, not {}",
            budget.ttl_seconds
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
