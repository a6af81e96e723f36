//! `{direction}_split_requests_total{route, backend}`: how many requests
//! each backend of each route was given.

use std::cell::RefCell;
use std::collections::BTreeMap;

use weft_plugin_sdk::Direction;
use weft_plugin_sdk::metrics::{self, CounterFamily, CounterSeries};

const LABELS: [&str; 2] = ["route", "backend"];

/// Direction, route and backend, as indices: finding a cached series
/// allocates nothing.
type Key = (usize, usize, usize);

pub struct Telemetry {
    /// Inbound, then outbound.
    families: [CounterFamily; 2],
    series: RefCell<BTreeMap<Key, CounterSeries>>,
}

impl Telemetry {
    /// Registers both directions' families once: which a proxy sees is not
    /// known at init. Names leave out `_total`, which the proxy appends.
    pub fn register() -> Result<Self, String> {
        let register = |direction: &str| {
            metrics::register_counter(
                &format!("{direction}_split_requests"),
                "The number of requests sent to each backend of a traffic split.",
                &LABELS,
            )
        };
        Ok(Telemetry {
            families: [register("inbound")?, register("outbound")?],
            series: RefCell::new(BTreeMap::new()),
        })
    }

    /// Counts one request sent to `backend` by `route` (indices, with their
    /// labels for the first time the pair is seen).
    pub fn record(
        &self,
        direction: Direction,
        (route, route_label): (usize, &str),
        (backend, backend_label): (usize, &str),
    ) {
        let direction = match direction {
            Direction::Inbound => 0,
            Direction::Outbound => 1,
        };
        let key = (direction, route, backend);
        let cached = self.series.borrow().get(&key).copied();
        let series = match cached {
            Some(series) => series,
            None => match self.families[direction].series(&[route_label, backend_label]) {
                Ok(series) => {
                    self.series.borrow_mut().insert(key, series);
                    series
                }
                // Not cached: the next request asks again.
                Err(err) => {
                    weft_plugin_sdk::warn!("metric series refused: {err}");
                    return;
                }
            },
        };
        series.add(1);
    }
}
