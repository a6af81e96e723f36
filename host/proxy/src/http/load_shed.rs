//! Load shedding: a limit on the requests in flight through the proxy, both
//! directions together. A request past it is answered 503 at once instead
//! of waiting in a queue: a queue holds the client's time and the proxy's
//! memory while the app is already behind, and a quick 503 lets the client
//! or its retry policy go elsewhere. A request keeps its place until its
//! response body ends or is dropped, so a long stream counts for as long as
//! it lasts; an upgraded connection (WebSocket) counts only until its 101.
//! The end of a response body is also when its HTTP/1 upstream connection
//! goes back to the pool.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::idle::Active;
use super::upstream::HeldHttp1;
use crate::errors::ProxyError;
use crate::metrics::TransportMetrics;
use crate::{BoxBody, Direction};

pub struct InFlightLimit {
    permits: Arc<Semaphore>,
    limit: usize,
    metrics: Arc<TransportMetrics>,
}

/// One request's place under the limit (and on its connection, which is
/// busy for as long).
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
    _on_connection: Option<Active>,
    /// Released to the pool when the response body ends.
    upstream: Option<Arc<HeldHttp1>>,
}

impl InFlightLimit {
    pub fn new(limit: u32, metrics: Arc<TransportMetrics>) -> Self {
        let limit = (limit as usize).min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
        }
    }

    /// A place for one request, or `Overloaded` (and counted) when every
    /// place is taken.
    pub fn admit(&self, direction: Direction) -> Result<InFlight, ProxyError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(InFlight {
                _permit: permit,
                _on_connection: None,
                upstream: None,
            }),
            Err(_) => {
                self.metrics.request_shed(direction);
                Err(ProxyError::Overloaded { limit: self.limit })
            }
        }
    }
}

impl InFlight {
    /// Also keeps the request's connection busy while the place is held.
    pub fn on_connection(mut self, active: Option<Active>) -> Self {
        self._on_connection = active;
        self
    }

    /// Also releases the upstream connection `held` when the response body
    /// has been read to its end (not when it is dropped before).
    pub fn releasing(mut self, held: Arc<HeldHttp1>) -> Self {
        self.upstream = Some(held);
        self
    }

    /// Keeps the place until `rsp`'s body has ended or been dropped.
    pub fn hold_until_sent(mut self, rsp: Response<BoxBody>) -> Response<BoxBody> {
        // hyper never polls a body that is empty from the start.
        if rsp.body().is_end_stream() {
            self.ended();
        }
        rsp.map(|inner| {
            HeldBody {
                inner,
                place: Some(self),
            }
            .boxed()
        })
    }

    fn ended(&mut self) {
        if let Some(held) = self.upstream.take() {
            held.release();
        }
    }
}

pin_project_lite::pin_project! {
    struct HeldBody {
        #[pin]
        inner: BoxBody,
        place: Option<InFlight>,
    }
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        // Freed as soon as the body ends, not whenever the body is dropped.
        match &polled {
            Poll::Ready(None) => {
                if let Some(mut place) = this.place.take() {
                    place.ended();
                }
            }
            Poll::Ready(Some(Err(_))) => drop(this.place.take()),
            // hyper stops polling once the body says it has ended.
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                if let Some(place) = this.place.as_mut() {
                    place.ended();
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    fn response() -> Response<BoxBody> {
        let body = Full::new(Bytes::from_static(b"hello"))
            .map_err(|never| match never {})
            .boxed();
        Response::new(body)
    }

    #[tokio::test]
    async fn past_the_limit_requests_are_shed_until_a_body_ends() {
        let mut registry = Registry::default();
        let limit = InFlightLimit::new(1, TransportMetrics::register(&mut registry));

        let first = limit.admit(Direction::Inbound).expect("a free place");
        let shed = limit.admit(Direction::Outbound).err().expect("no place");
        assert_eq!(shed.reason(), "proxy overloaded");
        assert_eq!(shed.status(), http::StatusCode::SERVICE_UNAVAILABLE);

        let rsp = first.hold_until_sent(response());
        assert!(limit.admit(Direction::Inbound).is_err(), "held by the body");
        let body = rsp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
        drop(
            limit
                .admit(Direction::Inbound)
                .expect("freed when the body ended"),
        );

        let dropped = limit.admit(Direction::Inbound).unwrap();
        drop(dropped.hold_until_sent(response()));
        limit
            .admit(Direction::Inbound)
            .expect("freed when the body was dropped");

        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("http_requests_shed_total{direction=\"outbound\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_shed_total{direction=\"inbound\"} 1\n"),
            "{text}"
        );
    }
}
