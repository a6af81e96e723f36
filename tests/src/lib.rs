//! The harness for Weft's cross-process tests. Tests start real binaries
//! (`weft-proxy`, `weft-demo`) on loopback and talk to them over real
//! sockets, and read like sentences:
//!
//! ```ignore
//! let app = Demo::http("app").spawn().await;
//! let proxy = Proxy::new().inbound_app(app.addr).spawn().await;
//! let rsp = http1::get(proxy.inbound, "app", "/").await;
//! ```

pub mod binaries;
pub mod controller;
pub mod demo;
pub mod forge;
pub mod held_app;
pub mod http1;
pub mod mesh;
pub mod metrics;
pub mod module_server;
pub mod otlp;
pub mod plugins;
pub mod prometheus;
pub mod proxy;
pub mod registry;
pub mod relay;
pub mod schemas;
pub mod traffic;
pub mod webhook;

pub use demo::Demo;
pub use held_app::HeldApp;
pub use metrics::Metrics;
pub use proxy::Proxy;

use std::time::Duration;

/// Every wait in the tests is bounded by this unless a test says otherwise.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A port on loopback that nothing listens on.
pub fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Polls `check` until it holds, failing with `what` (and the last value
/// `check` saw) after `PATIENCE`. For conditions that have no readiness
/// signal of their own, such as a reload or a log line.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    eventually_within(what, PATIENCE, check).await
}

/// `eventually` for a condition that takes a known time to come about
/// (such as a window filling) plus `PATIENCE`.
pub async fn eventually_within<F, Fut>(what: &str, patience: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not within {patience:?}; last saw: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// A file's or module's sha256, as lowercase hex (how Weft names modules).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
