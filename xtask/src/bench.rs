//! `cargo xtask bench`: Weft side by side with Envoy, nginx and HAProxy on
//! loopback, under the same loads, with the same CPU: each proxy alone on
//! CPU 1, the load generators and the upstream (`weft-demo http`) on
//! CPU 0. The upstream answered directly is the limit. Meshed pairs, two
//! proxies in a row as between two pods, share CPU 1 and are counted
//! together: Weft's in plaintext and over mTLS, Envoy's over mTLS. The
//! result is a Markdown table and its raw JSON in `docs/`.

mod environment;
mod fixed_rate;
mod h2load;
mod handshakes;
mod measure;
mod peers;
mod report;
mod setup;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

pub use fixed_rate::{FixedRateArgs, generate as fixed_rate_generator};

use crate::harness::processes::{
    Processes, catch_stop_signals, ensure_not_interrupted, pin_this_process,
};
use crate::harness::{self, CLIENT_CPU, Scratch, procfs};
use crate::workspace;
use measure::{Endpoint, Figures};
use report::{Report, TargetResult};

#[derive(Args)]
pub struct BenchArgs {
    /// How long each load runs against each target, in seconds (`10` or `10s`).
    #[arg(long, default_value = "10s", value_parser = harness::parse_seconds)]
    duration: u64,
    /// A smoke run: 3 s per load.
    #[arg(long, conflicts_with = "duration")]
    quick: bool,
    /// Only these targets, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Target>,
}

/// What is measured, in the order of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The upstream without a proxy: the limit.
    Direct,
    /// weft-proxy with no plugins.
    Weft,
    /// weft-proxy with metrics, retry, authz and split.
    WeftPlugins,
    /// Envoy as a plain HTTP proxy.
    Envoy,
    /// Envoy with one proxy-wasm filter doing what the four plugins do.
    EnvoyWasm,
    Nginx,
    Haproxy,
    /// A client weft-proxy's outbound to a server weft-proxy's inbound, in
    /// plaintext.
    WeftPair,
    /// The same, both proxies certified by weft-controller: mTLS and
    /// HTTP/2 between them.
    WeftMtlsPair,
    /// Envoy to Envoy over mTLS and HTTP/2, client certificates required.
    EnvoyMtlsPair,
}

impl Target {
    /// Its `--only` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Weft => "weft",
            Self::WeftPlugins => "weft-plugins",
            Self::Envoy => "envoy",
            Self::EnvoyWasm => "envoy-wasm",
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
            Self::WeftPair => "weft-pair",
            Self::WeftMtlsPair => "weft-mtls-pair",
            Self::EnvoyMtlsPair => "envoy-mtls-pair",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "upstream direct (the limit)",
            Self::Weft => "Weft, no plugins",
            Self::WeftPlugins => "Weft + metrics, retry, authz, split",
            Self::Envoy => "Envoy",
            Self::EnvoyWasm => "Envoy + 1 proxy-wasm filter (v8)",
            Self::Nginx => "nginx",
            Self::Haproxy => "HAProxy",
            Self::WeftPair => "Weft → Weft, plaintext",
            Self::WeftMtlsPair => "Weft → Weft, mTLS",
            Self::EnvoyMtlsPair => "Envoy → Envoy, mTLS",
        }
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let seconds = if args.quick {
        harness::QUICK_SECONDS
    } else {
        args.duration
    };
    let targets = chosen(&args.only);
    harness::ensure_two_cpus()?;
    catch_stop_signals()?;
    let setup = setup::prepare(&targets)?;
    // Before pinning, which would hide the other CPU from `nproc`.
    let environment = setup.environment();
    // After the builds, which want every CPU.
    pin_this_process(CLIENT_CPU)?;
    let clock_ticks = procfs::clock_ticks_per_second()?;
    let scratch = Scratch::new("weft-bench")?;
    let mut results = Vec::new();
    for (index, &target) in targets.iter().enumerate() {
        ensure_not_interrupted()?;
        let outcome = match setup.unavailable(target) {
            Some(reason) => Err(reason),
            None => {
                eprintln!("measuring {} for {seconds} s per load", target.name());
                let dir = scratch.dir.join(target.name());
                measure_target(target, index, &setup, &dir, seconds, clock_ticks)
            }
        };
        ensure_not_interrupted()?;
        if let Err(reason) = &outcome {
            eprintln!("warning: {} unavailable: {reason}", target.name());
        }
        results.push(TargetResult { target, outcome });
    }
    let report = Report {
        environment,
        command: command_line(),
        seconds,
        results,
    };
    publish(&report, output_dir(args))
}

/// Every target, or the `--only` ones in the usual order.
fn chosen(only: &[Target]) -> Vec<Target> {
    Target::value_variants()
        .iter()
        .copied()
        .filter(|target| only.is_empty() || only.contains(target))
        .collect()
}

/// Starts `target` with a fresh upstream and runs the loads. Failing to
/// start makes the target unavailable, with the reason.
fn measure_target(
    target: Target,
    index: usize,
    setup: &setup::Setup,
    dir: &Path,
    seconds: u64,
    clock_ticks: f64,
) -> Result<Figures, String> {
    let attempt = || -> anyhow::Result<Figures> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut processes = Processes::default();
        let app = harness::weft::start_app(&mut processes, &setup.bin)?;
        let peer = peers::Peer {
            setup,
            app: app.addr,
            dir,
            index,
        };
        let endpoint: Endpoint = peer.start(target, &mut processes)?;
        harness::wait_for_200(&mut processes, endpoint.http1, &endpoint.authority, "/")
            .map_err(|e| peer.with_logs(e))?;
        let meter = measure::Meter {
            proxies: &endpoint.pids,
            upstream: app.pid,
            clock_ticks,
            handshakes: endpoint.handshakes.as_ref(),
        };
        let figures = measure::workloads(&endpoint, &meter, seconds, dir)?;
        processes.ensure_running().map_err(|e| peer.with_logs(e))?;
        Ok(figures)
    };
    attempt().map_err(|error| format!("{error:#}"))
}

/// How this run was asked for, as the user would type it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", args.join(" "))
}

/// The published figures are full runs of every target; a smoke run or a
/// subset goes beside the build output instead of replacing them.
fn output_dir(args: &BenchArgs) -> PathBuf {
    if args.quick || !args.only.is_empty() {
        setup::bench_cache()
    } else {
        workspace::root().join("docs")
    }
}

fn publish(report: &Report, dir: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let markdown = report.markdown();
    let json = serde_json::to_string_pretty(&report.json())?;
    let md_path = dir.join("benchmarks.md");
    let json_path = dir.join("benchmarks.json");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("\n{markdown}");
    println!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}
