//! `weft routes`: per route, success, requests per second and latency, from
//! the `metrics` plugin's `route_*` families (`rt_route`, `dst`), with the
//! retries the `retry` plugin sent (`retry_requests_total{route}`) and how
//! the `split` plugin shared a route's requests among its backends
//! (`{direction}_split_requests_total{route, backend}`).
//!
//! `svc/NAME` reads the route series of requests to the Service (`dst` is
//! its authority, `NAME.NS.svc.…`) and the splits with a backend there;
//! `deploy/NAME` (or `pod/NAME`, …) reads what that workload's proxies
//! counted, retries included; with `to: svc/NAME`, only its routes to that
//! Service (as `linkerd viz routes deploy/web --to svc/books`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stat::resource_matchers;
use super::{Labels, Matcher, MetricsSource, Resource, ResourceKind, Selector, SourceError};

#[derive(Clone, Debug)]
pub struct RoutesQuery {
    pub target: Resource,
    pub namespace: String,
    pub window: Duration,
    /// For a workload target: only its requests to this Service (`svc/NAME`).
    pub to: Option<ServiceRef>,
}

/// A Service by name and namespace.
#[derive(Clone, Debug)]
pub struct ServiceRef {
    pub name: String,
    pub namespace: String,
}

impl ServiceRef {
    /// What its authorities start with: `NAME.NS.svc.`.
    fn authority_prefix(&self) -> String {
        format!("{}.{}.svc.", self.name, self.namespace)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteRow {
    pub route: String,
    pub direction: String,
    /// The authority the route's requests were for (`dst`), when known.
    pub authority: String,
    pub success_rate: Option<f64>,
    pub rps: f64,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p95: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// Retries the retry plugin sent per second on this route.
    pub retries_per_sec: Option<f64>,
    /// Requests per second to each backend of a split route.
    pub backends: BTreeMap<String, f64>,
}

/// `(direction, route)`.
type Key = (String, String);

pub async fn routes(
    source: &dyn MetricsSource,
    query: &RoutesQuery,
) -> Result<Vec<RouteRow>, SourceError> {
    let window = query.window;
    let of_service = query.target.kind == ResourceKind::Service;
    // Whose requests: the Service's (from any client) or the workload's own.
    let workload = if of_service {
        Vec::new()
    } else {
        resource_matchers(&query.target, "", Some(&query.namespace))
    };
    // To where: the target Service, or `to`; anywhere when neither.
    let service = if of_service {
        Some(
            ServiceRef {
                name: query.target.name.clone(),
                namespace: query.namespace.clone(),
            }
            .authority_prefix(),
        )
    } else {
        query.to.as_ref().map(ServiceRef::authority_prefix)
    };
    let mut route_matchers = vec![Matcher::ne("rt_route", "")];
    route_matchers.extend(workload.clone());
    if let Some(prefix) = &service {
        route_matchers.push(Matcher::prefix("dst", prefix));
    }
    let by = ["direction", "rt_route", "dst"];
    let mut rows: BTreeMap<Key, RouteRow> = BTreeMap::new();

    let responses = Selector::new("route_response_total", route_matchers.clone());
    let by_class = ["direction", "rt_route", "dst", "classification"];
    let mut successes: BTreeMap<Key, f64> = BTreeMap::new();
    for series in source.rate(&responses, &by_class, window).await? {
        let key = key(&series.labels, "rt_route");
        let row = row(&mut rows, &key, &series.labels);
        row.rps += series.value;
        let success = series.labels.get("classification").map(String::as_str) == Some("success");
        *successes.entry(key).or_default() += if success { series.value } else { 0.0 };
    }
    for (key, succeeded) in successes {
        let row = rows.get_mut(&key).expect("counted above");
        row.success_rate = (row.rps > 0.0).then(|| succeeded / row.rps);
    }
    let latency = Selector::new("route_response_latency_ms", route_matchers);
    for q in [0.5, 0.95, 0.99] {
        for series in source.quantile(q, &latency, &by, window).await? {
            let Some(row) = rows.get_mut(&key(&series.labels, "rt_route")) else {
                continue;
            };
            let cell = if q == 0.5 {
                &mut row.latency_ms_p50
            } else if q == 0.95 {
                &mut row.latency_ms_p95
            } else {
                &mut row.latency_ms_p99
            };
            *cell = Some(series.value);
        }
    }

    // Retries carry no authority: only a workload's own are its routes',
    // and with `to` only on routes already seen going there.
    if !of_service {
        let retries = Selector::new("retry_requests_total", workload.clone());
        for series in source
            .rate(&retries, &["direction", "route"], window)
            .await?
        {
            let key = key(&series.labels, "route");
            if query.to.is_some() && !rows.contains_key(&key) {
                continue;
            }
            let row = row(&mut rows, &key, &series.labels);
            *row.retries_per_sec.get_or_insert(0.0) += series.value;
        }
    }
    for direction in ["inbound", "outbound"] {
        let split = Selector::new(
            &format!("{direction}_split_requests_total"),
            workload.clone(),
        );
        let shares = source.rate(&split, &["route", "backend"], window).await?;
        let wanted = |route: &str| match &service {
            None => true,
            Some(prefix) => shares.iter().any(|s| {
                s.labels.get("route").map(String::as_str) == Some(route)
                    && s.labels
                        .get("backend")
                        .is_some_and(|b| b.starts_with(prefix))
            }),
        };
        for series in &shares {
            let route = series.labels.get("route").cloned().unwrap_or_default();
            if !wanted(&route) {
                continue;
            }
            let mut labels = series.labels.clone();
            labels.insert("direction".into(), direction.into());
            let row = row(&mut rows, &key(&labels, "route"), &labels);
            let backend = labels.get("backend").cloned().unwrap_or_default();
            *row.backends.entry(backend).or_default() += series.value;
        }
    }
    Ok(rows.into_values().collect())
}

fn key(labels: &Labels, route_label: &str) -> Key {
    let value = |name: &str| labels.get(name).cloned().unwrap_or_default();
    (value("direction"), value(route_label))
}

fn row<'a>(rows: &'a mut BTreeMap<Key, RouteRow>, key: &Key, labels: &Labels) -> &'a mut RouteRow {
    let row = rows.entry(key.clone()).or_insert_with(|| RouteRow {
        route: key.1.clone(),
        direction: key.0.clone(),
        authority: String::new(),
        success_rate: None,
        rps: 0.0,
        latency_ms_p50: None,
        latency_ms_p95: None,
        latency_ms_p99: None,
        retries_per_sec: None,
        backends: BTreeMap::new(),
    });
    if row.authority.is_empty()
        && let Some(dst) = labels.get("dst")
    {
        row.authority = dst.clone();
    }
    row
}
