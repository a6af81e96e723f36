//! The admin server: liveness, readiness and Prometheus metrics.
//!
//! `/ready` answers 200 once the proxy's listeners are bound (the admin
//! server starts after them) and it has the plugin chain it serves with and
//! its certificate (with an identity), and 503 before that or once
//! shutdown has begun, so Kubernetes sends traffic only when the pod's
//! policy is in place and stops while connections drain.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weft_identity::Credentials;

use crate::accept::{Backoff, accept};
use crate::plugins::Plugins;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub struct Admin {
    registry: Registry,
    plugins: Arc<Plugins>,
    /// The proxy's certificate, when it has an identity: not ready without.
    identity: Option<Credentials>,
    shutdown: CancellationToken,
}

impl Admin {
    pub fn new(
        registry: Registry,
        plugins: Arc<Plugins>,
        identity: Option<Credentials>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            registry,
            plugins,
            identity,
            shutdown,
        })
    }

    /// Serves until the process exits: the admin server stays up while the
    /// proxy drains, so probes and scrapes keep working.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut backoff = Backoff::default();
        loop {
            let (stream, _) = accept(&listener, "admin", &mut backoff).await;
            let admin = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.respond(&req)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match req.uri().path() {
            "/live" => text(StatusCode::OK, "live\n"),
            "/ready" if self.shutdown.is_cancelled() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            }
            // The certificate first: with an identity, the chain comes
            // over mTLS, so it waits for the certificate too.
            "/ready" if self.identity.as_ref().is_some_and(|id| !id.is_ready()) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "waiting for a certificate from the identity service\n",
            ),
            "/ready" if !self.plugins.ready() => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "waiting for the plugin chain from the controller\n",
            ),
            "/ready" => text(StatusCode::OK, "ready\n"),
            "/metrics" => {
                let mut body = String::new();
                if let Err(error) =
                    prometheus_client::encoding::text::encode(&mut body, &self.registry)
                {
                    tracing::warn!(%error, "encoding metrics failed");
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n");
                }
                let mut rsp = Response::new(Full::new(Bytes::from(body)));
                rsp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(OPENMETRICS),
                );
                rsp
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /live, /ready or /metrics\n",
            ),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    rsp
}
