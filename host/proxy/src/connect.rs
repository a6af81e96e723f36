//! Opening connections to upstreams. Today this is plain TCP with a timeout
//! and transport metrics; the mTLS connector between proxies wraps this one.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Direction;
use crate::errors::ConnectError;
use crate::io::MeteredIo;
use crate::metrics::{Peer, TransportLabels, TransportMetrics};

pub type UpstreamIo = MeteredIo<TcpStream>;

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
        let stream = match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
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
        let labels = TransportLabels::new(self.direction, Peer::Dst, addr.to_string());
        Ok(MeteredIo::new(stream, self.metrics.open(labels)))
    }
}

/// hyper's pooled HTTP/1 client connects by URI; the proxy always puts the
/// chosen endpoint's socket address there, so no resolution happens here.
impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamIo>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            let addr = authority
                .parse()
                .map_err(|_| ConnectError::BadAddress(authority.to_string()))?;
            this.connect(addr).await.map(TokioIo::new)
        })
    }
}

impl<T> Connection for MeteredIo<T> {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}
