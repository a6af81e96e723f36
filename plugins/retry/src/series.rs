//! Metric series handles per label set. Looking a series up crosses into
//! the proxy with its label values as strings; the label sets here are
//! direction × route (× skip reason), all known at `init`, so each handle is
//! found by index and looked up once.

use std::cell::Cell;

use weft_plugin_sdk::Direction;

/// Why a retry was not sent: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    Budget,
    Limit,
    NotReplayable,
}

impl Skip {
    const COUNT: usize = 3;

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Budget => "budget",
            Skip::Limit => "limit",
            Skip::NotReplayable => "not_replayable",
        }
    }
}

/// The label sets of one family, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub direction: Direction,
    pub route: usize,
    pub skip: Option<Skip>,
}

/// Handles for every label set of one family, filled on first use.
pub struct SeriesTable<S> {
    cells: Vec<Cell<Option<S>>>,
    routes: usize,
}

impl<S: Copy> SeriesTable<S> {
    /// A table for `routes` routes; `with_skips` when the family has the
    /// `reason` label.
    pub fn new(routes: usize, with_skips: bool) -> Self {
        let reasons = if with_skips { Skip::COUNT } else { 1 };
        SeriesTable {
            cells: (0..2 * routes * reasons).map(|_| Cell::new(None)).collect(),
            routes,
        }
    }

    /// The handle for `key`, calling `create` only the first time. Failures
    /// are not kept: the next call tries again.
    pub fn get_or_create(
        &self,
        key: Key,
        create: impl FnOnce(&Key) -> Result<S, String>,
    ) -> Result<S, String> {
        let cell = &self.cells[self.index(&key)];
        if let Some(series) = cell.get() {
            return Ok(series);
        }
        let series = create(&key)?;
        cell.set(Some(series));
        Ok(series)
    }

    fn index(&self, key: &Key) -> usize {
        let direction = match key.direction {
            Direction::Inbound => 0,
            Direction::Outbound => 1,
        };
        let set = direction * self.routes + key.route;
        match key.skip {
            Some(skip) => set * Skip::COUNT + skip as usize,
            None => set,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(direction: Direction, route: usize, skip: Option<Skip>) -> Key {
        Key {
            direction,
            route,
            skip,
        }
    }

    #[test]
    fn reasons_are_labelled_as_documented() {
        assert_eq!(Skip::Budget.as_str(), "budget");
        assert_eq!(Skip::Limit.as_str(), "limit");
        assert_eq!(Skip::NotReplayable.as_str(), "not_replayable");
    }

    #[test]
    fn each_label_set_is_created_once_and_kept_apart() {
        let table = SeriesTable::new(2, true);
        let mut created = Vec::new();
        let mut keys = Vec::new();
        for direction in [Direction::Inbound, Direction::Outbound] {
            for route in 0..2 {
                for skip in [Skip::Budget, Skip::Limit, Skip::NotReplayable] {
                    keys.push(key(direction, route, Some(skip)));
                }
            }
        }
        for (n, key) in keys.iter().enumerate() {
            let series = table.get_or_create(*key, |key| {
                created.push(*key);
                Ok(n)
            });
            assert_eq!(series, Ok(n));
        }
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(table.get_or_create(*key, |_| unreachable!()), Ok(n));
        }
        assert_eq!(created, keys);
    }

    #[test]
    fn tables_without_reasons_index_by_direction_and_route() {
        let table = SeriesTable::new(3, false);
        for (n, direction) in [Direction::Inbound, Direction::Outbound]
            .into_iter()
            .enumerate()
        {
            for route in 0..3 {
                let value = n * 10 + route;
                assert_eq!(
                    table.get_or_create(key(direction, route, None), |_| Ok(value)),
                    Ok(value)
                );
            }
        }
        assert_eq!(
            table.get_or_create(key(Direction::Outbound, 2, None), |_| Ok(0)),
            Ok(12)
        );
    }

    #[test]
    fn failures_are_retried() {
        let table = SeriesTable::new(1, false);
        let key = key(Direction::Inbound, 0, None);
        assert_eq!(
            table.get_or_create(key, |_| Err("no".to_string())),
            Err("no".to_string())
        );
        assert_eq!(table.get_or_create(key, |_| Ok(7)), Ok(7));
    }
}
