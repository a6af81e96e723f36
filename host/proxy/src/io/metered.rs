//! A stream that counts the bytes read from and written to its peer into a
//! connection's transport metrics; dropping it records the close.
//!
//! An inbound connection's labels depend on what it turns out to be (mTLS
//! for this proxy, the app's own TLS, plaintext), which is known only after
//! its first bytes are read; until then its bytes are tallied aside and
//! recorded under the labels it is given.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::{ConnectionMeter, Tls, TransportLabels, TransportMetrics};

pin_project! {
    #[derive(Debug)]
    pub struct MeteredIo<T> {
        #[pin]
        io: T,
        meter: Meter,
    }
}

impl<T> MeteredIo<T> {
    pub fn new(io: T, meter: ConnectionMeter) -> Self {
        let meter = Meter {
            open: Some(meter),
            pending: None,
        };
        Self { io, meter }
    }

    /// A connection recorded under `labels` only once `labelled` (or, if
    /// it ends first, as it closes): its bytes until then are kept aside.
    pub fn pending(io: T, metrics: Arc<TransportMetrics>, labels: TransportLabels) -> Self {
        let pending = Pending {
            metrics,
            labels,
            accepted: Instant::now(),
            read: 0,
            wrote: 0,
        };
        let meter = Meter {
            open: None,
            pending: Some(Box::new(pending)),
        };
        Self { io, meter }
    }

    /// Records a pending connection as `tls` from now on; a connection
    /// already recorded keeps its labels.
    pub fn labelled(&mut self, tls: Tls) {
        if let Some(mut pending) = self.meter.pending.take() {
            pending.labels.tls = tls;
            self.meter.open = Some(pending.open());
        }
    }

    /// Records a pending connection under the labels it was given.
    pub fn record(&mut self) {
        if let Some(pending) = self.meter.pending.take() {
            self.meter.open = Some(pending.open());
        }
    }
}

/// The meter of a connection, or its tally while its labels are not known.
#[derive(Debug)]
struct Meter {
    open: Option<ConnectionMeter>,
    pending: Option<Box<Pending>>,
}

struct Pending {
    metrics: Arc<TransportMetrics>,
    labels: TransportLabels,
    accepted: Instant,
    read: usize,
    wrote: usize,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("labels", &self.labels)
            .field("read", &self.read)
            .field("wrote", &self.wrote)
            .finish_non_exhaustive()
    }
}

impl Pending {
    fn open(&self) -> ConnectionMeter {
        let meter = self.metrics.open_since(self.labels.clone(), self.accepted);
        meter.read(self.read);
        meter.wrote(self.wrote);
        meter
    }
}

impl Meter {
    fn read(&mut self, n: usize) {
        match (&self.open, &mut self.pending) {
            (Some(meter), _) => meter.read(n),
            (None, Some(pending)) => pending.read += n,
            (None, None) => {}
        }
    }

    fn wrote(&mut self, n: usize) {
        match (&self.open, &mut self.pending) {
            (Some(meter), _) => meter.wrote(n),
            (None, Some(pending)) => pending.wrote += n,
            (None, None) => {}
        }
    }
}

impl Drop for Meter {
    /// A connection that ended before it was labelled is recorded as it
    /// was given (opened and closed at once).
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            drop(pending.open());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;
    use crate::metrics::{NoTlsReason, Peer, assert_samples};
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn text(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    #[tokio::test]
    async fn a_pending_connection_is_recorded_with_its_bytes_under_the_labels_it_gets() {
        let mut registry = Registry::default();
        let metrics = TransportMetrics::register(&mut registry);
        let (client, server) = tokio::io::duplex(64);
        let mut labels = TransportLabels::new(Direction::Inbound, Peer::Src, "a:1".into());
        labels.tls = Tls::NoIdentity(NoTlsReason::FromRemote);
        let mut io = MeteredIo::pending(server, metrics, labels);
        let mut client = client;
        client.write_all(b"hello").await.unwrap();
        let mut read = [0; 5];
        io.read_exact(&mut read).await.unwrap();
        assert!(!text(&registry).contains("tcp_open_total{"));

        let client_id = Some(Arc::from("app.demo.serviceaccount.identity.weft-system.x"));
        io.labelled(Tls::Accepted { client_id });
        io.write_all(b"hi").await.unwrap();
        let series = r#"{direction="inbound",peer="src",tls="true",client_id="app.demo.serviceaccount.identity.weft-system.x",target_addr="a:1"}"#;
        let text = text(&registry);
        assert_samples(
            &text,
            series,
            &[
                ("tcp_open_total", 1),
                ("tcp_read_bytes_total", 5),
                ("tcp_write_bytes_total", 2),
            ],
        );
    }

    #[tokio::test]
    async fn a_connection_that_ends_unlabelled_is_recorded_as_given() {
        let mut registry = Registry::default();
        let metrics = TransportMetrics::register(&mut registry);
        let (_client, server) = tokio::io::duplex(64);
        let mut labels = TransportLabels::new(Direction::Inbound, Peer::Src, "a:1".into());
        labels.tls = Tls::NoIdentity(NoTlsReason::FromRemote);
        drop(MeteredIo::pending(server, metrics, labels));
        let series = r#"{direction="inbound",peer="src",tls="no_identity",no_tls_reason="no_tls_from_remote",target_addr="a:1"}"#;
        let text = text(&registry);
        assert_samples(
            &text,
            series,
            &[
                ("tcp_open_total", 1),
                ("tcp_close_total", 1),
                ("tcp_open_connections", 0),
            ],
        );
    }
}
