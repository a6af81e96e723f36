//! `weft plugin bench`: what a filter costs the proxy, measured on the
//! proxy's plugin runtime: compile time, instance start (instantiate and
//! `init`), memory per instance, and the request hook's time on a reused
//! instance. It measures; what is too much is the operator's call.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use weft_plugins::{PluginChain, RequestOutcome, Runtime};

use super::project::Project;
use super::test_file::{Limits, TestFile, TestRequest};
use super::test_run::{chain_spec, request_view};

/// Instances held at once to read memory per instance from the RSS.
const INSTANCES: usize = 20;
/// Request hook calls timed, after as many to warm up.
const CALLS: u32 = 20_000;

#[derive(Args)]
pub struct BenchArgs {
    /// The project directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Measure this component instead of the project's build.
    #[arg(long, value_name = "WASM")]
    module: Option<PathBuf>,
    /// The plugin's configuration (JSON); the test file's when not given.
    #[arg(long, value_name = "JSON")]
    config: Option<String>,
    #[command(flatten)]
    limits: Limits,
    /// One line of figures, tab-separated, for scripts.
    #[arg(long)]
    tsv: bool,
}

pub struct Figures {
    pub module_bytes: u64,
    pub compile: Duration,
    pub instance_start: Duration,
    pub instance_memory_bytes: u64,
    pub request_hook: Duration,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let dir = super::project_dir(&args.dir);
    let (name, module) = match &args.module {
        Some(module) => (super::test_run::plugin_name(module), module.clone()),
        None => {
            let project = Project::open(&dir)?;
            let module = project.module();
            (project.manifest.name, module)
        }
    };
    let config: serde_json::Value = match &args.config {
        Some(json) => serde_json::from_str(json).context("--config is not JSON")?,
        None => {
            let file = dir.join(super::project::DEFAULT_TEST_FILE);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {} for the config", file.display()))?;
            serde_norway::from_str::<TestFile>(&text)?.config
        }
    };
    let figures = measure(&name, &module, &config, args.limits)?;
    if args.tsv {
        println!(
            "{}\t{:.1}\t{:.2}\t{:.0}\t{:.2}",
            figures.module_bytes,
            figures.compile.as_secs_f64() * 1e3,
            figures.instance_start.as_secs_f64() * 1e3,
            figures.instance_memory_bytes as f64 / 1024.0,
            figures.request_hook.as_secs_f64() * 1e6,
        );
    } else {
        println!("{}", module.display());
        println!(
            "  module size          {:>10.1} KB",
            figures.module_bytes as f64 / 1e3
        );
        println!(
            "  compile (Cranelift)  {:>10.1} ms",
            figures.compile.as_secs_f64() * 1e3
        );
        println!(
            "  instance start       {:>10.2} ms",
            figures.instance_start.as_secs_f64() * 1e3
        );
        println!(
            "  memory per instance  {:>10.0} KB",
            figures.instance_memory_bytes as f64 / 1024.0
        );
        println!(
            "  on-request hook      {:>10.2} µs",
            figures.request_hook.as_secs_f64() * 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn measure(
    name: &str,
    module: &std::path::Path,
    config: &serde_json::Value,
    limits: Limits,
) -> anyhow::Result<Figures> {
    let module_bytes = std::fs::metadata(module)
        .with_context(|| format!("no component at {}", module.display()))?
        .len();
    // No disk cache: the first load compiles.
    let runtime = Runtime::new()?;
    let spec = chain_spec(name, module, config, limits);
    let started = Instant::now();
    let first = runtime.load(&spec, std::path::Path::new("."))?;
    let compile = started.elapsed();

    // Each later load compiles nothing (by sha256) and makes one instance.
    let rss_before = rss_bytes()?;
    let started = Instant::now();
    let chains = (0..INSTANCES)
        .map(|_| runtime.load(&spec, std::path::Path::new(".")))
        .collect::<Result<Vec<_>, _>>()?;
    let instance_start = started.elapsed() / INSTANCES as u32;
    let instance_memory_bytes = rss_bytes()?.saturating_sub(rss_before) / INSTANCES as u64;
    drop(chains);

    let request_hook =
        time_request_hook(&first)?.saturating_sub(time_request_hook(&runtime.empty_chain())?);
    Ok(Figures {
        module_bytes,
        compile: compile.saturating_sub(instance_start),
        instance_start,
        instance_memory_bytes,
        request_hook,
    })
}

/// One `on_request` call, less nothing: the view is made anew each call, as
/// in the proxy; the empty chain's time is subtracted by the caller.
fn time_request_hook(chain: &PluginChain) -> anyhow::Result<Duration> {
    let request = TestRequest::default();
    let mut calls = 0;
    let mut call = || -> anyhow::Result<()> {
        calls += 1;
        let (_, outcome) = chain.on_request(request_view("bench", &request)?);
        if let RequestOutcome::Fail(failure) = outcome {
            bail!("call {calls} of the request hook failed: {failure}");
        }
        black_box(outcome);
        Ok(())
    };
    for _ in 0..CALLS {
        call()?;
    }
    let started = Instant::now();
    for _ in 0..CALLS {
        call()?;
    }
    Ok(started.elapsed() / CALLS)
}

fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .context("no VmRSS in /proc/self/status")?;
    Ok(kb * 1024)
}
