//! `weft-demo`: the service that runs behind a Weft sidecar in the local demo
//! and in the integration tests. One binary holds every role (HTTP server,
//! TCP echo server, load generator) so there is a single thing to build and
//! find.

mod http_server;
mod listener;
mod load;
mod repeated_body;
mod respond;
mod route;
mod shutdown_signal;
mod tcp_echo;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "weft-demo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with test routes.
    Http(http_server::HttpArgs),
    /// Echo every byte back until the client half-closes.
    TcpEcho(tcp_echo::TcpEchoArgs),
    /// Send GET requests at a steady rate and report successes each second.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread is plenty for a test service, and keeps its behaviour simple.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Http(args) => http_server::run(args).await,
            Command::TcpEcho(args) => tcp_echo::run(args).await,
            Command::Load(args) => load::run(args).await,
        }
    })
}
