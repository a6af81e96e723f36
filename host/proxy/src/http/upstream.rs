//! Sending requests to an endpoint. HTTP/1.1 goes over a pooled upstream
//! connection, held by the downstream connection only while its request is
//! in flight (see `http1_pool`), so idle kept-alive clients hold no
//! upstream connection. HTTP/2 goes over one multiplexed connection per
//! endpoint, so that `:authority` and trailers pass through unchanged.
//!
//! To a meshed peer, everything goes over mTLS: HTTP of either version over
//! one multiplexed HTTP/2 connection per peer (HTTP/1 requests restored on
//! the far side), upgrades over a connection of their own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{HOST, HeaderValue, UPGRADE};
use http::{Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::sync::OnceCell;

use crate::BoxBody;
use crate::connect::{Connector, UpstreamIo};
use crate::destination::Peers;
use crate::errors::{ConnectError, ProxyError};
use crate::http::headers;
use crate::tls::MeshTls;

mod http1_pool;

pub use http1_pool::HeldHttp1;
use http1_pool::IdleHttp1;

pub struct Upstream {
    connector: Connector,
    mesh: Option<Mesh>,
    idle: Arc<IdleHttp1>,
    http2: Mutex<HashMap<Http2Key, Arc<OnceCell<http2::SendRequest<BoxBody>>>>>,
    response_timeout: Option<Duration>,
}

/// What outbound traffic needs for mTLS: the proxy's own TLS, and who is
/// meshed.
pub struct Mesh {
    pub tls: Arc<MeshTls>,
    pub peers: Arc<Peers>,
}

/// An HTTP/2 connection is to an endpoint, over mTLS to the identity
/// expected there or in the clear.
type Http2Key = (SocketAddr, Option<ServerName<'static>>);

impl Upstream {
    pub fn new(
        connector: Connector,
        mesh: Option<Mesh>,
        response_timeout: Option<Duration>,
    ) -> Self {
        Self {
            connector,
            mesh,
            idle: Arc::default(),
            http2: Mutex::default(),
            response_timeout,
        }
    }

    /// The identity of the peer proxy at `addr`, when it is meshed and this
    /// proxy has an identity to speak mTLS with.
    async fn meshed(&self, addr: SocketAddr) -> Option<ServerName<'static>> {
        self.mesh.as_ref()?.peers.identity(addr).await
    }

    /// A connection for opaque TCP to `addr`: when a peer proxy receives
    /// there, over mTLS to the port that proxy receives on itself, with a
    /// transport header naming `addr`'s port (Linkerd's opaque transport).
    pub async fn connect_opaque(&self, addr: SocketAddr) -> Result<UpstreamIo, ConnectError> {
        let peer = match &self.mesh {
            Some(mesh) => mesh.peers.peer(addr).await,
            None => None,
        };
        let Some(peer) = peer else {
            return self.connector.connect(addr).await;
        };
        let to = SocketAddr::new(addr.ip(), peer.transport_port.unwrap_or(addr.port()));
        self.connect(to, Some(&peer.identity), Some(addr.port()))
            .await
    }

    /// Over mTLS to a peer proxy expected to be `identity`, else in the
    /// clear; `transport_port` as for [`Connector::connect_tls`].
    async fn connect(
        &self,
        addr: SocketAddr,
        identity: Option<&ServerName<'static>>,
        transport_port: Option<u16>,
    ) -> Result<UpstreamIo, ConnectError> {
        match (&self.mesh, identity) {
            (Some(mesh), Some(identity)) => {
                self.connector
                    .connect_tls(addr, &mesh.tls, identity, transport_port)
                    .await
            }
            _ => self.connector.connect(addr).await,
        }
    }

    /// A new downstream connection's hold on the HTTP/1 upstream connection
    /// of its request in flight.
    pub fn held_http1(&self) -> HeldHttp1 {
        HeldHttp1::new(self.idle.clone())
    }

    /// Sends `req` to `addr`, over mTLS when the controller says a peer
    /// proxy receives there.
    pub async fn send(
        &self,
        addr: SocketAddr,
        req: Request<BoxBody>,
        timeout: Option<Duration>,
        held: &HeldHttp1,
    ) -> Result<Response<Incoming>, ProxyError> {
        let identity = self.meshed(addr).await;
        self.try_send_to(addr, identity, req, timeout, held)
            .await
            .map_err(|failed| failed.error)
    }

    /// Sends `req` to `addr`, in the request's own HTTP version, or over
    /// mTLS to a peer proxy that proves `identity` (when this proxy has an
    /// identity of its own); `timeout` (from a plugin) replaces the
    /// configured response timeout. A request that failed before any of it
    /// left (no connection could be made) comes back with the error, to go
    /// to another endpoint.
    pub async fn try_send_to(
        &self,
        addr: SocketAddr,
        identity: Option<ServerName<'static>>,
        req: Request<BoxBody>,
        timeout: Option<Duration>,
        held: &HeldHttp1,
    ) -> Result<Response<Incoming>, SendError> {
        let meshed = identity.filter(|_| self.mesh.is_some());
        let send = async {
            let upgrade = req.headers().contains_key(UPGRADE) || req.method() == Method::CONNECT;
            match meshed {
                Some(identity) if upgrade => self.send_meshed_upgrade(addr, identity, req).await,
                Some(identity) => {
                    let mut req = req;
                    headers::to_mesh_h2(&mut req, addr)?;
                    self.send_http2(addr, Some(identity), req).await
                }
                None if req.version() == Version::HTTP_2 => self.send_http2(addr, None, req).await,
                None => self.send_http1(addr, req, held).await,
            }
        };
        match timeout.or(self.response_timeout) {
            None => send.await,
            Some(timeout) => tokio::time::timeout(timeout, send)
                .await
                .map_err(|_| ProxyError::ResponseTimeout { addr, timeout })?,
        }
    }

    async fn send_http1(
        &self,
        addr: SocketAddr,
        mut req: Request<BoxBody>,
        held: &HeldHttp1,
    ) -> Result<Response<Incoming>, SendError> {
        to_origin_form(&mut req, addr)?;
        if let Some(mut sender) = held.take(addr).or_else(|| self.idle.take(addr))
            && sender.ready().await.is_ok()
        {
            match sender.try_send_request(req).await {
                Ok(rsp) => {
                    held.put(addr, sender, &rsp);
                    return Ok(rsp);
                }
                // The upstream closed the idle connection before the request
                // went out: nothing was sent, so a new connection may send it.
                Err(mut error) => match error.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(ProxyError::upstream(addr, error.error()).into()),
                },
            }
        }
        let mut sender = match self.http1_connect(addr, None).await {
            Ok(sender) => sender,
            Err(error) => return Err(SendError::unsent(error, req)),
        };
        let rsp = sender
            .send_request(req)
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))?;
        held.put(addr, sender, &rsp);
        Ok(rsp)
    }

    /// An upgrade to a peer proxy: HTTP/1 over an mTLS connection of its
    /// own, which the upgraded protocol then takes over.
    async fn send_meshed_upgrade(
        &self,
        addr: SocketAddr,
        identity: ServerName<'static>,
        mut req: Request<BoxBody>,
    ) -> Result<Response<Incoming>, SendError> {
        to_origin_form(&mut req, addr)?;
        let mut sender = match self.http1_connect(addr, Some(&identity)).await {
            Ok(sender) => sender,
            Err(error) => return Err(SendError::unsent(error, req)),
        };
        let rsp = sender
            .send_request(req)
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))?;
        Ok(rsp)
    }

    async fn http1_connect(
        &self,
        addr: SocketAddr,
        identity: Option<&ServerName<'static>>,
    ) -> Result<http1::SendRequest<BoxBody>, ProxyError> {
        let io = self.connect(addr, identity, None).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))?;
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%addr, %error, "HTTP/1 upstream connection closed");
            }
        });
        Ok(sender)
    }

    async fn send_http2(
        &self,
        addr: SocketAddr,
        identity: Option<ServerName<'static>>,
        req: Request<BoxBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let mut sender = match self.http2_sender((addr, identity)).await {
            Ok(sender) => sender,
            Err(error) => return Err(SendError::unsent(error, req)),
        };
        if let Err(error) = sender.ready().await {
            return Err(SendError::unsent(ProxyError::upstream(addr, &error), req));
        }
        let rsp = sender
            .send_request(req)
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))?;
        Ok(rsp)
    }

    /// The endpoint's HTTP/2 connection; concurrent first requests wait
    /// for one handshake instead of each opening a connection.
    async fn http2_sender(&self, key: Http2Key) -> Result<http2::SendRequest<BoxBody>, ProxyError> {
        let cell = {
            let mut pool = self.http2.lock().unwrap_or_else(|p| p.into_inner());
            let cell = pool.entry(key.clone()).or_default();
            if cell.get().is_some_and(|sender| sender.is_closed()) {
                *cell = Arc::default();
            }
            cell.clone()
        };
        let sender = cell.get_or_try_init(|| self.http2_connect(&key)).await?;
        Ok(sender.clone())
    }

    async fn http2_connect(
        &self,
        (addr, identity): &Http2Key,
    ) -> Result<http2::SendRequest<BoxBody>, ProxyError> {
        let addr = *addr;
        let io = self.connect(addr, identity.as_ref(), None).await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))?;
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%addr, %error, "HTTP/2 upstream connection closed");
            }
        });
        Ok(sender)
    }
}

/// Why a request got no response; `unsent` holds it when none of it left,
/// so it may go to another endpoint.
pub struct SendError {
    pub error: ProxyError,
    pub unsent: Option<Request<BoxBody>>,
}

impl SendError {
    fn unsent(error: ProxyError, req: Request<BoxBody>) -> Self {
        Self {
            error,
            unsent: Some(req),
        }
    }
}

impl From<ProxyError> for SendError {
    fn from(error: ProxyError) -> Self {
        Self {
            error,
            unsent: None,
        }
    }
}

/// Requests go upstream in origin form (`/path?query`), with a Host header:
/// the client's, else the authority it named, else the endpoint's address.
fn to_origin_form(req: &mut Request<BoxBody>, addr: SocketAddr) -> Result<(), ProxyError> {
    if !req.headers().contains_key(HOST) {
        let host = match req.uri().authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()),
            None => HeaderValue::try_from(addr.to_string()),
        };
        let host = host.map_err(|e| ProxyError::MalformedRequest(e.to_string()))?;
        req.headers_mut().insert(HOST, host);
    }
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() =
            Uri::try_from(path).map_err(|e| ProxyError::MalformedRequest(e.to_string()))?;
    }
    Ok(())
}
