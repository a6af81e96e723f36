//! Metric families that plugins register, rendered on the proxy's
//! `/metrics` beside its own. Families and series are registered once and
//! then recorded by number, so steady traffic passes no strings.
//!
//! Label values often come from clients (an authority, a path), so each
//! plugin may create only so many series per family (its spec's
//! `metricSeriesLimit`). Past that, a new label set gets the family's
//! overflow handle: its samples are dropped and counted in
//! `weft_plugin_metric_series_dropped_total{plugin, family}`, so memory and
//! `/metrics` stay bounded whatever the traffic.
//!
//! A new version of a plugin may define a family anew (other labels, another
//! kind). Each chain load is a generation; the definition registered by the
//! newest generation is the one rendered, and the older one is retired: the
//! old chain's instances, still finishing requests during a swap, record
//! into it unseen. Without this a changed definition would refuse the new
//! chain, and the old version would go on serving.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;

use crate::chain::SlowLaneMetrics;

type Labels = Vec<(String, String)>;

/// Names the proxy itself owns; plugins may not register into them.
const RESERVED_PREFIXES: [&str; 3] = ["tcp_", "process_", "weft_"];

/// The most label text one series may carry. A series is kept for the
/// proxy's lifetime, so its size counts as much as the number of series.
pub const MAX_SERIES_LABEL_BYTES: usize = 4096;

/// Rendered with `_total` appended.
const DROPPED_NAME: &str = "weft_plugin_metric_series_dropped";
const DROPPED_HELP: &str = "Samples plugins recorded for new label sets past their \
     per-family series limit (metricSeriesLimit), dropped instead of recorded.";

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
    /// The newest chain load that registered this definition.
    generation: u64,
    /// Replaced by a newer definition of the same name: not rendered.
    retired: bool,
}

#[derive(Debug)]
enum Series {
    Counter(Counter),
    Histogram(Histogram),
    /// Where a plugin's samples for refused label sets go: one per plugin
    /// and family, counting samples whatever their value.
    Dropped(Counter),
}

/// What one plugin has created in one family.
#[derive(Debug, Default)]
struct Budget {
    created: u32,
    overflow: Option<u32>,
}

#[derive(Debug, Default)]
struct Inner {
    families: Vec<FamilyEntry>,
    series: Vec<Series>,
    series_ids: HashMap<(u32, Vec<String>), u32>,
    /// By plugin name and family; bounded by plugins × families.
    budgets: HashMap<(String, u32), Budget>,
    dropped: Family<Labels, Counter>,
}

#[derive(Debug, Default)]
pub struct PluginMetrics {
    inner: RwLock<Inner>,
    generations: AtomicU64,
    pub(crate) slow_lane: SlowLaneMetrics,
}

impl PluginMetrics {
    /// A new chain load's generation, newer than every one before.
    pub fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a counter (`buckets: None`) or histogram family, or returns
    /// the existing one when it was registered the same way before (every
    /// instance of a plugin registers at init). A different definition of
    /// a name replaces the rendered one when `generation` is at least as
    /// new as the rendered one's.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        label_names: Vec<String>,
        buckets: Option<Vec<f64>>,
        generation: u64,
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
        if let Some(buckets) = &buckets
            && (buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]))
        {
            return Err(format!("histogram `{name}` needs increasing buckets"));
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let families = &mut inner.families;
        let rendered = families.iter().position(|f| f.name == name && !f.retired);
        let same = families.iter().position(|f| {
            let same_kind = match (&f.kind, &buckets) {
                (Kind::Counter(_), None) => true,
                (Kind::Histogram(_, b), Some(buckets)) => b[..] == buckets[..],
                _ => false,
            };
            f.name == name && same_kind && f.label_names == label_names
        });
        let newest = rendered.is_none_or(|r| generation >= families[r].generation);
        if let Some(id) = same {
            families[id].generation = families[id].generation.max(generation);
            // A newer chain going back to an earlier definition (a rollback).
            if let Some(rendered) = rendered
                && rendered != id
                && newest
            {
                families[rendered].retired = true;
                families[id].retired = false;
            }
            return Ok(id as u32);
        }
        if let Some(rendered) = rendered
            && newest
        {
            families[rendered].retired = true;
        }
        let kind = match buckets {
            None => Kind::Counter(Family::default()),
            Some(buckets) => {
                let buckets: Arc<[f64]> = buckets.into();
                Kind::Histogram(
                    Family::new_with_constructor(Buckets(buckets.clone())),
                    buckets,
                )
            }
        };
        families.push(FamilyEntry {
            name: name.to_string(),
            help: help.to_string(),
            label_names,
            kind,
            generation,
            retired: !newest,
        });
        Ok(families.len() as u32 - 1)
    }

    /// The series of `family` with these label values. A new one counts
    /// against `plugin`'s `limit` for the family; past it, or when the
    /// values are longer than [`MAX_SERIES_LABEL_BYTES`], the plugin gets
    /// the family's overflow handle, whose samples are only counted.
    pub fn series(
        &self,
        plugin: &str,
        limit: u32,
        family: u32,
        values: Vec<String>,
    ) -> Result<u32, String> {
        let key = (family, values);
        if let Some(&id) = self.read().series_ids.get(&key) {
            return Ok(id);
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let Inner {
            families,
            series,
            series_ids,
            budgets,
            dropped,
        } = &mut *inner;
        // Another instance may have created it since the read lock.
        if let Some(&id) = series_ids.get(&key) {
            return Ok(id);
        }
        let entry = families
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
        let budget = budgets.entry((plugin.to_string(), family)).or_default();
        let label_bytes: usize = key.1.iter().map(String::len).sum();
        if budget.created >= limit || label_bytes > MAX_SERIES_LABEL_BYTES {
            if let Some(id) = budget.overflow {
                return Ok(id);
            }
            let labels = vec![
                ("plugin".to_string(), plugin.to_string()),
                ("family".to_string(), entry.rendered_name()),
            ];
            tracing::warn!(
                plugin,
                family = %entry.rendered_name(),
                limit,
                "metric series limit reached: samples for new label sets are dropped"
            );
            let id = series.len() as u32;
            series.push(Series::Dropped(dropped.get_or_create(&labels).clone()));
            budget.overflow = Some(id);
            return Ok(id);
        }
        let labels: Labels = entry
            .label_names
            .iter()
            .cloned()
            .zip(key.1.iter().cloned())
            .collect();
        let created = match &entry.kind {
            Kind::Counter(f) => Series::Counter(f.get_or_create(&labels).clone()),
            Kind::Histogram(f, _) => Series::Histogram(f.get_or_create(&labels).clone()),
        };
        budget.created += 1;
        let id = series.len() as u32;
        series.push(created);
        series_ids.insert(key, id);
        Ok(id)
    }

    pub fn counter_add(&self, series: u32, value: u64) {
        Self::add(&self.read(), series, value);
    }

    pub fn histogram_observe(&self, series: u32, value: f64) {
        Self::observe(&self.read(), series, value);
    }

    /// Several adds and observations under one lock.
    pub fn record(&self, counter_adds: &[(u32, u64)], observations: &[(u32, f64)]) {
        let inner = self.read();
        for &(series, value) in counter_adds {
            Self::add(&inner, series, value);
        }
        for &(series, value) in observations {
            Self::observe(&inner, series, value);
        }
    }

    fn add(inner: &Inner, series: u32, value: u64) {
        match inner.series.get(series as usize) {
            Some(Series::Counter(c)) => {
                c.inc_by(value);
            }
            Some(Series::Dropped(c)) => {
                c.inc();
            }
            _ => {}
        }
    }

    fn observe(inner: &Inner, series: u32, value: f64) {
        match inner.series.get(series as usize) {
            Some(Series::Histogram(h)) => h.observe(value),
            Some(Series::Dropped(c)) => {
                c.inc();
            }
            _ => {}
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl FamilyEntry {
    /// The name as `/metrics` shows it (counters gain `_total`).
    fn rendered_name(&self) -> String {
        match self.kind {
            Kind::Counter(_) => format!("{}_total", self.name),
            Kind::Histogram(..) => self.name.clone(),
        }
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
        let inner = self.read();
        inner.dropped.encode(encoder.encode_descriptor(
            DROPPED_NAME,
            DROPPED_HELP,
            None,
            inner.dropped.metric_type(),
        )?)?;
        self.slow_lane.encode(&mut encoder)?;
        for family in inner.families.iter().filter(|f| !f.retired) {
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
mod tests;
