//! `cargo xtask reliability`: what the proxy survives, measured on release
//! builds and written to `docs/reliability.md`: idle and slowloris
//! connections by the thousand, faults under a fixed-rate load (the
//! controller killed, a proxy restarted without it, plugins that trap, spin
//! or hoard memory, a bad module pushed), and a soak with the plugin chain
//! swapped every 10 s. Every part is bounded in time and count.
//!
//! The proxy under test runs alone on CPU 1, the load and the apps on CPU 0,
//! as in `cargo xtask bench`.

mod connections;
mod controller_faults;
mod load;
mod plugin_faults;
mod report;
mod soak;

use std::path::{Path, PathBuf};

pub use load::{pause, rss_kb};

use anyhow::{Context, ensure};
use clap::Args;

use crate::harness::processes::{catch_stop_signals, pin_this_process};
use crate::harness::weft::{SHIPPED_PLUGINS, build_plugins, missing_component};
use crate::harness::{CLIENT_CPU, ensure_two_cpus};
use crate::workspace;
use report::Row;

/// Open files each process keeps for other uses than the connections
/// under test.
const OPEN_FILES_SPARE: u64 = 200;

#[derive(Args)]
pub struct ReliabilityArgs {
    /// How long the soak runs at 2,000 req/s.
    #[arg(long, default_value_t = 600)]
    soak_seconds: u64,
    /// Idle keep-alive connections held at once.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Slowloris connections at once.
    #[arg(long, default_value_t = 1_000)]
    slowloris_connections: usize,
    /// Print the figures without writing docs/reliability.md.
    #[arg(long)]
    no_write: bool,
    /// Run only the plugin faults under load (trap, spin, hog) and print
    /// their rows; docs/reliability.md is left alone.
    #[arg(long)]
    plugin_faults_only: bool,
}

/// The binaries and plugins every part uses.
pub struct Setup {
    pub bin: PathBuf,
    pub components: PathBuf,
    pub scratch: PathBuf,
}

pub fn run(args: &ReliabilityArgs) -> anyhow::Result<()> {
    ensure_two_cpus()?;
    catch_stop_signals()?;
    let open_files = raise_open_files_limit()?;
    let idle_connections = idle_connections_allowed(args.idle_connections, open_files);
    if idle_connections < args.idle_connections {
        eprintln!(
            "holding {idle_connections} idle connections, not {}: open files are limited to {open_files} here",
            args.idle_connections
        );
    }
    let bin = build_binaries()?;
    let components = build_plugins();
    let needed = [&SHIPPED_PLUGINS[..], &["trap", "spin", "hog"]].concat();
    if let Some(missing) = missing_component(&components, &needed) {
        anyhow::bail!("{} was not built", missing.display());
    }
    pin_this_process(CLIENT_CPU)?;
    let scratch = crate::harness::Scratch::new("weft-reliability")?;
    let setup = Setup {
        bin,
        components,
        scratch: scratch.dir.clone(),
    };
    let command = command_line(args);
    let mut rows: Vec<Row> = Vec::new();
    if args.plugin_faults_only {
        eprintln!("plugin faults under load");
        rows.extend(or_failed("plugin faults", plugin_faults::run(&setup)));
        println!("{}", report::render(&rows, &command));
        return Ok(());
    }

    for plugins in [&[][..], &SHIPPED_PLUGINS[..]] {
        eprintln!("idle connections: {idle_connections} (plugins: {plugins:?})");
        let idle = connections::idle(&setup, idle_connections, plugins).map(|mut row| {
            if idle_connections < args.idle_connections {
                row.load += &format!(
                    " ({} asked; open files are limited to {open_files} here)",
                    args.idle_connections
                );
            }
            vec![row]
        });
        rows.extend(or_failed("idle connections", idle));
    }
    eprintln!("slowloris: {} connections", args.slowloris_connections);
    let slowloris = connections::slowloris(&setup, args.slowloris_connections).map(|r| vec![r]);
    rows.extend(or_failed("slowloris", slowloris));
    eprintln!("plugin faults under load");
    rows.extend(or_failed("plugin faults", plugin_faults::run(&setup)));
    eprintln!("controller faults under load");
    rows.extend(or_failed(
        "controller faults",
        controller_faults::run(&setup),
    ));
    eprintln!("soak: {} s", args.soak_seconds);
    let soak = soak::run(&setup, args.soak_seconds).map(|r| vec![r]);
    rows.extend(or_failed("soak", soak));

    let text = report::render(&rows, &command);
    println!("{text}");
    if !args.no_write {
        let doc = workspace::root().join("docs/reliability.md");
        report::write(&doc, &text)?;
        eprintln!("wrote {}", doc.display());
    }
    Ok(())
}

/// A part's rows, or one row saying how it failed: the other parts still
/// run, and the table shows the failure. Ctrl-C ends the whole run.
fn or_failed(part: &'static str, rows: anyhow::Result<Vec<Row>>) -> Vec<Row> {
    match rows {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!("{part} failed: {error:#}");
            let cause = format!("{error:#}");
            vec![Row {
                area: "failed",
                what: part.to_string(),
                load: String::new(),
                result: format!(
                    "**could not be measured**: {}",
                    cause.lines().next().unwrap_or("")
                ),
                target: "",
                met: false,
            }]
        }
    }
}

fn command_line(args: &ReliabilityArgs) -> String {
    let mut command = String::from("cargo xtask reliability");
    if args.soak_seconds != 600 {
        command += &format!(" --soak-seconds {}", args.soak_seconds);
    }
    if args.idle_connections != 10_000 {
        command += &format!(" --idle-connections {}", args.idle_connections);
    }
    if args.slowloris_connections != 1_000 {
        command += &format!(" --slowloris-connections {}", args.slowloris_connections);
    }
    if args.plugin_faults_only {
        command += " --plugin-faults-only";
    }
    command
}

/// Release builds of weft-proxy, weft-demo and weft-controller (with `weft`).
fn build_binaries() -> anyhow::Result<PathBuf> {
    let status = workspace::cargo()
        .args(["build", "--release", "--bins"])
        .args([
            "-p",
            "weft-proxy",
            "-p",
            "weft-demo",
            "-p",
            "weft-controller",
        ])
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "the release build failed ({status})");
    let bin = workspace::debug_dir().with_file_name("release");
    for name in ["weft-proxy", "weft-demo", "weft-controller", "weft"] {
        ensure!(bin.join(name).is_file(), "no {}", bin.join(name).display());
    }
    Ok(bin)
}

/// Raises this process's open-file limit to its hard limit with prlimit
/// (children inherit it), and returns it.
pub fn raise_open_files_limit() -> anyhow::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let hard = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u64>().ok())
        .context("no open-file limit in /proc/self/limits")?;
    let mut prlimit = std::process::Command::new("prlimit");
    prlimit
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"));
    crate::harness::processes::output_within(&mut prlimit, std::time::Duration::from_secs(10))
        .context("raising the open-file limit")?;
    Ok(hard)
}

/// Idle connections the open-file limit allows: each kept-alive client
/// connection is one socket in the proxy (upstream connections are pooled,
/// not held by idle clients), with some to spare.
fn idle_connections_allowed(wanted: usize, open_files: u64) -> usize {
    wanted.min(open_files.saturating_sub(OPEN_FILES_SPARE) as usize)
}

/// A chain file of `plugins` (shipped or test plugins) at `path`.
pub fn chain_file(
    setup: &Setup,
    path: &Path,
    plugins: &[&str],
    app: std::net::SocketAddr,
) -> anyhow::Result<()> {
    crate::harness::weft::write_chain_file(path, &setup.components, plugins, app)
}
