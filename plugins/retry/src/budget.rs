//! Linkerd's retry budget (tower's `TpsBudget`), shared by every instance of
//! the plugin: within the last `ttlSeconds`, retries may not exceed
//! `minRetriesPerSecond * ttlSeconds + retryRatio * requests`.
//!
//! Instances share no memory, only the proxy's atomic counters, so the window
//! is a ring of [`SLOTS`] slots, each `ttl / SLOTS` long, counting requests
//! and retries. A slot's generation counter holds the index of the time
//! window it counts; a slot from an older window is stale, and the one
//! instance whose swap of the generation returns the old value zeroes it.
//! Sums read only slots whose generation is within the last `SLOTS` windows.
//!
//! Without compare-and-swap this is approximate at slot boundaries: a count
//! added between the winner's generation swap and its zeroing is lost. That
//! takes two calls into the proxy, so the error is a few counts at most.

use std::cell::Cell;

use crate::config::BudgetConfig;

/// Slots per ttl, as in tower.
pub const SLOTS: usize = 10;

/// Absorbs rounding in `ratio * requests` (0.1 * 30 is 3.0000000000000004):
/// counts are whole numbers, so this never admits an extra retry.
const EPSILON: f64 = 1e-9;

/// An atomic counter shared by every instance; the proxy's `shared` counters
/// in the plugin, plain cells in tests.
pub trait SharedCounter {
    fn get(&self) -> i64;
    /// Adds `delta` and returns the new value.
    fn add_and_get(&self, delta: i64) -> i64;
    /// Sets `value` and returns the value it replaced.
    fn swap(&self, value: i64) -> i64;
}

struct Slot<C> {
    generation: C,
    requests: C,
    retries: C,
}

pub struct Budget<C> {
    slots: Vec<Slot<C>>,
    /// The window this instance last found its slot counting: until the
    /// clock leaves it, no instance can move that slot on, so the
    /// generation need not be asked again (one call into the proxy less
    /// per request).
    current_window: Cell<Option<i64>>,
    slot_us: u64,
    reserve: f64,
    ratio: f64,
}

impl<C: SharedCounter> Budget<C> {
    /// A budget over the counters `counter` returns for each name, all of
    /// whose names start with `name`.
    pub fn new(config: &BudgetConfig, name: &str, mut counter: impl FnMut(&str) -> C) -> Self {
        let ttl = config.ttl_seconds;
        // The ttl is in the names: a reload with another ttl measures
        // windows in other units, so it must not read these slots.
        let mut named = |slot: usize, kind: &str| counter(&format!("{name}.{ttl}s.{slot}.{kind}"));
        Budget {
            slots: (0..SLOTS)
                .map(|slot| Slot {
                    generation: named(slot, "generation"),
                    requests: named(slot, "requests"),
                    retries: named(slot, "retries"),
                })
                .collect(),
            current_window: Cell::new(None),
            slot_us: u64::from(ttl) * 1_000_000 / SLOTS as u64,
            reserve: config.min_retries_per_second * f64::from(ttl),
            ratio: config.retry_ratio,
        }
    }

    /// Counts an original request.
    pub fn deposit(&self, now_us: u64) {
        self.current(now_us).requests.add_and_get(1);
    }

    /// Counts a retry if the budget allows one; `false` when it does not.
    pub fn try_withdraw(&self, now_us: u64) -> bool {
        // Take first, then check, then give back: concurrent withdrawals
        // each see the others' and may all be refused near the limit, but
        // together they never exceed it.
        let slot = self.current(now_us);
        slot.retries.add_and_get(1);
        let (requests, retries) = self.totals(now_us);
        if retries as f64 <= self.reserve + self.ratio * requests as f64 + EPSILON {
            true
        } else {
            slot.retries.add_and_get(-1);
            false
        }
    }

    fn window(&self, now_us: u64) -> i64 {
        (now_us / self.slot_us) as i64
    }

    /// The slot for `now_us`, zeroed first if it still counts an older window.
    fn current(&self, now_us: u64) -> &Slot<C> {
        let window = self.window(now_us);
        let slot = &self.slots[window as usize % SLOTS];
        if self.current_window.get() != Some(window) {
            if slot.generation.get() != window && slot.generation.swap(window) != window {
                slot.requests.swap(0);
                slot.retries.swap(0);
            }
            self.current_window.set(Some(window));
        }
        slot
    }

    /// Requests and retries within the last ttl.
    fn totals(&self, now_us: u64) -> (i64, i64) {
        let window = self.window(now_us);
        self.slots
            .iter()
            .filter(|slot| (0..SLOTS as i64).contains(&(window - slot.generation.get())))
            .fold((0, 0), |(requests, retries), slot| {
                (requests + slot.requests.get(), retries + slot.retries.get())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    /// What the proxy's shared counters are: named cells every instance
    /// sees. `after_add` runs once after the next `add_and_get`, to let
    /// another instance act in the middle of an operation.
    #[derive(Default)]
    struct Store {
        values: RefCell<BTreeMap<String, i64>>,
        after_add: RefCell<Option<Box<dyn FnOnce()>>>,
    }

    #[derive(Clone)]
    struct FakeCounter {
        store: Rc<Store>,
        name: String,
    }

    impl FakeCounter {
        fn update(&self, f: impl FnOnce(i64) -> i64) -> (i64, i64) {
            let mut values = self.store.values.borrow_mut();
            let value = values.entry(self.name.clone()).or_default();
            let old = *value;
            *value = f(old);
            (old, *value)
        }
    }

    impl SharedCounter for FakeCounter {
        fn get(&self) -> i64 {
            self.update(|v| v).0
        }

        fn add_and_get(&self, delta: i64) -> i64 {
            let new = self.update(|v| v + delta).1;
            let after_add = self.store.after_add.borrow_mut().take();
            if let Some(after_add) = after_add {
                after_add();
            }
            new
        }

        fn swap(&self, value: i64) -> i64 {
            self.update(|_| value).0
        }
    }

    const SECOND: u64 = 1_000_000;
    /// Well past zero, as the proxy's monotonic clock is once it serves.
    const START: u64 = 1_000 * SECOND;

    fn config(retry_ratio: f64, min_retries_per_second: f64, ttl_seconds: u32) -> BudgetConfig {
        BudgetConfig {
            retry_ratio,
            min_retries_per_second,
            ttl_seconds,
        }
    }

    /// One plugin instance's budget over `store`.
    fn instance(store: &Rc<Store>, config: &BudgetConfig) -> Budget<FakeCounter> {
        Budget::new(config, "budget", |name| FakeCounter {
            store: Rc::clone(store),
            name: name.to_string(),
        })
    }

    fn withdrawals(budget: &Budget<FakeCounter>, now_us: u64, tries: usize) -> usize {
        (0..tries).filter(|_| budget.try_withdraw(now_us)).count()
    }

    #[test]
    fn the_reserve_allows_min_per_second_times_ttl() {
        let budget = instance(&Rc::default(), &config(0.2, 10.0, 10));
        assert_eq!(withdrawals(&budget, START, 150), 100);
        // The reserve refills only as retries expire, not per second.
        assert_eq!(withdrawals(&budget, START + 5 * SECOND, 10), 0);
    }

    #[test]
    fn requests_add_the_ratio() {
        let budget = instance(&Rc::default(), &config(0.2, 0.0, 10));
        assert!(!budget.try_withdraw(START));
        for _ in 0..50 {
            budget.deposit(START);
        }
        assert_eq!(withdrawals(&budget, START, 20), 10);

        // Rounding does not cost a retry: 0.1 * 30 is a shade over 3.
        let budget = instance(&Rc::default(), &config(0.1, 0.0, 10));
        for _ in 0..30 {
            budget.deposit(START);
        }
        assert_eq!(withdrawals(&budget, START, 5), 3);
    }

    #[test]
    fn reserve_and_ratio_add_up() {
        let budget = instance(&Rc::default(), &config(0.5, 1.0, 2));
        for _ in 0..10 {
            budget.deposit(START);
        }
        assert_eq!(withdrawals(&budget, START, 20), 2 + 5);
    }

    #[test]
    fn ratios_above_one_allow_several_retries_per_request() {
        let budget = instance(&Rc::default(), &config(3.0, 0.0, 1));
        budget.deposit(START);
        budget.deposit(START);
        assert_eq!(withdrawals(&budget, START, 10), 6);
    }

    #[test]
    fn a_zero_budget_refuses_everything() {
        let budget = instance(&Rc::default(), &config(0.0, 0.0, 1));
        for _ in 0..1000 {
            budget.deposit(START);
        }
        assert!(!budget.try_withdraw(START));
    }

    #[test]
    fn counts_expire_after_the_ttl() {
        let budget = instance(&Rc::default(), &config(1.0, 0.0, 10));
        for _ in 0..5 {
            budget.deposit(START);
        }
        assert_eq!(withdrawals(&budget, START, 3), 3);
        // Still within the ttl: two left.
        let late = START + 9 * SECOND + 900_000;
        assert_eq!(withdrawals(&budget, late, 5), 2);
        // A ttl after START, its deposits and withdrawals have expired; the
        // two from `late` still count, and need two fresh deposits.
        let expired = START + 10 * SECOND;
        assert_eq!(withdrawals(&budget, expired, 1), 0);
        for _ in 0..3 {
            budget.deposit(expired);
        }
        assert_eq!(withdrawals(&budget, expired, 5), 1);
        // A ttl after `expired`, everything has.
        assert_eq!(withdrawals(&budget, expired + 10 * SECOND, 1), 0);
    }

    #[test]
    fn the_window_slides_a_slot_at_a_time() {
        let budget = instance(&Rc::default(), &config(0.0, 1.0, 10));
        // Ten retries of reserve, spent a second apart.
        for second in 0..10 {
            assert!(budget.try_withdraw(START + second * SECOND), "{second}");
        }
        assert!(!budget.try_withdraw(START + 9 * SECOND + SECOND / 2));
        // Each second frees the slot spent ten seconds before.
        for second in 10..25 {
            let now = START + second * SECOND;
            assert!(budget.try_withdraw(now), "{second}");
            assert!(!budget.try_withdraw(now), "{second}");
        }
    }

    #[test]
    fn a_reused_slot_forgets_its_old_window() {
        let budget = instance(&Rc::default(), &config(0.0, 1.0, 1));
        assert!(budget.try_withdraw(START));
        // Thirty ttls on, the same slot index comes around again.
        let later = START + 30 * SECOND;
        assert!(budget.try_withdraw(later));
        assert!(!budget.try_withdraw(later));
    }

    #[test]
    fn instances_share_the_budget() {
        let store = Rc::default();
        let settings = config(0.5, 0.0, 10);
        let a = instance(&store, &settings);
        let b = instance(&store, &settings);
        for _ in 0..4 {
            a.deposit(START);
        }
        assert!(b.try_withdraw(START));
        assert!(a.try_withdraw(START));
        assert!(!b.try_withdraw(START));
        assert!(!a.try_withdraw(START));
    }

    #[test]
    fn a_stale_slot_is_zeroed_once() {
        let store = Rc::default();
        let settings = config(1.0, 0.0, 1);
        let (a, b) = (instance(&store, &settings), instance(&store, &settings));
        for _ in 0..3 {
            a.deposit(START);
        }
        let later = START + 5 * SECOND;
        // `a` takes the slot over and zeroes it; `b`, arriving after, must
        // not zero `a`'s deposit again.
        a.deposit(later);
        b.deposit(later);
        assert!(a.try_withdraw(later));
        assert!(b.try_withdraw(later));
        assert!(!a.try_withdraw(later));
    }

    #[test]
    fn concurrent_withdrawals_never_overspend() {
        let store: Rc<Store> = Rc::default();
        let settings = config(0.0, 1.0, 1);
        let (a, b) = (
            instance(&store, &settings),
            Rc::new(instance(&store, &settings)),
        );
        // One retry of reserve left; `b` withdraws while `a` is between
        // taking and checking.
        let b_result = Rc::new(RefCell::new(None));
        let (b_in, result_in) = (Rc::clone(&b), Rc::clone(&b_result));
        *store.after_add.borrow_mut() = Some(Box::new(move || {
            *result_in.borrow_mut() = Some(b_in.try_withdraw(START));
        }));
        let a_result = a.try_withdraw(START);
        let b_result = b_result.borrow().expect("b ran");
        assert!(!(a_result && b_result), "both spent the last retry");
        // Whatever was refused was given back: the retry is still there.
        assert_eq!(
            withdrawals(&a, START, 3),
            1 - usize::from(a_result || b_result)
        );
    }

    #[test]
    fn interleaved_instances_spend_exactly_the_budget() {
        let store = Rc::default();
        let settings = config(0.25, 2.0, 5);
        let instances: Vec<_> = (0..4).map(|_| instance(&store, &settings)).collect();
        let mut granted = 0;
        // Requests and retries arrive across instances within one ttl.
        for i in 0..400u64 {
            let now = START + i * 10_000;
            let budget = &instances[i as usize % instances.len()];
            budget.deposit(now);
            if budget.try_withdraw(now) {
                granted += 1;
            }
        }
        assert_eq!(granted, 10 + 100);
    }
}
