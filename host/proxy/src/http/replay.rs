//! Keeping a request body so the request can be sent again when a plugin
//! asks for a retry. The body streams upstream as it arrives (a client that
//! waits for a response before it finishes sending must not stall) while a
//! copy of its frames is kept; a body that ends within `MAX_REPLAY_BYTES`
//! can be replayed, a longer one cannot and its copy is dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::BoxBody;

/// The most of a request body kept for replay (Linkerd keeps 64 KiB too).
pub const MAX_REPLAY_BYTES: usize = 64 * 1024;

/// The kept copy, shared between the body sent upstream and the request.
#[derive(Default)]
struct Recording {
    frames: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    bytes: usize,
    /// The body ended and every frame is in `frames`.
    complete: bool,
    /// The body was longer than `MAX_REPLAY_BYTES`; nothing is kept.
    overflowed: bool,
}

/// The means to send a request body again.
pub struct Replay(Arc<Mutex<Recording>>);

impl Replay {
    /// Wraps `body` to keep a copy of it as it is sent.
    pub fn record(body: BoxBody) -> (BoxBody, Replay) {
        let recording = Recording {
            complete: body.is_end_stream(),
            overflowed: body.size_hint().lower() > MAX_REPLAY_BYTES as u64,
            ..Recording::default()
        };
        let recording = Arc::new(Mutex::new(recording));
        let body = RecordingBody {
            inner: body,
            recording: recording.clone(),
        };
        (body.boxed(), Replay(recording))
    }

    /// Whether the whole body has been sent and kept.
    pub fn is_ready(&self) -> bool {
        let recording = self.lock();
        recording.complete && !recording.overflowed
    }

    /// A body with the same frames as the one sent, if it was kept whole;
    /// the copy itself is kept for further attempts.
    pub fn body(&self) -> Option<BoxBody> {
        let recording = self.lock();
        (recording.complete && !recording.overflowed).then(|| {
            ReplayedBody {
                frames: recording.frames.iter().cloned().collect(),
                trailers: recording.trailers.clone(),
            }
            .boxed()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Recording {
    fn keep(&mut self, frame: &Frame<Bytes>) {
        if self.overflowed {
            return;
        }
        if let Some(data) = frame.data_ref() {
            self.bytes += data.len();
            if self.bytes > MAX_REPLAY_BYTES {
                self.overflowed = true;
                self.frames = Vec::new();
                return;
            }
            // A reference-counted clone: keeping the frame copies nothing.
            self.frames.push(data.clone());
        } else if let Some(trailers) = frame.trailers_ref() {
            self.trailers = Some(trailers.clone());
        }
    }
}

pin_project_lite::pin_project! {
    struct RecordingBody {
        #[pin]
        inner: BoxBody,
        recording: Arc<Mutex<Recording>>,
    }
}

impl Body for RecordingBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(ready) = &polled {
            let mut recording = this.recording.lock().unwrap_or_else(|p| p.into_inner());
            match ready {
                Some(Ok(frame)) => recording.keep(frame),
                // A failed body cannot be replayed.
                Some(Err(_)) => recording.overflowed = true,
                None => recording.complete = true,
            }
            // The sender may stop polling once the body says it has ended
            // (a known length reached): that is the end too.
            if this.inner.is_end_stream() {
                recording.complete = true;
            }
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

/// A kept body, sent again.
struct ReplayedBody {
    frames: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for ReplayedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(data) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let len: usize = self.frames.iter().map(Bytes::len).sum();
        match self.trailers {
            None => SizeHint::with_exact(len as u64),
            Some(_) => {
                let mut hint = SizeHint::new();
                hint.set_lower(len as u64);
                hint
            }
        }
    }
}
