//! `weft-controller`: serves the plugin API to proxies from a directory of
//! resources (Namespaces, Pods, WasmPlugins as YAML), following its changes,
//! or from a Kubernetes cluster's watches.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgGroup, Parser};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tracing_subscriber::EnvFilter;
use weft_controller::api::PluginApi;
use weft_controller::fetch::Fetcher;
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

fn main() -> anyhow::Result<()> {
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
    let fetcher = Fetcher::new().context("starting the module fetcher")?;
    // Read before listening, so the first proxies find their workloads; and
    // before the API's runtime starts, since module fetches block.
    let directory = args.dir.clone().map(|dir| {
        let first = read_state(&dir, &runtime, &fetcher, &Modules::default());
        (dir, first)
    });
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the API's runtime")?
        .block_on(async {
            let state = match directory {
                Some((dir, first)) => {
                    let (publish, state) = watch::channel(Arc::new(first));
                    std::thread::spawn(move || follow_directory(dir, runtime, fetcher, publish));
                    state
                }
                None => {
                    let client = kube::Client::try_default()
                        .await
                        .context("connecting to Kubernetes (in-cluster config or kubeconfig)")?;
                    // Until every kind is listed no workload is known:
                    // proxies keep the chains they have.
                    let empty = State {
                        index: Default::default(),
                        modules: Modules::default(),
                    };
                    let (publish, state) = watch::channel(Arc::new(empty));
                    let (runtime, fetcher) = (Arc::new(runtime), Arc::new(fetcher));
                    tokio::spawn(follow_cluster(client, runtime, fetcher, publish));
                    state
                }
            };
            serve(&args, state).await
        })
}

async fn serve(args: &Args, state: watch::Receiver<Arc<State>>) -> anyhow::Result<()> {
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
