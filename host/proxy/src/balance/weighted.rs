//! Endpoint weights in the pick. As Linkerd does, an endpoint's load is
//! divided by its weight relative to the default (10,000), so one weighing
//! three times as much is picked until it carries three times the load.
//!
//! tower's load metrics (`peak_ewma::Cost`, `pending_requests::Count`) are
//! opaque and cannot be divided, so the two measures are kept here as
//! numbers, computed as tower computes them: requests in flight, and
//! peak-EWMA latency times (requests in flight + 1), the latency decaying
//! towards recent measurements over the decay period and jumping to any
//! higher one at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::Service;
use tower::load::Load;

pub use weft_api::destination::DEFAULT_WEIGHT;

/// An endpoint with its weight and its load, as the balancers see it.
pub struct Weighted<S> {
    inner: S,
    weight: u32,
    measure: Measure,
}

#[derive(Clone)]
enum Measure {
    /// Requests in flight: the `Arc`'s other holders.
    InFlight(Arc<()>),
    PeakEwma(Arc<Mutex<Rtt>>, Ewma),
}

#[derive(Clone, Copy)]
struct Ewma {
    decay_ns: f64,
}

struct Rtt {
    ns: f64,
    updated: Instant,
}

impl Rtt {
    /// Folds in a latency measured at `now` (zero to decay alone).
    fn update(&mut self, rtt_ns: f64, now: Instant, ewma: Ewma) -> f64 {
        if rtt_ns > self.ns {
            self.ns = rtt_ns;
        } else {
            let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
            let decay = (-elapsed / ewma.decay_ns).exp();
            self.ns = self.ns * decay + rtt_ns * (1.0 - decay);
        }
        self.updated = now;
        self.ns
    }
}

impl<S> Weighted<S> {
    /// Loaded by its requests in flight.
    pub fn in_flight(inner: S, weight: u32) -> Self {
        let measure = Measure::InFlight(Arc::new(()));
        Self::with(inner, weight, measure)
    }

    /// Loaded by peak-EWMA latency times requests in flight, starting at
    /// `default_rtt` and fading over `decay`.
    pub fn peak_ewma(inner: S, weight: u32, default_rtt: Duration, decay: Duration) -> Self {
        let rtt = Rtt {
            ns: default_rtt.as_nanos() as f64,
            updated: Instant::now(),
        };
        let ewma = Ewma {
            decay_ns: (decay.as_nanos() as f64).max(1.0),
        };
        Self::with(
            inner,
            weight,
            Measure::PeakEwma(Arc::new(Mutex::new(rtt)), ewma),
        )
    }

    fn with(inner: S, weight: u32, measure: Measure) -> Self {
        Self {
            inner,
            // Weight 0 would divide by zero; it counts as the least there is.
            weight: weight.max(1),
            measure,
        }
    }

    pub fn weight(&self) -> u32 {
        self.weight
    }

    fn in_flight_now(&self) -> f64 {
        let handles = match &self.measure {
            Measure::InFlight(count) => Arc::strong_count(count),
            Measure::PeakEwma(rtt, _) => Arc::strong_count(rtt),
        };
        (handles - 1) as f64
    }
}

impl<S> Load for Weighted<S> {
    type Metric = f64;

    fn load(&self) -> f64 {
        let load = match &self.measure {
            Measure::InFlight(_) => self.in_flight_now(),
            Measure::PeakEwma(rtt, ewma) => {
                let now = Instant::now();
                let ns = crate::lock(rtt).update(0.0, now, *ewma);
                ns * (self.in_flight_now() + 1.0)
            }
        };
        load * f64::from(DEFAULT_WEIGHT) / f64::from(self.weight)
    }
}

impl<S: Service<Req>, Req> Service<Req> for Weighted<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Measured<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        Measured {
            future: self.inner.call(req),
            handle: Some(Handle {
                measure: self.measure.clone(),
                sent: Instant::now(),
            }),
        }
    }
}

/// A request in flight: counted while held; under peak EWMA, its latency
/// is folded in when its response comes.
struct Handle {
    measure: Measure,
    sent: Instant,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Measure::PeakEwma(rtt, ewma) = &self.measure {
            let now = Instant::now();
            let rtt_ns = now.saturating_duration_since(self.sent).as_nanos() as f64;
            crate::lock(rtt).update(rtt_ns, now, *ewma);
        }
    }
}

pin_project! {
    /// A response future that holds its request's [`Handle`] until it
    /// completes.
    pub struct Measured<F> {
        #[pin]
        future: F,
        handle: Option<Handle>,
    }
}

impl<F: Future> Future for Measured<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        this.handle.take();
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests;
