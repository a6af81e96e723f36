//! A limit on how long an HTTP/1 request body may go without a byte while
//! the proxy waits for it, so a body trickled forever cannot hold a request,
//! its upstream connection and its buffers. The request body notices the
//! wait (it is what is polled for the next bytes); the connection's socket
//! is what fails: hyper then hands the body an error, so the request is
//! aborted upstream rather than cut short into a request that looks whole.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// One HTTP/1 connection's limit, shared by its socket and its requests'
/// bodies.
pub struct BodyReadTimeout {
    timeout: Duration,
    expired: AtomicBool,
    /// Wakes the connection's pending read once the limit has passed.
    reader: Mutex<Option<Waker>>,
}

impl BodyReadTimeout {
    pub fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            timeout,
            expired: AtomicBool::new(false),
            reader: Mutex::new(None),
        })
    }

    /// `body`, watched while it is awaited.
    pub fn watch(self: &Arc<Self>, body: Incoming) -> WatchedBody {
        WatchedBody {
            inner: body,
            limit: self.clone(),
            idle: None,
        }
    }

    fn expire(&self) {
        self.expired.store(true, Ordering::Release);
        if let Some(reader) = self.reader.lock().expect("not poisoned").take() {
            reader.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails its connection when no bytes come for the
    /// connection's body read timeout while it is awaited.
    pub struct WatchedBody {
        #[pin]
        inner: Incoming,
        limit: Arc<BodyReadTimeout>,
        // Started when the body is first awaited, dropped when bytes come.
        idle: Option<Pin<Box<Sleep>>>,
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if polled.is_ready() {
            *this.idle = None;
            return polled;
        }
        let timeout = this.limit.timeout;
        let idle = this
            .idle
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if idle.as_mut().poll(cx).is_ready() {
            // The socket fails; hyper then ends this body with its error.
            this.limit.expire();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A connection's socket that fails its reads once a request body on it
    /// has waited too long.
    pub struct BodyReadTimeoutIo<I> {
        #[pin]
        inner: I,
        limit: Option<Arc<BodyReadTimeout>>,
    }
}

impl<I> BodyReadTimeoutIo<I> {
    pub fn new(inner: I, limit: Option<Arc<BodyReadTimeout>>) -> Self {
        Self { inner, limit }
    }
}

impl<I: AsyncRead> AsyncRead for BodyReadTimeoutIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let Some(limit) = this.limit else {
            return this.inner.poll_read(cx, buf);
        };
        if limit.expired.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no request body bytes for {:?}", limit.timeout),
            )));
        }
        let polled = this.inner.poll_read(cx, buf);
        if polled.is_pending() {
            let mut reader = limit.reader.lock().expect("not poisoned");
            if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *reader = Some(cx.waker().clone());
            }
        }
        polled
    }
}

impl<I: AsyncWrite> AsyncWrite for BodyReadTimeoutIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
