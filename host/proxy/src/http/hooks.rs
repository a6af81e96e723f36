//! The plugin chain on the HTTP path: request hooks before an endpoint is
//! picked, response hooks before the response goes back, and a completion
//! hook when the response body has been sent (or the request failed).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use weft_plugins::{Completion, LocalResponse, PluginChain, RequestView};

use crate::BoxBody;
use crate::http::ConnectionInfo;

/// A request view over `parts`, as plugins see it on its first attempt.
pub fn view(parts: http::request::Parts, conn: &ConnectionInfo) -> RequestView {
    RequestView {
        parts,
        direction: conn.direction.into(),
        client_addr: conn.client,
        local_port: conn.local_port,
        peer_identity: conn.client_id.as_deref().map(str::to_owned),
        tls: conn.tls,
        backend: None,
        destination_labels: Default::default(),
        timeout: None,
        attempt: 1,
        replayable: false,
    }
}

/// The response a plugin made.
pub fn local_response(local: LocalResponse) -> Response<BoxBody> {
    let body = Full::new(Bytes::from(local.body))
        .map_err(|never| match never {})
        .boxed();
    let mut rsp = Response::new(body);
    (*rsp.status_mut(), *rsp.headers_mut()) =
        super::headers::local_response_head(local.status, local.headers);
    rsp
}

/// What the completion hook will be told, filled in as the request goes.
pub struct Completing {
    pub chain: Arc<PluginChain>,
    /// The request as it went upstream, or as the request hooks left it
    /// when one of them answered.
    pub request: Option<RequestView>,
    pub started: Instant,
    pub response_latency_us: u64,
    pub attempts: u32,
}

impl Completing {
    /// Runs the hook when `body` has been sent to the client (or dropped).
    pub fn attach(self, rsp: Response<BoxBody>, error: Option<&'static str>) -> Response<BoxBody> {
        let status = (error.is_none()).then(|| rsp.status().as_u16());
        rsp.map(|inner| {
            CompletionBody {
                inner,
                pending: Some((self, status, error)),
            }
            .boxed()
        })
    }

    fn complete(self, status: Option<u16>, error: Option<&'static str>) {
        let Some(request) = self.request else {
            return;
        };
        let total_us = self.started.elapsed().as_micros() as u64;
        let info = Completion {
            status,
            error: error.map(str::to_string),
            response_latency_us: self.response_latency_us.min(total_us),
            total_us,
            attempts: self.attempts,
        };
        self.chain.on_complete_detached(request, info);
    }
}

pin_project_lite::pin_project! {
    struct CompletionBody {
        #[pin]
        inner: BoxBody,
        pending: Option<(Completing, Option<u16>, Option<&'static str>)>,
    }

    impl PinnedDrop for CompletionBody {
        fn drop(this: Pin<&mut Self>) {
            if let Some((completing, status, error)) = this.project().pending.take() {
                completing.complete(status, error);
            }
        }
    }
}

impl Body for CompletionBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some((completing, status, error)) = this.pending.take()
        {
            completing.complete(status, error);
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
