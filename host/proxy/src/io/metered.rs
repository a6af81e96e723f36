//! A stream that counts the bytes read from and written to its peer into a
//! connection's transport metrics; dropping it records the close.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::ConnectionMeter;

pin_project! {
    #[derive(Debug)]
    pub struct MeteredIo<T> {
        #[pin]
        io: T,
        meter: ConnectionMeter,
    }
}

impl<T> MeteredIo<T> {
    pub fn new(io: T, meter: ConnectionMeter) -> Self {
        Self { io, meter }
    }
}

impl MeteredIo<tokio::net::TcpStream> {
    /// The port the client connected to on this side.
    pub fn local_port(&self) -> u16 {
        self.io.local_addr().map_or(0, |a| a.port())
    }
}

impl<T: AsyncRead> AsyncRead for MeteredIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.io.poll_read(cx, buf);
        this.meter.read(buf.filled().len() - before);
        poll
    }
}

impl<T: AsyncWrite> AsyncWrite for MeteredIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.meter.wrote(n);
        }
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            this.meter.wrote(n);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
