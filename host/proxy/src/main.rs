//! The `weft-proxy` binary: `weft-proxy` runs the proxy, `weft-proxy init`
//! installs the iptables rules that send a pod's traffic through it.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use weft_proxy::config::{Config, EXIT_CONFIG};
use weft_proxy::init::{self, InitConfig};

#[derive(Parser)]
#[command(
    name = "weft-proxy",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Install the iptables rules that redirect a pod's traffic to the proxy.
    Init(InitConfig),
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    init_tracing(&cli.run.log);
    let code = match cli.command {
        Some(Command::Init(config)) => report(init::run(&config)),
        None => run_proxy(cli.run),
    };
    std::process::exit(code)
}

fn run_proxy(config: Config) -> i32 {
    let mut runtime = if config.cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(config.cores.into());
        builder
    };
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return report(Err(error)),
    };
    match runtime.block_on(weft_proxy::run(config, shutdown_signal())) {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!("{error}");
            error.exit_code()
        }
    }
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn init_tracing(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("error: WEFT_LOG `{filter}` is not a valid log filter: {e}");
        std::process::exit(EXIT_CONFIG)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn report<T>(result: Result<(), T>) -> i32
where
    T: std::fmt::Display,
{
    match result {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!("{error}");
            1
        }
    }
}
