//! HTTP forwarding. Each request on a served connection is routed to an
//! endpoint and sent upstream; the response streams back. Requests the proxy
//! cannot forward get a response from `errors::ProxyError`.

mod headers;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::uri::Authority;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

pub use upstream::Upstream;

use crate::errors::{ProxyError, error_chain};
use crate::serve::Proxy;
use crate::{BoxBody, Direction};

/// What a served connection knows about itself, shared by its requests.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionInfo {
    pub direction: Direction,
    pub client: SocketAddr,
    /// Inbound: the app's address. Outbound: the original destination, used
    /// when a request carries no authority.
    pub target: Option<SocketAddr>,
}

/// The per-connection HTTP service handed to hyper.
#[derive(Clone)]
pub struct HttpProxy {
    proxy: Arc<Proxy>,
    conn: ConnectionInfo,
}

impl HttpProxy {
    pub fn new(proxy: Arc<Proxy>, conn: ConnectionInfo) -> Self {
        Self { proxy, conn }
    }

    async fn forward(&self, mut req: Request<Incoming>) -> Result<Response<BoxBody>, ProxyError> {
        let client_upgrade = headers::wants_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
        headers::strip_hop_by_hop(req.headers_mut(), client_upgrade.is_some());

        // The plugin chain's request hooks will run here, before an endpoint
        // is picked: they may answer locally, choose a backend or edit headers.
        let addr = self.endpoint(&req).await?;
        let version = req.version();
        let upstream = self.proxy.upstream(self.conn.direction);
        let mut rsp = upstream.send(addr, req.map(BodyExt::boxed)).await?;

        let upstream_upgrade = (client_upgrade.is_some()
            && rsp.status() == StatusCode::SWITCHING_PROTOCOLS)
            .then(|| hyper::upgrade::on(&mut rsp));
        headers::strip_hop_by_hop(rsp.headers_mut(), upstream_upgrade.is_some());
        // Answer in the client's version, whatever the upstream spoke.
        *rsp.version_mut() = version;
        if let (Some(client), Some(upstream)) = (client_upgrade, upstream_upgrade) {
            self.proxy.tasks().spawn(tunnel(client, upstream, addr));
        }
        // The plugin chain's response hooks will run here.
        Ok(rsp.map(BodyExt::boxed))
    }

    async fn endpoint(&self, req: &Request<Incoming>) -> Result<SocketAddr, ProxyError> {
        // Parsed in both directions so an invalid Host is refused either way.
        let authority = authority(req)?;
        match self.conn.direction {
            Direction::Inbound => self.conn.target.ok_or(ProxyError::NoDestination),
            Direction::Outbound => match authority {
                Some(authority) => self.proxy.destinations().resolve(&authority).await,
                None => self.conn.target.ok_or(ProxyError::MissingAuthority),
            },
        }
    }
}

/// The authority to route by: the URI's (HTTP/2, absolute-form HTTP/1),
/// else the Host header.
fn authority<B>(req: &Request<B>) -> Result<Option<Authority>, ProxyError> {
    if let Some(authority) = req.uri().authority() {
        return Ok(Some(authority.clone()));
    }
    match req.headers().get(header::HOST) {
        None => Ok(None),
        Some(host) => Authority::try_from(host.as_bytes())
            .map(Some)
            .map_err(|_| ProxyError::MalformedRequest("invalid Host header".into())),
    }
}

/// Relays bytes between a client and an upstream once both have switched
/// protocols (WebSocket and other HTTP/1.1 upgrades).
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, addr: SocketAddr) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%addr, %error, "upgrade failed");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%addr, %error, "upgraded connection ended");
    }
}

impl hyper::service::Service<Request<Incoming>> for HttpProxy {
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let method = req.method().clone();
            let uri = req.uri().clone();
            Ok(this.forward(req).await.unwrap_or_else(|error| {
                tracing::info!(
                    direction = this.conn.direction.as_str(),
                    client = %this.conn.client,
                    %method,
                    %uri,
                    error = %error_chain(&error),
                    "request failed"
                );
                error.to_response()
            }))
        })
    }
}
