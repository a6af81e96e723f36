//! Series handles per label set. Looking a series up crosses into the proxy
//! with every label value as a string; steady traffic repeats a few label
//! sets, so each is looked up once and then found here.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// What a completed request is counted under; the other labels derive from
/// these.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Labels {
    pub direction: &'static str,
    pub authority: String,
    pub tls: bool,
    pub backend: String,
    pub status: Option<u16>,
}

/// A map from labels to handles. A `BTreeMap` rather than a `HashMap`: no
/// random seed to ask the runtime for, and the sets are few.
pub struct SeriesCache<S>(RefCell<BTreeMap<Labels, S>>);

impl<S: Copy> SeriesCache<S> {
    pub fn new() -> Self {
        SeriesCache(RefCell::new(BTreeMap::new()))
    }

    /// The handles for `labels`, calling `create` only the first time.
    /// Failures are not cached: the next request tries again.
    pub fn get_or_create(
        &self,
        labels: Labels,
        create: impl FnOnce(&Labels) -> Result<S, String>,
    ) -> Result<S, String> {
        if let Some(series) = self.0.borrow().get(&labels) {
            return Ok(*series);
        }
        let series = create(&labels)?;
        self.0.borrow_mut().insert(labels, series);
        Ok(series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn labels(status: Option<u16>) -> Labels {
        Labels {
            direction: "inbound",
            authority: "web.default:8080".to_string(),
            tls: true,
            backend: String::new(),
            status,
        }
    }

    #[test]
    fn each_label_set_is_created_once() {
        let cache = SeriesCache::new();
        let created = Cell::new(0);
        let create = |_: &Labels| {
            created.set(created.get() + 1);
            Ok(created.get())
        };
        assert_eq!(cache.get_or_create(labels(Some(200)), create), Ok(1));
        assert_eq!(cache.get_or_create(labels(Some(200)), create), Ok(1));
        assert_eq!(cache.get_or_create(labels(Some(503)), create), Ok(2));
        assert_eq!(cache.get_or_create(labels(None), create), Ok(3));
        assert_eq!(created.get(), 3);
    }

    #[test]
    fn failures_are_retried() {
        let cache = SeriesCache::new();
        let refuse = |_: &Labels| Err("no".to_string());
        assert_eq!(
            cache.get_or_create(labels(Some(200)), refuse),
            Err("no".to_string())
        );
        assert_eq!(cache.get_or_create(labels(Some(200)), |_| Ok(7)), Ok(7));
    }
}
