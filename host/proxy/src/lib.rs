//! `weft-proxy`, Weft's sidecar: it sits beside an app, takes the app's
//! inbound and outbound traffic (redirected by iptables, or on explicit
//! ports), detects HTTP/1.1, HTTP/2 or opaque TCP, and forwards it, counting
//! everything on its admin server.

mod accept;
pub mod admin;
mod balance;
pub mod config;
mod connect;
mod control_plane;
mod destination;
pub mod detect;
mod discovery;
pub mod errors;
mod http;
/// Hop-by-hop stripping and the HTTP/1-over-HTTP/2 head rewrite, public for
/// the fuzz targets.
pub use http::headers;
pub mod identity;
pub mod init;
mod io;
pub mod metrics;
mod orig_dst;
pub mod plugins;
mod serve;
mod tap;
mod tls;
mod trace;

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

/// A mutex's guard, even if a thread panicked holding it: the state behind
/// the proxy's locks stays consistent between statements.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

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

impl From<Direction> for weft_plugins::Direction {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::Inbound => weft_plugins::Direction::Inbound,
            Direction::Outbound => weft_plugins::Direction::Outbound,
        }
    }
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
pub enum RunError {
    #[error("cannot listen on {addr} ({listener}): {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plugins(#[from] plugins::PluginsError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error("mTLS: {0}")]
    Tls(#[from] weft_identity::TlsError),
    #[error("WEFT_PROXY_CONTROLLER_ADDR: {0}")]
    ControllerAddr(#[from] tonic::transport::Error),
    #[error("cannot make a private directory for the controller's modules and chain: {0}")]
    ControllerDir(std::io::Error),
    #[error("WEFT_PROXY_TRACE_COLLECTOR: {0}")]
    TraceCollector(tonic::transport::Error),
}

impl RunError {
    /// Bad plugin configuration is bad configuration: exit 64.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Bind { .. } | RunError::ControllerDir(_) => 1,
            RunError::Plugins(_)
            | RunError::Identity(_)
            | RunError::Tls(_)
            | RunError::ControllerAddr(_)
            | RunError::TraceCollector(_) => config::EXIT_CONFIG,
        }
    }
}

/// Binds the listeners, serves until `shutdown` completes, then stops
/// accepting and drains in-flight work for up to the grace period.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let mut controller_dir = None;
    let plugins = match (&config.plugins_config, &config.controller_addr) {
        (None, None) => Arc::new(plugins::Plugins::none()),
        (Some(path), _) => {
            let plugins = Arc::new(plugins::Plugins::new(&config.plugin_cache_dir)?);
            let loaded = plugins::file::install_now(&plugins, path)?;
            tokio::spawn(plugins::file::watch(plugins.clone(), path.clone(), loaded));
            plugins
        }
        (None, Some(_)) => {
            // Nothing is served without the workload's chain: the saved one
            // is installed before the listeners open, so a restart while the
            // controller is away serves its plugins from the first request.
            let plugins = plugins::Plugins::awaiting(&config.plugin_cache_dir)?;
            let dir = plugins.controller_dir().map_err(RunError::ControllerDir)?;
            if let Some(workload) = &config.workload {
                plugins::controller::restore(&plugins, &dir, workload);
            }
            controller_dir = Some(dir);
            Arc::new(plugins)
        }
    };
    let inbound = bind("inbound", config.inbound_listen_addr).await?;
    let outbound = bind("outbound", config.outbound_listen_addr).await?;
    // Before the admin listener, whose address is logged last.
    let tap = match &config.identity.identity_local_name {
        Some(_) => Some(bind("tap", config.tap_listen_addr).await?),
        None => None,
    };
    let admin = bind("admin", config.admin_listen_addr).await?;

    let mut registry = Registry::default();
    let certifier = identity::Certifier::new(&config.identity, &mut registry)?;
    let identity = certifier.as_ref().map(|c| c.identity().clone());
    let tap_client = config
        .tap_client_identity
        .clone()
        .or_else(|| certifier.as_ref().map(|c| c.controller_name()));
    // With an identity, the controller is reached over mTLS and hands out
    // only this workload's chain.
    let control_plane = match (&certifier, &config.controller_addr) {
        (Some(certifier), Some(_)) => Some(certifier.control_plane()),
        (None, Some(addr)) => Some(control_plane::ControlPlane::Plaintext(addr.clone())),
        (_, None) => None,
    };
    if let Some(certifier) = certifier {
        tokio::spawn(certifier.run());
    }
    // mTLS needs an identity to prove; originating it, also the controller
    // to say who the peers are.
    let tls = match &identity {
        Some(identity) => Some(Arc::new(tls::MeshTls::new(identity)?)),
        None => None,
    };
    // One connection to the controller asks who the peers are and which
    // endpoints services have.
    let destination_api = match &control_plane {
        Some(controller) => Some(controller.connect_lazy()?),
        None => None,
    };
    let transport = TransportMetrics::register(&mut registry);
    registry.register_collector(Box::new(metrics::ProcessCollector::new()));
    if let Some(plugin_metrics) = plugins.metrics() {
        registry.register_collector(Box::new(plugin_metrics));
    }
    if let (Some(addr), Some(workload), Some(dir)) =
        (control_plane, config.workload.clone(), controller_dir)
    {
        tokio::spawn(plugins::controller::follow(
            plugins.clone(),
            addr,
            workload,
            dir,
        ));
    }
    let tracer = match &config.trace_collector {
        Some(collector) => Some(
            trace::Tracer::start(collector, config.workload.as_ref(), &mut registry)
                .map_err(RunError::TraceCollector)?,
        ),
        None => None,
    };
    let draining = CancellationToken::new();
    let tasks = TaskTracker::new();
    let own_addrs = [&inbound, &outbound]
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let grace = config.shutdown_grace_period;
    let proxy = Arc::new(
        Proxy::new(
            config,
            transport,
            plugins.clone(),
            (tls, destination_api),
            own_addrs,
            draining.clone(),
            tasks.clone(),
        )
        .with_tracer(tracer),
    );

    if let Some(discovery) = proxy.discovery() {
        registry.register_collector(Box::new(discovery::BalancerMetrics::new(discovery)));
    }
    match (tap, &identity, tap_client) {
        (Some(listener), Some(identity), Some(allowed)) => {
            tap::serve(proxy.taps().clone(), listener, identity, allowed).await?
        }
        _ => tracing::info!("no identity: tap is off (only the controller's identity may tap)"),
    }
    tokio::spawn(serve::accept(proxy.clone(), Direction::Inbound, inbound));
    tokio::spawn(serve::accept(proxy, Direction::Outbound, outbound));
    let credentials = identity.map(|identity| identity.credentials);
    tokio::spawn(admin::Admin::new(registry, plugins, credentials, draining.clone()).serve(admin));

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

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    let bound = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind {
            listener,
            addr,
            source,
        })?;
    if let Ok(local) = bound.local_addr() {
        tracing::info!(listener = %listener, addr = %local, "listening");
    }
    Ok(bound)
}
