//! One tapped request: its head is sent when it arrives (or, for a tap that
//! matches on the status, with its response), its response's status when
//! that goes back, and its end (bytes, gRPC status, latency) when the body
//! has been sent or dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use weft_api::tap::tap_event::Event;
use weft_api::tap::{
    Direction as WireDirection, Header, RequestInit, ResponseEnd, ResponseInit, TapEvent,
};

use super::{AnsweredBy, Subscription};
use crate::http::ConnectionInfo;
use crate::{BoxBody, Direction};

pub struct Recording {
    started: Instant,
    /// What every event of this request carries.
    common: TapEvent,
    /// Each tap, with the request's head when it waits for the status.
    taps: Vec<(Arc<Subscription>, Option<TapEvent>)>,
}

impl Recording {
    pub(super) fn start<B>(
        id: u64,
        req: &Request<B>,
        authority: Option<&str>,
        conn: &ConnectionInfo,
        taps: Vec<Arc<Subscription>>,
    ) -> Self {
        let common = TapEvent {
            request_id: id,
            direction: match conn.direction {
                Direction::Inbound => WireDirection::Inbound,
                Direction::Outbound => WireDirection::Outbound,
            } as i32,
            source: conn.client.to_string(),
            destination: conn.target.map(|t| t.to_string()).unwrap_or_default(),
            tls: conn.tls,
            peer_identity: conn.client_id.as_deref().unwrap_or_default().to_string(),
            ..TapEvent::default()
        };
        let init = event(
            &common,
            Event::RequestInit(RequestInit {
                method: req.method().to_string(),
                scheme: req.uri().scheme_str().unwrap_or("http").to_string(),
                authority: authority.unwrap_or_default().to_string(),
                path: req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string(),
                headers: headers(req.headers()),
            }),
        );
        let taps = taps
            .into_iter()
            .map(|tap| {
                if tap.filters_status() {
                    (tap, Some(init.clone()))
                } else {
                    tap.send(init.clone());
                    (tap, None)
                }
            })
            .collect();
        Recording {
            started: Instant::now(),
            common,
            taps,
        }
    }

    /// The response is going back: its start is sent now, its end once its
    /// body has been sent. `error` is why the proxy answered itself.
    pub fn attach(
        mut self,
        rsp: Response<BoxBody>,
        error: Option<&'static str>,
    ) -> Response<BoxBody> {
        let status = rsp.status().as_u16();
        let latency = self.started.elapsed().as_micros() as u64;
        self.taps.retain_mut(|(tap, held)| {
            if !tap.wants_status(status) {
                return false;
            }
            if let Some(init) = held.take() {
                tap.send(init);
            }
            tap.send(event(
                &self.common,
                Event::ResponseInit(ResponseInit {
                    status: u32::from(status),
                    since_request_init_us: latency,
                }),
            ));
            true
        });
        if self.taps.is_empty() {
            return rsp;
        }
        let end = ResponseEnd {
            status: u32::from(status),
            // A trailers-only gRPC response has it in its headers.
            grpc_status: grpc_status(rsp.headers()),
            answered_by: rsp
                .extensions()
                .get::<AnsweredBy>()
                .map(|a| a.0.clone())
                .unwrap_or_default(),
            error: error.unwrap_or_default().to_string(),
            ..ResponseEnd::default()
        };
        rsp.map(|inner| {
            TapBody {
                inner,
                ending: Some((self, end)),
            }
            .boxed()
        })
    }

    fn end(self, mut end: ResponseEnd) {
        end.since_request_init_us = self.started.elapsed().as_micros() as u64;
        for (tap, _) in &self.taps {
            tap.send(event(&self.common, Event::ResponseEnd(end.clone())));
        }
    }
}

fn event(common: &TapEvent, event: Event) -> TapEvent {
    TapEvent {
        event: Some(event),
        ..common.clone()
    }
}

fn headers(map: &HeaderMap) -> Vec<Header> {
    map.iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect()
}

fn grpc_status(map: &HeaderMap) -> Option<u32> {
    map.get("grpc-status")?.to_str().ok()?.parse().ok()
}

pin_project_lite::pin_project! {
    /// Counts the response's bytes and reads its trailers; reports the end
    /// when the body ends or is dropped (the client went away).
    struct TapBody {
        #[pin]
        inner: BoxBody,
        ending: Option<(Recording, ResponseEnd)>,
    }

    impl PinnedDrop for TapBody {
        fn drop(this: Pin<&mut Self>) {
            if let Some((recording, end)) = this.project().ending.take() {
                recording.end(end);
            }
        }
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some((_, end)) = this.ending.as_mut() {
                    if let Some(data) = frame.data_ref() {
                        end.response_bytes += data.len() as u64;
                    } else if let Some(trailers) = frame.trailers_ref() {
                        end.grpc_status = grpc_status(trailers).or(end.grpc_status);
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some((recording, end)) = this.ending.take() {
                    recording.end(end);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
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
