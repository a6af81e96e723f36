//! `weft-controller`: serves the plugin API to proxies from one source of
//! resources (Namespaces, Pods, WasmPlugins): a directory of YAML, followed
//! as it changes, or the Kubernetes cluster it runs in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgGroup, Parser};
use tokio_stream::wrappers::TcpListenerStream;
use tracing_subscriber::EnvFilter;
use weft_controller::api::PluginApi;
use weft_controller::inspect::InspectApi;
use weft_controller::kubernetes::follow_cluster;
use weft_controller::modules::Modules;
use weft_controller::state::{State, follow_directory, read_state};

/// Exit code for bad configuration (`EX_USAGE`), as the proxy's.
const EXIT_CONFIG: i32 = 64;

#[derive(Parser)]
#[command(name = "weft-controller", version, about)]
#[command(group(ArgGroup::new("source").required(true).args(["dir", "kubernetes"])))]
struct Args {
    /// The directory of resources to serve (YAML or JSON, read recursively).
    #[arg(long, env = "WEFT_CONTROLLER_DIR")]
    dir: Option<PathBuf>,
    /// Watch the cluster instead: in-cluster config, else the kubeconfig
    /// (`KUBECONFIG`, `~/.kube/config`). Writes WasmPlugins' status.
    #[arg(long)]
    kubernetes: bool,
    /// Where proxies connect.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_LISTEN_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    listen: SocketAddr,
    /// Log filter in `tracing` syntax.
    #[arg(long, env = "WEFT_LOG", default_value = "info")]
    log: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).context("WEFT_LOG")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = weft_plugins::Runtime::new().context("starting the plugin runtime")?;
    let state = match &args.dir {
        Some(dir) => {
            // Read before listening, so the first proxies find their workloads.
            let first = read_state(dir, &runtime, &Modules::default());
            let (publish, state) = tokio::sync::watch::channel(Arc::new(first));
            let dir = dir.clone();
            std::thread::spawn(move || follow_directory(dir, runtime, publish));
            state
        }
        None => {
            let client = kube::Client::try_default()
                .await
                .context("connecting to Kubernetes (in-cluster config or kubeconfig)")?;
            // Until every kind is listed no workload is known: proxies keep
            // the chains they have.
            let empty = State {
                index: Default::default(),
                modules: Modules::default(),
            };
            let (publish, state) = tokio::sync::watch::channel(Arc::new(empty));
            tokio::spawn(follow_cluster(client, Arc::new(runtime), publish));
            state
        }
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let source = match &args.dir {
        Some(dir) => dir.display().to_string(),
        None => "kubernetes".to_string(),
    };
    tracing::info!(addr = %listener.local_addr()?, %source, "listening");
    tonic::transport::Server::builder()
        .add_service(PluginApi::new(state.clone()).into_service())
        .add_service(InspectApi::new(state).into_service())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown())
        .await
        .context("serving the plugin API")
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
