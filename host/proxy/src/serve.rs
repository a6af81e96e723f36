//! Serving the inbound and outbound listeners: accept, learn where the
//! connection was headed, detect its protocol, and hand it to the HTTP
//! forwarder or relay it as opaque TCP. Inbound mTLS from a peer proxy is
//! terminated first and the same happens inside it. Also owns graceful
//! shutdown: on `shutdown`, listeners stop accepting and HTTP connections
//! drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;
use weft_plugins::{Connection, ConnectionOutcome, Hooks, Protocol};

use crate::accept::{self, Backoff};
use crate::config::Config;
use crate::destination::{Destinations, Peers};
use crate::detect::{Detected, detect, first_bytes};
use crate::discovery::Discovery;
use crate::http::{
    BodyReadTimeout, BodyReadTimeoutIo, ConnectionActivity, ConnectionInfo, HttpProxy,
    InFlightLimit, Mesh, Upstream,
};
use crate::io::{MeteredIo, PrefixedIo};
use crate::metrics::{NoTlsReason, Peer, Tls, TransportLabels, TransportMetrics};
use crate::plugins::Plugins;
use crate::tap::Taps;
use crate::tls::{ClientHello, MeshTls, read_transport_header};
use crate::trace::Tracer;
use crate::{Direction, orig_dst};

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// Streams one HTTP/2 client connection may have open. Between meshed
/// proxies a single connection per endpoint carries all of a pod's requests
/// to another, and streams past the limit wait unseen in the client proxy's
/// queue, so hyper's 200 is too low there; the proxy-wide in-flight limit,
/// not this one, is what bounds the work.
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 1024;

/// Streams a client may reset before the proxy has accepted them; past
/// this, the connection is closed (the HTTP/2 rapid-reset attack,
/// CVE-2023-44487). h2's own default, set here so it cannot change unseen.
const HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// State shared by every connection of both listeners.
pub struct Proxy {
    config: Config,
    transport: Arc<TransportMetrics>,
    plugins: Arc<Plugins>,
    destinations: Destinations,
    /// With a controller: the services it knows, balanced.
    discovery: Option<Arc<Discovery>>,
    inbound: Upstream,
    outbound: Arc<Upstream>,
    in_flight: InFlightLimit,
    /// With an identity: terminates inbound mTLS.
    tls: Option<Arc<MeshTls>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    taps: Arc<Taps>,
    /// With a trace collector: spans for sampled requests.
    tracer: Option<Tracer>,
}

impl Proxy {
    pub fn new(
        config: Config,
        transport: Arc<TransportMetrics>,
        plugins: Arc<Plugins>,
        // This proxy's mTLS, and the controller's Destination API.
        (tls, controller): (Option<Arc<MeshTls>>, Option<Channel>),
        own_addrs: Vec<SocketAddr>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        let connector = |direction| {
            crate::connect::Connector::new(direction, config.connect_timeout, transport.clone())
        };
        let outbound_mesh = match (&tls, &controller) {
            (Some(tls), Some(controller)) => Some(Mesh {
                tls: tls.clone(),
                peers: Peers::new(controller.clone()),
            }),
            _ => None,
        };
        let outbound = Arc::new(Upstream::new(
            connector(Direction::Outbound),
            outbound_mesh,
            config.response_timeout(),
        ));
        let discovery = controller.map(|controller| {
            Discovery::new(controller, &config.destination_suffixes, outbound.clone())
        });
        Self {
            inbound: Upstream::new(
                connector(Direction::Inbound),
                None,
                config.response_timeout(),
            ),
            outbound,
            discovery,
            in_flight: InFlightLimit::new(config.max_in_flight_requests, transport.clone()),
            tls,
            destinations: Destinations::new(own_addrs),
            config,
            transport,
            plugins,
            shutdown,
            tasks,
            taps: Arc::default(),
            tracer: None,
        }
    }

    pub fn with_tracer(mut self, tracer: Option<Tracer>) -> Self {
        self.tracer = tracer;
        self
    }

    pub fn tracer(&self) -> Option<&Tracer> {
        self.tracer.as_ref()
    }

    pub fn taps(&self) -> &Arc<Taps> {
        &self.taps
    }

    pub fn upstream(&self, direction: Direction) -> &Upstream {
        match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => self.outbound.as_ref(),
        }
    }

    pub fn in_flight(&self) -> &InFlightLimit {
        &self.in_flight
    }

    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    pub fn discovery(&self) -> Option<&Arc<Discovery>> {
        self.discovery.as_ref()
    }

    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Whether `conn` is refused for want of a client identity: inbound,
    /// unauthenticated, on a port the app asked to take only meshed
    /// clients. A refusal is counted under `protocol` (`http` or `tcp`).
    pub fn refuses_unauthenticated(&self, conn: &ConnectionInfo, protocol: &'static str) -> bool {
        let refused = conn.direction == Direction::Inbound
            && conn.client_id.is_none()
            && self
                .config
                .inbound_ports_require_identity
                .contains(conn.local_port);
        if refused {
            self.transport.refused_without_identity(protocol);
        }
        refused
    }
}

/// Accepts connections until shutdown; each is served on its own task.
pub async fn accept(proxy: Arc<Proxy>, direction: Direction, listener: TcpListener) {
    let mut backoff = Backoff::default();
    loop {
        let (stream, client) = tokio::select! {
            _ = proxy.shutdown.cancelled() => return,
            accepted = accept::accept(&listener, direction.as_str(), &mut backoff) => accepted,
        };
        let _ = stream.set_nodelay(true);
        let proxy2 = proxy.clone();
        proxy.tasks.spawn(serve(proxy2, direction, stream, client));
    }
}

async fn serve(proxy: Arc<Proxy>, direction: Direction, stream: TcpStream, client: SocketAddr) {
    let orig_dst = orig_dst::original_dst(&stream);
    let target = match direction {
        Direction::Inbound => proxy.config.inbound_app_addr.or(orig_dst),
        Direction::Outbound => orig_dst,
    };
    let target_label = match (target, stream.local_addr()) {
        (Some(t), _) | (None, Ok(t)) => t.to_string(),
        (None, Err(_)) => String::new(),
    };
    let mut labels = TransportLabels::new(direction, Peer::Src, target_label);
    // Inbound to a proxy with an identity, the labels wait for the first
    // bytes to say whether the client spoke mTLS to it.
    let mut io = if direction == Direction::Inbound && proxy.tls.is_some() {
        labels.tls = Tls::NoIdentity(NoTlsReason::FromRemote);
        MeteredIo::pending(stream, proxy.transport.clone(), labels)
    } else {
        MeteredIo::new(stream, proxy.transport.open(labels))
    };
    let conn = ConnectionInfo {
        direction,
        client,
        target,
        local_port: target.map_or(io.local_port(), |t| t.port()),
        tls: false,
        client_id: None,
    };

    let config = &proxy.config;
    let opaque_port = target.is_some_and(|t| config.opaque_ports.contains(t.port()));
    // Opaque TCP from a peer proxy comes over mTLS to this proxy's own
    // port, not redirected from the app's: there a ClientHello is looked
    // for even on an opaque port. Redirected to the app's opaque port,
    // bytes go on at once (server-speaks-first protocols).
    let to_this_proxy = orig_dst.is_none_or(|dst| dst.port() == io.local_port());
    let mut detected =
        if opaque_port && direction == Direction::Inbound && proxy.tls.is_some() && to_this_proxy {
            match first_bytes(&mut io, config.detect_protocol_timeout).await {
                Ok(bytes) => Detected::Opaque(bytes),
                Err(error) => {
                    tracing::debug!(%client, %error, "connection failed before its first bytes");
                    return;
                }
            }
        } else if opaque_port {
            Detected::Opaque(Bytes::new())
        } else {
            match detect(
                &mut io,
                config.detect_protocol_timeout,
                config.max_header_bytes as usize,
            )
            .await
            {
                Ok(detected) => detected,
                Err(error) => {
                    tracing::debug!(%client, %error, "connection failed during protocol detection");
                    return;
                }
            }
        };

    // A peer proxy's mTLS names this proxy's identity; other TLS (the
    // app's own) passes through as opaque bytes.
    if let (Direction::Inbound, Some(tls), Detected::Opaque(prefix)) =
        (direction, &proxy.tls, &detected)
        && prefix.first() == Some(&TLS_HANDSHAKE)
    {
        let timeout = config.detect_protocol_timeout;
        match tls
            .read_client_hello(prefix.clone(), &mut io, timeout)
            .await
        {
            Ok(ClientHello::ForUs(hello)) => {
                let tls = tls.clone();
                // Boxed, as each protocol's serving below: an idle connection's
                // task then holds only what its own protocol needs.
                return Box::pin(serve_mesh_tls(proxy, conn, &tls, hello, io)).await;
            }
            Ok(ClientHello::NotForUs(read)) => {
                io.labelled(Tls::Passthrough);
                detected = Detected::Opaque(read);
            }
            Err(error) => {
                tracing::debug!(%client, %error, "connection failed during its TLS ClientHello");
                return;
            }
        }
    }
    io.record();
    serve_detected(proxy, conn, detected, io).await;
}

/// Terminates a peer proxy's mTLS and serves what it carries: HTTP
/// (detected again inside), or opaque TCP for the port its transport
/// header names.
async fn serve_mesh_tls(
    proxy: Arc<Proxy>,
    mut conn: ConnectionInfo,
    tls: &MeshTls,
    hello: Bytes,
    io: MeteredIo<TcpStream>,
) {
    let client = conn.client;
    let config = &proxy.config;
    let terminated = match tls.terminate(hello, io).await {
        Ok(terminated) => terminated,
        Err(error) => {
            tracing::info!(%client, %error, "mTLS handshake failed");
            return;
        }
    };
    conn.tls = true;
    conn.client_id = terminated.client_id;
    let mut stream = terminated.stream;
    let client_id = conn.client_id.clone();
    stream
        .get_mut()
        .0
        .get_mut()
        .labelled(Tls::Accepted { client_id });
    let detected = if terminated.transport {
        match read_transport_header(&mut stream, config.detect_protocol_timeout).await {
            Ok(port) => {
                if config.inbound_app_addr.is_none() {
                    conn.target = conn.target.map(|t| SocketAddr::new(t.ip(), port));
                }
                Detected::Opaque(Bytes::new())
            }
            Err(error) => {
                tracing::info!(%client, %error, "bad transport header");
                return;
            }
        }
    } else {
        let timeout = config.detect_protocol_timeout;
        match detect(&mut stream, timeout, config.max_header_bytes as usize).await {
            Ok(detected) => detected,
            Err(error) => {
                tracing::debug!(%client, %error, "mTLS connection failed during protocol detection");
                return;
            }
        }
    };
    serve_detected(proxy, conn, detected, stream).await;
}

/// Serves a connection whose protocol is known.
async fn serve_detected<I>(proxy: Arc<Proxy>, conn: ConnectionInfo, detected: Detected, mut io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = conn.client;
    let config = &proxy.config;
    let protocol = match &detected {
        Detected::Http1(_) => Some(Protocol::Http1),
        Detected::Http2(_) => Some(Protocol::Http2),
        Detected::Opaque(_) => Some(Protocol::Opaque),
        // Answered with an error by the proxy itself; nothing goes upstream.
        Detected::Rejected(_) => None,
    };
    // HTTP requests are refused one by one with a 503 (see `HttpProxy`);
    // opaque TCP has no way to say why, so it is closed.
    if matches!(detected, Detected::Opaque(_)) && !proxy.plugins.ready() {
        let direction = conn.direction.as_str();
        tracing::info!(%client, direction, "no plugin chain yet; closing opaque connection");
        return;
    }
    // HTTP is refused request by request with a 403 (see `HttpProxy`).
    if matches!(detected, Detected::Opaque(_)) && proxy.refuses_unauthenticated(&conn, "tcp") {
        tracing::info!(%client, port = conn.local_port, "closing a connection without a client identity");
        return;
    }
    if let Some(protocol) = protocol
        && let Some(plugin) = denied_by_plugins(&proxy, &conn, protocol).await
    {
        tracing::info!(%client, plugin, "connection denied by plugin");
        return;
    }

    match detected {
        Detected::Http1(prefix) => {
            let body_read_timeout = config.body_read_timeout().map(BodyReadTimeout::new);
            let service = HttpProxy::new(proxy.clone(), conn.clone())
                .with_body_read_timeout(body_read_timeout.clone());
            let io = BodyReadTimeoutIo::new(PrefixedIo::new(prefix, io), body_read_timeout);
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_read_timeout())
                .max_buf_size((config.max_header_bytes as usize).max(8192))
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            // Idle kept-alive HTTP/1 connections end at the header read timeout.
            let idle = std::future::pending();
            Box::pin(drain(
                connection,
                |c| c.graceful_shutdown(),
                &proxy,
                &conn,
                idle,
            ))
            .await;
        }
        Detected::Http2(prefix) => {
            let activity = ConnectionActivity::default();
            let service =
                HttpProxy::new(proxy.clone(), conn.clone()).with_activity(activity.clone());
            let connection = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(config.max_header_bytes)
                .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
                .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS)
                .serve_connection(TokioIo::new(PrefixedIo::new(prefix, io)), service);
            // Its first request must come as fast as an HTTP/1 head.
            let idle = activity.idle(config.header_read_timeout(), config.http2_idle_timeout());
            Box::pin(drain(
                connection,
                |c| c.graceful_shutdown(),
                &proxy,
                &conn,
                idle,
            ))
            .await;
        }
        Detected::Opaque(prefix) => {
            Box::pin(relay(&proxy, &conn, PrefixedIo::new(prefix, io))).await;
        }
        Detected::Rejected(error) => {
            tracing::info!(%client, error = %error, "rejected request");
            let _ = io.write_all(&error.to_http1_bytes()).await;
            let _ = io.shutdown().await;
        }
    }
}

/// Runs the connection hooks once the protocol is known and before anything
/// goes upstream, so authorization covers opaque TCP too. Returns the
/// denying plugin's name; a fail-closed plugin that failed denies as well.
async fn denied_by_plugins(
    proxy: &Proxy,
    conn: &ConnectionInfo,
    protocol: Protocol,
) -> Option<String> {
    let chain = proxy.plugins.chain()?;
    if !chain.wants(Hooks::CONNECTION) {
        return None;
    }
    let hook = Connection {
        direction: conn.direction.into(),
        protocol,
        client_addr: conn.client.to_string(),
        local_port: conn.local_port,
        peer_identity: conn.client_id.as_deref().map(str::to_owned),
        tls: conn.tls,
    };
    match chain.on_connection_async(hook).await {
        ConnectionOutcome::Allow => None,
        ConnectionOutcome::Deny { plugin } => Some(plugin),
        ConnectionOutcome::Fail(failure) => Some(failure.plugin),
    }
}

/// Serves an HTTP connection to its end; on shutdown, asks it to finish the
/// requests in flight and close. Once `idle` resolves it is asked the same,
/// and closed if it has not finished within the shutdown grace period (a
/// client that never answers the `GOAWAY`'s ping is not waited for).
async fn drain<C, E>(
    connection: C,
    graceful_shutdown: fn(Pin<&mut C>),
    proxy: &Proxy,
    conn: &ConnectionInfo,
    idle: impl Future<Output = ()>,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = proxy.shutdown.cancelled() => {
            graceful_shutdown(connection.as_mut());
            connection.await
        }
        _ = idle => {
            tracing::debug!(client = %conn.client, "closing an idle HTTP/2 connection");
            graceful_shutdown(connection.as_mut());
            let grace = proxy.config.shutdown_grace_period;
            match tokio::time::timeout(grace, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(client = %conn.client, %error, "HTTP connection ended with an error");
    }
}

/// Relays an opaque TCP connection to its target, both ways, passing on
/// half-closes. Outbound to a meshed peer, it goes over mTLS.
async fn relay<I>(proxy: &Proxy, conn: &ConnectionInfo, mut client: I)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let Some(target) = conn.target else {
        tracing::info!(client = %conn.client, "opaque connection has no destination; closing");
        return;
    };
    // Outbound to a Service's cluster IP: one of its endpoints, balanced.
    let balanced = match (conn.direction, proxy.discovery()) {
        (Direction::Outbound, Some(discovery)) => discovery.opaque_endpoint(target).await,
        _ => None,
    };
    let (target, _open) = match balanced {
        Some((endpoint, open)) => (endpoint, Some(open)),
        None => (target, None),
    };
    let upstream = proxy.upstream(conn.direction);
    let mut upstream = match upstream.connect_opaque(target).await {
        Ok(upstream) => upstream,
        Err(error) => {
            tracing::info!(client = %conn.client, %error, "opaque connection failed");
            return;
        }
    };
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(client = %conn.client, %target, %error, "opaque connection ended");
    }
}

#[cfg(test)]
mod tests;
