//! Linkerd's authorization counters, `{direction}_{http,tcp}_authz_{allow,deny}_total`
//! with labels `target_port`, `authz_kind` and `authz_name`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use weft_plugin_sdk::Direction;
use weft_plugin_sdk::metrics::{self, CounterFamily, CounterSeries};

use crate::policy::{Authz, Decision, Policy};

const LABELS: [&str; 3] = ["target_port", "authz_kind", "authz_name"];
const DIRECTIONS: [&str; 2] = ["inbound", "outbound"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// A request, decided by the request hook.
    Http,
    /// An opaque connection, decided by the connection hook.
    Tcp,
}

/// Everything a series' labels derive from; all `Copy`, so finding a cached
/// series allocates nothing.
type Key = (usize, u16, Authz);

pub struct Telemetry {
    /// Indexed by [`family_index`].
    families: Vec<CounterFamily>,
    series: RefCell<BTreeMap<Key, CounterSeries>>,
}

impl Telemetry {
    /// Registers all eight families up front, each once: which directions
    /// and protocols a proxy sees is not known at init.
    pub fn register() -> Result<Self, String> {
        let mut families = Vec::with_capacity(8);
        for direction in DIRECTIONS {
            for traffic in [Traffic::Http, Traffic::Tcp] {
                for allowed in [true, false] {
                    families.push(metrics::register_counter(
                        &family_name(direction, traffic, allowed),
                        &family_help(traffic, allowed),
                        &LABELS,
                    )?);
                }
            }
        }
        Ok(Telemetry {
            families,
            series: RefCell::new(BTreeMap::new()),
        })
    }

    /// Counts one decision.
    pub fn record(
        &self,
        policy: &Policy,
        direction: Direction,
        traffic: Traffic,
        port: u16,
        decision: Decision,
    ) {
        let family = family_index(direction, traffic, decision.allowed);
        let key = (family, port, decision.authz);
        let cached = self.series.borrow().get(&key).copied();
        let series = match cached {
            Some(series) => series,
            None => {
                let port = port.to_string();
                let labels = [
                    port.as_str(),
                    decision.authz.kind(),
                    policy.name(decision.authz),
                ];
                match self.families[family].series(&labels) {
                    Ok(series) => {
                        self.series.borrow_mut().insert(key, series);
                        series
                    }
                    // Not cached: the next decision asks again.
                    Err(err) => {
                        weft_plugin_sdk::warn!("metric series refused: {err}");
                        return;
                    }
                }
            }
        };
        series.add(1);
    }
}

/// The counter's name without `_total`, which the proxy's renderer appends.
fn family_name(direction: &str, traffic: Traffic, allowed: bool) -> String {
    let traffic = match traffic {
        Traffic::Http => "http",
        Traffic::Tcp => "tcp",
    };
    let verdict = if allowed { "allow" } else { "deny" };
    format!("{direction}_{traffic}_authz_{verdict}")
}

fn family_help(traffic: Traffic, allowed: bool) -> String {
    let what = match traffic {
        Traffic::Http => "HTTP requests",
        Traffic::Tcp => "TCP connections",
    };
    let verdict = if allowed { "allowed" } else { "denied" };
    format!("The number of {what} {verdict} by authorization policy.")
}

/// Where a family sits in the registration order of [`Telemetry::register`].
fn family_index(direction: Direction, traffic: Traffic, allowed: bool) -> usize {
    let direction = match direction {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    };
    let traffic = match traffic {
        Traffic::Http => 0,
        Traffic::Tcp => 1,
    };
    direction * 4 + traffic * 2 + usize::from(!allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_registration_order() {
        let mut names = Vec::new();
        for direction in DIRECTIONS {
            for traffic in [Traffic::Http, Traffic::Tcp] {
                for allowed in [true, false] {
                    names.push(family_name(direction, traffic, allowed));
                }
            }
        }
        let name =
            |direction, traffic, allowed| names[family_index(direction, traffic, allowed)].clone();
        assert_eq!(
            name(Direction::Inbound, Traffic::Http, true),
            "inbound_http_authz_allow"
        );
        assert_eq!(
            name(Direction::Inbound, Traffic::Tcp, false),
            "inbound_tcp_authz_deny"
        );
        assert_eq!(
            name(Direction::Outbound, Traffic::Http, false),
            "outbound_http_authz_deny"
        );
        assert_eq!(
            name(Direction::Outbound, Traffic::Tcp, true),
            "outbound_tcp_authz_allow"
        );
    }
}
