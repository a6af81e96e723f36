//! Retries with Linkerd's semantics: per-route conditions, a per-request
//! limit, a request deadline, and a retry budget shared by every request
//! through the proxy, so retries cannot multiply the load on a failing
//! upstream.
//!
//! ```json
//! {
//!   "routes": [
//!     {
//!       "name": "api",
//!       "match": {"pathPrefix": "/api", "methods": ["GET", "PUT"], "authority": "web.default:8080"},
//!       "retryOn": ["gateway-error", "connect-failure", "409", "500-504"],
//!       "limit": 2,
//!       "timeoutMs": 2000
//!     }
//!   ],
//!   "budget": {"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttlSeconds": 10},
//!   "budgets": [{"authority": "books.ns.svc.cluster.local", "retryRatio": 0.2,
//!                "minRetriesPerSecond": 10, "ttlSeconds": 10}]
//! }
//! ```
//!
//! - `routes` (required, at least one): tried in order; a request takes the
//!   first whose `match` it fits and is otherwise left alone. `name` (required,
//!   unique) labels metrics. `match` is the SDK's shared request match
//!   (`weft_plugin_sdk::route_match`): `methods`, `pathPrefix` (whole
//!   segments), `pathRegex` (the whole path), `authority` (a host alone
//!   takes any port), and `all`, `any`, `not` of matches.
//! - `retryOn` (default `["connect-failure", "gateway-error"]`): `5xx`,
//!   `gateway-error` (502–504), `retriable-4xx` (409), a status (`503`) or an
//!   inclusive range (`500-504`); and, for responses the proxy made because no
//!   upstream answered, `connect-failure` (the request never reached the
//!   upstream), `reset` (the connection broke) and `timeout` (no response in
//!   time).
//! - `limit` (default 1): retries, not attempts, per request.
//! - `timeoutMs` (optional): the request's deadline across all attempts.
//! - `budget` (defaults above): within the last `ttlSeconds`, retries may not
//!   exceed `minRetriesPerSecond * ttlSeconds + retryRatio * requests`,
//!   counting requests that took a route.
//! - `budgets` (optional, at most 100): budgets of the same shape for the
//!   requests to one `authority` each (matched as in `match`), as Linkerd
//!   keeps one per ServiceProfile; other requests spend `budget`.
//!
//! Only requests the proxy can replay (their body was kept) are retried.
//! Metrics: `retry_requests_total{direction, route}` counts retries sent;
//! `retry_skipped_total{direction, route, reason}` counts retries a condition
//! asked for but `budget`, `limit` or `not_replayable` prevented.

mod budget;
mod budgets;
mod conditions;
mod config;
mod route;
mod series;

use std::cell::Cell;

use weft_plugin_sdk::metrics::{self, CounterFamily, CounterSeries};
use weft_plugin_sdk::shared::Counter;
use weft_plugin_sdk::{
    Hooks, Plugin, Request, RequestAction, Response, ResponseAction, clock, export_plugin,
};

use budget::{Budget, SharedCounter};
use budgets::Budgets;
use conditions::{Failure, RetryOn};
use route::Route;
use series::{Key, SeriesTable, Skip};

/// How often one instance logs a budget refusal at info; the rest go to
/// debug. A failing upstream under load is refused many times a second, and
/// `retry_skipped_total` counts every refusal anyway.
const REFUSAL_LOG_INTERVAL_US: u64 = 1_000_000;

struct Retry {
    routes: Vec<Route>,
    /// What any route retries: most responses match none, and are let
    /// through without asking the proxy anything about the request.
    any_retry_on: RetryOn,
    budgets: Budgets<Counter>,
    retries: CounterFamily,
    skipped: CounterFamily,
    retry_series: SeriesTable<CounterSeries>,
    skipped_series: SeriesTable<CounterSeries>,
    last_refusal_log_us: Cell<Option<u64>>,
}

impl Plugin for Retry {
    fn init(text: &str) -> Result<Self, String> {
        let config = config::parse(text)?;
        let any_retry_on = config
            .routes
            .iter()
            .fold(RetryOn::default(), |any, route| any.union(&route.retry_on));
        let routes = config.routes.len();
        // Counter names without `_total`: the proxy's renderer appends it.
        Ok(Retry {
            any_retry_on,
            budgets: Budgets::new(&config.budget, &config.budgets, Counter::named),
            retries: metrics::register_counter(
                "retry_requests",
                "Retries sent, by the route that asked for them.",
                &["direction", "route"],
            )?,
            skipped: metrics::register_counter(
                "retry_skipped",
                "Retries a route's conditions asked for but the budget, the \
                 limit or an unreplayable body prevented.",
                &["direction", "route", "reason"],
            )?,
            retry_series: SeriesTable::new(routes, false),
            skipped_series: SeriesTable::new(routes, true),
            last_refusal_log_us: Cell::new(None),
            routes: config.routes,
        })
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE
    }

    /// Routes that only set a deadline (a ServiceProfile's timeout: no
    /// `retryOn`, or a limit of 0) retry nothing: no response needs looking
    /// at.
    fn configured_hooks(&self) -> Hooks {
        let retries = self
            .routes
            .iter()
            .any(|route| route.limit > 0 && route.retry_on != RetryOn::default());
        match retries {
            true => Hooks::REQUEST | Hooks::RESPONSE,
            false => Hooks::REQUEST,
        }
    }

    fn on_request(&self, req: &Request) -> RequestAction {
        let Some(index) = route::find(&self.routes, req) else {
            return RequestAction::Continue;
        };
        if let Some(ms) = self.routes[index].timeout_ms {
            // The deadline covers the whole request, so setting it again on
            // a later attempt changes nothing.
            req.set_timeout_ms(ms);
        }
        if req.attempt() == 1 {
            self.budget(req).deposit(clock::monotonic_us());
        }
        RequestAction::Continue
    }

    fn on_response(&self, req: &Request, rsp: &Response) -> ResponseAction {
        let status = rsp.status();
        let error = if self.any_retry_on.uses_failures() {
            rsp.error()
        } else {
            None
        };
        let failure = error.as_deref().map(Failure::from_reason);
        if !self.any_retry_on.matches(status, failure) {
            return ResponseAction::Continue;
        }
        let Some(index) = route::find(&self.routes, req) else {
            return ResponseAction::Continue;
        };
        let route = &self.routes[index];
        if !route.retry_on.matches(status, failure) {
            return ResponseAction::Continue;
        }

        let attempt = req.attempt();
        let key = Key {
            direction: req.direction(),
            route: index,
            skip: None,
        };
        let mut now_us = None;
        let decision = decide(
            attempt,
            route.limit,
            || req.replayable(),
            || {
                let now = clock::monotonic_us();
                now_us = Some(now);
                self.budget(req).try_withdraw(now)
            },
        );
        let why = Why {
            status,
            error: error.as_deref(),
        };
        match decision {
            Decision::Retry => {
                weft_plugin_sdk::debug!(
                    "retrying route {:?} after attempt {attempt}: {why}",
                    route.name
                );
                self.count_retry(key);
                ResponseAction::Retry
            }
            Decision::Skip(skip) => {
                if skip == Skip::Budget && self.should_log_refusal(now_us) {
                    weft_plugin_sdk::info!(
                        "retry budget exhausted: not retrying route {:?} after attempt {attempt}: {why}",
                        route.name
                    );
                } else {
                    weft_plugin_sdk::debug!(
                        "not retrying route {:?} after attempt {attempt} ({}): {why}",
                        route.name,
                        skip.as_str()
                    );
                }
                self.count_skip(Key {
                    skip: Some(skip),
                    ..key
                });
                ResponseAction::Continue
            }
        }
    }
}

impl Retry {
    /// The budget `req` spends.
    fn budget(&self, req: &Request) -> &Budget<Counter> {
        match self.budgets.by_authority() {
            true => self.budgets.for_authority(req.authority()),
            false => self.budgets.for_authority(None),
        }
    }

    fn count_retry(&self, key: Key) {
        let series = self.retry_series.get_or_create(key, |key| {
            self.retries
                .series(&[key.direction.as_str(), &self.routes[key.route].name])
        });
        add_one(series);
    }

    fn count_skip(&self, key: Key) {
        let series = self.skipped_series.get_or_create(key, |key| {
            let reason = key.skip.map_or("", Skip::as_str);
            self.skipped
                .series(&[key.direction.as_str(), &self.routes[key.route].name, reason])
        });
        add_one(series);
    }

    /// Whether this budget refusal is the first at `now_us` in this
    /// instance's log interval.
    fn should_log_refusal(&self, now_us: Option<u64>) -> bool {
        let Some(now) = now_us else { return false };
        let due = self
            .last_refusal_log_us
            .get()
            .is_none_or(|last| now.saturating_sub(last) >= REFUSAL_LOG_INTERVAL_US);
        if due {
            self.last_refusal_log_us.set(Some(now));
        }
        due
    }
}

fn add_one(series: Result<CounterSeries, String>) {
    match series {
        Ok(series) => series.add(1),
        Err(err) => weft_plugin_sdk::warn!("metric series refused: {err}"),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Retry,
    Skip(Skip),
}

/// Whether to retry a response its route's conditions match. Cheapest and
/// final checks first: the budget is asked last because asking spends it.
fn decide(
    attempt: u32,
    limit: u32,
    replayable: impl FnOnce() -> bool,
    withdraw: impl FnOnce() -> bool,
) -> Decision {
    // `attempt` is 1 on the first try: attempt - 1 retries were sent.
    if attempt > limit {
        Decision::Skip(Skip::Limit)
    } else if !replayable() {
        Decision::Skip(Skip::NotReplayable)
    } else if !withdraw() {
        Decision::Skip(Skip::Budget)
    } else {
        Decision::Retry
    }
}

/// What the response was, for logs.
struct Why<'a> {
    status: u16,
    error: Option<&'a str>,
}

impl std::fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error {
            Some(error) => write!(f, "{} ({error})", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

impl SharedCounter for Counter {
    fn get(&self) -> i64 {
        Counter::get(*self)
    }

    fn add_and_get(&self, delta: i64) -> i64 {
        Counter::add_and_get(*self, delta)
    }

    fn swap(&self, value: i64) -> i64 {
        Counter::swap(*self, value)
    }
}

export_plugin!(Retry);

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        panic!("asked needlessly")
    }

    #[test]
    fn retries_while_attempts_are_within_the_limit() {
        assert_eq!(decide(1, 1, || true, || true), Decision::Retry);
        assert_eq!(decide(2, 2, || true, || true), Decision::Retry);
        assert_eq!(decide(2, 1, never, never), Decision::Skip(Skip::Limit));
        assert_eq!(decide(1, 0, never, never), Decision::Skip(Skip::Limit));
    }

    #[test]
    fn unreplayable_requests_do_not_spend_the_budget() {
        assert_eq!(
            decide(1, 1, || false, never),
            Decision::Skip(Skip::NotReplayable)
        );
    }

    #[test]
    fn the_budget_is_asked_last() {
        assert_eq!(
            decide(1, 3, || true, || false),
            Decision::Skip(Skip::Budget)
        );
    }

    #[test]
    fn logs_name_the_status_and_the_error() {
        let why = |error| Why { status: 502, error }.to_string();
        assert_eq!(why(None), "502");
        assert_eq!(
            why(Some("upstream connection refused")),
            "502 (upstream connection refused)"
        );
    }
}
