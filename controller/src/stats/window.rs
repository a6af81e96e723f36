//! The embedded source's memory: each target's recent scrapes, bounded in
//! time (`retention`) and in series per target, and the PromQL-shaped
//! answers computed from them.
//!
//! A target's series are interned once (name and labels); a scrape is then
//! one `f64` per series, `NaN` where the series was absent. Rates follow
//! Prometheus' `rate`: the increase between the first and the last sample
//! in the window (a drop is a counter reset, counted from zero) over the
//! time between them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::quantile::histogram_quantile;
use super::scrape::Sample;
use super::{Labels, Selector, Series, group_key};

/// Series kept per target; new ones past it are not recorded.
pub const MAX_SERIES_PER_TARGET: usize = 20_000;

#[derive(Debug)]
pub struct Window {
    retention: Duration,
    targets: BTreeMap<String, Target>,
}

#[derive(Debug)]
struct Target {
    /// The pod's labels, added to each of its series.
    labels: Labels,
    series: Vec<(String, Labels)>,
    ids: HashMap<(String, Labels), usize>,
    scrapes: VecDeque<Scraped>,
}

#[derive(Debug)]
struct Scraped {
    at: Instant,
    values: Vec<f64>,
}

impl Window {
    pub fn new(retention: Duration) -> Self {
        Window {
            retention,
            targets: BTreeMap::new(),
        }
    }

    /// The longest window a query may ask for.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Records one scrape of `target` (its admin address), whose pod's
    /// labels are `labels`; a target whose labels changed starts afresh.
    pub fn record(&mut self, target: &str, labels: Labels, at: Instant, samples: Vec<Sample>) {
        let entry = self
            .targets
            .entry(target.to_string())
            .or_insert_with(|| Target::new(labels.clone()));
        if entry.labels != labels {
            *entry = Target::new(labels);
        }
        entry.record(at, samples);
        // One scrape older than the retention stays, so a window as long as
        // the retention still has a sample at its start.
        while entry.scrapes.len() > 2 && entry.scrapes[1].at + self.retention < at {
            entry.scrapes.pop_front();
        }
    }

    /// Forgets targets that are no longer scraped.
    pub fn retain(&mut self, live: &BTreeSet<String>) {
        self.targets.retain(|target, _| live.contains(target));
    }

    /// `sum(rate(selector[window])) by (by)` at `now`.
    pub fn rate(
        &self,
        selector: &Selector,
        by: &[&str],
        window: Duration,
        now: Instant,
    ) -> Vec<Series> {
        let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
        for (labels, rate) in self.rates(&selector.metric, selector, window, now) {
            *groups.entry(group_key(&labels, by)).or_default() += rate;
        }
        into_series(groups)
    }

    /// `histogram_quantile(q, sum(rate(selector_bucket[window])) by (le, by))`.
    pub fn quantile(
        &self,
        q: f64,
        selector: &Selector,
        by: &[&str],
        window: Duration,
        now: Instant,
    ) -> Vec<Series> {
        let bucket = format!("{}_bucket", selector.metric);
        let mut groups: BTreeMap<Labels, BTreeMap<String, f64>> = BTreeMap::new();
        for (labels, rate) in self.rates(&bucket, selector, window, now) {
            let le = labels.get("le").cloned().unwrap_or_default();
            *groups
                .entry(group_key(&labels, by))
                .or_default()
                .entry(le)
                .or_default() += rate;
        }
        groups
            .into_iter()
            .filter_map(|(labels, buckets)| {
                let buckets: Vec<(f64, f64)> = buckets
                    .into_iter()
                    .filter_map(|(le, rate)| Some((parse_le(&le)?, rate)))
                    .collect();
                let value = histogram_quantile(q, &buckets)?;
                Some(Series { labels, value })
            })
            .collect()
    }

    /// `sum(selector) by (by)`, from each target's latest scrape.
    pub fn latest(&self, selector: &Selector, by: &[&str]) -> Vec<Series> {
        let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
        for target in self.targets.values() {
            let Some(last) = target.scrapes.back() else {
                continue;
            };
            for (id, labels) in target.matching(&selector.metric, selector) {
                let value = last.values.get(id).copied().unwrap_or(f64::NAN);
                if !value.is_nan() {
                    *groups.entry(group_key(&labels, by)).or_default() += value;
                }
            }
        }
        into_series(groups)
    }

    /// Each matching series' rate over the window, with its labels.
    fn rates<'a>(
        &'a self,
        metric: &'a str,
        selector: &'a Selector,
        window: Duration,
        now: Instant,
    ) -> impl Iterator<Item = (Labels, f64)> + 'a {
        let since = now.checked_sub(window);
        self.targets.values().flat_map(move |target| {
            let scrapes: Vec<&Scraped> = target
                .scrapes
                .iter()
                .filter(|s| since.is_none_or(|since| s.at >= since) && s.at <= now)
                .collect();
            target
                .matching(metric, selector)
                .filter_map(move |(id, labels)| Some((labels, rate(&scrapes, id)?)))
        })
    }
}

impl Target {
    fn new(labels: Labels) -> Self {
        Target {
            labels,
            series: Vec::new(),
            ids: HashMap::new(),
            scrapes: VecDeque::new(),
        }
    }

    fn record(&mut self, at: Instant, samples: Vec<Sample>) {
        let mut values = vec![f64::NAN; self.series.len()];
        for sample in samples {
            let key = (sample.name, sample.labels);
            let id = match self.ids.get(&key) {
                Some(id) => *id,
                None if self.series.len() < MAX_SERIES_PER_TARGET => {
                    let id = self.series.len();
                    self.series.push(key.clone());
                    self.ids.insert(key, id);
                    values.push(f64::NAN);
                    id
                }
                None => continue,
            };
            values[id] = sample.value;
        }
        self.scrapes.push_back(Scraped { at, values });
    }

    /// Series of `metric` whose labels, the pod's added, match.
    fn matching<'a>(
        &'a self,
        metric: &'a str,
        selector: &'a Selector,
    ) -> impl Iterator<Item = (usize, Labels)> + 'a {
        self.series
            .iter()
            .enumerate()
            .filter(move |(_, (name, _))| name == metric)
            .filter_map(move |(id, (_, labels))| {
                let mut labels = labels.clone();
                labels.extend(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                selector.matches(&labels).then_some((id, labels))
            })
    }
}

/// A counter's per-second rate over `scrapes`; `None` with fewer than two
/// samples.
fn rate(scrapes: &[&Scraped], id: usize) -> Option<f64> {
    let points: Vec<(Instant, f64)> = scrapes
        .iter()
        .filter_map(|s| Some((s.at, *s.values.get(id)?)))
        .filter(|(_, v)| !v.is_nan())
        .collect();
    let (first, last) = (points.first()?, points.last()?);
    let elapsed = last.0.duration_since(first.0).as_secs_f64();
    if points.len() < 2 || elapsed <= 0.0 {
        return None;
    }
    let increase: f64 = points
        .windows(2)
        .map(|pair| {
            let (before, after) = (pair[0].1, pair[1].1);
            if after >= before {
                after - before
            } else {
                after
            }
        })
        .sum();
    Some(increase / elapsed)
}

fn parse_le(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        _ => le.parse().ok(),
    }
}

fn into_series(groups: BTreeMap<Labels, f64>) -> Vec<Series> {
    groups
        .into_iter()
        .map(|(labels, value)| Series { labels, value })
        .collect()
}

#[cfg(test)]
mod tests;
