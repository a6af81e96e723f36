//! The Prometheus source: the same figures as PromQL instant queries
//! (`/api/v1/query`), written against Weft's metric names the way Linkerd
//! viz writes its own (`sum(rate(response_total{…}[1m])) by (…)`,
//! `histogram_quantile(0.95, sum(rate(response_latency_ms_bucket{…}[1m]))
//! by (le, …))`). Prometheus must give each proxy's series its pod's labels
//! (`docs/observability.md` has the scrape configuration).

use std::time::Duration;

use serde::Deserialize;

use super::{Labels, Matcher, MetricsSource, Selector, Series, SourceError, promql_window};

/// The largest answer read from Prometheus.
const MAX_ANSWER_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct Prometheus {
    url: String,
    client: reqwest::Client,
}

impl Prometheus {
    /// `url` is Prometheus' base URL, e.g. `http://prometheus.weft-viz:9090`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        // reqwest is built without a default crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Prometheus {
            url: url.trim_end_matches('/').to_string(),
            client,
        })
    }

    /// Runs one instant query; NaN answers (no observations) are left out.
    pub async fn query(&self, promql: &str) -> Result<Vec<Series>, SourceError> {
        let failed = |reason: String| SourceError::Prometheus {
            url: self.url.clone(),
            reason,
        };
        let endpoint = format!("{}/api/v1/query", self.url);
        let url = reqwest::Url::parse_with_params(&endpoint, [("query", promql)])
            .map_err(|e| failed(e.to_string()))?;
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(failed("the answer is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            failed(format!(
                "answered {status} with something other than its JSON ({e})"
            ))
        })?;
        if answer.status != "success" {
            return Err(failed(format!("{promql}: {}", answer.error)));
        }
        let data = answer.data.ok_or_else(|| failed("no data".into()))?;
        Ok(data
            .result
            .into_iter()
            .filter_map(|sample| {
                let value: f64 = sample.value.1.parse().ok()?;
                (!value.is_nan()).then_some(Series {
                    labels: sample.metric,
                    value,
                })
            })
            .collect())
    }
}

#[tonic::async_trait]
impl MetricsSource for Prometheus {
    async fn rate(
        &self,
        selector: &Selector,
        by: &[&str],
        window: Duration,
    ) -> Result<Vec<Series>, SourceError> {
        let inner = format!("rate({}[{}])", series(selector, ""), promql_window(window));
        self.query(&sum_by(by, &inner)).await
    }

    async fn quantile(
        &self,
        q: f64,
        selector: &Selector,
        by: &[&str],
        window: Duration,
    ) -> Result<Vec<Series>, SourceError> {
        let rate = format!(
            "rate({}[{}])",
            series(selector, "_bucket"),
            promql_window(window)
        );
        let by: Vec<&str> = ["le"].into_iter().chain(by.iter().copied()).collect();
        self.query(&format!("histogram_quantile({q}, {})", sum_by(&by, &rate)))
            .await
    }

    async fn latest(&self, selector: &Selector, by: &[&str]) -> Result<Vec<Series>, SourceError> {
        self.query(&sum_by(by, &series(selector, ""))).await
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: String,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    metric: Labels,
    value: (f64, String),
}

/// `sum by (a, b) (expression)`.
fn sum_by(by: &[&str], expression: &str) -> String {
    format!("sum by ({}) ({expression})", by.join(", "))
}

/// `metric_suffix{matchers}`.
pub(super) fn series(selector: &Selector, suffix: &str) -> String {
    let matchers: Vec<String> = selector
        .matchers
        .iter()
        .map(|matcher| match matcher {
            Matcher::Eq(label, value) => format!("{label}=\"{}\"", quoted(value)),
            Matcher::Ne(label, value) => format!("{label}!=\"{}\"", quoted(value)),
            Matcher::Prefix(label, prefix) => {
                format!("{label}=~\"{}.*\"", quoted(&regex_escaped(prefix)))
            }
        })
        .collect();
    format!("{}{suffix}{{{}}}", selector.metric, matchers.join(","))
}

/// Escaped for a PromQL double-quoted string.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Escaped for RE2, so a prefix matches only itself.
fn regex_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_written_as_promql() {
        let selector = Selector::new(
            "response_total",
            vec![
                Matcher::eq("direction", "inbound"),
                Matcher::ne("rt_route", ""),
                Matcher::prefix("dst", "web.demo.svc."),
                Matcher::eq("authority", "a\"b"),
            ],
        );
        assert_eq!(
            series(&selector, ""),
            r#"response_total{direction="inbound",rt_route!="",dst=~"web\\.demo\\.svc\\..*",authority="a\"b"}"#
        );
        assert_eq!(sum_by(&["le", "pod"], "x"), "sum by (le, pod) (x)");
    }
}
