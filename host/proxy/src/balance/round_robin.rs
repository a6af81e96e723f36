//! Round robin (`weft.io/load-balancer: round-robin`): each request to the
//! next ready endpoint in address order, for services where every replica
//! should see its share whatever its latency. Ejected endpoints are passed
//! by like not-ready ones.
//!
//! Weighted as nginx's smooth weighted round robin: each pick credits every
//! ready endpoint its weight, takes the one with the most credit and charges
//! it the weights of all, so an endpoint weighing three times another gets
//! three requests to its one, interleaved; equal weights take turns in
//! address order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::Service;
use tower::discover::{Change, Discover};
use tower::ready_cache::ReadyCache;

use super::weighted::Weighted;

pub struct RoundRobin<D, S, Req>
where
    D: Discover<Service = Weighted<S>>,
    S: Service<Req>,
{
    discover: D,
    services: ReadyCache<SocketAddr, Weighted<S>, Req>,
    /// Each endpoint's credit towards its next turn.
    credit: HashMap<SocketAddr, i64>,
    /// The endpoint `poll_ready` chose for the next `call`.
    chosen: Option<SocketAddr>,
}

impl<D, S, Req> RoundRobin<D, S, Req>
where
    D: Discover<Key = SocketAddr, Service = Weighted<S>>,
    S: Service<Req>,
{
    pub fn new(discover: D) -> Self {
        Self {
            discover,
            services: ReadyCache::default(),
            credit: HashMap::new(),
            chosen: None,
        }
    }
}

impl<D, S, Req> Service<Req> for RoundRobin<D, S, Req>
where
    D: Discover<Key = SocketAddr, Service = Weighted<S>> + Unpin,
    D::Error: Into<tower::BoxError>,
    S: Service<Req>,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, tower::BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tower::BoxError>> {
        while let Poll::Ready(Some(change)) = Pin::new(&mut self.discover).poll_discover(cx) {
            match change.map_err(Into::into)? {
                Change::Insert(addr, service) => self.services.push(addr, service),
                Change::Remove(addr) => {
                    self.services.evict(&addr);
                    self.credit.remove(&addr);
                }
            }
        }
        loop {
            // An endpoint failing its readiness leaves the cache; ours never do.
            if let Poll::Ready(Err(failed)) = self.services.poll_pending(cx) {
                tracing::debug!(error = %failed.1, "endpoint failed");
                continue;
            }
            let Some(next) = self.next_ready() else {
                return Poll::Pending;
            };
            if let Ok(true) = self.services.check_ready(cx, &next) {
                self.chosen = Some(next);
                return Poll::Ready(Ok(()));
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let addr = self.chosen.take().expect("called before ready");
        // Credited before the call takes the endpoint out of the ready set.
        let mut total = 0;
        for (ready, service) in self.services.iter_ready() {
            let weight = i64::from(service.weight());
            *self.credit.entry(*ready).or_default() += weight;
            total += weight;
        }
        *self.credit.entry(addr).or_default() -= total;
        let future = self.services.call_ready(&addr, req);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

impl<D, S, Req> RoundRobin<D, S, Req>
where
    D: Discover<Key = SocketAddr, Service = Weighted<S>>,
    S: Service<Req>,
{
    /// The ready endpoint with the most credit once credited its weight;
    /// on a tie, the lowest address.
    fn next_ready(&self) -> Option<SocketAddr> {
        self.services
            .iter_ready()
            .map(|(addr, service)| {
                let credit = self.credit.get(addr).copied().unwrap_or(0);
                (
                    credit + i64::from(service.weight()),
                    std::cmp::Reverse(*addr),
                )
            })
            .max()
            .map(|(_, std::cmp::Reverse(addr))| addr)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::{StreamExt, stream};
    use tower::ServiceExt;

    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 80))
    }

    /// Picks made by a round robin over endpoints of `weights` (each
    /// answering with its own address), `picks` times.
    async fn picks(weights: &[u32], picks: usize) -> Vec<SocketAddr> {
        let inserts = weights.iter().enumerate().map(|(i, weight)| {
            let at = addr(i as u8 + 1);
            let service = tower::service_fn(move |()| async move { Ok::<_, Infallible>(at) });
            Ok::<_, Infallible>(Change::Insert(at, Weighted::in_flight(service, *weight)))
        });
        let discover = stream::iter(inserts.collect::<Vec<_>>()).chain(stream::pending());
        let mut balancer = RoundRobin::new(Box::pin(discover));
        let mut picked = Vec::new();
        for _ in 0..picks {
            picked.push(balancer.ready().await.unwrap().call(()).await.unwrap());
        }
        picked
    }

    #[tokio::test]
    async fn equal_weights_take_turns_in_address_order() {
        let picked = picks(&[10_000, 10_000, 10_000], 6).await;
        let expected = [1, 2, 3, 1, 2, 3].map(addr);
        assert_eq!(picked, expected);
    }

    #[tokio::test]
    async fn an_endpoint_weighing_three_times_another_gets_three_requests_to_its_one() {
        let picked = picks(&[2_500, 7_500], 400).await;
        let light = picked.iter().filter(|a| **a == addr(1)).count();
        assert_eq!(light, 100, "exactly a quarter");
        // Interleaved, not in runs: never more than three in a row to one.
        assert!(
            picked.windows(4).all(|w| w.contains(&addr(1))),
            "{picked:?}"
        );
    }
}
