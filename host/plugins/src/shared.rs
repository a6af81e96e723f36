//! State one plugin shares across all of its instances in the proxy (a
//! retry budget must hold across concurrent requests, not per instance).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The most keys one plugin may keep; past it, `set` of a new key is ignored.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct SharedState {
    names: Mutex<HashMap<String, u32>>,
    counters: RwLock<Vec<Arc<AtomicI64>>>,
    values: Mutex<HashMap<String, Vec<u8>>>,
}

impl SharedState {
    pub fn counter(&self, name: &str) -> u32 {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = names.get(name) {
            return id;
        }
        let mut counters = self.counters.write().unwrap_or_else(|p| p.into_inner());
        let id = counters.len() as u32;
        counters.push(Arc::default());
        names.insert(name.to_string(), id);
        id
    }

    fn with_counter<T>(&self, id: u32, f: impl FnOnce(&AtomicI64) -> T) -> Option<T> {
        let counters = self.counters.read().unwrap_or_else(|p| p.into_inner());
        counters.get(id as usize).map(|c| f(c))
    }

    pub fn counter_add(&self, id: u32, delta: i64) -> i64 {
        self.with_counter(id, |c| c.fetch_add(delta, Ordering::AcqRel) + delta)
            .unwrap_or(0)
    }

    pub fn counter_get(&self, id: u32) -> i64 {
        self.with_counter(id, |c| c.load(Ordering::Acquire))
            .unwrap_or(0)
    }

    pub fn counter_swap(&self, id: u32, value: i64) -> i64 {
        self.with_counter(id, |c| c.swap(value, Ordering::AcqRel))
            .unwrap_or(0)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub fn set(&self, key: String, value: Vec<u8>) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        if values.len() < MAX_KEYS || values.contains_key(&key) {
            values.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_and_atomic() {
        let state = SharedState::default();
        let a = state.counter("budget");
        assert_eq!(state.counter("budget"), a);
        let b = state.counter("other");
        assert_ne!(a, b);
        assert_eq!(state.counter_add(a, 5), 5);
        assert_eq!(state.counter_add(a, -2), 3);
        assert_eq!(state.counter_get(a), 3);
        assert_eq!(state.counter_get(b), 0);
        assert_eq!(state.counter_get(99), 0);
    }
}
