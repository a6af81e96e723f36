//! Metric families that plugins register, rendered on the proxy's
//! `/metrics` beside its own. Families and series are registered once and
//! then recorded by number, so steady traffic passes no strings.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;

type Labels = Vec<(String, String)>;

/// Names the proxy itself owns; plugins may not register into them.
const RESERVED_PREFIXES: [&str; 2] = ["tcp_", "process_"];

#[derive(Clone, Debug)]
struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

#[derive(Debug)]
enum Kind {
    Counter(Family<Labels, Counter>),
    Histogram(Family<Labels, Histogram, Buckets>, Arc<[f64]>),
}

#[derive(Debug)]
struct FamilyEntry {
    name: String,
    help: String,
    label_names: Vec<String>,
    kind: Kind,
}

#[derive(Debug)]
enum Series {
    Counter(Counter),
    Histogram(Histogram),
}

#[derive(Debug, Default)]
struct Inner {
    families: Vec<FamilyEntry>,
    series: Vec<Series>,
    series_ids: HashMap<(u32, Vec<String>), u32>,
}

#[derive(Debug, Default)]
pub struct PluginMetrics {
    inner: RwLock<Inner>,
}

impl PluginMetrics {
    /// Registers a counter (`buckets: None`) or histogram family, or returns
    /// the existing one when it was registered the same way before (every
    /// instance of a plugin registers at init).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        label_names: Vec<String>,
        buckets: Option<Vec<f64>>,
    ) -> Result<u32, String> {
        // prometheus-client appends `_total` to counters itself.
        let name = match buckets {
            None => name.strip_suffix("_total").unwrap_or(name),
            Some(_) => name,
        };
        check_name(name)?;
        for label in &label_names {
            check_name(label).map_err(|e| format!("label {e}"))?;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = inner.families.iter().position(|f| f.name == name) {
            let existing = &inner.families[id];
            let same_kind = match (&existing.kind, &buckets) {
                (Kind::Counter(_), None) => true,
                (Kind::Histogram(_, b), Some(buckets)) => b[..] == buckets[..],
                _ => false,
            };
            if same_kind && existing.label_names == label_names {
                return Ok(id as u32);
            }
            return Err(format!("metric `{name}` is already registered differently"));
        }
        let kind = match buckets {
            None => Kind::Counter(Family::default()),
            Some(buckets) => {
                if buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!("histogram `{name}` needs increasing buckets"));
                }
                let buckets: Arc<[f64]> = buckets.into();
                Kind::Histogram(
                    Family::new_with_constructor(Buckets(buckets.clone())),
                    buckets,
                )
            }
        };
        inner.families.push(FamilyEntry {
            name: name.to_string(),
            help: help.to_string(),
            label_names,
            kind,
        });
        Ok(inner.families.len() as u32 - 1)
    }

    pub fn series(&self, family: u32, values: Vec<String>) -> Result<u32, String> {
        let key = (family, values);
        if let Some(&id) = self.read().series_ids.get(&key) {
            return Ok(id);
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let entry = inner
            .families
            .get(family as usize)
            .ok_or_else(|| format!("no metric family {family}"))?;
        if entry.label_names.len() != key.1.len() {
            return Err(format!(
                "`{}` has {} labels, got {} values",
                entry.name,
                entry.label_names.len(),
                key.1.len()
            ));
        }
        let labels: Labels = entry
            .label_names
            .iter()
            .cloned()
            .zip(key.1.iter().cloned())
            .collect();
        let series = match &entry.kind {
            Kind::Counter(f) => Series::Counter(f.get_or_create(&labels).clone()),
            Kind::Histogram(f, _) => Series::Histogram(f.get_or_create(&labels).clone()),
        };
        let id = inner.series.len() as u32;
        inner.series.push(series);
        inner.series_ids.insert(key, id);
        Ok(id)
    }

    pub fn counter_add(&self, series: u32, value: u64) {
        if let Some(Series::Counter(c)) = self.read().series.get(series as usize) {
            c.inc_by(value);
        }
    }

    pub fn histogram_observe(&self, series: u32, value: f64) {
        if let Some(Series::Histogram(h)) = self.read().series.get(series as usize) {
            h.observe(value);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("name `{name}` is not a valid Prometheus name"));
    }
    if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(format!("name `{name}` is reserved for the proxy"));
    }
    Ok(())
}

impl Collector for PluginMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.read().families {
            match &family.kind {
                Kind::Counter(f) => f.encode(encoder.encode_descriptor(
                    &family.name,
                    &family.help,
                    None,
                    f.metric_type(),
                )?)?,
                Kind::Histogram(f, _) => f.encode(encoder.encode_descriptor(
                    &family.name,
                    &family.help,
                    None,
                    f.metric_type(),
                )?)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn families_render_beside_the_proxys_own() {
        let metrics = Arc::new(PluginMetrics::default());
        let labels = vec!["direction".to_string()];
        let requests = metrics
            .register("request_total", "Requests", labels.clone(), None)
            .unwrap();
        assert_eq!(
            metrics.register("request", "Requests", labels.clone(), None),
            Ok(requests)
        );
        let latency = metrics
            .register(
                "response_latency_ms",
                "Latency",
                labels.clone(),
                Some(vec![1.0, 10.0]),
            )
            .unwrap();
        let inbound = metrics.series(requests, vec!["inbound".into()]).unwrap();
        assert_eq!(
            metrics.series(requests, vec!["inbound".into()]),
            Ok(inbound)
        );
        metrics.counter_add(inbound, 3);
        let slow = metrics.series(latency, vec!["inbound".into()]).unwrap();
        metrics.histogram_observe(slow, 5.0);

        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics.clone()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("request_total{direction=\"inbound\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("response_latency_ms_bucket{le=\"10.0\",direction=\"inbound\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn bad_registrations_are_refused() {
        let metrics = PluginMetrics::default();
        assert!(metrics.register("tcp_open", "", vec![], None).is_err());
        assert!(metrics.register("9lives", "", vec![], None).is_err());
        assert!(
            metrics
                .register("h", "", vec![], Some(vec![2.0, 1.0]))
                .is_err()
        );
        let id = metrics.register("c", "", vec!["a".into()], None).unwrap();
        assert!(metrics.register("c", "", vec!["b".into()], None).is_err());
        assert!(metrics.series(id, vec![]).is_err());
    }
}
