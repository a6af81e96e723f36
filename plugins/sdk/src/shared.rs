//! State shared by every instance of this plugin in the proxy. A plugin's
//! instances do not share memory, so anything that must hold across
//! concurrent requests — a retry budget, a rate limit — lives here.

use crate::bindings::weft::plugin::shared as host;

/// A named counter, shared by all instances and updated atomically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter(u32);

impl Counter {
    /// The counter called `name`, created at zero on first use.
    pub fn named(name: &str) -> Counter {
        Counter(host::counter(name))
    }

    /// Adds `delta` (negative to subtract) and returns the new value.
    pub fn add_and_get(self, delta: i64) -> i64 {
        host::counter_add(self.0, delta)
    }

    /// The current value.
    pub fn get(self) -> i64 {
        host::counter_get(self.0)
    }

    /// Sets the value and returns the one it replaced: exactly one caller
    /// sees each old value, so a window can be reset by one instance.
    pub fn swap(self, value: i64) -> i64 {
        host::counter_swap(self.0, value)
    }
}

/// The bytes stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: &[u8]) {
    host::set(key, value);
}
