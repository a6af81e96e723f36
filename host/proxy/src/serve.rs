//! Serving the inbound and outbound listeners: accept, learn where the
//! connection was headed, detect its protocol, and hand it to the HTTP
//! forwarder or relay it as opaque TCP. Also owns graceful shutdown: on
//! `shutdown`, listeners stop accepting and HTTP connections drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accept::{self, Backoff};
use crate::config::Config;
use crate::destination::Destinations;
use crate::detect::{Detected, detect};
use crate::http::{ConnectionInfo, HttpProxy, Upstream};
use crate::io::{MeteredIo, PrefixedIo};
use crate::metrics::{Peer, TransportLabels, TransportMetrics};
use crate::plugins::Plugins;
use crate::{Direction, orig_dst};
use weft_plugins::{Connection, ConnectionOutcome, Hooks, Protocol};

/// State shared by every connection of both listeners.
pub struct Proxy {
    config: Config,
    transport: Arc<TransportMetrics>,
    plugins: Arc<Plugins>,
    destinations: Destinations,
    inbound: Upstream,
    outbound: Upstream,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Proxy {
    pub fn new(
        config: Config,
        transport: Arc<TransportMetrics>,
        plugins: Arc<Plugins>,
        own_addrs: Vec<SocketAddr>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        let upstream = |direction| {
            let connector = crate::connect::Connector::new(
                direction,
                config.connect_timeout,
                transport.clone(),
            );
            Upstream::new(connector, config.response_timeout())
        };
        Self {
            inbound: upstream(Direction::Inbound),
            outbound: upstream(Direction::Outbound),
            destinations: Destinations::new(own_addrs),
            config,
            transport,
            plugins,
            shutdown,
            tasks,
        }
    }

    pub fn upstream(&self, direction: Direction) -> &Upstream {
        match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        }
    }

    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
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
    let meter = proxy
        .transport
        .open(TransportLabels::new(direction, Peer::Src, target_label));
    let mut io = MeteredIo::new(stream, meter);
    let conn = ConnectionInfo {
        direction,
        client,
        target,
        local_port: target.map_or(io.local_port(), |t| t.port()),
    };

    let config = &proxy.config;
    let detected = if target.is_some_and(|t| config.opaque_ports.contains(t.port())) {
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
        let direction = direction.as_str();
        tracing::info!(%client, direction, "no plugin chain yet; closing opaque connection");
        return;
    }
    if let Some(protocol) = protocol
        && let Some(plugin) = denied_by_plugins(&proxy, conn, protocol)
    {
        tracing::info!(%client, plugin, "connection denied by plugin");
        return;
    }

    match detected {
        Detected::Http1(prefix) => {
            let service = HttpProxy::new(proxy.clone(), conn);
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .max_buf_size((config.max_header_bytes as usize).max(8192))
                .serve_connection(TokioIo::new(PrefixedIo::new(prefix, io)), service)
                .with_upgrades();
            drain(connection, |c| c.graceful_shutdown(), &proxy.shutdown, conn).await;
        }
        Detected::Http2(prefix) => {
            let service = HttpProxy::new(proxy.clone(), conn);
            let connection = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(config.max_header_bytes)
                .serve_connection(TokioIo::new(PrefixedIo::new(prefix, io)), service);
            drain(connection, |c| c.graceful_shutdown(), &proxy.shutdown, conn).await;
        }
        Detected::Opaque(prefix) => relay(&proxy, conn, PrefixedIo::new(prefix, io)).await,
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
fn denied_by_plugins(proxy: &Proxy, conn: ConnectionInfo, protocol: Protocol) -> Option<String> {
    let chain = proxy.plugins.chain()?;
    if !chain.wants(Hooks::CONNECTION) {
        return None;
    }
    let hook = Connection {
        direction: conn.direction.into(),
        protocol,
        client_addr: conn.client.to_string(),
        local_port: conn.local_port,
        peer_identity: None,
        tls: false,
    };
    match chain.on_connection(hook) {
        ConnectionOutcome::Allow => None,
        ConnectionOutcome::Deny { plugin } => Some(plugin),
        ConnectionOutcome::Fail(failure) => Some(failure.plugin),
    }
}

/// Serves an HTTP connection to its end; on shutdown, asks it to finish the
/// requests in flight and close.
async fn drain<C, E>(
    connection: C,
    graceful_shutdown: fn(Pin<&mut C>),
    shutdown: &CancellationToken,
    conn: ConnectionInfo,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            graceful_shutdown(connection.as_mut());
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(client = %conn.client, %error, "HTTP connection ended with an error");
    }
}

/// Relays an opaque TCP connection to its target, both ways, passing on
/// half-closes.
async fn relay(proxy: &Proxy, conn: ConnectionInfo, mut client: PrefixedIo<MeteredIo<TcpStream>>) {
    let Some(target) = conn.target else {
        tracing::info!(client = %conn.client, "opaque connection has no destination; closing");
        return;
    };
    let connector = proxy.upstream(conn.direction).connector();
    let mut upstream = match connector.connect(target).await {
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
