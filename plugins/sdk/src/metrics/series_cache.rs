//! Series handles per label set, kept in the plugin so that label sets that
//! repeat cross into the proxy once. Label values often come from clients
//! (an authority, a path), so the cache is bounded: past its bounds a label
//! set is simply looked up in the proxy each time, and the plugin's memory
//! stays flat whatever the traffic.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// A cache key: a plugin's label set, with the size of its label text.
pub trait LabelSet: Ord {
    /// Bytes of label text the key holds (its strings' lengths).
    fn label_bytes(&self) -> usize;
}

/// Label sets kept unless a plugin asks for other bounds: the proxy keeps
/// 2,000 series per family by default, so a few thousand covers them.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;
/// Label text kept unless a plugin asks for other bounds: small next to
/// the default 16 MiB plugin memory limit.
pub const DEFAULT_MAX_LABEL_BYTES: usize = 256 * 1024;

/// A bounded map from label sets to series handles (or anything `Copy`
/// made from them). A `BTreeMap` rather than a `HashMap`: no random seed
/// to ask the runtime for.
pub struct SeriesCache<K, S> {
    map: RefCell<BTreeMap<K, S>>,
    label_bytes: Cell<usize>,
    max_entries: usize,
    max_label_bytes: usize,
}

impl<K: LabelSet, S: Copy> Default for SeriesCache<K, S> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_LABEL_BYTES)
    }
}

impl<K: LabelSet, S: Copy> SeriesCache<K, S> {
    /// A cache of at most `max_entries` label sets holding at most
    /// `max_label_bytes` of label text in all.
    pub fn new(max_entries: usize, max_label_bytes: usize) -> Self {
        SeriesCache {
            map: RefCell::new(BTreeMap::new()),
            label_bytes: Cell::new(0),
            max_entries,
            max_label_bytes,
        }
    }

    /// The handles for `key`, calling `create` only the first time while
    /// the cache has room; once full, every call for a new label set calls
    /// `create`. Failures are not kept: the next call tries again.
    pub fn get_or_create(
        &self,
        key: K,
        create: impl FnOnce(&K) -> Result<S, String>,
    ) -> Result<S, String> {
        if let Some(series) = self.map.borrow().get(&key) {
            return Ok(*series);
        }
        let series = create(&key)?;
        let bytes = self.label_bytes.get().saturating_add(key.label_bytes());
        let mut map = self.map.borrow_mut();
        if map.len() < self.max_entries && bytes <= self.max_label_bytes {
            map.insert(key, series);
            self.label_bytes.set(bytes);
        }
        Ok(series)
    }

    /// Label sets kept.
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// Whether no label set is kept.
    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Authority(String);

    impl LabelSet for Authority {
        fn label_bytes(&self) -> usize {
            self.0.len()
        }
    }

    fn key(name: &str) -> Authority {
        Authority(name.to_string())
    }

    #[test]
    fn each_label_set_is_created_once() {
        let cache = SeriesCache::default();
        let mut created = 0;
        for name in ["a", "b", "a", "b", "c"] {
            cache
                .get_or_create(key(name), |_| {
                    created += 1;
                    Ok(created)
                })
                .unwrap();
        }
        assert_eq!(created, 3);
        assert_eq!(cache.get_or_create(key("b"), |_| Ok(0)), Ok(2));
    }

    #[test]
    fn failures_are_retried() {
        let cache = SeriesCache::<_, u32>::default();
        let refused = cache.get_or_create(key("a"), |_| Err("no".to_string()));
        assert_eq!(refused, Err("no".to_string()));
        assert_eq!(cache.get_or_create(key("a"), |_| Ok(7)), Ok(7));
    }

    #[test]
    fn past_its_entry_bound_new_label_sets_are_looked_up_each_time() {
        let cache = SeriesCache::new(3, usize::MAX);
        for n in 0..10 {
            assert_eq!(cache.get_or_create(key(&n.to_string()), |_| Ok(n)), Ok(n));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get_or_create(key("0"), |_| Ok(99)), Ok(0), "kept");
        assert_eq!(
            cache.get_or_create(key("9"), |_| Ok(99)),
            Ok(99),
            "not kept"
        );
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn label_text_is_bounded_too() {
        let cache = SeriesCache::new(usize::MAX, 10);
        assert_eq!(cache.get_or_create(key("short"), |_| Ok(1)), Ok(1));
        let long = "l".repeat(64 * 1024);
        assert_eq!(cache.get_or_create(key(&long), |_| Ok(2)), Ok(2));
        assert_eq!(
            cache.get_or_create(key(&long), |_| Ok(3)),
            Ok(3),
            "not kept"
        );
        assert_eq!(cache.get_or_create(key("four"), |_| Ok(4)), Ok(4));
        assert_eq!(cache.get_or_create(key("four"), |_| Ok(5)), Ok(4), "kept");
        assert_eq!(cache.len(), 2);
    }
}
