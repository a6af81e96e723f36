//! One endpoint of a balanced service, as a tower `Service` the balancer
//! picks among: it sends a request through the proxy's upstream connections
//! and keeps the endpoint's health. After [`MAX_CONSECUTIVE_FAILURES`]
//! failed responses in a row (5xx, or no response), or at once when no
//! connection can be made, it is ejected (not ready, so the balancer passes
//! it by), then probed with one request after a backoff growing from 1 s to
//! 60 s with jitter; a success brings it back. A request that found no
//! connection never left, so it comes back to the balancer for another
//! endpoint instead of failing.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use rustls::pki_types::ServerName;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::BoxBody;
use crate::discovery::EndpointMeta;
use crate::errors::ProxyError;
use crate::http::{HeldHttp1, SendError, Upstream};

/// Failures in a row that eject an endpoint (Linkerd's default).
pub const MAX_CONSECUTIVE_FAILURES: u32 = 7;
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, EndpointError>> + Send>>;

/// One attempt of a request, as the balancer passes it to an endpoint.
pub struct Attempt {
    pub req: Request<BoxBody>,
    pub timeout: Option<Duration>,
    pub held: Arc<HeldHttp1>,
    /// Told when an endpoint takes the attempt, so the caller knows it no
    /// longer waits for one.
    pub dispatched: Option<oneshot::Sender<()>>,
}

/// The labels of the endpoint that answered, as a response extension:
/// Linkerd's `dst_*` metric labels (`dst_pod`, `dst_deployment`, ...).
#[derive(Clone, Debug)]
pub struct EndpointLabels(pub Arc<[(String, String)]>);

pub struct Endpoint {
    addr: SocketAddr,
    identity: Option<ServerName<'static>>,
    labels: EndpointLabels,
    upstream: Arc<Upstream>,
    health: Arc<Health>,
    /// While ejected: when to probe.
    wake_at: Option<Pin<Box<Sleep>>>,
}

impl Endpoint {
    pub fn new(
        addr: SocketAddr,
        meta: &EndpointMeta,
        upstream: Arc<Upstream>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            addr,
            identity: meta.identity.clone(),
            labels: EndpointLabels(meta.labels.clone()),
            upstream,
            health,
            wake_at: None,
        }
    }
}

/// Why an endpoint gave no response.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Failed(ProxyError),
    /// No connection could be made: the request never left.
    #[error("{0}")]
    Unsent(ProxyError, Box<Request<BoxBody>>),
}

impl tower::Service<Attempt> for Endpoint {
    type Response = Response<Incoming>;
    type Error = EndpointError;
    type Future = ResponseFuture;

    /// Never an error: the balancer would drop the endpoint for good.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), EndpointError>> {
        loop {
            let until = match self.health.poll_ready(cx) {
                Readiness::Ready => {
                    self.wake_at = None;
                    return Poll::Ready(Ok(()));
                }
                Readiness::WaitForProbe => return Poll::Pending,
                Readiness::EjectedUntil(until) => until,
            };
            let sleep = self
                .wake_at
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
            if sleep.deadline() != until {
                sleep.as_mut().reset(until);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wake_at = None;
        }
    }

    fn call(&mut self, mut attempt: Attempt) -> ResponseFuture {
        if let Some(dispatched) = attempt.dispatched.take() {
            let _ = dispatched.send(());
        }
        self.health.dispatched();
        let (addr, identity) = (self.addr, self.identity.clone());
        let (upstream, health) = (self.upstream.clone(), self.health.clone());
        let labels = self.labels.clone();
        Box::pin(async move {
            let sent = upstream
                .try_send_to(addr, identity, attempt.req, attempt.timeout, &attempt.held)
                .await;
            match sent {
                Ok(mut rsp) => {
                    health.record(if rsp.status().is_server_error() {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                    rsp.extensions_mut().insert(labels);
                    Ok(rsp)
                }
                Err(SendError {
                    error,
                    unsent: Some(req),
                }) => {
                    health.record(Outcome::Unreachable);
                    Err(EndpointError::Unsent(error, Box::new(req)))
                }
                Err(SendError { error, .. }) => {
                    health.record(if error.is_upstream() {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                    Err(EndpointError::Failed(error))
                }
            }
        })
    }
}

/// What the balancer needs to know of an endpoint, shared between its
/// service and its in-flight requests (and read by the metrics).
pub struct Health {
    addr: SocketAddr,
    state: Mutex<HealthState>,
}

#[derive(Default)]
struct HealthState {
    condition: Condition,
    /// The balancer's task, waiting for a probe's outcome.
    waiting: Option<Waker>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Condition {
    #[default]
    Serving,
    Failing {
        in_a_row: u32,
    },
    Ejected {
        until: Instant,
        backoff: Duration,
    },
    /// Let one request through to see whether it recovered.
    Probing {
        backoff: Duration,
        sent: bool,
    },
}

/// How an attempt went, for the endpoint's health.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// A response below 500 (or a failure that is not the endpoint's).
    Success,
    /// A 5xx, or no response.
    Failure,
    /// No connection could be made.
    Unreachable,
}

enum Readiness {
    Ready,
    EjectedUntil(Instant),
    WaitForProbe,
}

impl Health {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            state: Mutex::default(),
        }
    }

    /// Whether the endpoint takes requests (false while ejected or being
    /// probed).
    pub fn is_ready(&self) -> bool {
        matches!(
            self.lock().condition,
            Condition::Serving | Condition::Failing { .. }
        )
    }

    fn poll_ready(&self, cx: &mut Context<'_>) -> Readiness {
        let mut state = self.lock();
        match state.condition {
            Condition::Serving | Condition::Failing { .. } => Readiness::Ready,
            Condition::Ejected { until, backoff } => {
                if Instant::now() < until {
                    return Readiness::EjectedUntil(until);
                }
                state.condition = Condition::Probing {
                    backoff,
                    sent: false,
                };
                Readiness::Ready
            }
            Condition::Probing { sent: false, .. } => Readiness::Ready,
            Condition::Probing { sent: true, .. } => {
                state.waiting = Some(cx.waker().clone());
                Readiness::WaitForProbe
            }
        }
    }

    fn dispatched(&self) {
        if let Condition::Probing { sent, .. } = &mut self.lock().condition {
            *sent = true;
        }
    }

    fn record(&self, outcome: Outcome) {
        let mut state = self.lock();
        let next = match (state.condition, outcome) {
            // Requests sent before the ejection finish unheeded: only the
            // probe decides.
            (Condition::Ejected { .. }, _) => return,
            (_, Outcome::Success) => Condition::Serving,
            (Condition::Probing { backoff, .. }, _) => ejected((backoff * 2).min(MAX_BACKOFF)),
            (_, Outcome::Unreachable) => ejected(MIN_BACKOFF),
            (Condition::Serving, Outcome::Failure) => Condition::Failing { in_a_row: 1 },
            (Condition::Failing { in_a_row }, Outcome::Failure)
                if in_a_row + 1 < MAX_CONSECUTIVE_FAILURES =>
            {
                Condition::Failing {
                    in_a_row: in_a_row + 1,
                }
            }
            (Condition::Failing { .. }, Outcome::Failure) => ejected(MIN_BACKOFF),
        };
        if matches!(next, Condition::Ejected { .. })
            && !matches!(state.condition, Condition::Probing { .. })
        {
            tracing::info!(addr = %self.addr, ?outcome, "endpoint ejected");
        }
        state.condition = next;
        if let Some(waker) = state.waiting.take() {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ejected for `backoff`, give or take a quarter, so endpoints ejected
/// together are not all probed at once.
fn ejected(backoff: Duration) -> Condition {
    let random = RandomState::new().hash_one(Instant::now()) % 1000;
    let jitter = backoff.mul_f64((random as f64 / 1000.0 - 0.5) / 2.0 + 1.0);
    Condition::Ejected {
        until: Instant::now() + jitter,
        backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(health: &Health) -> bool {
        let waker = futures_util::task::noop_waker();
        matches!(
            health.poll_ready(&mut Context::from_waker(&waker)),
            Readiness::Ready
        )
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_and_a_probe_brings_the_endpoint_back() {
        let health = Health::new("127.0.0.1:9".parse().unwrap());
        for _ in 0..MAX_CONSECUTIVE_FAILURES - 1 {
            health.record(Outcome::Failure);
        }
        health.record(Outcome::Success);
        for _ in 0..MAX_CONSECUTIVE_FAILURES - 1 {
            health.record(Outcome::Failure);
        }
        assert!(ready(&health), "a success in between restarts the count");
        health.record(Outcome::Failure);
        assert!(!ready(&health), "ejected after {MAX_CONSECUTIVE_FAILURES}");

        // Probed after the backoff (1 s, ± a quarter); the probe fails: out
        // again, for longer.
        tokio::time::advance(Duration::from_millis(1250)).await;
        assert!(ready(&health), "probed after the backoff");
        health.dispatched();
        assert!(!ready(&health), "one probe at a time");
        health.record(Outcome::Failure);
        tokio::time::advance(Duration::from_millis(1250)).await;
        assert!(!ready(&health), "the backoff doubled");
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(ready(&health));
        health.dispatched();
        health.record(Outcome::Success);
        assert!(ready(&health));
        assert!(health.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_that_takes_no_connection_is_ejected_at_once() {
        let health = Health::new("127.0.0.1:9".parse().unwrap());
        health.record(Outcome::Unreachable);
        assert!(!health.is_ready());
        tokio::time::advance(Duration::from_millis(1250)).await;
        assert!(ready(&health), "probed after the backoff");
    }

    #[tokio::test(start_paused = true)]
    async fn the_backoff_stops_growing_at_a_minute() {
        let health = Health::new("127.0.0.1:9".parse().unwrap());
        for _ in 0..MAX_CONSECUTIVE_FAILURES {
            health.record(Outcome::Failure);
        }
        for _ in 0..10 {
            tokio::time::advance(MAX_BACKOFF * 2).await;
            assert!(ready(&health));
            health.dispatched();
            health.record(Outcome::Failure);
        }
        let Condition::Ejected { backoff, .. } = health.lock().condition else {
            panic!("ejected");
        };
        assert_eq!(backoff, MAX_BACKOFF);
    }
}
