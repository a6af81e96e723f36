//! Which plugins are demoted, and how an overrun is noticed: by the epoch
//! deadline that bounds every hook call anyway, so a call that does not
//! overrun reads no clock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
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
/// [`SLOW_CALL`] on the CPU; read and cleared after each call.
///
/// Epochs count wall-clock time, and on a busy machine a short call can be
/// descheduled past two ticks. So when a call reaches them, the callback
/// notes its thread's CPU time and looks again [`CONFIRM_TICKS`] later:
/// only a call that kept the CPU most of that while is marked. A call
/// descheduled there and slow after still meets its time limit, and the
/// trap demotes it.
#[derive(Debug, Default)]
pub(crate) struct SlowWatch {
    phase: AtomicU8,
    sample: Mutex<Option<(Instant, Duration)>>,
    /// How long the marked call had run when it was marked.
    took: Mutex<Option<(Instant, Duration)>>,
}

/// Ticks between the two looks at a call's CPU time.
const CONFIRM_TICKS: u64 = 2;

const IDLE: u8 = 0;
const SAMPLED: u8 = 1;
const EXTENDED: u8 = 2;
const OVERRAN: u8 = 3;

impl SlowWatch {
    /// The epoch deadline callback of a store: it samples a call that
    /// reached [`SLOW_CALL_TICKS`], marks it if it kept the CPU, gives it
    /// the rest of its time limit and then interrupts it.
    pub(crate) fn callback<T>(
        self: &Arc<Self>,
        deadline_ticks: u64,
    ) -> impl FnMut(wasmtime::StoreContextMut<T>) -> wasmtime::Result<wasmtime::UpdateDeadline>
    + Send
    + Sync
    + 'static {
        let watch = self.clone();
        move |_| {
            let first = Self::first_ticks(deadline_ticks);
            let phase = watch.phase.load(Ordering::Relaxed);
            let update = match phase {
                IDLE if deadline_ticks > first + CONFIRM_TICKS => {
                    *lock(&watch.sample) = Some((Instant::now(), thread_cpu_time()));
                    watch.phase.store(SAMPLED, Ordering::Relaxed);
                    wasmtime::UpdateDeadline::Continue(CONFIRM_TICKS)
                }
                SAMPLED => {
                    let (wall, cpu) = lock(&watch.sample).take().expect("sampled");
                    let (wall, cpu) = (wall.elapsed(), thread_cpu_time().saturating_sub(cpu));
                    let kept_cpu = cpu * 2 >= wall;
                    if kept_cpu {
                        let ran = SLOW_CALL + wall;
                        *lock(&watch.took) = Some((Instant::now(), ran));
                    }
                    let next = if kept_cpu { OVERRAN } else { EXTENDED };
                    watch.phase.store(next, Ordering::Relaxed);
                    let rest = deadline_ticks - first - CONFIRM_TICKS;
                    wasmtime::UpdateDeadline::Continue(rest)
                }
                // Too short a limit to sample within: the rest, unsampled.
                IDLE if deadline_ticks > first => {
                    watch.phase.store(EXTENDED, Ordering::Relaxed);
                    wasmtime::UpdateDeadline::Continue(deadline_ticks - first)
                }
                _ => wasmtime::UpdateDeadline::Interrupt,
            };
            Ok(update)
        }
    }

    /// The first ticks of a call: past them, the callback looks at it.
    pub(crate) fn first_ticks(deadline_ticks: u64) -> u64 {
        deadline_ticks.min(SLOW_CALL_TICKS)
    }

    /// Whether the last call overran, and roughly how long it took; clears
    /// the mark for the next call.
    #[inline]
    pub(crate) fn take(&self) -> Option<Duration> {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            return None;
        }
        let phase = self.phase.swap(IDLE, Ordering::Relaxed);
        lock(&self.sample).take();
        let took = lock(&self.took).take();
        (phase == OVERRAN).then(|| took.map_or(SLOW_CALL, |(at, ran)| ran + at.elapsed()))
    }
}

/// CPU time this thread has used, user and system.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
