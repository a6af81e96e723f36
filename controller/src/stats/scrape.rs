//! A proxy's `/metrics` text into flat samples, as Prometheus stores them:
//! a histogram becomes its `_bucket{le}` series (the `_sum` and `_count`
//! series are samples already).

use prometheus_parse::{Scrape, Value};

use super::Labels;

/// One series' value in one scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// Parses Prometheus or OpenMetrics exposition text. Lines the parser
/// cannot read are skipped, as a scraper would rather lose one series than
/// the proxy's whole answer.
pub fn parse(text: &str) -> Vec<Sample> {
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let Ok(scrape) = Scrape::parse(lines) else {
        return Vec::new();
    };
    let mut samples = Vec::with_capacity(scrape.samples.len());
    for sample in scrape.samples {
        let labels: Labels = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => {
                samples.push(Sample {
                    name: sample.metric,
                    labels,
                    value,
                })
            }
            Value::Histogram(buckets) => {
                let name = format!("{}_bucket", sample.metric);
                for bucket in buckets {
                    let mut labels = labels.clone();
                    labels.insert("le".to_string(), le(bucket.less_than));
                    samples.push(Sample {
                        name: name.clone(),
                        labels,
                        value: bucket.count,
                    });
                }
            }
            // Proxies export no summaries.
            Value::Summary(_) => {}
        }
    }
    samples
}

/// A bucket bound as Prometheus prints it.
fn le(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_string()
    } else {
        bound.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_proxy_scrape_reads_as_counters_gauges_and_buckets() {
        let samples = parse(include_str!("fixtures/backend-2.txt"));
        let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
            samples
                .iter()
                .filter(|s| s.name == name)
                .filter(|s| {
                    labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|s| s.value)
                .sum()
        };
        let load = "load.demo.serviceaccount.identity.weft-system.cluster.local";
        let inbound = [("direction", "inbound"), ("client_id", load)];
        assert_eq!(value("response_total", &inbound), 42.0);
        assert_eq!(value("response_latency_ms_count", &inbound), 42.0);
        let all = [("direction", "inbound"), ("le", "+Inf")];
        assert_eq!(value("response_latency_ms_bucket", &all), 42.0);
        assert_eq!(value("process_start_time_seconds", &[]), 1796305646.0995033);
        assert_eq!(
            value(
                "tcp_open_connections",
                &[("direction", "inbound"), ("peer", "src")]
            ),
            1.0
        );
    }
}
