//! HTTP forwarding. Each request on a served connection is routed to an
//! endpoint and sent upstream; the response streams back. Requests the proxy
//! cannot forward get a response from `errors::ProxyError`.

mod body_read_timeout;
pub mod headers;
mod hooks;
mod idle;
mod load_shed;
mod replay;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use weft_plugins::{Hooks, PluginChain, RequestOutcome, ResponseOutcome, UpstreamError};

pub use body_read_timeout::{BodyReadTimeout, BodyReadTimeoutIo};
pub use idle::ConnectionActivity;
pub use load_shed::InFlightLimit;
pub use upstream::{HeldHttp1, Mesh, SendError, Upstream};

use crate::balance::{Balancer, EndpointLabels};
use crate::errors::{ProxyError, error_chain};
use crate::http::replay::Replay;
use crate::serve::Proxy;
use crate::tap::AnsweredBy;
use crate::{BoxBody, Direction};

/// Attempts per request when response hooks ask for retries.
const MAX_ATTEMPTS: u32 = 10;

/// What a served connection knows about itself, shared by its requests.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub direction: Direction,
    pub client: SocketAddr,
    /// Inbound: the app's address. Outbound: the original destination, used
    /// when a request carries no authority.
    pub target: Option<SocketAddr>,
    /// The port the client connected to (the original destination's).
    pub local_port: u16,
    /// Inbound mTLS from a peer proxy, terminated here.
    pub tls: bool,
    /// The identity the client's certificate proved.
    pub client_id: Option<Arc<str>>,
}

/// The per-connection HTTP service handed to hyper.
#[derive(Clone)]
pub struct HttpProxy {
    proxy: Arc<Proxy>,
    conn: ConnectionInfo,
    held: Arc<HeldHttp1>,
    /// HTTP/1: the limit on waiting for a request body's bytes.
    body_read_timeout: Option<Arc<BodyReadTimeout>>,
    /// HTTP/2: what the connection's idle timeout watches.
    activity: Option<ConnectionActivity>,
}

impl HttpProxy {
    pub fn new(proxy: Arc<Proxy>, conn: ConnectionInfo) -> Self {
        let held = Arc::new(proxy.upstream(conn.direction).held_http1());
        Self {
            proxy,
            conn,
            held,
            body_read_timeout: None,
            activity: None,
        }
    }

    pub fn with_body_read_timeout(mut self, limit: Option<Arc<BodyReadTimeout>>) -> Self {
        self.body_read_timeout = limit;
        self
    }

    pub fn with_activity(mut self, activity: ConnectionActivity) -> Self {
        self.activity = Some(activity);
        self
    }

    fn request_body(&self, body: Incoming) -> BoxBody {
        match &self.body_read_timeout {
            Some(limit) => limit.watch(body).boxed(),
            None => body.boxed(),
        }
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        chain: Option<&Arc<PluginChain>>,
        completing: &mut Option<hooks::Completing>,
    ) -> Result<Response<BoxBody>, ProxyError> {
        if self.proxy.refuses_unauthenticated(&self.conn, "http") {
            return Err(ProxyError::IdentityRequired {
                port: self.conn.local_port,
            });
        }
        // Answer in the version the client spoke, whatever went upstream.
        let version = req.version();
        if self.conn.tls {
            headers::from_mesh_h2(&mut req);
        }
        let client_upgrade = headers::wants_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
        headers::strip_hop_by_hop(req.headers_mut(), client_upgrade.is_some());

        // Response and completion hooks see the request as it went upstream:
        // the view is kept here (or in `completing`) and the request gets
        // the one copy of its head made per request.
        let response_hooks = chain.filter(|c| c.wants(Hooks::RESPONSE));
        let keep_view = response_hooks.is_some() || completing.is_some();
        let mut own_view = None;
        let kept_view = match completing {
            Some(completing) => &mut completing.request,
            None => &mut own_view,
        };

        // Request hooks run before an endpoint is picked: they may answer,
        // choose a backend, set a deadline or edit headers.
        let (parts, body) = req.into_parts();
        let mut view = hooks::view(parts, &self.conn);
        if let Some(chain) = chain.filter(|c| c.wants(Hooks::REQUEST)) {
            let outcome;
            (view, outcome) = chain.on_request_async(view).await;
            match outcome {
                RequestOutcome::Continue => {}
                RequestOutcome::Respond { response, plugin } => {
                    *kept_view = Some(view);
                    let mut rsp = hooks::local_response(response);
                    rsp.extensions_mut().insert(AnsweredBy(plugin));
                    return Ok(rsp);
                }
                RequestOutcome::Fail(failure) => {
                    *kept_view = Some(view);
                    return Err(failure.into());
                }
            }
        }
        let (timeout, backend) = (view.timeout, view.backend.clone());
        let req = if keep_view {
            // The original goes upstream, extensions and all.
            let copy = view.copy_head();
            let req = Request::from_parts(std::mem::replace(&mut view.parts, copy), body);
            *kept_view = Some(view);
            req
        } else {
            Request::from_parts(view.parts, body)
        };

        let route = match &backend {
            Some(backend) => self.backend(backend).await?,
            None => self.route(&req).await?,
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let upstream = self.proxy.upstream(self.conn.direction);

        // Response hooks may ask for retries: keep what a retry needs.
        let (mut next, replay) = match response_hooks {
            None => (Some(req.map(|body| self.request_body(body))), None),
            Some(_) => {
                let (parts, body) = req.into_parts();
                let (body, replay) = Replay::record(self.request_body(body));
                (Some(Request::from_parts(parts, body)), Some(replay))
            }
        };

        let mut attempts = 0;
        let mut rsp = loop {
            attempts += 1;
            let attempt = next.take().expect("one request per attempt");
            let sent = match &route {
                Route::Endpoint(addr) => {
                    upstream
                        .send(*addr, attempt, remaining(deadline)?, &self.held)
                        .await
                }
                Route::Service(balancer) => {
                    balancer
                        .send(attempt, remaining(deadline)?, &self.held)
                        .await
                }
            };
            // Hooks from here on see which endpoint answered.
            if let (Ok(rsp), Some(view)) = (&sent, kept_view.as_mut())
                && let Some(labels) = rsp.extensions().get::<EndpointLabels>()
            {
                view.destination_labels = labels.0.clone();
            }
            let (Some(chain), Some(replay)) = (response_hooks, &replay) else {
                break sent?;
            };
            let (parts, body, error) = match sent {
                Ok(rsp) => {
                    let (parts, body) = rsp.into_parts();
                    (parts, Some(body), None)
                }
                Err(error) if error.is_upstream() => {
                    let mut parts = error.to_response().into_parts().0;
                    let reason = UpstreamError(error.reason().to_string());
                    parts.extensions.insert(reason);
                    (parts, None, Some(error))
                }
                Err(error) => return Err(error),
            };
            let mut view = kept_view.take().expect("kept for response hooks");
            view.attempt = attempts;
            view.replayable = attempts < MAX_ATTEMPTS
                && replay.is_ready()
                && deadline.is_none_or(|d| Instant::now() < d);
            let (view, parts, outcome) = chain.on_response_async(view, parts).await;
            let retry_head = matches!(outcome, ResponseOutcome::Retry).then(|| view.copy_head());
            *kept_view = Some(view);
            match (outcome, retry_head, replay.body()) {
                (ResponseOutcome::Retry, Some(head), Some(body)) if attempts < MAX_ATTEMPTS => {
                    tracing::debug!(%route, attempts, "retrying");
                    next = Some(Request::from_parts(head, body));
                }
                (ResponseOutcome::Fail(failure), _, _) => return Err(failure.into()),
                _ => match (body, error) {
                    (Some(body), _) => break Response::from_parts(parts, body),
                    (None, Some(error)) => return Err(error),
                    (None, None) => unreachable!("a response or an error"),
                },
            }
        };
        if let Some(completing) = completing {
            completing.attempts = attempts;
            completing.response_latency_us = completing.started.elapsed().as_micros() as u64;
        }

        let upstream_upgrade = (client_upgrade.is_some()
            && rsp.status() == StatusCode::SWITCHING_PROTOCOLS)
            .then(|| hyper::upgrade::on(&mut rsp));
        headers::strip_hop_by_hop(rsp.headers_mut(), upstream_upgrade.is_some());
        *rsp.version_mut() = version;
        if let (Some(client), Some(upstream)) = (client_upgrade, upstream_upgrade) {
            self.proxy
                .tasks()
                .spawn(tunnel(client, upstream, route.to_string()));
        }
        Ok(rsp.map(BodyExt::boxed))
    }

    /// A backend a plugin chose: `host:port`, routed like an authority.
    async fn backend(&self, backend: &str) -> Result<Route, ProxyError> {
        let authority = Authority::try_from(backend).map_err(|_| {
            ProxyError::MalformedRequest(format!("plugin chose an invalid backend `{backend}`"))
        })?;
        self.by_authority(&authority).await
    }

    async fn route(&self, req: &Request<Incoming>) -> Result<Route, ProxyError> {
        // Parsed in both directions so an invalid Host is refused either way.
        let authority = authority(req)?;
        match self.conn.direction {
            Direction::Inbound => self
                .conn
                .target
                .map(Route::Endpoint)
                .ok_or(ProxyError::NoDestination),
            Direction::Outbound => match authority {
                Some(authority) => self.by_authority(&authority).await,
                None => self
                    .conn
                    .target
                    .map(Route::Endpoint)
                    .ok_or(ProxyError::MissingAuthority),
            },
        }
    }

    /// A service's balancer when the controller knows the authority as a
    /// service, else the one address it resolves to.
    async fn by_authority(&self, authority: &Authority) -> Result<Route, ProxyError> {
        if let Some(discovery) = self.proxy.discovery()
            && let Some(balancer) = discovery.balancer(authority).await
        {
            return Ok(Route::Service(balancer));
        }
        let addr = self.proxy.destinations().resolve(authority).await?;
        Ok(Route::Endpoint(addr))
    }
}

/// Where a request's attempts go.
enum Route {
    Endpoint(SocketAddr),
    /// An endpoint of a service, picked per attempt.
    Service(Arc<Balancer>),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Endpoint(addr) => addr.fmt(f),
            Route::Service(balancer) => f.write_str(balancer.authority()),
        }
    }
}

/// What is left of a request's deadline; past it, the request has timed out.
fn remaining(deadline: Option<Instant>) -> Result<Option<Duration>, ProxyError> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(Some(left)),
        _ => Err(ProxyError::DeadlineExceeded),
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
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, route: String) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%route, %error, "upgrade failed");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%route, %error, "upgraded connection ended");
    }
}

impl hyper::service::Service<Request<Incoming>> for HttpProxy {
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // Shed before any work: under overload, even a log line per
            // request costs too much (the counter tells).
            let in_flight = match this.proxy.in_flight().admit(this.conn.direction) {
                Ok(in_flight) => in_flight.on_connection(this.activity.as_ref().map(|a| a.enter())),
                Err(overloaded) => return Ok(overloaded.to_response()),
            };
            // One branch when tracing is off: no header is read.
            let span = match this.proxy.tracer() {
                Some(tracer) => tracer.start_span(&mut req, &this.conn),
                None => None,
            };
            let tap = this.proxy.taps().observe(&req, &this.conn);
            // For the log, should the request fail (reference-counted copies).
            let (method, uri) = (req.method().clone(), req.uri().clone());
            let mut completing = None;
            // A chain still awaited refuses the request rather than let it
            // pass without the workload's plugins.
            let forwarded = match this.proxy.plugins().serving() {
                Err(pending) => Err(pending),
                Ok(chain) => {
                    completing = chain
                        .as_ref()
                        .filter(|c| c.wants(Hooks::COMPLETION))
                        .map(|c| hooks::Completing {
                            chain: c.clone(),
                            request: None,
                            started: Instant::now(),
                            response_latency_us: 0,
                            attempts: 0,
                        });
                    this.forward(req, chain.as_ref(), &mut completing).await
                }
            };
            let (rsp, error) = match forwarded {
                Ok(rsp) => (rsp, None),
                Err(error) => {
                    tracing::info!(
                        direction = this.conn.direction.as_str(),
                        client = %this.conn.client,
                        %method,
                        %uri,
                        error = %error_chain(&error),
                        "request failed"
                    );
                    (error.to_response(), Some(error.reason()))
                }
            };
            if let Some(span) = span {
                span.finish(rsp.status(), error);
            }
            let rsp = match completing {
                Some(completing) => completing.attach(rsp, error),
                None => rsp,
            };
            let rsp = match tap {
                Some(tap) => tap.attach(rsp, error),
                None => rsp,
            };
            Ok(in_flight.releasing(this.held.clone()).hold_until_sent(rsp))
        })
    }
}
