//! `cargo xtask bench-plugins`: what the plugin runtime costs. First the
//! in-process hook bench (`host/plugins/benches/hooks.rs`), then real
//! requests through release builds of weft-proxy in front of a demo app,
//! once per plugin chain, reported as one Markdown table; then the guide's
//! header filter in Rust, Python and JavaScript (`languages.rs`). Pinning,
//! process handling and accounting are the harness's (`harness.rs`).

mod languages;

use std::path::Path;

use anyhow::{Context, ensure};
use clap::Args;

use crate::harness::processes::{Processes, catch_stop_signals, ensure_not_interrupted, pinned};
use crate::harness::procfs::{self, CpuTicks};
use crate::harness::weft::{self, AUTHORITY, SHIPPED_PLUGINS};
use crate::harness::wrk::{self, WrkReport};
use crate::harness::{self, CLIENT_CPU, PROXY_CPU, WARM_UP_SECONDS};
use crate::workspace;

/// Tools the benchmark runs, and the Debian package each comes in.
const TOOLS: [(&str, &str); 3] = [
    ("wrk", "wrk"),
    ("taskset", "util-linux"),
    ("getconf", "libc-bin"),
];

/// The chains measured: a label and the plugins, in order. Each plugin
/// alone as well, so the table can say what share of the chain's cost is
/// whose.
const CHAINS: [(&str, &[&str]); 6] = [
    ("none (empty chain)", &[]),
    ("metrics", &["metrics"]),
    ("retry", &["retry"]),
    ("authz", &["authz"]),
    ("split", &["split"]),
    ("metrics, retry, authz, split", &SHIPPED_PLUGINS),
];

#[derive(Args)]
pub struct BenchPluginsArgs {
    /// How long wrk loads each chain, in seconds (`10` or `10s`).
    #[arg(long, default_value = "10s", value_parser = harness::parse_seconds)]
    duration: u64,
    /// A smoke run: 3 s per chain.
    #[arg(long, conflicts_with = "duration")]
    quick: bool,
}

/// One chain's figures.
struct Row {
    chain: &'static str,
    wrk: WrkReport,
    cpu: CpuPerRequest,
    rss_idle_kb: u64,
    rss_peak_kb: u64,
}

struct CpuPerRequest {
    user_us: f64,
    system_us: f64,
}

pub fn run(args: &BenchPluginsArgs) -> anyhow::Result<()> {
    let seconds = if args.quick {
        harness::QUICK_SECONDS
    } else {
        args.duration
    };
    harness::install_missing(&TOOLS)?;
    harness::ensure_two_cpus()?;
    catch_stop_signals()?;
    let components = weft::build_plugins();
    let bin = weft::build_binaries()?;
    run_hook_bench()?;

    let clock_ticks = procfs::clock_ticks_per_second()?;
    let scratch = harness::Scratch::new("weft-bench-plugins")?;
    let mut rows = Vec::new();
    for (index, (label, plugins)) in CHAINS.into_iter().enumerate() {
        if let Some(missing) = weft::missing_component(&components, plugins) {
            println!(
                "skipping chain `{label}`: {} is not built",
                missing.display()
            );
            continue;
        }
        ensure_not_interrupted()?;
        eprintln!("measuring chain `{label}` for {seconds} s");
        let bench = ChainBench {
            label,
            plugins,
            bin: &bin,
            components: &components,
            scratch: &scratch.dir.join(format!("chain-{index}")),
        };
        rows.push(bench.run(seconds, clock_ticks)?);
    }
    print_table(&rows, seconds);
    languages::run(&components, &scratch.dir.join("languages"))
}

/// Builds the hook bench unpinned, then runs it on the proxy's CPU so the
/// build does not share it; its table goes straight to our stdout.
fn run_hook_bench() -> anyhow::Result<()> {
    let bench = ["bench", "-p", "weft-plugins", "--bench", "hooks"];
    let status = workspace::cargo()
        .args(bench)
        .arg("--no-run")
        .status()
        .context("building the hook bench")?;
    ensure!(
        status.success(),
        "building the hook bench failed ({status})"
    );
    let status = pinned(PROXY_CPU, workspace::cargo().get_program())
        .args(bench)
        .current_dir(workspace::root())
        .status()
        .context("running the hook bench")?;
    ensure!(status.success(), "the hook bench failed ({status})");
    Ok(())
}

/// One chain's measurement: a demo app, a proxy running the chain, wrk.
struct ChainBench<'a> {
    label: &'static str,
    plugins: &'static [&'static str],
    bin: &'a Path,
    components: &'a Path,
    /// This chain's file and the proxy's log.
    scratch: &'a Path,
}

impl ChainBench<'_> {
    fn run(&self, seconds: u64, clock_ticks: f64) -> anyhow::Result<Row> {
        std::fs::create_dir_all(self.scratch)?;
        let mut processes = Processes::default();
        let app = weft::start_app(&mut processes, self.bin)?.addr;
        let chain = self.scratch.join("plugins.json");
        weft::write_chain_file(&chain, self.components, self.plugins, app)?;
        let log = self.scratch.join("weft-proxy.log");
        let proxy = weft::Proxy {
            bin: self.bin,
            app,
            chain: Some(&chain),
            log: &log,
        }
        .start(&mut processes)?;
        let with_log = || format!("weft-proxy's log:\n{}", harness::tail(&log));
        let status =
            harness::http_status(proxy.inbound, AUTHORITY, "/").context("a first request")?;
        ensure!(
            status == 200,
            "a first request through the proxy answered {status}, not 200; {}",
            with_log()
        );

        let rss_idle_kb = procfs::proc_status_kb(proxy.pid, "VmRSS")?;
        wrk::run(proxy.inbound, AUTHORITY, WARM_UP_SECONDS)?;
        let before = procfs::tree_cpu_ticks(proxy.pid)?;
        let wrk = wrk::run(proxy.inbound, AUTHORITY, seconds)?;
        let used = procfs::tree_cpu_ticks(proxy.pid)?.since(before);
        let rss_peak_kb = procfs::proc_status_kb(proxy.pid, "VmHWM")?;
        processes.ensure_running().with_context(with_log)?;
        weft::warn_if_logged(&log);

        Ok(Row {
            chain: self.label,
            cpu: per_request(used, wrk.requests, clock_ticks),
            wrk,
            rss_idle_kb,
            rss_peak_kb,
        })
    }
}

fn per_request(used: CpuTicks, requests: u64, clock_ticks: f64) -> CpuPerRequest {
    let requests = requests.max(1) as f64;
    let micros = |ticks: u64| ticks as f64 / clock_ticks * 1e6 / requests;
    CpuPerRequest {
        user_us: micros(used.user),
        system_us: micros(used.system),
    }
}

fn print_table(rows: &[Row], seconds: u64) {
    println!(
        "\nRequests through weft-proxy (release): {}, HTTP/1.1, Host: {AUTHORITY}; \
         proxy on CPU {PROXY_CPU}, wrk and app on CPU {CLIENT_CPU}\n",
        wrk::describe(seconds)
    );
    println!("| chain | req/s | p50 ms | p99 ms | CPU µs/req | RSS idle MB | RSS peak MB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let cpu = &row.cpu;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} ({:.1} user + {:.1} sys) | {:.1} | {:.1} |",
            row.chain,
            row.wrk.per_second,
            row.wrk.p50_ms,
            row.wrk.p99_ms,
            cpu.user_us + cpu.system_us,
            cpu.user_us,
            cpu.system_us,
            row.rss_idle_kb as f64 / 1024.0,
            row.rss_peak_kb as f64 / 1024.0,
        );
    }
    print_shares(rows);
    for row in rows {
        if row.wrk.non_2xx > 0 {
            println!(
                "\nwarning: chain `{}`: {} responses were not 2xx/3xx",
                row.chain, row.wrk.non_2xx
            );
        }
        if let Some(errors) = &row.wrk.socket_errors {
            println!(
                "\nwarning: chain `{}`: wrk socket errors: {errors}",
                row.chain
            );
        }
    }
}

/// Each plugin's CPU per request over the empty chain's, and its share of
/// their sum: a regression shows up against its plugin.
fn print_shares(rows: &[Row]) {
    let cpu = |label: &str| {
        rows.iter()
            .find(|row| row.chain == label)
            .map(|row| row.cpu.user_us + row.cpu.system_us)
    };
    let Some(none) = cpu(CHAINS[0].0) else {
        return;
    };
    let added: Vec<(&str, f64)> = SHIPPED_PLUGINS
        .iter()
        .filter_map(|name| Some((*name, (cpu(name)? - none).max(0.0))))
        .collect();
    let sum: f64 = added.iter().map(|(_, us)| us).sum();
    if added.len() < SHIPPED_PLUGINS.len() || sum <= 0.0 {
        return;
    }
    println!("\nCPU each plugin adds alone (its chain less the empty one), and its share:\n");
    println!("| plugin | CPU µs/req added | share |");
    println!("|---|---:|---:|");
    for (name, us) in &added {
        println!("| {name} | {us:.1} | {:.0} % |", us / sum * 100.0);
    }
    if let Some(all) = cpu(CHAINS[CHAINS.len() - 1].0) {
        println!(
            "| all four, one chain | {:.1} | (sum alone {sum:.1}) |",
            all - none
        );
    }
}
