//! `weft-demo http`: the HTTP upstream. It serves HTTP/1.1 and HTTP/2 with
//! prior knowledge on one port, as real apps behind the proxy may, so tests
//! can drive either protocol against the same service.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

use crate::listener::Listener;
use crate::respond::{Service, respond};

/// In-flight requests get this long to finish after SIGTERM; idle
/// keep-alive clients must not hold shutdown up longer.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Args)]
pub struct HttpArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long)]
    listen: SocketAddr,
    /// Shown in `hello from NAME` and the `x-demo-name` header, to tell
    /// services apart behind a proxy.
    #[arg(long, default_value = "demo")]
    name: String,
    /// Milliseconds to wait before every answer, to play a slow replica.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    let header = HeaderValue::from_str(&args.name)
        .with_context(|| format!("--name {:?} cannot be sent as a header value", args.name))?;
    let service = Arc::new(Service {
        name: args.name,
        header,
        flaky: Default::default(),
        delay: Duration::from_millis(args.delay_ms),
    });
    let mut listener = Listener::bind(args.listen).await?;
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    while let Some(stream) = listener.accept().await {
        let service = service.clone();
        let service = service_fn(move |req| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(respond(req, &service).await) }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Clients hanging up mid-request are routine in proxy tests.
            let _ = connection.await;
        });
    }
    let _ = tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown()).await;
    Ok(())
}
