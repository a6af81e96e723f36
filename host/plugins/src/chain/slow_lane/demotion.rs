//! Which plugins are demoted, and how an overrun is noticed: by the epoch
//! deadline that bounds every hook call anyway, so a call that does not
//! overrun reads no clock.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::SlowLaneSettings;
use crate::engine::EPOCH_TICK;
use crate::spec::FailurePolicy;

/// A hook call slower than this demotes its plugin. Calls take about a
/// microsecond; one that took 5 ms did 5,000 times its normal work and held
/// the worker longer than a whole request usually takes. Counted in epoch
/// ticks (two: it fires between 5 and 10 ms), since a tick boundary inside
/// a short call must not count as an overrun.
pub(crate) const SLOW_CALL_TICKS: u64 = 2;
pub(crate) const SLOW_CALL: Duration = EPOCH_TICK;

/// Set by the epoch callback when a call of this instance ran past
/// [`SLOW_CALL`]; read and cleared after each call.
#[derive(Debug, Default)]
pub(crate) struct SlowWatch {
    overran: AtomicBool,
    at: Mutex<Option<Instant>>,
}

impl SlowWatch {
    /// The epoch deadline callback of a store: the first time a call
    /// reaches [`SLOW_CALL_TICKS`] it is marked slow and given the rest of
    /// its time limit; the next time, it is interrupted.
    pub(crate) fn callback<T>(
        self: &Arc<Self>,
        deadline_ticks: u64,
    ) -> impl FnMut(wasmtime::StoreContextMut<T>) -> wasmtime::Result<wasmtime::UpdateDeadline>
    + Send
    + Sync
    + 'static {
        let watch = self.clone();
        move |_| {
            let rest = deadline_ticks.saturating_sub(SLOW_CALL_TICKS);
            if rest == 0 || watch.overran.load(Ordering::Relaxed) {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            *watch.at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            watch.overran.store(true, Ordering::Relaxed);
            Ok(wasmtime::UpdateDeadline::Continue(rest))
        }
    }

    /// The first ticks of a call: past them, the callback marks it slow.
    pub(crate) fn first_ticks(deadline_ticks: u64) -> u64 {
        deadline_ticks.min(SLOW_CALL_TICKS)
    }

    /// Whether the last call overran, and roughly how long it took; clears
    /// the mark for the next call.
    #[inline]
    pub(crate) fn take(&self) -> Option<Duration> {
        if !self.overran.load(Ordering::Relaxed) {
            return None;
        }
        self.overran.store(false, Ordering::Relaxed);
        let at = self.at.lock().unwrap_or_else(|p| p.into_inner()).take();
        Some(SLOW_CALL + at.map_or(Duration::ZERO, |at| at.elapsed()))
    }
}

/// Which plugins of one chain are demoted, and until when.
pub(crate) struct Demotions {
    /// Plugins demoted now (or whose demotion ended but was not yet seen
    /// to): while zero, every call stays inline after one relaxed load.
    active: AtomicUsize,
    pub(super) plugins: Box<[Mutex<Demotion>]>,
}

#[derive(Default)]
pub(super) struct Demotion {
    until: Option<Instant>,
    /// The last demotion's length and end, for the doubling.
    pub(super) last: Option<(Duration, Instant)>,
}

thread_local! {
    /// Set while a call runs inline because the lane was full: demoted
    /// plugins then fail ("slow lane full") instead of running here.
    static SHEDDING: Cell<bool> = const { Cell::new(false) };
}

impl Demotions {
    pub(crate) fn new(plugins: usize) -> Self {
        Self {
            active: AtomicUsize::new(0),
            plugins: (0..plugins).map(|_| Mutex::default()).collect(),
        }
    }

    /// Whether any plugin may be demoted: the hot path's one check.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// Whether plugin `i` is demoted now; a demotion that ended is cleared.
    pub(crate) fn is_demoted(&self, i: usize) -> bool {
        let mut demotion = self.plugins[i].lock().unwrap_or_else(|p| p.into_inner());
        match demotion.until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                demotion.until = None;
                self.active.fetch_sub(1, Ordering::Relaxed);
                false
            }
            None => false,
        }
    }

    /// Demotes plugin `i` (again); returns for how long.
    pub(crate) fn demote(&self, i: usize, settings: &SlowLaneSettings) -> Duration {
        let now = Instant::now();
        let mut demotion = self.plugins[i].lock().unwrap_or_else(|p| p.into_inner());
        let period = match demotion.last {
            Some((last, ended)) if now < ended + settings.clean_spell => {
                (last * 2).min(settings.max_demotion)
            }
            _ => settings.demotion,
        };
        if demotion.until.is_none() {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        demotion.until = Some(now + period);
        demotion.last = Some((period, now + period));
        period
    }

    /// Whether a call of `callees` must go to the lane.
    pub(crate) fn involve(&self, callees: &[usize]) -> bool {
        self.any() && callees.iter().any(|&i| self.is_demoted(i))
    }

    /// Whether plugin `i` must fail this call: it is demoted and the lane
    /// had no room for the call.
    pub(crate) fn shed(&self, i: usize) -> bool {
        SHEDDING.get() && self.is_demoted(i)
    }
}

/// Runs `call` inline with demoted plugins failing as "slow lane full".
pub(crate) fn shedding<R>(call: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SHEDDING.set(false);
        }
    }
    SHEDDING.set(true);
    let _reset = Reset;
    call()
}

/// The first fail-closed plugin among `callees` that is demoted: with the
/// lane full, the call is refused in its name without running.
pub(crate) fn closed_demoted(
    demotions: &Demotions,
    callees: &[usize],
    policy: impl Fn(usize) -> FailurePolicy,
) -> Option<usize> {
    callees
        .iter()
        .copied()
        .find(|&i| policy(i) == FailurePolicy::FailClosed && demotions.is_demoted(i))
}
