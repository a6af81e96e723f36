//! Opaque TCP to a Service, balanced per connection: a new connection goes
//! to the one of two endpoints drawn at random that has fewer of this
//! proxy's connections open (power of two choices over open connections).
//! Bytes are not requests, so there is no latency to weigh and no failure
//! to count; a connection stays where it was sent.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::lock;

/// The opaque connections open to each endpoint of one Service.
#[derive(Debug, Default)]
pub struct OpenConnections(Mutex<HashMap<SocketAddr, Arc<()>>>);

/// Held for the life of a connection: counts it against its endpoint.
#[derive(Debug)]
pub struct OpenConnection {
    _held: Arc<()>,
}

impl OpenConnections {
    /// The endpoint a new connection goes to, of `endpoints`, and its hold
    /// on it; `None` when there are none.
    pub fn pick(&self, endpoints: &[SocketAddr]) -> Option<(SocketAddr, OpenConnection)> {
        let mut open = lock(&self.0);
        // Endpoints gone from the Service: their count is of no use now.
        open.retain(|addr, _| endpoints.contains(addr));
        let count =
            |addr: &SocketAddr| open.get(addr).map_or(0, |held| Arc::strong_count(held) - 1);
        let chosen = match endpoints {
            [] => return None,
            [only] => *only,
            _ => {
                let random = RandomState::new().hash_one(endpoints.len());
                let n = endpoints.len() as u64;
                let a = random % n;
                let b = (a + 1 + (random >> 32) % (n - 1)) % n;
                let (a, b) = (endpoints[a as usize], endpoints[b as usize]);
                if count(&b) < count(&a) { b } else { a }
            }
        };
        let held = open.entry(chosen).or_default().clone();
        Some((chosen, OpenConnection { _held: held }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u8) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([10, 0, 0, i], 5432)))
            .collect()
    }

    #[test]
    fn a_new_connection_goes_where_fewer_are_open() {
        let open = OpenConnections::default();
        let [a, b] = addrs(2)[..] else { unreachable!() };
        let _held: Vec<_> = (0..3).map(|_| open.pick(&[a]).unwrap().1).collect();
        for _ in 0..20 {
            let (chosen, _) = open.pick(&[a, b]).unwrap();
            assert_eq!(chosen, b, "a has 3 open, b none once each closes");
        }
        assert!(open.pick(&[]).is_none());
    }

    #[test]
    fn connections_held_open_spread_evenly() {
        let open = OpenConnections::default();
        let endpoints = addrs(3);
        let held: Vec<_> = (0..300).map(|_| open.pick(&endpoints).unwrap()).collect();
        let per = |addr| held.iter().filter(|(a, _)| *a == addr).count();
        let counts: Vec<usize> = endpoints.iter().map(|a| per(*a)).collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 3, "{counts:?}");
        // Closed connections count no more.
        drop(held);
        let (_, first) = open.pick(&endpoints).unwrap();
        assert_eq!(Arc::strong_count(&first._held), 2);
    }

    #[test]
    fn an_endpoint_gone_is_forgotten() {
        let open = OpenConnections::default();
        let [a, b] = addrs(2)[..] else { unreachable!() };
        let _held = open.pick(&[a]).unwrap();
        let (chosen, _) = open.pick(&[b]).unwrap();
        assert_eq!(chosen, b);
        assert!(!lock(&open.0).contains_key(&a));
    }
}
