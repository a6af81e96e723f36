//! Sending requests to an endpoint over pooled connections: HTTP/1.1 through
//! hyper's pooled client, HTTP/2 over one multiplexed connection per
//! endpoint, so that `:authority` and trailers pass through unchanged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::OnceCell;

use crate::BoxBody;
use crate::connect::Connector;
use crate::errors::ProxyError;

pub struct Upstream {
    connector: Connector,
    http1: Client<Connector, BoxBody>,
    http2: Mutex<HashMap<SocketAddr, Arc<OnceCell<http2::SendRequest<BoxBody>>>>>,
    response_timeout: Option<Duration>,
}

impl Upstream {
    pub fn new(connector: Connector, response_timeout: Option<Duration>) -> Self {
        let http1 = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector.clone());
        Self {
            connector,
            http1,
            http2: Mutex::default(),
            response_timeout,
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Sends `req` to `addr`, in the request's own HTTP version; `timeout`
    /// (from a plugin) replaces the configured response timeout.
    pub async fn send(
        &self,
        addr: SocketAddr,
        req: Request<BoxBody>,
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let send = async {
            if req.version() == Version::HTTP_2 {
                self.send_http2(addr, req).await
            } else {
                self.send_http1(addr, req).await
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
    ) -> Result<Response<Incoming>, ProxyError> {
        // The pool is keyed by the URI's authority, so the endpoint goes
        // there; the client's Host header is left as the client sent it.
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = Uri::try_from(format!("http://{addr}{path}"))
            .map_err(|e| ProxyError::MalformedRequest(e.to_string()))?;
        self.http1
            .request(req)
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))
    }

    async fn send_http2(
        &self,
        addr: SocketAddr,
        req: Request<BoxBody>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let mut sender = self.http2_sender(addr).await?;
        sender
            .ready()
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| ProxyError::upstream(addr, &e))
    }

    /// The endpoint's HTTP/2 connection; concurrent first requests wait
    /// for one handshake instead of each opening a connection.
    async fn http2_sender(
        &self,
        addr: SocketAddr,
    ) -> Result<http2::SendRequest<BoxBody>, ProxyError> {
        let cell = {
            let mut pool = self.http2.lock().unwrap_or_else(|p| p.into_inner());
            let cell = pool.entry(addr).or_default();
            if cell.get().is_some_and(|sender| sender.is_closed()) {
                *cell = Arc::default();
            }
            cell.clone()
        };
        let sender = cell.get_or_try_init(|| self.http2_connect(addr)).await?;
        Ok(sender.clone())
    }

    async fn http2_connect(
        &self,
        addr: SocketAddr,
    ) -> Result<http2::SendRequest<BoxBody>, ProxyError> {
        let io = self.connector.connect(addr).await?;
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
