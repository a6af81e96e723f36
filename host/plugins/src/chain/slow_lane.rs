//! The slow lane: hook calls of plugins that overran, run off the proxy's
//! worker so that they cannot stall everyone else's requests.
//!
//! Hook calls are synchronous on the thread that serves the request; with
//! one worker, a plugin that spins until its time limit (or grows its memory
//! to its limit) holds every other connection for as long. A hook call that
//! runs past 5 ms on the CPU, or stops at its time or memory limit, demotes its
//! plugin for a while: every hook call that involves a demoted plugin is
//! then made on the lane's thread, at the lowest CPU priority (nice 19), and
//! the request awaits the answer. The lane holds at most
//! [`SlowLaneSettings::capacity`] calls; past that a demoted plugin is
//! treated as failed ("slow lane full") and its failure policy decides.
//!
//! Plugins that are not demoted pay one relaxed atomic load per hook call
//! (whether the chain has any demoted plugin) and one per plugin call
//! (whether it overran): overruns are caught by the epoch deadline that
//! bounds every call anyway, so no clock is read on the hot path.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::{
    ConnectionOutcome, LoadedPlugin, PluginChain, PluginFailure, RequestOutcome, ResponseOutcome,
};
use crate::bindings::{Completion, Connection, Direction, Hooks};
use crate::handles::RequestView;

mod demotion;

pub(crate) use demotion::{Demotions, SlowWatch};
use demotion::{closed_demoted, shedding};

/// How many hook calls the lane holds and how long demotions last.
#[derive(Debug, Clone)]
pub struct SlowLaneSettings {
    /// Calls waiting or running in the lane; past it, calls are refused.
    pub capacity: usize,
    /// The first demotion of a plugin; each demotion within `clean_spell`
    /// of the last one ending lasts twice as long, up to `max_demotion`.
    pub demotion: Duration,
    pub max_demotion: Duration,
    pub clean_spell: Duration,
}

impl Default for SlowLaneSettings {
    fn default() -> Self {
        Self {
            // A spinning plugin holds the lane for its whole time limit
            // (50 ms by default): 64 such calls are 3 s of work. More would
            // only make requests wait longer to be refused by the deadline.
            capacity: 64,
            demotion: Duration::from_secs(30),
            max_demotion: Duration::from_secs(600),
            clean_spell: Duration::from_secs(600),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One low-priority thread and its bounded queue, shared by every chain a
/// runtime loads. The thread starts on first use.
pub(crate) struct SlowLane {
    settings: SlowLaneSettings,
    queue: OnceLock<Option<Mutex<Sender<Job>>>>,
    /// Calls queued or running: the bound and the gauge.
    calls: AtomicUsize,
    metrics: SlowLaneMetrics,
}

/// The lane could not take a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    NoThread,
}

impl Refused {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::Full => "slow lane full",
            Refused::NoThread => "slow lane thread could not start",
        }
    }
}

impl SlowLane {
    pub(crate) fn new(settings: SlowLaneSettings, metrics: SlowLaneMetrics) -> Self {
        Self {
            settings,
            queue: OnceLock::new(),
            calls: AtomicUsize::new(0),
            metrics,
        }
    }

    pub(crate) fn settings(&self) -> &SlowLaneSettings {
        &self.settings
    }

    pub(crate) fn metrics(&self) -> &SlowLaneMetrics {
        &self.metrics
    }

    /// A place in the lane for one call, or why there is none; taken
    /// before the call's input is moved, so a refusal loses nothing.
    pub(crate) fn reserve(self: &Arc<Self>) -> Result<Reservation, Refused> {
        let taken = self.calls.fetch_add(1, Ordering::Relaxed);
        if taken >= self.settings.capacity {
            self.calls.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        self.metrics.calls.inc();
        let reservation = Reservation(self.clone());
        match self.queue.get_or_init(start_thread) {
            Some(_) => Ok(reservation),
            None => Err(Refused::NoThread),
        }
    }

    fn release(&self) {
        self.calls.fetch_sub(1, Ordering::Relaxed);
        self.metrics.calls.dec();
    }
}

/// A place held in the lane; given back when its call ends (or unused).
pub(crate) struct Reservation(Arc<SlowLane>);

impl Reservation {
    /// Runs `call` on the lane; the future resolves with its result.
    pub(crate) fn run<R: Send + 'static>(
        self,
        call: impl FnOnce() -> R + Send + 'static,
    ) -> impl Future<Output = R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn(move || {
            let _ = tx.send(call());
        });
        async move { rx.await.expect("the slow lane answers every call it took") }
    }

    /// Runs `call` on the lane and forgets it.
    pub(crate) fn spawn(self, call: impl FnOnce() + Send + 'static) {
        let lane = self.0.clone();
        let queue = lane.queue.get().and_then(Option::as_ref);
        let queue = queue.expect("a reservation is only made with a running lane");
        let job: Job = Box::new(move || {
            call();
            drop(self);
        });
        let sent = queue.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        sent.expect("the slow lane's thread outlives its queue's senders");
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The hook calls as the proxy makes them: inline unless a demoted plugin
/// takes part, else on the lane.
impl PluginChain {
    /// [`PluginChain::on_connection`], on the lane when it must.
    pub async fn on_connection_async(self: &Arc<Self>, conn: Connection) -> ConnectionOutcome {
        let direction = conn.direction;
        let call = |chain: &PluginChain, conn| chain.on_connection(conn);
        self.call(direction, Hooks::CONNECTION, conn, call, |_, failure| {
            ConnectionOutcome::Fail(failure)
        })
        .await
    }

    /// [`PluginChain::on_request`], on the lane when it must.
    pub async fn on_request_async(
        self: &Arc<Self>,
        view: RequestView,
    ) -> (RequestView, RequestOutcome) {
        let direction = view.direction;
        let call = |chain: &PluginChain, view| chain.on_request(view);
        self.call(direction, Hooks::REQUEST, view, call, |view, failure| {
            (view, RequestOutcome::Fail(failure))
        })
        .await
    }

    /// [`PluginChain::on_response`], on the lane when it must.
    pub async fn on_response_async(
        self: &Arc<Self>,
        req: RequestView,
        rsp: http::response::Parts,
    ) -> (RequestView, http::response::Parts, ResponseOutcome) {
        let direction = req.direction;
        let call = |chain: &PluginChain, (req, rsp)| chain.on_response(req, rsp);
        let refuse = |(req, rsp), failure| (req, rsp, ResponseOutcome::Fail(failure));
        self.call(direction, Hooks::RESPONSE, (req, rsp), call, refuse)
            .await
    }

    /// [`PluginChain::on_complete`]; on the lane, without waiting, when it
    /// must. With the lane full, demoted plugins miss this completion.
    pub fn on_complete_detached(self: &Arc<Self>, req: RequestView, info: Completion) {
        let callees = self.callees.get(req.direction, Hooks::COMPLETION);
        if !self.demotions.involve(callees) {
            return self.on_complete(req, info);
        }
        match self.lane.reserve() {
            Ok(reservation) => {
                let chain = self.clone();
                reservation.spawn(move || chain.on_complete(req, info));
            }
            Err(_) => shedding(|| self.on_complete(req, info)),
        }
    }

    /// Whether the plugin named `plugin` is demoted to the slow lane now.
    pub fn is_demoted(&self, plugin: &str) -> bool {
        self.names()
            .position(|name| name == plugin)
            .is_some_and(|i| self.demotions.is_demoted(i))
    }

    /// Demotes plugin `i` after a call of `hook` that overran (`took` is
    /// then about how long it ran) or stopped at a limit. A plugin already
    /// demoted stays as it is: its calls are in the lane already.
    pub(super) fn demote(&self, i: usize, hook: Hooks, took: Option<Duration>) {
        if self.demotions.is_demoted(i) {
            return;
        }
        let plugin = &self.plugins[i].spec;
        let period = self.demotions.demote(i, self.lane.settings());
        self.lane.metrics().demoted(&plugin.name);
        let took = match took {
            Some(took) => format!("ran {} ms", took.as_millis()),
            None => "stopped at its time or memory limit".to_string(),
        };
        tracing::warn!(
            plugin = %plugin.name,
            hook = hook_name(hook),
            took,
            demoted_for_s = period.as_secs_f64(),
            "plugin demoted to the slow lane: its hook calls run off the worker, at low priority",
        );
    }

    async fn call<I: Send + 'static, R: Send + 'static>(
        self: &Arc<Self>,
        direction: Direction,
        hook: Hooks,
        input: I,
        call: fn(&PluginChain, I) -> R,
        refuse: fn(I, PluginFailure) -> R,
    ) -> R {
        let callees = self.callees.get(direction, hook);
        if !self.demotions.involve(callees) {
            return call(self, input);
        }
        let refused = match self.lane.reserve() {
            Ok(reservation) => {
                let chain = self.clone();
                return reservation.run(move || call(&chain, input)).await;
            }
            Err(refused) => refused,
        };
        // No room: a demoted fail-closed plugin refuses the call; demoted
        // fail-open ones are skipped and the others run here.
        let policy = |i: usize| self.plugins[i].spec.failure_policy;
        match closed_demoted(&self.demotions, callees, policy) {
            Some(i) => {
                let failure = PluginFailure {
                    plugin: self.plugins[i].spec.name.clone(),
                    reason: refused.reason().to_string(),
                };
                tracing::warn!(plugin = %failure.plugin, reason = %failure.reason, "plugin failed");
                refuse(input, failure)
            }
            None => shedding(|| call(self, input)),
        }
    }
}

/// The lane's thread, at nice 19: on a busy CPU the worker runs first, and
/// the lane gets what is left. `SCHED_IDLE` would starve it outright while
/// the worker is busy, and a demoted plugin's calls, still bounded by their
/// wall-clock time limit, would then all fail; nice 19 still gives it a
/// small share. The thread ends when its runtime is dropped.
fn start_thread() -> Option<Mutex<Sender<Job>>> {
    let (tx, rx) = channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("weft-plugin-slow-lane".into())
        .spawn(move || {
            // On Linux, priority is per thread: this one alone is lowered.
            if let Err(error) = rustix::process::setpriority_process(None, 19) {
                tracing::warn!(%error, "cannot lower the slow lane's CPU priority");
            }
            for job in rx {
                // A panicking call drops its answer's sender, and the
                // request awaiting it fails as it would have inline; the
                // lane goes on serving the others.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        });
    match spawned {
        Ok(_) => Some(Mutex::new(tx)),
        Err(error) => {
            tracing::error!(%error, "cannot start the plugin slow lane");
            None
        }
    }
}

/// The failure of a demoted plugin skipped because the lane was full.
pub(super) fn shed_failure(plugin: &LoadedPlugin) -> PluginFailure {
    PluginFailure {
        plugin: plugin.spec.name.clone(),
        reason: Refused::Full.reason().to_string(),
    }
}

fn hook_name(hook: Hooks) -> &'static str {
    if hook == Hooks::CONNECTION {
        "on-connection"
    } else if hook == Hooks::REQUEST {
        "on-request"
    } else if hook == Hooks::RESPONSE {
        "on-response"
    } else {
        "on-complete"
    }
}

type PluginLabel = Vec<(String, String)>;

/// `weft_plugin_demotions_total{plugin}` and `weft_plugin_slow_lane_calls`.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlowLaneMetrics {
    demotions: Family<PluginLabel, Counter>,
    calls: Gauge,
}

impl SlowLaneMetrics {
    pub(crate) fn demoted(&self, plugin: &str) {
        self.demotions
            .get_or_create(&vec![("plugin".to_string(), plugin.to_string())])
            .inc();
    }
}

impl SlowLaneMetrics {
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.demotions.encode(encoder.encode_descriptor(
            "weft_plugin_demotions",
            "Times a plugin was moved to the slow lane because a hook call ran past \
             5 ms or stopped at its time or memory limit.",
            None,
            self.demotions.metric_type(),
        )?)?;
        self.calls.encode(encoder.encode_descriptor(
            "weft_plugin_slow_lane_calls",
            "Hook calls of demoted plugins waiting or running in the slow lane.",
            None,
            self.calls.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
