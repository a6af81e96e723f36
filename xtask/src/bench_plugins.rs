//! `cargo xtask bench-plugins`: what the plugin runtime costs. First the
//! in-process hook bench (`host/plugins/benches/hooks.rs`), then real
//! requests through release builds of weft-proxy in front of a demo app,
//! once per plugin chain, reported as one Markdown table.
//!
//! The proxy runs alone on CPU 1; wrk and the app share CPU 0, the pinning
//! that gave stable figures on two cores. CPU time per request comes from
//! the proxy's own utime and stime, so it stays comparable when the client
//! side is the bottleneck.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use serde_json::json;

use crate::test::{apt_get, on_path};
use crate::workspace;

/// Tools the benchmark runs, and the Debian package each comes in.
const TOOLS: [(&str, &str); 3] = [
    ("wrk", "wrk"),
    ("taskset", "util-linux"),
    ("getconf", "libc-bin"),
];

const PROXY_CPU: &str = "1";
const CLIENT_CPU: &str = "0";
const CONNECTIONS: &str = "32";
/// The authority split's route matches.
const AUTHORITY: &str = "app.example";

const QUICK_SECONDS: u64 = 3;
/// Lets connections, pools and lazily built state settle before measuring.
const WARM_UP_SECONDS: u64 = 1;
const DEMO_START_LIMIT: Duration = Duration::from_secs(10);
/// Includes compiling the plugins when the disk cache is cold.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// wrk still running this long past its duration is hung.
const WRK_GRACE: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

/// The chains measured: a label and the plugins, in order.
const CHAINS: [(&str, &[&str]); 3] = [
    ("none (empty chain)", &[]),
    ("metrics", &["metrics"]),
    (
        "metrics, retry, authz, split",
        &["metrics", "retry", "authz", "split"],
    ),
];

/// Set by SIGINT/SIGTERM; the wait loops notice it and return an error,
/// so the process guards run and stop every child.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Args)]
pub struct BenchPluginsArgs {
    /// How long wrk loads each chain, in seconds (`10` or `10s`).
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
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
        QUICK_SECONDS
    } else {
        args.duration
    };
    ensure_tools()?;
    ensure_two_cpus()?;
    catch_stop_signals()?;
    let components = build_plugins();
    let bin = build_binaries()?;
    run_hook_bench()?;

    let clock_ticks = clock_ticks_per_second()?;
    let scratch = Scratch::new()?;
    let mut rows = Vec::new();
    for (index, (label, plugins)) in CHAINS.into_iter().enumerate() {
        if let Some(missing) = missing_component(&components, plugins) {
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
    Ok(())
}

fn parse_seconds(text: &str) -> Result<u64, String> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    match digits.parse() {
        Ok(0) | Err(_) => Err(format!(
            "`{text}` is not a whole number of seconds (e.g. 10s)"
        )),
        Ok(seconds) => Ok(seconds),
    }
}

fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(tool, _)| *tool)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = TOOLS.iter().map(|(_, package)| *package).collect();
    ensure!(
        nix::unistd::geteuid().is_root() && on_path("apt-get"),
        "missing {}: install {} (apt-get install {}), or run this as root to have it installed",
        missing.join(", "),
        packages.join(" "),
        packages.join(" ")
    );
    println!(
        "installing {} with apt-get (missing: {})",
        packages.join(" "),
        missing.join(", ")
    );
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(packages);
    apt_get(&install)
}

fn ensure_two_cpus() -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        cpus >= 2,
        "the benchmark pins the proxy to CPU {PROXY_CPU} and the load to CPU {CLIENT_CPU}: \
         it needs 2 CPUs, this process may use {cpus}"
    );
    Ok(())
}

fn catch_stop_signals() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal runtime")?;
    // Installed before returning, so no signal after this is lost.
    let (mut interrupt, mut terminate) = {
        let _runtime = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    std::thread::Builder::new()
        .name("stop-signal".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
            INTERRUPTED.store(true, Ordering::Relaxed);
        })
        .context("starting the signal thread")?;
    Ok(())
}

fn ensure_not_interrupted() -> anyhow::Result<()> {
    ensure!(!INTERRUPTED.load(Ordering::Relaxed), "interrupted");
    Ok(())
}

/// Builds the plugin components and returns where they are. A failed build
/// (a plugin being edited) is not fatal: chains whose components are
/// missing are skipped, and the rest use what was built before.
fn build_plugins() -> PathBuf {
    let plugins = workspace::root().join("plugins");
    let rustup = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    if !rustup.is_ok_and(|status| status.success()) {
        eprintln!("warning: `rustup target add wasm32-wasip2` failed");
    }
    let built = workspace::cargo()
        .args(["build", "--release"])
        .current_dir(&plugins)
        // plugins/ is its own workspace with its own target directory.
        .env_remove("CARGO_TARGET_DIR")
        .status();
    if !built.is_ok_and(|status| status.success()) {
        eprintln!("warning: building plugins/ failed; using the components already built");
    }
    plugins.join("target/wasm32-wasip2/release")
}

fn build_binaries() -> anyhow::Result<PathBuf> {
    let status = workspace::cargo()
        .args(["build", "--release", "-p", "weft-proxy", "-p", "weft-demo"])
        .args(["--bins"])
        .status()
        .context("running cargo build")?;
    ensure!(
        status.success(),
        "building weft-proxy and weft-demo failed ({status})"
    );
    // The release directory sits beside the debug one.
    let bin = workspace::debug_dir().with_file_name("release");
    for name in ["weft-proxy", "weft-demo"] {
        ensure!(
            bin.join(name).is_file(),
            "cargo build did not produce {}",
            bin.join(name).display()
        );
    }
    Ok(bin)
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

/// `program` run by taskset on one CPU.
fn pinned(cpu: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-c", cpu]).arg(program);
    command
}

fn clock_ticks_per_second() -> anyhow::Result<f64> {
    let output = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("getconf CLK_TCK printed {text:?}"))
}

fn missing_component(components: &Path, plugins: &[&str]) -> Option<PathBuf> {
    plugins
        .iter()
        .map(|name| components.join(format!("{name}.wasm")))
        .find(|module| !module.is_file())
}

/// Each plugin's configuration; split sends everything to the demo app,
/// under two weighted backends so it does its usual work.
fn plugin_config(name: &str, app: SocketAddr) -> serde_json::Value {
    match name {
        "retry" => json!({"routes": [{"name": "all", "retryOn": ["5xx"], "limit": 1}]}),
        "authz" => json!({
            "defaultPolicy": "all-unauthenticated",
            "rules": [{"name": "local", "clientCidrs": ["10.0.0.0/8"], "pathPrefixes": ["/"]}],
        }),
        "split" => json!({"routes": [{
            "name": "w",
            "authority": AUTHORITY,
            "backends": [
                {"backend": app.to_string(), "weight": 900},
                {"backend": app.to_string(), "weight": 100},
            ],
        }]}),
        _ => json!({}),
    }
}

/// A scratch directory for chain files and proxy logs, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("weft-bench-plugins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every process one measurement starts, killed when dropped, so an error
/// anywhere leaves nothing running.
#[derive(Default)]
struct Processes {
    running: Vec<(&'static str, Child)>,
}

impl Processes {
    fn spawn(&mut self, name: &'static str, command: &mut Command) -> anyhow::Result<&mut Child> {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.running.push((name, child));
        Ok(&mut self.running.last_mut().expect("just pushed").1)
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.running {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited unexpectedly ({status})");
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // Not reaped until `wait`, so the pid cannot have been reused.
        for (_, child) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The listener ports for one proxy, held bound together so the kernel
/// hands out three different ones.
struct Ports {
    inbound: u16,
    outbound: u16,
    admin: u16,
}

fn free_ports() -> anyhow::Result<Ports> {
    let bind = || TcpListener::bind("127.0.0.1:0").context("finding a free loopback port");
    let listeners = [bind()?, bind()?, bind()?];
    let [inbound, outbound, admin] = listeners.map(|l| l.local_addr().map_or(0, |a| a.port()));
    ensure!(
        inbound != 0 && outbound != 0 && admin != 0,
        "reading a bound port failed"
    );
    Ok(Ports {
        inbound,
        outbound,
        admin,
    })
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
        let app = self.start_app(&mut processes)?;
        let ports = free_ports()?;
        let log = self.scratch.join("weft-proxy.log");
        let pid = self.start_proxy(&mut processes, app, &ports, &log)?;
        let with_log = || format!("weft-proxy's log:\n{}", tail(&log));
        wait_until_ready(&mut processes, ports.admin).with_context(with_log)?;
        let inbound = SocketAddr::from(([127, 0, 0, 1], ports.inbound));
        let status = http_status(inbound, AUTHORITY, "/").context("a first request")?;
        ensure!(
            status == 200,
            "a first request through the proxy answered {status}, not 200; {}",
            with_log()
        );

        let rss_idle_kb = proc_status_kb(pid, "VmRSS")?;
        run_wrk(ports.inbound, WARM_UP_SECONDS)?;
        let before = cpu_ticks(pid)?;
        let wrk = run_wrk(ports.inbound, seconds)?;
        let after = cpu_ticks(pid)?;
        let rss_peak_kb = proc_status_kb(pid, "VmHWM")?;
        processes.ensure_running().with_context(with_log)?;
        warn_if_logged(&log);

        let requests = wrk.requests.max(1) as f64;
        let per_request = |ticks: u64| ticks as f64 / clock_ticks * 1e6 / requests;
        let cpu = CpuPerRequest {
            user_us: per_request(after.0.saturating_sub(before.0)),
            system_us: per_request(after.1.saturating_sub(before.1)),
        };
        Ok(Row {
            chain: self.label,
            wrk,
            cpu,
            rss_idle_kb,
            rss_peak_kb,
        })
    }

    /// Starts `weft-demo http` on a port the kernel picks, on the client CPU.
    fn start_app(&self, processes: &mut Processes) -> anyhow::Result<SocketAddr> {
        let mut command = pinned(CLIENT_CPU, self.bin.join("weft-demo"));
        command
            .args(["http", "--listen", "127.0.0.1:0", "--name", "app"])
            .stdout(Stdio::piped());
        let child = processes.spawn("weft-demo", &mut command)?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines, received) = mpsc::channel();
        // Keeps reading after the first line so the app never blocks on a
        // full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let line = received
            .recv_timeout(DEMO_START_LIMIT)
            .with_context(|| format!("weft-demo printed no address within {DEMO_START_LIMIT:?}"))?;
        line.strip_prefix("listening on ")
            .and_then(|addr| addr.trim().parse().ok())
            .with_context(|| format!("weft-demo printed {line:?}, not `listening on ADDR`"))
    }

    /// Starts weft-proxy on the proxy CPU with this chain; returns its pid.
    fn start_proxy(
        &self,
        processes: &mut Processes,
        app: SocketAddr,
        ports: &Ports,
        log: &Path,
    ) -> anyhow::Result<u32> {
        let chain_file = self.write_chain_file(app)?;
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = pinned(PROXY_CPU, self.bin.join("weft-proxy"));
        command
            .env("WEFT_PROXY_INBOUND_APP_ADDR", app.to_string())
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", loopback(ports.inbound))
            .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", loopback(ports.outbound))
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", loopback(ports.admin))
            .env("WEFT_PROXY_PLUGINS_CONFIG", chain_file)
            .env("WEFT_LOG", "warn")
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        // taskset execs the proxy: same pid.
        Ok(processes.spawn("weft-proxy", &mut command)?.id())
    }

    fn write_chain_file(&self, app: SocketAddr) -> anyhow::Result<PathBuf> {
        let plugins: Vec<serde_json::Value> = self
            .plugins
            .iter()
            .map(|name| {
                json!({
                    "name": name,
                    "module": self.components.join(format!("{name}.wasm")),
                    "config": plugin_config(name, app),
                })
            })
            .collect();
        let path = self.scratch.join("plugins.json");
        let text = serde_json::to_string_pretty(&json!({ "plugins": plugins }))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn loopback(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn wait_until_ready(processes: &mut Processes, admin: u16) -> anyhow::Result<()> {
    let admin = SocketAddr::from(([127, 0, 0, 1], admin));
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        if http_status(admin, &admin.to_string(), "/ready").is_ok_and(|status| status == 200) {
            return Ok(());
        }
        processes.ensure_running()?;
        ensure_not_interrupted()?;
        ensure!(
            Instant::now() < deadline,
            "weft-proxy was not ready within {READY_LIMIT:?}: GET http://{admin}/ready never answered 200"
        );
        std::thread::sleep(POLL * 2);
    }
}

/// The status of `GET path` on its own connection.
fn http_status(addr: SocketAddr, host: &str, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    String::from_utf8_lossy(&reply)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))
}

/// wrk on the client CPU against the inbound listener for `seconds`.
fn run_wrk(inbound: u16, seconds: u64) -> anyhow::Result<WrkReport> {
    let mut command = pinned(CLIENT_CPU, "wrk");
    command
        .args(["-t1", "-c", CONNECTIONS, "--latency"])
        .arg(format!("-d{seconds}s"))
        .args(["-H", &format!("Host: {AUTHORITY}")])
        .arg(format!("http://127.0.0.1:{inbound}/"));
    let limit = Duration::from_secs(seconds) + WRK_GRACE;
    let output = output_within(&mut command, limit)?;
    parse_wrk(&output).with_context(|| format!("cannot read wrk's report:\n{output}"))
}

/// Runs `command` to the end and returns its stdout, killing it past `limit`.
fn output_within(command: &mut Command, limit: Duration) -> anyhow::Result<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let waited = wait_within(&mut child, limit);
    if !matches!(waited, Ok(Some(_))) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = match waited {
        Ok(Some(status)) => status,
        Ok(None) => bail!(
            "{:?} did not finish within {limit:?}",
            command.get_program()
        ),
        Err(error) => return Err(error),
    };
    let text = reader.join().unwrap_or_default();
    ensure!(
        status.success(),
        "{:?} failed ({status}):\n{text}",
        command.get_program()
    );
    Ok(text)
}

fn wait_within(child: &mut Child, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        ensure_not_interrupted()?;
        std::thread::sleep(POLL);
    }
    Ok(None)
}

/// What we read from `wrk --latency`.
#[derive(Debug, PartialEq)]
struct WrkReport {
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Responses that were not 2xx or 3xx.
    non_2xx: u64,
    /// wrk's "Socket errors" line, when there is one.
    socket_errors: Option<String>,
}

fn parse_wrk(output: &str) -> Option<WrkReport> {
    let mut requests = None;
    let mut per_second = None;
    let (mut p50_ms, mut p99_ms) = (None, None);
    let mut non_2xx = 0;
    let mut socket_errors = None;
    for line in output.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("50%") {
            p50_ms = wrk_time_ms(value.trim());
        } else if let Some(value) = line.strip_prefix("99%") {
            p99_ms = wrk_time_ms(value.trim());
        } else if let Some(value) = line.strip_prefix("Requests/sec:") {
            per_second = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = value.trim().parse().ok()?;
        } else if let Some(value) = line.strip_prefix("Socket errors:") {
            socket_errors = Some(value.trim().to_string());
        } else if let Some((count, _)) = line.split_once(" requests in ") {
            requests = count.parse().ok();
        }
    }
    Some(WrkReport {
        requests: requests?,
        per_second: per_second?,
        p50_ms: p50_ms?,
        p99_ms: p99_ms?,
        non_2xx,
        socket_errors,
    })
}

/// A wrk duration (`480.00us`, `1.80ms`, `2.00s`) in milliseconds.
fn wrk_time_ms(text: &str) -> Option<f64> {
    let units = [
        ("us", 1e-3),
        ("ms", 1.0),
        ("s", 1e3),
        ("m", 60e3),
        ("h", 3600e3),
    ];
    units.into_iter().find_map(|(unit, ms)| {
        let number: f64 = text.strip_suffix(unit)?.parse().ok()?;
        Some(number * ms)
    })
}

/// utime and stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("cannot read {path}: {stat:?}"))
}

fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name may hold spaces and parentheses: count fields from
    // the last `)`. utime and stime are fields 14 and 15 of the whole line.
    let (_, fields) = stat.rsplit_once(')')?;
    let mut fields = fields.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmRSS`.
fn proc_status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// The end of a log, to quote in an error.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// At `WEFT_LOG=warn` a quiet proxy logs nothing: anything is news.
fn warn_if_logged(log: &Path) {
    let text = tail(log);
    if !text.is_empty() {
        eprintln!("warning: weft-proxy logged during the run:\n{text}");
    }
}

fn print_table(rows: &[Row], seconds: u64) {
    println!(
        "\nRequests through weft-proxy (release): wrk -t1 -c{CONNECTIONS} -d{seconds}s, \
         HTTP/1.1, Host: {AUTHORITY}; proxy on CPU {PROXY_CPU}, wrk and app on CPU {CLIENT_CPU}\n"
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

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "\
Running 3s test @ http://127.0.0.1:4143/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   532.14us  210.00us   9.30ms   91.00%
    Req/Sec    57.12k     2.00k   60.00k    80.00%
  Latency Distribution
     50%  480.00us
     75%  560.00us
     90%  700.00us
     99%    1.80ms
  171234 requests in 3.00s, 24.00MB read
  Non-2xx or 3xx responses: 5
Requests/sec:  57078.00
Transfer/sec:      8.00MB
";

    #[test]
    fn reads_a_wrk_report() {
        let report = parse_wrk(WRK).unwrap();
        assert_eq!(report.requests, 171_234);
        assert_eq!(report.per_second, 57_078.0);
        assert!((report.p50_ms - 0.48).abs() < 1e-9);
        assert!((report.p99_ms - 1.8).abs() < 1e-9);
        assert_eq!(report.non_2xx, 5);
        assert_eq!(report.socket_errors, None);
        assert!(parse_wrk("unable to connect to 127.0.0.1:1").is_none());
    }

    #[test]
    fn reads_wrk_durations() {
        assert_eq!(wrk_time_ms("2.00s"), Some(2000.0));
        assert_eq!(wrk_time_ms("1.50m"), Some(90_000.0));
        assert_eq!(wrk_time_ms("fast"), None);
    }

    #[test]
    fn reads_cpu_ticks_past_odd_command_names() {
        let stat = "4242 (weft (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 2 0";
        assert_eq!(parse_cpu_ticks(stat), Some((1234, 567)));
    }

    #[test]
    fn reads_durations_in_seconds() {
        assert_eq!(parse_seconds("10s"), Ok(10));
        assert_eq!(parse_seconds("3"), Ok(3));
        assert!(parse_seconds("0s").is_err());
        assert!(parse_seconds("1m").is_err());
    }
}
