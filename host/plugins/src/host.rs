//! What the proxy gives plugins: logging, metrics, a clock, randomness and
//! state shared across a plugin's instances. One `State` per store; it knows
//! which plugin is being called, so every log line and shared counter is the
//! plugin's own.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;

use crate::bindings::weft::plugin::{clock, log, metrics, random, shared};
use crate::handles::RequestView;
use crate::metrics::PluginMetrics;
use crate::shared::SharedState;

/// What the host keeps per plugin of a chain, shared by all its instances.
#[derive(Debug)]
pub struct PluginContext {
    pub name: String,
    pub shared: SharedState,
    pub memory_limit: usize,
    pub metric_series_limit: u32,
    /// Which chain load registers its metrics (see `PluginMetrics`).
    pub metrics_generation: u64,
}

pub struct State {
    /// Set when a memory limit refused growth, to name the failure.
    memory_denied: bool,
    pub(crate) request: Option<RequestView>,
    pub(crate) response: Option<http::response::Parts>,
    /// The plugin this store runs, an index into `plugins`.
    current: usize,
    plugins: Arc<[PluginContext]>,
    metrics: Arc<PluginMetrics>,
    rng: u64,
}

impl State {
    pub fn new(plugins: Arc<[PluginContext]>, current: usize, metrics: Arc<PluginMetrics>) -> Self {
        let seed = RandomState::new().build_hasher().finish() | 1;
        Self {
            memory_denied: false,
            request: None,
            response: None,
            current,
            plugins,
            metrics,
            rng: seed,
        }
    }

    fn plugin(&self) -> &PluginContext {
        &self.plugins[self.current]
    }

    pub fn plugin_name(&self) -> &str {
        &self.plugin().name
    }

    /// Whether a memory limit refused growth since the last `begin_call`.
    pub fn memory_denied(&self) -> bool {
        self.memory_denied
    }

    /// Clears what the last call left, before the next.
    pub fn begin_call(&mut self) {
        self.memory_denied = false;
    }
}

/// Each plugin's linear memory may grow to its own limit.
impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.plugin().memory_limit;
        self.memory_denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl log::Host for State {
    fn enabled(&mut self, level: log::Level) -> bool {
        match level {
            log::Level::Trace => tracing::enabled!(tracing::Level::TRACE),
            log::Level::Debug => tracing::enabled!(tracing::Level::DEBUG),
            log::Level::Info => tracing::enabled!(tracing::Level::INFO),
            log::Level::Warn => tracing::enabled!(tracing::Level::WARN),
            log::Level::Error => tracing::enabled!(tracing::Level::ERROR),
        }
    }

    fn log(&mut self, level: log::Level, message: String) {
        let plugin = self.plugin().name.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl clock::Host for State {
    fn now_ms(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_millis() as u64
    }

    fn monotonic_us(&mut self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_micros() as u64
    }
}

impl random::Host for State {
    /// xorshift64*: fast and good enough for balancing and sampling; not
    /// for secrets.
    fn random_u64(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl shared::Host for State {
    fn counter(&mut self, name: String) -> u32 {
        self.plugin().shared.counter(&name)
    }

    fn counter_add(&mut self, counter: u32, delta: i64) -> i64 {
        self.plugin().shared.counter_add(counter, delta)
    }

    fn counter_get(&mut self, counter: u32) -> i64 {
        self.plugin().shared.counter_get(counter)
    }

    fn counter_swap(&mut self, counter: u32, value: i64) -> i64 {
        self.plugin().shared.counter_swap(counter, value)
    }

    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.plugin().shared.get(&key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) {
        self.plugin().shared.set(key, value)
    }
}

impl metrics::Host for State {
    fn register_counter(
        &mut self,
        name: String,
        help: String,
        labels: Vec<String>,
    ) -> Result<u32, String> {
        let generation = self.plugin().metrics_generation;
        self.metrics
            .register(&name, &help, labels, None, generation)
    }

    fn register_histogram(
        &mut self,
        name: String,
        help: String,
        labels: Vec<String>,
        buckets: Vec<f64>,
    ) -> Result<u32, String> {
        let generation = self.plugin().metrics_generation;
        self.metrics
            .register(&name, &help, labels, Some(buckets), generation)
    }

    fn series(&mut self, family: u32, values: Vec<String>) -> Result<u32, String> {
        let plugin = self.plugin();
        self.metrics
            .series(&plugin.name, plugin.metric_series_limit, family, values)
    }

    fn counter_add(&mut self, series: u32, value: u64) {
        self.metrics.counter_add(series, value)
    }

    fn histogram_observe(&mut self, series: u32, value: f64) {
        self.metrics.histogram_observe(series, value)
    }

    fn record_batch(&mut self, counter_adds: Vec<(u32, u64)>, observations: Vec<(u32, f64)>) {
        self.metrics.record(&counter_adds, &observations)
    }
}
