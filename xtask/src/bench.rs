//! `cargo xtask bench`: Weft side by side with Envoy, nginx and HAProxy on
//! loopback, under the same loads, with the same CPU: each proxy alone on
//! CPU 1, the load generators and the upstream (`weft-demo http`) on
//! CPU 0. The upstream answered directly is the limit. Meshed pairs, two
//! proxies in a row as between two pods, share CPU 1 and are counted
//! together: Weft's in plaintext and over mTLS, Envoy's over mTLS. The
//! balanced targets spread the load over three upstream instances, and
//! are measured again with one of them slow. The result is a Markdown
//! table and its raw JSON in `docs/`.

mod environment;
pub mod fixed_rate;
mod h2load;
mod handshakes;
mod idle;
pub mod measure;
mod peers;
mod report;
mod setup;
mod upstreams;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

pub use fixed_rate::{FixedRateArgs, generate as fixed_rate_generator};

use crate::harness::processes::{
    Processes, catch_stop_signals, ensure_not_interrupted, pin_this_process,
};
use crate::harness::{self, CLIENT_CPU, Scratch, procfs};
use crate::workspace;
use measure::{Endpoint, Figures, Meter};
use report::{Report, TargetResult};
use upstreams::Instance;

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
    /// Only idle keep-alive connections: Weft's and HAProxy's memory per
    /// connection at 1,000, 5,000 and 10,000 of them, HTTP/1.1 and HTTP/2;
    /// written to its own section of docs/benchmarks.md.
    #[arg(long, conflicts_with_all = ["only", "quick", "duration"])]
    idle: bool,
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
    /// weft-proxy with no plugins, exporting spans to a trace collector,
    /// with requests that carry no sampled trace context: what tracing
    /// costs when nothing is traced.
    WeftTraced,
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
    /// weft-proxy's outbound listener balancing a Service's three
    /// endpoints (EWMA), which weft-controller's Destination API names.
    WeftBalanced,
    /// HAProxy balancing the same three instances, `balance leastconn`.
    HaproxyBalanced,
    /// Envoy balancing them, `LEAST_REQUEST`.
    EnvoyBalanced,
}

impl Target {
    /// Its `--only` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Weft => "weft",
            Self::WeftPlugins => "weft-plugins",
            Self::WeftTraced => "weft-traced",
            Self::Envoy => "envoy",
            Self::EnvoyWasm => "envoy-wasm",
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
            Self::WeftPair => "weft-pair",
            Self::WeftMtlsPair => "weft-mtls-pair",
            Self::EnvoyMtlsPair => "envoy-mtls-pair",
            Self::WeftBalanced => "weft-balanced",
            Self::HaproxyBalanced => "haproxy-balanced",
            Self::EnvoyBalanced => "envoy-balanced",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "upstream direct (the limit)",
            Self::Weft => "Weft, no plugins",
            Self::WeftPlugins => "Weft + metrics, retry, authz, split",
            Self::WeftTraced => "Weft, no plugins, tracing on (nothing sampled)",
            Self::Envoy => "Envoy",
            Self::EnvoyWasm => "Envoy + 1 proxy-wasm filter (v8)",
            Self::Nginx => "nginx",
            Self::Haproxy => "HAProxy",
            Self::WeftPair => "Weft → Weft, plaintext",
            Self::WeftMtlsPair => "Weft → Weft, mTLS",
            Self::EnvoyMtlsPair => "Envoy → Envoy, mTLS",
            Self::WeftBalanced => "Weft, balancing 3 (EWMA)",
            Self::HaproxyBalanced => "HAProxy, balancing 3 (leastconn)",
            Self::EnvoyBalanced => "Envoy, balancing 3 (LEAST_REQUEST)",
        }
    }

    /// Whether it spreads the load over several upstream instances.
    pub fn balanced(self) -> bool {
        matches!(
            self,
            Self::WeftBalanced | Self::HaproxyBalanced | Self::EnvoyBalanced
        )
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.idle {
        return idle::run();
    }
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

/// Starts `target` with fresh upstream instances and runs the loads; a
/// balanced target is then started afresh with one instance slow, for the
/// fixed-rate load. Failing to start makes the target unavailable, with
/// the reason.
fn measure_target(
    target: Target,
    index: usize,
    setup: &setup::Setup,
    dir: &Path,
    seconds: u64,
    clock_ticks: f64,
) -> Result<Figures, String> {
    let started = |dir: &Path, slow| Started {
        target,
        index,
        setup,
        dir: dir.to_path_buf(),
        instances: upstreams::instances(target, slow),
        clock_ticks,
    };
    let attempt = || -> anyhow::Result<Figures> {
        let mut figures = started(dir, false)
            .measure(|endpoint, meter| measure::workloads(endpoint, meter, seconds, dir))?;
        if target.balanced() {
            ensure_not_interrupted()?;
            eprintln!(
                "measuring {} with one instance {} ms slow",
                target.name(),
                upstreams::SLOW_DELAY_MS
            );
            let slow = started(&dir.join("slow-endpoint"), true)
                .measure(|endpoint, meter| Ok(measure::fixed_rate_only(endpoint, meter, seconds)))
                .unwrap_or_else(|error| Err(format!("{error:#}")));
            figures.slow_endpoint = Some(slow);
        }
        Ok(figures)
    };
    attempt().map_err(|error| format!("{error:#}"))
}

/// A target to start in front of its upstream instances.
struct Started<'a> {
    target: Target,
    index: usize,
    setup: &'a setup::Setup,
    /// Its configuration and logs.
    dir: PathBuf,
    instances: Vec<Instance>,
    clock_ticks: f64,
}

impl Started<'_> {
    /// Starts the instances and the target, waits until it answers, and
    /// hands both to `measure`; everything stops when it returns.
    fn measure<T>(
        &self,
        measure: impl FnOnce(&Endpoint, &Meter) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut processes = Processes::default();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let mut pids = Vec::new();
        for instance in &self.instances {
            let app = harness::weft::start_instance(
                &mut processes,
                &self.setup.bin,
                instance.name,
                instance.delay_ms,
            )?;
            addrs.push(app.addr);
            pids.push(app.pid);
        }
        let peer = peers::Peer {
            setup: self.setup,
            upstreams: &addrs,
            dir,
            index: self.index,
        };
        let endpoint: Endpoint = peer.start(self.target, &mut processes)?;
        harness::wait_for_200(&mut processes, endpoint.http1, &endpoint.authority, "/")
            .map_err(|e| peer.with_logs(e))?;
        let meter = Meter {
            proxies: &endpoint.pids,
            upstreams: &pids,
            clock_ticks: self.clock_ticks,
            handshakes: endpoint.handshakes.as_ref(),
        };
        let measured = measure(&endpoint, &meter)?;
        processes.ensure_running().map_err(|e| peer.with_logs(e))?;
        Ok(measured)
    }
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
    let mut markdown = report.markdown();
    let md_path = dir.join("benchmarks.md");
    // The idle-connections section comes from `--idle` runs: kept.
    let old = std::fs::read_to_string(&md_path).unwrap_or_default();
    if let Some(section) = idle::section_of(&old) {
        markdown = idle::with_section(&markdown, section);
    }
    let json = serde_json::to_string_pretty(&report.json())?;
    let json_path = dir.join("benchmarks.json");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("\n{markdown}");
    println!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}
