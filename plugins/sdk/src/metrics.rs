//! Prometheus metrics rendered on the proxy's `/metrics`, beside its own.
//!
//! Register families once (in [`Plugin::init`](crate::Plugin::init)), look up
//! a series once per label set, then record with the numeric handle: hooks
//! pass no strings per request. [`record`] records in several series at once. Cache series handles for labels that repeat
//! ([`SeriesCache`]); [`CounterFamily::series`] crosses into the proxy every
//! time it is called.
//!
//! **Counter names leave out `_total`.** The proxy's Prometheus library adds
//! the suffix when rendering, so `register_counter("request", ...)` appears as
//! `request_total`. Histograms are rendered under the name as given (plus the
//! usual `_bucket`, `_sum`, `_count`).
//!
//! Registering a name again (as every instance of a plugin does) returns the
//! existing family when its labels (and buckets) match.
//!
//! **Series are bounded.** The proxy keeps at most `metricSeriesLimit`
//! series (2,000 by default) per plugin and family. Past it,
//! [`CounterFamily::series`] still succeeds, but the handle it returns
//! belongs to the family's overflow: its samples are dropped and counted in
//! `weft_plugin_metric_series_dropped_total{plugin, family}`. Keep labels
//! that clients control (an authority, a path) in mind, and cache handles
//! in a [`SeriesCache`], which is bounded as well.

mod series_cache;

pub use series_cache::{DEFAULT_MAX_ENTRIES, DEFAULT_MAX_LABEL_BYTES, LabelSet, SeriesCache};

use crate::bindings::weft::plugin::metrics as host;

/// A registered counter family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterFamily(u32);

/// A registered histogram family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramFamily(u32);

/// One counter: a family with all its label values fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterSeries(u32);

/// One histogram: a family with all its label values fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistogramSeries(u32);

/// Registers a counter family. `name` without `_total` (see the module doc).
pub fn register_counter(
    name: &str,
    help: &str,
    label_names: &[&str],
) -> Result<CounterFamily, String> {
    host::register_counter(name, help, &owned(label_names)).map(CounterFamily)
}

/// Registers a histogram family with these bucket upper bounds.
pub fn register_histogram(
    name: &str,
    help: &str,
    label_names: &[&str],
    buckets: &[f64],
) -> Result<HistogramFamily, String> {
    host::register_histogram(name, help, &owned(label_names), buckets).map(HistogramFamily)
}

impl CounterFamily {
    /// The counter with these label values, in `label_names` order.
    pub fn series(self, label_values: &[&str]) -> Result<CounterSeries, String> {
        host::series(self.0, &owned(label_values)).map(CounterSeries)
    }
}

impl HistogramFamily {
    /// The histogram with these label values, in `label_names` order.
    pub fn series(self, label_values: &[&str]) -> Result<HistogramSeries, String> {
        host::series(self.0, &owned(label_values)).map(HistogramSeries)
    }
}

impl CounterSeries {
    /// Adds `value` to the counter.
    pub fn add(self, value: u64) {
        host::counter_add(self.0, value);
    }
}

impl HistogramSeries {
    /// Records one observation.
    pub fn observe(self, value: f64) {
        host::histogram_observe(self.0, value);
    }
}

/// Records several counter adds and histogram observations in one
/// crossing into the proxy, instead of one per series: what a plugin that
/// records each request in a few series calls once per request.
pub fn record(counter_adds: &[(CounterSeries, u64)], observations: &[(HistogramSeries, f64)]) {
    let adds: Vec<(u32, u64)> = counter_adds.iter().map(|&(s, v)| (s.0, v)).collect();
    let observed: Vec<(u32, f64)> = observations.iter().map(|&(s, v)| (s.0, v)).collect();
    host::record_batch(&adds, &observed);
}

/// The generated import takes `&[String]` for a WIT `list<string>`.
fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}
