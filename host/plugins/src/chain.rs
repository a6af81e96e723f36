//! An ordered chain of plugins and the hook calls on it.
//!
//! Each plugin instance lives in its own store (a trap poisons its whole
//! store, and one failing plugin must not take the others down). A hook call
//! on a ready instance costs about a microsecond, instantiation ten, so
//! ready instances of the whole chain wait in a pool. Hook calls are
//! synchronous and short: instances are checked out for one hook, never
//! across an await. An instance that trapped, timed out or hit its memory
//! limit is replaced, and the plugin's failure policy decides the request's
//! fate. A plugin whose call overran is demoted to the slow lane
//! (`slow_lane.rs`) for a while, so its calls stop stalling the worker.

mod slow_lane;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{Engine, Store, Trap};

use crate::bindings::{
    Completion, Connection, ConnectionAction, Direction, Hooks, LocalResponse, Plugin, PluginPre,
    RequestAction, ResponseAction,
};
use crate::handles::{RequestView, borrow};
use crate::host::{PluginContext, State};
use crate::metrics::PluginMetrics;
use crate::spec::{FailurePolicy, PluginSpec, SpecDirection};
pub use slow_lane::SlowLaneSettings;
use slow_lane::{Demotions, SlowWatch};
pub(crate) use slow_lane::{SlowLane, SlowLaneMetrics};

/// A plugin ready to instantiate.
pub(crate) struct LoadedPlugin {
    pub spec: PluginSpec,
    pub pre: PluginPre<State>,
    pub deadline_ticks: u64,
    /// For instantiation and `init`: [`init_timeout`].
    pub init_deadline_ticks: u64,
    pub hooks: Hooks,
}

/// The most time instantiating a plugin and its `init` may take. A load
/// runs them off the request path, where they must not fail for a thread
/// the machine kept waiting; a plugin whose `init` never returns is still
/// refused, by the load that first starts it.
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(2);

/// What instantiation and `init` may take: [`INIT_TIMEOUT`], or the hook
/// timeout when that is longer.
pub(crate) fn init_timeout(spec: &PluginSpec) -> Duration {
    spec.timeout().max(INIT_TIMEOUT)
}

impl LoadedPlugin {
    fn sees(&self, direction: Direction, hook: Hooks) -> bool {
        let direction = match direction {
            Direction::Inbound => SpecDirection::Inbound,
            Direction::Outbound => SpecDirection::Outbound,
        };
        self.hooks.contains(hook)
            && (self.spec.directions.is_empty() || self.spec.directions.contains(&direction))
    }
}

const HOOKS: [Hooks; 4] = [
    Hooks::CONNECTION,
    Hooks::REQUEST,
    Hooks::RESPONSE,
    Hooks::COMPLETION,
];

/// The plugins each hook calls in each direction, in chain order: worked
/// out once per load, so a call pays nothing for plugins that skip it, and
/// a hook no plugin takes in that direction checks no instance out.
#[derive(Default)]
struct Callees([[Box<[usize]>; HOOKS.len()]; 2]);

impl Callees {
    fn new(plugins: &[LoadedPlugin]) -> Self {
        let mut callees = Self::default();
        for direction in [Direction::Inbound, Direction::Outbound] {
            for hook in HOOKS {
                *callees.slot(direction, hook) = (0..plugins.len())
                    .filter(|&i| plugins[i].sees(direction, hook))
                    .collect();
            }
        }
        callees
    }

    fn get(&self, direction: Direction, hook: Hooks) -> &[usize] {
        &self.0[direction_index(direction)][hook_index(hook)]
    }

    fn slot(&mut self, direction: Direction, hook: Hooks) -> &mut Box<[usize]> {
        &mut self.0[direction_index(direction)][hook_index(hook)]
    }
}

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    }
}

fn hook_index(hook: Hooks) -> usize {
    HOOKS
        .iter()
        .position(|h| *h == hook)
        .expect("one of the four hooks")
}

/// A plugin failed (trap, deadline, memory); says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}` failed: {reason}")]
pub struct PluginFailure {
    pub plugin: String,
    pub reason: String,
}

#[derive(Debug)]
pub enum RequestOutcome {
    Continue,
    /// A plugin answered; nothing goes upstream.
    Respond {
        plugin: String,
        response: LocalResponse,
    },
    /// A fail-closed plugin failed: answer with a 5xx naming it.
    Fail(PluginFailure),
}

#[derive(Debug, PartialEq, Eq)]
pub enum ResponseOutcome {
    Continue,
    Retry,
    Fail(PluginFailure),
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConnectionOutcome {
    Allow,
    Deny { plugin: String },
    Fail(PluginFailure),
}

/// One instance of every plugin in the chain; `None` where an instance
/// failed and must be made anew before its next call.
struct ChainInstance {
    slots: Vec<Option<Slot>>,
}

struct Slot {
    store: Store<State>,
    plugin: Plugin,
    watch: Arc<SlowWatch>,
}

pub struct PluginChain {
    engine: Engine,
    plugins: Vec<LoadedPlugin>,
    contexts: Arc<[PluginContext]>,
    metrics: Arc<PluginMetrics>,
    pool: Mutex<Vec<ChainInstance>>,
    hooks: Hooks,
    callees: Callees,
    demotions: Demotions,
    lane: Arc<SlowLane>,
}

impl PluginChain {
    /// Builds the chain and one instance of it, which runs every plugin's
    /// `init`: a plugin that rejects its configuration fails the load.
    pub(crate) fn new(
        engine: Engine,
        mut plugins: Vec<LoadedPlugin>,
        metrics: Arc<PluginMetrics>,
        lane: Arc<SlowLane>,
    ) -> Result<Self, PluginFailure> {
        let generation = metrics.next_generation();
        let contexts: Arc<[PluginContext]> = plugins
            .iter()
            .map(|p| PluginContext {
                name: p.spec.name.clone(),
                shared: Default::default(),
                memory_limit: p.spec.memory_limit_bytes,
                metric_series_limit: p.spec.metric_series_limit,
                metrics_generation: generation,
            })
            .collect();
        let mut slots = Vec::with_capacity(plugins.len());
        for index in 0..plugins.len() {
            let (slot, hooks) = instantiate(&engine, &plugins, index, &contexts, &metrics)?;
            plugins[index].hooks = hooks;
            slots.push(Some(slot));
        }
        let instance = ChainInstance { slots };
        let all = plugins.iter().fold(Hooks::empty(), |all, p| all | p.hooks);
        Ok(Self {
            engine,
            callees: Callees::new(&plugins),
            demotions: Demotions::new(plugins.len()),
            lane,
            plugins,
            contexts,
            metrics,
            pool: Mutex::new(vec![instance]),
            hooks: all,
        })
    }

    /// An empty chain: every hook continues without entering wasm.
    pub fn empty(engine: Engine, metrics: Arc<PluginMetrics>) -> Self {
        Self {
            engine,
            plugins: Vec::new(),
            contexts: Arc::from([]),
            metrics,
            pool: Mutex::default(),
            hooks: Hooks::empty(),
            callees: Callees::default(),
            demotions: Demotions::new(0),
            lane: Arc::new(SlowLane::new(Default::default(), Default::default())),
        }
    }

    /// Whether any plugin implements `hook`; callers skip work (such as
    /// keeping a copy of the request) that no plugin needs.
    pub fn wants(&self, hook: Hooks) -> bool {
        self.hooks.contains(hook)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plugins.iter().map(|p| p.spec.name.as_str())
    }

    pub fn on_connection(&self, conn: Connection) -> ConnectionOutcome {
        if !self.wants(Hooks::CONNECTION) {
            return ConnectionOutcome::Allow;
        }
        let direction = conn.direction;
        self.each(
            direction,
            Hooks::CONNECTION,
            ConnectionOutcome::Allow,
            |plugin, store| match plugin
                .weft_plugin_filter()
                .call_on_connection(&mut *store, &conn)?
            {
                ConnectionAction::Allow => Ok(None),
                ConnectionAction::Deny => Ok(Some(ConnectionOutcome::Deny {
                    plugin: store.data().plugin_name().to_string(),
                })),
            },
            ConnectionOutcome::Fail,
        )
    }

    /// Runs the request hooks in order; the view comes back with their edits.
    pub fn on_request(&self, view: RequestView) -> (RequestView, RequestOutcome) {
        if !self.wants(Hooks::REQUEST) {
            return (view, RequestOutcome::Continue);
        }
        let direction = view.direction;
        let mut slot = Some(view);
        let outcome = self.each(
            direction,
            Hooks::REQUEST,
            RequestOutcome::Continue,
            |plugin, store| {
                store.data_mut().request = slot.take();
                let action = plugin
                    .weft_plugin_filter()
                    .call_on_request(&mut *store, borrow());
                slot = store.data_mut().request.take();
                match action? {
                    RequestAction::Continue => Ok(None),
                    RequestAction::Respond(response) => Ok(Some(RequestOutcome::Respond {
                        plugin: store.data().plugin_name().to_string(),
                        response,
                    })),
                }
            },
            RequestOutcome::Fail,
        );
        (
            slot.expect("the request view returns from every call"),
            outcome,
        )
    }

    /// Runs the response hooks; `rsp` comes back with their edits, and
    /// `req` as it was, for the next attempt and the completion hooks.
    pub fn on_response(
        &self,
        req: RequestView,
        rsp: http::response::Parts,
    ) -> (RequestView, http::response::Parts, ResponseOutcome) {
        if !self.wants(Hooks::RESPONSE) {
            return (req, rsp, ResponseOutcome::Continue);
        }
        let direction = req.direction;
        let mut slots = Some((req, rsp));
        let outcome = self.each(
            direction,
            Hooks::RESPONSE,
            ResponseOutcome::Continue,
            |plugin, store| {
                let (req, rsp) = slots.take().expect("slots return from every call");
                store.data_mut().request = Some(req);
                store.data_mut().response = Some(rsp);
                let action =
                    plugin
                        .weft_plugin_filter()
                        .call_on_response(&mut *store, borrow(), borrow());
                let data = store.data_mut();
                slots = data.request.take().zip(data.response.take());
                match action? {
                    ResponseAction::Continue => Ok(None),
                    ResponseAction::Retry => Ok(Some(ResponseOutcome::Retry)),
                }
            },
            ResponseOutcome::Fail,
        );
        let (req, rsp) = slots.expect("slots return from every call");
        (req, rsp, outcome)
    }

    /// Telemetry: failures here are logged and otherwise ignored.
    pub fn on_complete(&self, req: RequestView, info: Completion) {
        if !self.wants(Hooks::COMPLETION) {
            return;
        }
        let direction = req.direction;
        let mut slot = Some(req);
        self.each(
            direction,
            Hooks::COMPLETION,
            (),
            |plugin, store| {
                store.data_mut().request = slot.take();
                let done =
                    plugin
                        .weft_plugin_filter()
                        .call_on_complete(&mut *store, borrow(), &info);
                slot = store.data_mut().request.take();
                done.map(|()| None)
            },
            |_| (),
        );
    }

    /// Calls `call` for each plugin that implements `hook` for `direction`,
    /// in order, until one returns an outcome. Failures follow the failing
    /// plugin's policy: fail-open skips it, fail-closed ends the chain.
    fn each<O>(
        &self,
        direction: Direction,
        hook: Hooks,
        done: O,
        mut call: impl FnMut(&Plugin, &mut Store<State>) -> wasmtime::Result<Option<O>>,
        fail: impl Fn(PluginFailure) -> O,
    ) -> O {
        let callees = self.callees.get(direction, hook);
        if callees.is_empty() {
            return done;
        }
        let mut instance = self.checkout();
        let mut outcome = None;
        let shedding = self.demotions.any();
        for &i in callees {
            let plugin = &self.plugins[i];
            if shedding && self.demotions.shed(i) {
                let failure = slow_lane::shed_failure(plugin);
                match Self::on_failure(plugin.spec.failure_policy, failure, &fail) {
                    Some(result) => {
                        outcome = Some(result);
                        break;
                    }
                    None => continue,
                }
            }
            let result = match self.slot(&mut instance, i) {
                Err(failure) => Err(failure),
                Ok(slot) => {
                    slot.store.data_mut().begin_call();
                    let ticks = SlowWatch::first_ticks(plugin.deadline_ticks);
                    slot.store.set_epoch_deadline(ticks);
                    let result = call(&slot.plugin, &mut slot.store);
                    let overran = slot.watch.take();
                    let limited = result.as_ref().is_err_and(|e| hit_limit(&slot.store, e));
                    if overran.is_some() || limited {
                        self.demote(i, hook, overran);
                    }
                    result.map_err(|e| describe(plugin, &slot.store, &e))
                }
            };
            match result {
                Ok(None) => {}
                Ok(Some(result)) => {
                    outcome = Some(result);
                    break;
                }
                Err(failure) => {
                    // The instance cannot be entered again: replace it later.
                    instance.slots[i] = None;
                    if let Some(result) =
                        Self::on_failure(plugin.spec.failure_policy, failure, &fail)
                    {
                        outcome = Some(result);
                        break;
                    }
                }
            }
        }
        self.checkin(instance);
        outcome.unwrap_or(done)
    }

    /// Plugin `i`'s instance, made anew if the last one failed.
    fn slot<'a>(
        &self,
        instance: &'a mut ChainInstance,
        i: usize,
    ) -> Result<&'a mut Slot, PluginFailure> {
        if instance.slots[i].is_none() {
            let (slot, _) = instantiate(
                &self.engine,
                &self.plugins,
                i,
                &self.contexts,
                &self.metrics,
            )?;
            instance.slots[i] = Some(slot);
        }
        Ok(instance.slots[i].as_mut().expect("filled above"))
    }

    fn on_failure<O>(
        policy: FailurePolicy,
        failure: PluginFailure,
        fail: &impl Fn(PluginFailure) -> O,
    ) -> Option<O> {
        tracing::warn!(plugin = %failure.plugin, reason = %failure.reason, ?policy, "plugin failed");
        (policy == FailurePolicy::FailClosed).then(|| fail(failure))
    }

    fn checkout(&self) -> ChainInstance {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        pooled.unwrap_or_else(|| ChainInstance {
            slots: self.plugins.iter().map(|_| None).collect(),
        })
    }

    fn checkin(&self, mut instance: ChainInstance) {
        for slot in instance.slots.iter_mut().flatten() {
            let data = slot.store.data_mut();
            data.request = None;
            data.response = None;
        }
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance);
    }
}

/// A new, initialised instance of plugin `index`, and the hooks it declared.
fn instantiate(
    engine: &Engine,
    plugins: &[LoadedPlugin],
    index: usize,
    contexts: &Arc<[PluginContext]>,
    metrics: &Arc<PluginMetrics>,
) -> Result<(Slot, Hooks), PluginFailure> {
    let plugin = &plugins[index];
    let state = State::new(contexts.clone(), index, metrics.clone());
    let mut store = Store::new(engine, state);
    store.limiter(|state| state as &mut dyn wasmtime::ResourceLimiter);
    let describe_start = |store: &Store<State>, e: &wasmtime::Error| {
        let mut failure = describe(plugin, store, e);
        if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            let limit = init_timeout(&plugin.spec).as_millis();
            failure.reason = format!("did not start within {limit} ms");
        }
        failure
    };
    // Before instantiating: instantiation runs guest code too. Epochs count
    // wall-clock time, so a hook's own deadline would refuse a sound chain
    // whenever a busy machine descheduled the thread loading it.
    store.set_epoch_deadline(plugin.init_deadline_ticks);
    let instance = plugin
        .pre
        .instantiate(&mut store)
        .map_err(|e| describe_start(&store, &e))?;
    store.set_epoch_deadline(plugin.init_deadline_ticks);
    let init = instance
        .weft_plugin_filter()
        .call_init(&mut store, &plugin.spec.config_text())
        .map_err(|e| describe_start(&store, &e))?;
    let hooks = init.map_err(|message| PluginFailure {
        plugin: plugin.spec.name.clone(),
        reason: format!("rejected its configuration: {message}"),
    })?;
    // From here on, calls that overrun are marked (see `slow_lane.rs`).
    let watch = Arc::new(SlowWatch::default());
    store.epoch_deadline_callback(watch.callback(plugin.deadline_ticks));
    Ok((
        Slot {
            store,
            plugin: instance,
            watch,
        },
        hooks,
    ))
}

/// Whether a call stopped at its time or memory limit.
fn hit_limit(store: &Store<State>, error: &wasmtime::Error) -> bool {
    store.data().memory_denied() || matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt))
}

fn describe(plugin: &LoadedPlugin, store: &Store<State>, error: &wasmtime::Error) -> PluginFailure {
    let reason = if store.data().memory_denied() {
        format!(
            "exceeded its memory limit of {} bytes",
            plugin.spec.memory_limit_bytes
        )
    } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        format!("did not finish within {} ms", plugin.spec.timeout_ms)
    } else {
        format!("trapped: {error:#}")
    };
    PluginFailure {
        plugin: plugin.spec.name.clone(),
        reason,
    }
}
