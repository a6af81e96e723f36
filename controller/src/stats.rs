//! The mesh's golden metrics for `weft stat`, `weft edges` and `weft
//! routes`, computed from the proxies' own metrics (Linkerd's names).
//!
//! The numbers come from a [`MetricsSource`], which answers three kinds of
//! question in the shape of PromQL: a counter's rate summed by labels, a
//! histogram's quantile, and a gauge's latest value. Two sources answer
//! them: [`Embedded`] scrapes every meshed pod's proxy itself and keeps a
//! short window of samples in memory (the local mesh's default: no
//! Prometheus needed), and [`Prometheus`] asks a Prometheus with the
//! queries Linkerd viz uses. `stat`, `edges` and `routes` are written once,
//! over the trait.
//!
//! Both sources see each proxy's samples with its pod's labels added, as
//! Linkerd's Prometheus configuration relabels them: `namespace`, `pod`,
//! `serviceaccount` and the owning workload (`deployment`, `statefulset`,
//! `daemonset`, `replicaset`, `job`).

mod edges;
mod embedded;
pub mod http;
mod prometheus;
mod quantile;
mod resource;
mod routes;
mod scrape;
mod stat;
mod window;

pub mod cli;

use std::collections::BTreeMap;
use std::time::Duration;

pub use edges::{Edge, EdgesQuery, edges};
pub use embedded::Embedded;
pub use prometheus::Prometheus;
pub use resource::{Resource, ResourceKind};
pub use routes::{RouteRow, RoutesQuery, ServiceRef, routes};
pub use stat::{Meshed, StatQuery, StatRow, stat};

/// A series' labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One label condition of a [`Selector`], as PromQL writes them.
#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    /// `label="value"`
    Eq(String, String),
    /// `label!="value"`
    Ne(String, String),
    /// `label=~"prefix.*"`
    Prefix(String, String),
}

impl Matcher {
    pub fn eq(label: &str, value: &str) -> Self {
        Matcher::Eq(label.to_string(), value.to_string())
    }

    pub fn ne(label: &str, value: &str) -> Self {
        Matcher::Ne(label.to_string(), value.to_string())
    }

    pub fn prefix(label: &str, prefix: &str) -> Self {
        Matcher::Prefix(label.to_string(), prefix.to_string())
    }

    /// Whether `labels` satisfy it; a missing label reads as empty, as in
    /// Prometheus.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = |label: &String| labels.get(label).map_or("", String::as_str);
        match self {
            Matcher::Eq(label, expected) => value(label) == expected,
            Matcher::Ne(label, unwanted) => value(label) != unwanted,
            Matcher::Prefix(label, prefix) => value(label).starts_with(prefix.as_str()),
        }
    }
}

/// A metric name and conditions on its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    pub fn new(metric: &str, matchers: Vec<Matcher>) -> Self {
        Selector {
            metric: metric.to_string(),
            matchers,
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// One group of an answer: the values of the `by` labels, and the figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub value: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("querying Prometheus at {url}: {reason}")]
    Prometheus { url: String, reason: String },
    #[error("{0}")]
    Query(String),
}

/// Where the figures come from. Each method is one PromQL expression.
#[tonic::async_trait]
pub trait MetricsSource: Send + Sync {
    /// `sum(rate(metric{matchers}[window])) by (by)`, per second.
    async fn rate(
        &self,
        selector: &Selector,
        by: &[&str],
        window: Duration,
    ) -> Result<Vec<Series>, SourceError>;

    /// `histogram_quantile(q, sum(rate(metric_bucket{matchers}[window]))
    /// by (le, by))`; groups without observations are left out.
    async fn quantile(
        &self,
        q: f64,
        selector: &Selector,
        by: &[&str],
        window: Duration,
    ) -> Result<Vec<Series>, SourceError>;

    /// `sum(metric{matchers}) by (by)`, the latest values of a gauge.
    async fn latest(&self, selector: &Selector, by: &[&str]) -> Result<Vec<Series>, SourceError>;
}

/// The labels of `labels` named in `by` (missing ones as empty).
pub(crate) fn group_key(labels: &Labels, by: &[&str]) -> Labels {
    by.iter()
        .map(|name| {
            let value = labels.get(*name).cloned().unwrap_or_default();
            (name.to_string(), value)
        })
        .collect()
}

/// `1m`, `30s`, `2h`, `500ms`: a window (`-t`) as Prometheus writes one.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a window like 30s, 1m or 1h");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let window = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad()),
    };
    if window.is_zero() {
        return Err(bad());
    }
    Ok(window)
}

/// The window in PromQL's spelling (whole seconds, at least one).
pub(crate) fn promql_window(window: Duration) -> String {
    format!("{}s", window.as_secs().max(1))
}
