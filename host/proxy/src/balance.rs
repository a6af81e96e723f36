//! Balancing a service's requests among its endpoints, one balancer per
//! service shared by every connection: power of two choices (tower's `p2c`)
//! over peak-EWMA latency by default, over requests in flight, or round
//! robin, as the Service's `weft.io/load-balancer` asks; each endpoint's
//! load divided by its weight (`weighted.rs`). The
//! endpoint set follows discovery; an endpoint that keeps failing is ejected
//! (`endpoint.rs`). A request that finds no ready endpoint for
//! [`FAIL_FAST_AFTER`] is answered 503 instead of waiting longer.
//!
//! Requests reach the balancer through a bounded queue (tower's `Buffer`):
//! the balancer needs `&mut self` to pick, and the queue lets every
//! connection share it.

mod endpoint;
mod round_robin;
mod weighted;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt, stream};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::{oneshot, watch};
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::{BoxError, Service, ServiceExt};
use weft_api::destination::LoadBalancer;

use crate::discovery::{EndpointMeta, Resolved};
use crate::errors::ProxyError;
use crate::http::{HeldHttp1, Upstream};
use crate::{BoxBody, lock};
pub use endpoint::EndpointLabels;
use endpoint::{Attempt, Endpoint, EndpointError, Health};
pub use weighted::DEFAULT_WEIGHT;
use weighted::Weighted;

/// How long a request waits for a ready endpoint before the proxy answers
/// 503 (Linkerd's fail-fast timeout).
pub const FAIL_FAST_AFTER: Duration = Duration::from_secs(3);
/// Endpoints a request may be sent on to after finding no connection at
/// one (each of them ejected on the way).
const MAX_REDISPATCH: usize = 4;
/// Requests queued for the balancer; past it, callers wait (and fail fast).
const QUEUE_CAPACITY: usize = 1024;
/// Peak-EWMA's latency for an endpoint not yet measured, and how fast old
/// measurements fade (Linkerd's defaults).
const DEFAULT_RTT: Duration = Duration::from_millis(30);
const DECAY: Duration = Duration::from_secs(10);

/// What the queue's worker hands back: a concrete error type, so the
/// queue's own future stays `Send` in an `async` caller.
type BalancedFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, EndpointError>> + Send>>;

pub struct Balancer {
    authority: Arc<str>,
    kind: LoadBalancer,
    queue: Buffer<Attempt, BalancedFuture>,
    health: Arc<Mutex<HashMap<SocketAddr, Arc<Health>>>>,
}

impl Balancer {
    /// A balancer over the endpoints `resolved` names, following it.
    pub fn new(
        authority: Arc<str>,
        kind: LoadBalancer,
        resolved: watch::Receiver<Resolved>,
        upstream: Arc<Upstream>,
    ) -> Self {
        let health: Arc<Mutex<HashMap<SocketAddr, Arc<Health>>>> = Arc::default();
        let endpoints = {
            let health = health.clone();
            move |addr: SocketAddr, meta: &EndpointMeta| {
                let health = lock(&health)
                    .entry(addr)
                    .or_insert_with(|| Arc::new(Health::new(addr)))
                    .clone();
                Endpoint::new(addr, meta, upstream.clone(), health)
            }
        };
        let forget = {
            let health = health.clone();
            move |addr: &SocketAddr| {
                lock(&health).remove(addr);
            }
        };
        let queue = match kind {
            LoadBalancer::Unspecified | LoadBalancer::Ewma => {
                let changes = changes(resolved, endpoints, forget, |endpoint, weight| {
                    Weighted::peak_ewma(endpoint, weight, DEFAULT_RTT, DECAY)
                });
                queue(tower::balance::p2c::Balance::new(changes))
            }
            LoadBalancer::P2c => {
                let changes = changes(resolved, endpoints, forget, Weighted::in_flight);
                queue(tower::balance::p2c::Balance::new(changes))
            }
            LoadBalancer::RoundRobin => {
                let changes = changes(resolved, endpoints, forget, Weighted::in_flight);
                queue(round_robin::RoundRobin::new(changes))
            }
        };
        Self {
            authority,
            kind,
            queue,
            health,
        }
    }

    pub fn kind(&self) -> LoadBalancer {
        self.kind
    }

    /// Sends one attempt of a request to an endpoint the balancer picks;
    /// 503 when none is ready within [`FAIL_FAST_AFTER`]. A request that
    /// found no connection at its endpoint (which is ejected for it) goes
    /// to another.
    pub async fn send(
        &self,
        mut req: Request<BoxBody>,
        timeout: Option<Duration>,
        held: &Arc<HeldHttp1>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let mut redispatched = 0;
        loop {
            match self.dispatch(req, timeout, held).await {
                Ok(rsp) => return Ok(rsp),
                Err(EndpointError::Unsent(error, unsent)) => {
                    if redispatched == MAX_REDISPATCH {
                        return Err(error);
                    }
                    tracing::debug!(authority = %self.authority, %error, "sending to another endpoint");
                    redispatched += 1;
                    req = *unsent;
                }
                Err(EndpointError::Failed(error)) => return Err(error),
            }
        }
    }

    /// One trip through the queue to an endpoint. Boxed, with nothing
    /// borrowed: the queue's future is `Send` only for owned parts.
    fn dispatch(
        &self,
        req: Request<BoxBody>,
        timeout: Option<Duration>,
        held: &Arc<HeldHttp1>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Incoming>, EndpointError>> + Send>> {
        let (dispatched, taken) = oneshot::channel();
        let attempt = Attempt {
            req,
            timeout,
            held: held.clone(),
            dispatched: Some(dispatched),
        };
        let mut queue = self.queue.clone();
        let authority = self.authority.clone();
        Box::pin(async move {
            let sent = async move {
                std::future::poll_fn(|cx| queue.poll_ready(cx)).await?;
                queue.call(attempt).await
            };
            let fail_fast = async {
                if tokio::time::timeout(FAIL_FAST_AFTER, taken).await.is_ok() {
                    // An endpoint has the request: it takes as long as it takes.
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                sent = sent => sent.map_err(|error| endpoint_error(error, &authority)),
                () = fail_fast => Err(EndpointError::Failed(ProxyError::NoReadyEndpoint {
                    authority: authority.to_string(),
                    waited: FAIL_FAST_AFTER,
                })),
            }
        })
    }

    /// Endpoints taking requests, and endpoints ejected (or probing).
    pub fn endpoint_states(&self) -> (usize, usize) {
        let health = lock(&self.health);
        let ready = health.values().filter(|h| h.is_ready()).count();
        (ready, health.len() - ready)
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }
}

/// The endpoint's own error, back from behind the balancer and the queue.
fn endpoint_error(error: BoxError, authority: &str) -> EndpointError {
    match error.downcast::<EndpointError>() {
        Ok(error) => *error,
        Err(error) => EndpointError::Failed(ProxyError::Balancer {
            authority: authority.to_string(),
            reason: error.to_string(),
        }),
    }
}

impl From<BoxError> for EndpointError {
    fn from(error: BoxError) -> Self {
        endpoint_error(error, "a service")
    }
}

fn queue<S>(balancer: S) -> Buffer<Attempt, BalancedFuture>
where
    S: tower::Service<Attempt, Response = Response<Incoming>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    let boxed = balancer.map_future(|future| {
        Box::pin(async move { future.await.map_err(EndpointError::from) }) as BalancedFuture
    });
    Buffer::new(boxed, QUEUE_CAPACITY)
}

type EndpointChanges<S> =
    Pin<Box<dyn Stream<Item = Result<Change<SocketAddr, S>, Infallible>> + Send>>;

/// The endpoint set as tower's discovery changes: each new resolution is
/// compared with the last, and endpoints added, changed (say a new
/// identity) or gone become inserts and removals. When discovery stops
/// (the service forgotten), the last endpoints stay.
fn changes<S>(
    resolved: watch::Receiver<Resolved>,
    endpoint: impl Fn(SocketAddr, &EndpointMeta) -> Endpoint + Send + 'static,
    forget: impl Fn(&SocketAddr) + Send + 'static,
    wrap: impl Fn(Endpoint, u32) -> S + Send + 'static,
) -> EndpointChanges<S>
where
    S: Send + 'static,
{
    let mut current: BTreeMap<SocketAddr, EndpointMeta> = BTreeMap::new();
    let diffs = stream::unfold((resolved, true), |(mut resolved, first)| async move {
        if !first && resolved.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let next = resolved.borrow_and_update().clone();
        Some((next, (resolved, false)))
    });
    let changes = diffs.flat_map(move |resolved| {
        let next = match &resolved {
            Resolved::Service(service) => service.endpoints.clone(),
            Resolved::Unknown | Resolved::NotAService => BTreeMap::new(),
        };
        let mut changes = Vec::new();
        for addr in current.keys() {
            if !next.contains_key(addr) {
                forget(addr);
                changes.push(Ok(Change::Remove(*addr)));
            }
        }
        for (addr, meta) in &next {
            if current.get(addr) != Some(meta) {
                let wrapped = wrap(endpoint(*addr, meta), meta.weight);
                changes.push(Ok(Change::Insert(*addr, wrapped)));
            }
        }
        current = next;
        stream::iter(changes)
    });
    Box::pin(changes)
}
