//! Weft's side of a benchmark: release builds of weft-proxy and the demo
//! app, the shipped plugins, and starting both processes pinned.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use serde_json::json;

use super::processes::{Processes, pinned};
use super::{CLIENT_CPU, PROXY_CPU, free_ports, loopback, wait_for_200};
use crate::workspace;

/// The authority the load sends and the split's route matches.
pub const AUTHORITY: &str = "app.example";
/// The four shipped plugins, in the order a chain of all of them runs.
pub const SHIPPED_PLUGINS: [&str; 4] = ["metrics", "retry", "authz", "split"];
const DEMO_START_LIMIT: Duration = Duration::from_secs(10);

/// Builds weft-proxy and weft-demo in release; returns their directory.
pub fn build_binaries() -> anyhow::Result<PathBuf> {
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

/// Builds the plugin components and returns where they are. A failed build
/// (a plugin being edited) is not fatal: measurements whose components are
/// missing are skipped, and the rest use what was built before.
pub fn build_plugins() -> PathBuf {
    workspace::build_plugins().unwrap_or_else(|error| {
        eprintln!("warning: {error:#}; using the components already built");
        workspace::root().join("plugins/target/wasm32-wasip2/release")
    })
}

pub fn missing_component(components: &Path, plugins: &[&str]) -> Option<PathBuf> {
    plugins
        .iter()
        .map(|name| components.join(format!("{name}.wasm")))
        .find(|module| !module.is_file())
}

/// The demo app the proxies forward to, started by [`start_app`].
pub struct App {
    pub addr: SocketAddr,
    pub pid: u32,
}

/// Starts `weft-demo http` on a port the kernel picks, on the client CPU.
pub fn start_app(processes: &mut Processes, bin: &Path) -> anyhow::Result<App> {
    start_instance(processes, bin, "app", 0)
}

/// The same, answering as `name` (its `x-demo-name`), each answer
/// `delay_ms` late: one of several instances behind a balancer, or a slow
/// one among them.
pub fn start_instance(
    processes: &mut Processes,
    bin: &Path,
    name: &str,
    delay_ms: u64,
) -> anyhow::Result<App> {
    let mut command = pinned(CLIENT_CPU, bin.join("weft-demo"));
    command.args(["http", "--listen", "127.0.0.1:0", "--name", name]);
    if delay_ms > 0 {
        command.args(["--delay-ms", &delay_ms.to_string()]);
    }
    command.stdout(Stdio::piped());
    let child = processes.spawn("weft-demo", &mut command)?;
    let pid = child.id();
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
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|addr| addr.trim().parse().ok())
        .with_context(|| format!("weft-demo printed {line:?}, not `listening on ADDR`"))?;
    Ok(App { addr, pid })
}

/// One weft-proxy to start: its binaries, the app behind it, its plugin
/// chain file (none: no plugins at all) and where it logs.
pub struct Proxy<'a> {
    pub bin: &'a Path,
    pub app: SocketAddr,
    pub chain: Option<&'a Path>,
    pub log: &'a Path,
}

/// A started weft-proxy: its pid and its listeners.
pub struct RunningProxy {
    pub pid: u32,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
}

/// Where a weft-proxy listens.
#[derive(Clone, Copy)]
pub struct Listeners {
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
}

impl Listeners {
    /// Three loopback ports the kernel has just handed out.
    pub fn free() -> anyhow::Result<Self> {
        let [inbound, outbound, admin] = free_ports()?.map(loopback);
        Ok(Self {
            inbound,
            outbound,
            admin,
        })
    }
}

impl Proxy<'_> {
    /// Starts weft-proxy on the proxy CPU, forwarding inbound traffic to
    /// the app, and waits until it is ready.
    pub fn start(&self, processes: &mut Processes) -> anyhow::Result<RunningProxy> {
        self.start_with(processes, Listeners::free()?, &[])
    }

    /// The same on `listeners`, with more settings (`WEFT_PROXY_*`): ready
    /// then also means certified and holding its chain, when those settings
    /// ask for an identity and a controller.
    pub fn start_with(
        &self,
        processes: &mut Processes,
        listeners: Listeners,
        env: &[(&str, &OsStr)],
    ) -> anyhow::Result<RunningProxy> {
        let Listeners {
            inbound,
            outbound,
            admin,
        } = listeners;
        let log =
            File::create(self.log).with_context(|| format!("creating {}", self.log.display()))?;
        let mut command = pinned(PROXY_CPU, self.bin.join("weft-proxy"));
        command
            .env("WEFT_PROXY_INBOUND_APP_ADDR", self.app.to_string())
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", inbound.to_string())
            .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", outbound.to_string())
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", admin.to_string())
            .env_remove("WEFT_PROXY_PLUGINS_CONFIG")
            .env("WEFT_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(chain) = self.chain {
            command.env("WEFT_PROXY_PLUGINS_CONFIG", chain);
        }
        let pid = processes.spawn("weft-proxy", &mut command)?.id();
        wait_for_200(processes, admin, &admin.to_string(), "/ready").map_err(|error| {
            // The cause first: reports quote the first line.
            anyhow!("{error:#}\nweft-proxy's log:\n{}", super::tail(self.log))
        })?;
        Ok(RunningProxy {
            pid,
            inbound,
            outbound,
            admin,
        })
    }
}

/// Writes a chain file running `plugins`, in order, from `components`.
pub fn write_chain_file(
    path: &Path,
    components: &Path,
    plugins: &[&str],
    app: SocketAddr,
) -> anyhow::Result<()> {
    let plugins: Vec<serde_json::Value> = plugins
        .iter()
        .map(|name| {
            json!({
                "name": name,
                "module": components.join(format!("{name}.wasm")),
                "config": plugin_config(name, app),
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({ "plugins": plugins }))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
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

/// At `WEFT_LOG=warn` a quiet proxy logs nothing: anything is news.
pub fn warn_if_logged(log: &Path) {
    let text = super::tail(log);
    if !text.is_empty() {
        eprintln!("warning: weft-proxy logged during the run:\n{text}");
    }
}
