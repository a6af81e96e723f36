//! Round robin (`weft.io/load-balancer: round-robin`): each request to the
//! next ready endpoint in address order, for services where every replica
//! should see the same share whatever its latency. Ejected endpoints are
//! passed by like not-ready ones.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::Service;
use tower::discover::{Change, Discover};
use tower::ready_cache::ReadyCache;

pub struct RoundRobin<D, Req>
where
    D: Discover,
    D::Service: Service<Req>,
{
    discover: D,
    services: ReadyCache<SocketAddr, D::Service, Req>,
    /// The endpoint the previous request went to.
    last: Option<SocketAddr>,
    /// The endpoint `poll_ready` chose for the next `call`.
    chosen: Option<SocketAddr>,
}

impl<D, Req> RoundRobin<D, Req>
where
    D: Discover<Key = SocketAddr>,
    D::Service: Service<Req>,
{
    pub fn new(discover: D) -> Self {
        Self {
            discover,
            services: ReadyCache::default(),
            last: None,
            chosen: None,
        }
    }
}

impl<D, Req> Service<Req> for RoundRobin<D, Req>
where
    D: Discover<Key = SocketAddr> + Unpin,
    D::Error: Into<tower::BoxError>,
    D::Service: Service<Req>,
    <D::Service as Service<Req>>::Error: Into<tower::BoxError>,
    <D::Service as Service<Req>>::Future: Send + 'static,
{
    type Response = <D::Service as Service<Req>>::Response;
    type Error = tower::BoxError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, tower::BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tower::BoxError>> {
        while let Poll::Ready(Some(change)) = Pin::new(&mut self.discover).poll_discover(cx) {
            match change.map_err(Into::into)? {
                Change::Insert(addr, service) => self.services.push(addr, service),
                Change::Remove(addr) => {
                    self.services.evict(&addr);
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
        self.last = Some(addr);
        let future = self.services.call_ready(&addr, req);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

impl<D, Req> RoundRobin<D, Req>
where
    D: Discover<Key = SocketAddr>,
    D::Service: Service<Req>,
{
    /// The first ready endpoint after the last one used, wrapping around.
    fn next_ready(&self) -> Option<SocketAddr> {
        let ready = || self.services.iter_ready().map(|(addr, _)| *addr);
        let after_last = ready()
            .filter(|addr| self.last.is_none_or(|last| *addr > last))
            .min();
        after_last.or_else(|| ready().min())
    }
}
