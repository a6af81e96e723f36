//! Opening connections to upstreams. Today this is plain TCP with a timeout
//! and transport metrics; the mTLS connector between proxies wraps this one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
