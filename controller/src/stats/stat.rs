//! `weft stat`: per resource, the meshed pods, success rate, requests per
//! second, latency percentiles and TCP connections over a window — Linkerd
//! viz stat's columns, from the same metrics.
//!
//! A resource's own figures are what its proxies saw inbound. With `--to
//! R` they are what its proxies sent to R (outbound, `dst_*` = R); with
//! `--from R`, what R's proxies sent to it. A Service has no proxy of its
//! own: its figures are what its clients sent to it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Labels, Matcher, MetricsSource, Resource, ResourceKind, Selector, SourceError};
use crate::index::PodSummary;

#[derive(Clone, Debug)]
pub struct StatQuery {
    pub kind: ResourceKind,
    pub name: Option<String>,
    /// `None` for every namespace.
    pub namespace: Option<String>,
    pub window: Duration,
    pub from: Option<Resource>,
    pub to: Option<Resource>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatRow {
    pub namespace: String,
    pub name: String,
    /// Meshed pods of all its pods (none for a Service).
    pub meshed: Option<Meshed>,
    /// Successes over responses, 0 to 1; none without responses.
    pub success_rate: Option<f64>,
    pub rps: f64,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p95: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// Inbound connections open now.
    pub tcp_connections: Option<f64>,
    pub read_bytes_per_sec: Option<f64>,
    pub write_bytes_per_sec: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meshed {
    pub meshed: u32,
    pub total: u32,
}

/// `(namespace, name)` of a row.
type Key = (String, String);

/// The rows `query` asks for; `inventory` (the controller's pods) adds the
/// resources that had no traffic and the pods that are not meshed.
pub async fn stat(
    source: &dyn MetricsSource,
    inventory: Option<&[PodSummary]>,
    query: &StatQuery,
) -> Result<Vec<StatRow>, SourceError> {
    let plan = Plan::of(query);
    let by: Vec<&str> = plan.group.iter().map(String::as_str).collect();
    let window = query.window;
    let responses = Selector::new("response_total", plan.matchers.clone());
    let mut by_class = by.clone();
    by_class.push("classification");

    let mut rows: BTreeMap<Key, StatRow> = BTreeMap::new();
    for series in source.rate(&responses, &by_class, window).await? {
        let Some(key) = plan.key(&series.labels) else {
            continue;
        };
        let row = rows.entry(key.clone()).or_insert_with(|| empty_row(key));
        row.rps += series.value;
        if series.labels.get("classification").map(String::as_str) == Some("success") {
            *row.success_rate.get_or_insert(0.0) += series.value;
        } else {
            row.success_rate.get_or_insert(0.0);
        }
    }
    for row in rows.values_mut() {
        row.success_rate = row
            .success_rate
            .filter(|_| row.rps > 0.0)
            .map(|successes| successes / row.rps);
    }

    let latency = Selector::new("response_latency_ms", plan.matchers.clone());
    for (q, column) in [(0.5, 0usize), (0.95, 1), (0.99, 2)] {
        for series in source.quantile(q, &latency, &by, window).await? {
            let Some(row) = plan.key(&series.labels).and_then(|key| rows.get_mut(&key)) else {
                continue;
            };
            let cell = match column {
                0 => &mut row.latency_ms_p50,
                1 => &mut row.latency_ms_p95,
                _ => &mut row.latency_ms_p99,
            };
            *cell = Some(series.value);
        }
    }

    if plan.own_proxies {
        own_proxy_figures(source, &plan, &by, window, inventory, &mut rows).await?;
    }
    Ok(rows.into_values().collect())
}

/// Connections, bytes and meshed pods, for rows that are the proxies' own
/// resources (not with `--from`, and not for Services).
async fn own_proxy_figures(
    source: &dyn MetricsSource,
    plan: &Plan,
    by: &[&str],
    window: Duration,
    inventory: Option<&[PodSummary]>,
    rows: &mut BTreeMap<Key, StatRow>,
) -> Result<(), SourceError> {
    let mut seen_pods: BTreeMap<Key, u32> = BTreeMap::new();
    let mut with_pod: Vec<&str> = by.to_vec();
    with_pod.push("pod");
    let started = Selector::new("process_start_time_seconds", plan.own_matchers.clone());
    for series in source.latest(&started, &with_pod).await? {
        if let Some(key) = plan.key(&series.labels) {
            *seen_pods.entry(key).or_default() += 1;
        }
    }
    match inventory {
        Some(pods) => {
            for (key, meshed) in plan.inventory(pods) {
                let row = rows.entry(key.clone()).or_insert_with(|| empty_row(key));
                row.meshed = Some(meshed);
            }
        }
        None => {
            for (key, count) in seen_pods {
                let row = rows.entry(key.clone()).or_insert_with(|| empty_row(key));
                row.meshed = Some(Meshed {
                    meshed: count,
                    total: count,
                });
            }
        }
    }
    let inbound_src = |metric: &str| {
        let mut matchers = plan.own_matchers.clone();
        matchers.push(Matcher::eq("direction", "inbound"));
        matchers.push(Matcher::eq("peer", "src"));
        Selector::new(metric, matchers)
    };
    for series in source
        .latest(&inbound_src("tcp_open_connections"), by)
        .await?
    {
        if let Some(row) = plan.key(&series.labels).and_then(|key| rows.get_mut(&key)) {
            row.tcp_connections = Some(series.value);
        }
    }
    for (metric, read) in [
        ("tcp_read_bytes_total", true),
        ("tcp_write_bytes_total", false),
    ] {
        for series in source.rate(&inbound_src(metric), by, window).await? {
            if let Some(row) = plan.key(&series.labels).and_then(|key| rows.get_mut(&key)) {
                let cell = if read {
                    &mut row.read_bytes_per_sec
                } else {
                    &mut row.write_bytes_per_sec
                };
                *cell = Some(series.value);
            }
        }
    }
    Ok(())
}

fn empty_row((namespace, name): Key) -> StatRow {
    StatRow {
        namespace,
        name,
        meshed: None,
        success_rate: None,
        rps: 0.0,
        latency_ms_p50: None,
        latency_ms_p95: None,
        latency_ms_p99: None,
        tcp_connections: None,
        read_bytes_per_sec: None,
        write_bytes_per_sec: None,
    }
}

/// Which series a query reads and how they make rows.
struct Plan {
    kind: ResourceKind,
    /// The labels naming a row (namespace first).
    group: Vec<String>,
    /// Conditions on the HTTP series.
    matchers: Vec<Matcher>,
    /// Conditions on the rows' own proxies' series (namespace and name).
    own_matchers: Vec<Matcher>,
    /// Whether the rows are the resources whose proxies report the series.
    own_proxies: bool,
    namespace: Option<String>,
    name: Option<String>,
}

impl Plan {
    fn of(query: &StatQuery) -> Self {
        let kind = query.kind;
        // A Service's figures come from its clients' outbound series, and
        // so do a destination's with --from.
        let as_destination = kind == ResourceKind::Service || query.from.is_some();
        let group = kind.group_labels(if as_destination { "dst_" } else { "" });
        let mut row_matchers = Vec::new();
        if let Some(namespace) = &query.namespace {
            row_matchers.push(Matcher::eq(&group[0], namespace));
        }
        if let Some(name) = &query.name {
            row_matchers.push(Matcher::eq(group.last().expect("a group label"), name));
        }
        let mut matchers = row_matchers.clone();
        let direction = if as_destination || query.to.is_some() {
            "outbound"
        } else {
            "inbound"
        };
        matchers.push(Matcher::eq("direction", direction));
        let namespace = query.namespace.as_deref();
        if let Some(to) = &query.to {
            matchers.extend(resource_matchers(to, "dst_", namespace));
        }
        if let Some(from) = &query.from {
            matchers.extend(resource_matchers(from, "", namespace));
        }
        Plan {
            kind,
            group,
            matchers,
            own_matchers: row_matchers,
            own_proxies: !as_destination,
            namespace: query.namespace.clone(),
            name: query.name.clone(),
        }
    }

    /// The row a series belongs to; none for series outside every row
    /// (say, a pod no deployment owns, in `stat deploy`).
    fn key(&self, labels: &Labels) -> Option<Key> {
        let value = |label: &String| labels.get(label).cloned().unwrap_or_default();
        let namespace = value(&self.group[0]);
        let name = value(self.group.last()?);
        (!namespace.is_empty() && !name.is_empty()).then_some((namespace, name))
    }

    /// The rows the controller's pods make, with their meshed counts.
    fn inventory(&self, pods: &[PodSummary]) -> BTreeMap<Key, Meshed> {
        let mut rows: BTreeMap<Key, Meshed> = BTreeMap::new();
        for pod in pods {
            let namespace = pod.pod.namespace.clone();
            let name = match (self.kind, self.kind.owner_label(), &pod.owner) {
                (ResourceKind::Namespace, ..) => namespace.clone(),
                (ResourceKind::Pod, ..) => pod.pod.name.clone(),
                (_, Some(label), Some(owner)) if owner.kind.label() == label => owner.name.clone(),
                _ => continue,
            };
            let wanted = self.namespace.as_ref().is_none_or(|ns| *ns == namespace)
                && self.name.as_ref().is_none_or(|n| *n == name);
            if wanted {
                let counts = rows.entry((namespace, name)).or_insert(Meshed {
                    meshed: 0,
                    total: 0,
                });
                counts.total += 1;
                counts.meshed += u32::from(pod.meshed);
            }
        }
        rows
    }
}

/// Conditions selecting `resource`'s series: its own (`prefix` empty) or
/// those naming it as the destination (`dst_`).
pub(super) fn resource_matchers(
    resource: &Resource,
    prefix: &str,
    namespace: Option<&str>,
) -> Vec<Matcher> {
    let mut matchers = Vec::new();
    if let Some(namespace) = namespace {
        matchers.push(Matcher::eq(&format!("{prefix}namespace"), namespace));
    }
    let label = format!("{prefix}{}", resource.kind.label());
    matchers.push(Matcher::eq(&label, &resource.name));
    matchers
}

#[cfg(test)]
mod tests;
