//! `weft-proxy`, Weft's sidecar: it sits beside an app, takes the app's
//! inbound and outbound traffic (redirected by iptables, or on explicit
//! ports), detects HTTP/1.1, HTTP/2 or opaque TCP, and forwards it, counting
//! everything on its admin server.

pub mod admin;
pub mod config;
mod connect;
mod destination;
pub mod detect;
pub mod errors;
mod http;
pub mod init;
mod io;
pub mod metrics;
mod orig_dst;
mod serve;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::TransportMetrics;
use crate::serve::Proxy;

/// Bodies as they travel through the proxy: streamed, never collected.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

/// Which way traffic flows relative to the app beside the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Arriving for the app.
    Inbound,
    /// Leaving the app.
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({listener}): {source}")]
pub struct BindError {
    listener: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds the listeners, serves until `shutdown` completes, then stops
/// accepting and drains in-flight work for up to the grace period.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), BindError> {
    let inbound = bind("inbound", config.inbound_listen_addr).await?;
    let outbound = bind("outbound", config.outbound_listen_addr).await?;
    let admin = bind("admin", config.admin_listen_addr).await?;

    let mut registry = Registry::default();
    let transport = TransportMetrics::register(&mut registry);
    registry.register_collector(Box::new(metrics::ProcessCollector::new()));
    let draining = CancellationToken::new();
    let tasks = TaskTracker::new();
    let own_addrs = [&inbound, &outbound]
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let grace = config.shutdown_grace_period;
    let proxy = Arc::new(Proxy::new(
        config,
        transport,
        own_addrs,
        draining.clone(),
        tasks.clone(),
    ));

    tokio::spawn(serve::accept(proxy.clone(), Direction::Inbound, inbound));
    tokio::spawn(serve::accept(proxy, Direction::Outbound, outbound));
    tokio::spawn(admin::Admin::new(registry, draining.clone()).serve(admin));

    shutdown.await;
    tracing::info!(grace_period = ?grace, "shutting down: no new connections, draining");
    draining.cancel();
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(
            open = tasks.len(),
            "grace period over; closing what is still open"
        );
    }
    Ok(())
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    let bound = TcpListener::bind(addr).await.map_err(|source| BindError {
        listener,
        addr,
        source,
    })?;
    if let Ok(local) = bound.local_addr() {
        tracing::info!(listener = %listener, addr = %local, "listening");
    }
    Ok(bound)
}
