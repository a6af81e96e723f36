//! `cargo xtask`: the project's chores, written in Rust so they run wherever
//! cargo does, with nothing else to install first.

mod bench;
mod bench_plugins;
mod demo;
mod fuzz;
mod harness;
mod images;
mod reliability;
mod stop_signal;
mod test;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run weft-proxy between two demo services and a steady load on loopback.
    Demo(demo::DemoArgs),
    /// Build the weft-proxy and weft-controller container images (static, from scratch); write and/or push them.
    Images(images::ImagesArgs),
    /// Install what the test suite needs (as root, with apt-get), then run it.
    Test(test::TestArgs),
    /// Fuzz each target in fuzz/ for a while (installs nightly and cargo-fuzz if missing).
    Fuzz(fuzz::FuzzArgs),
    /// Measure the plugin runtime: hook call cost, requests through chains of 0, 1 and 4 plugins, and RSS.
    BenchPlugins(bench_plugins::BenchPluginsArgs),
    /// Measure Weft beside Envoy, nginx and HAProxy (installing them) and write docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Measure what the proxy survives (hostile clients, faults under load, a soak) and write docs/reliability.md.
    Reliability(reliability::ReliabilityArgs),
    /// `cargo xtask bench`'s fixed-rate load generator, run pinned in a process of its own.
    #[command(hide = true)]
    BenchFixedRate(bench::FixedRateArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Demo(args) => demo::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Test(args) => test::run(&args),
        Command::Images(args) => images::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Fuzz(args) => fuzz::run(&args).map(|()| ExitCode::SUCCESS),
        Command::BenchPlugins(args) => bench_plugins::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Reliability(args) => reliability::run(&args).map(|()| ExitCode::SUCCESS),
        Command::BenchFixedRate(args) => {
            bench::fixed_rate_generator(&args).map(|()| ExitCode::SUCCESS)
        }
    }
}
