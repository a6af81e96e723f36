//! Opening connections to upstreams: plain TCP with a timeout and transport
//! metrics, and, to a meshed peer, mTLS on top of it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::Direction;
use crate::errors::ConnectError;
use crate::io::MeteredIo;
use crate::metrics::{Peer, Tls, TransportLabels, TransportMetrics};
use crate::tls::MeshTls;

type Tcp = MeteredIo<TcpStream>;

/// An upstream connection: to an app or unmeshed service in the clear, to
/// a peer proxy over mTLS.
pub enum UpstreamIo {
    Plain(Tcp),
    Tls(Box<tokio_rustls::client::TlsStream<Tcp>>),
}

#[derive(Clone)]
pub struct Connector {
    direction: Direction,
    timeout: Duration,
    metrics: Arc<TransportMetrics>,
}

impl Connector {
    pub fn new(direction: Direction, timeout: Duration, metrics: Arc<TransportMetrics>) -> Self {
        Self {
            direction,
            timeout,
            metrics,
        }
    }

    pub async fn connect(&self, addr: SocketAddr) -> Result<UpstreamIo, ConnectError> {
        Ok(UpstreamIo::Plain(self.tcp(addr, Tls::Disabled).await?))
    }

    /// mTLS to the proxy at `addr`, which must prove `identity`; with
    /// `transport_port`, opaque TCP for that port of its app. The handshake
    /// counts against the connect timeout.
    pub async fn connect_tls(
        &self,
        addr: SocketAddr,
        tls: &MeshTls,
        identity: &ServerName<'static>,
        transport_port: Option<u16>,
    ) -> Result<UpstreamIo, ConnectError> {
        let failed = |source| ConnectError::Tls {
            addr,
            identity: identity.to_str().into_owned(),
            source,
        };
        let connect = async {
            let tcp = self.tcp(addr, Tls::Originated).await?;
            tls.originate(tcp, identity.clone(), transport_port)
                .await
                .map_err(failed)
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(connected) => Ok(UpstreamIo::Tls(Box::new(connected?))),
            Err(_elapsed) => Err(ConnectError::Timeout {
                addr,
                timeout: self.timeout,
            }),
        }
    }

    async fn tcp(&self, addr: SocketAddr, tls: Tls) -> Result<Tcp, ConnectError> {
        let stream = match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(ConnectError::Refused { addr });
            }
            Ok(Err(source)) => return Err(ConnectError::Io { addr, source }),
            Err(_elapsed) => {
                return Err(ConnectError::Timeout {
                    addr,
                    timeout: self.timeout,
                });
            }
        };
        // Requests and responses are written whole; Nagle only adds delay.
        let _ = stream.set_nodelay(true);
        let mut labels = TransportLabels::new(self.direction, Peer::Dst, addr.to_string());
        labels.tls = tls;
        Ok(MeteredIo::new(stream, self.metrics.open(labels)))
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            UpstreamIo::Tls(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            UpstreamIo::Tls(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamIo::Plain(io) => io.is_write_vectored(),
            UpstreamIo::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_flush(cx),
            UpstreamIo::Tls(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            UpstreamIo::Tls(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
