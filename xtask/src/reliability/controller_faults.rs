//! Faults of the control plane under load, on a local mesh of one workload
//! (the demo's `app` behind its sidecar, which takes its chain — authz,
//! metrics, retry — from weft-controller over mTLS): the controller killed
//! for 30 s, the sidecar restarted while the controller is down, and a bad
//! module pushed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use super::Setup;
use super::load::{Background, describe, pause};
use super::report::Row;
use crate::harness::processes::{Processes, pinned};
use crate::harness::weft::start_app;
use crate::harness::{CLIENT_CPU, PROXY_CPU, free_ports, http_status, loopback, tail};
use crate::workspace;

const RATE: u32 = 1_000;
const CONTROLLER_DOWN: Duration = Duration::from_secs(30);
/// The controller checks (compiles) every module before it serves.
const START_LIMIT: Duration = Duration::from_secs(60);
const WORKLOAD: &str = "demo/app";
const IDENTITY: &str = "app.demo.serviceaccount.identity.weft-system.cluster.local";

pub fn run(setup: &Setup) -> anyhow::Result<Vec<Row>> {
    let mut processes = Processes::default();
    let app = start_app(&mut processes, &setup.bin)?;
    let mesh = Mesh::new(setup, app.addr)?;
    let mut controller = Owned::start(
        "weft-controller",
        mesh.controller_command(setup),
        &mesh.controller_log,
    )?;
    mesh.wait_for_token(&mut controller)?;
    let mut proxy = mesh.start_proxy(setup, Wait::Ready)?;
    let mut rows = Vec::new();

    // The controller killed for 30 s while 1,000 req/s flow.
    let seconds = CONTROLLER_DOWN.as_secs() + 10;
    let load = Background::start(mesh.inbound, "app", RATE, seconds);
    pause(5.0)?;
    controller.kill();
    pause(CONTROLLER_DOWN.as_secs_f64())?;
    controller = Owned::start(
        "weft-controller",
        mesh.controller_command(setup),
        &mesh.controller_log,
    )?;
    let load = load.finish()?;
    proxy.ensure_running()?;
    rows.push(Row {
        area: "faults under load",
        what: format!(
            "weft-controller killed (SIGKILL) for {} s, then restarted",
            CONTROLLER_DOWN.as_secs()
        ),
        load: format!("{RATE} req/s for {seconds} s through app's sidecar (authz, metrics, retry)"),
        result: describe(&load),
        target: "0 failed requests",
        met: load.errors == 0,
    });

    // The sidecar restarted while the controller is down: its saved chain.
    pause(2.0)?;
    controller.kill();
    proxy.kill();
    let restarted = Instant::now();
    // Without the controller it cannot renew its certificate, so it may
    // not call itself ready; what matters is what it serves.
    let mut proxy = mesh.start_proxy(setup, Wait::Serving)?;
    let serving_after = restarted.elapsed();
    let ready = http_status(mesh.admin, &mesh.admin.to_string(), "/ready").ok();
    let admin = http_status(mesh.inbound, "app", "/admin").ok();
    let root = http_status(mesh.inbound, "app", "/").ok();
    rows.push(Row {
        area: "faults under load",
        what: "app's sidecar restarted while weft-controller is down".to_string(),
        load: "GET /admin and GET / through it once ready".to_string(),
        result: format!(
            "answering after {:.1} s from its saved chain (/ready {}); /admin {}, / {}",
            serving_after.as_secs_f64(),
            status_text(ready),
            status_text(admin),
            status_text(root)
        ),
        target: "authz kept: 403 on /admin",
        met: admin == Some(403) && root == Some(200),
    });
    controller = Owned::start(
        "weft-controller",
        mesh.controller_command(setup),
        &mesh.controller_log,
    )?;
    pause(3.0)?;

    // A bad module pushed while 1,000 req/s flow.
    let load = Background::start(mesh.inbound, "app", RATE, 15);
    pause(3.0)?;
    mesh.push_bad_authz(setup)?;
    pause(5.0)?;
    let listing = weft_plugins(setup, mesh.api)?;
    let admin = http_status(mesh.inbound, "app", "/admin").ok();
    let load = load.finish()?;
    proxy.ensure_running()?;
    controller.ensure_running()?;
    let rejection = listing
        .lines()
        .filter(|line| line.contains("authz"))
        .collect::<Vec<_>>()
        .join(" / ");
    rows.push(Row {
        area: "faults under load",
        what: "a bad module pushed: authz's url pointed at a file that is not a component"
            .to_string(),
        load: format!("{RATE} req/s for 15 s through app's sidecar"),
        result: format!(
            "{}; `weft plugins`: `{}`; /admin {}",
            describe(&load),
            rejection.trim(),
            status_text(admin)
        ),
        target: "rejected with the cause, old chain serving, 0 failed",
        met: load.errors == 0 && admin == Some(403) && rejection.contains("reject"),
    });
    Ok(rows)
}

#[derive(Clone, Copy)]
enum Wait {
    Ready,
    Serving,
}

fn status_text(status: Option<u16>) -> String {
    status.map_or("no answer".to_string(), |s| s.to_string())
}

/// `weft plugins`' table; it exits non-zero when a plugin is rejected.
fn weft_plugins(setup: &Setup, api: SocketAddr) -> anyhow::Result<String> {
    let output = Command::new(setup.bin.join("weft"))
        .arg("plugins")
        .env("WEFT_CONTROLLER", format!("http://{api}"))
        .stdin(Stdio::null())
        .output()
        .context("running weft plugins")?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The demo's resources, with module urls made absolute, and where the
/// controller and the sidecar listen.
struct Mesh {
    dir: PathBuf,
    state: PathBuf,
    controller_log: PathBuf,
    proxy_log: PathBuf,
    api: SocketAddr,
    identity: SocketAddr,
    app: SocketAddr,
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
}

impl Mesh {
    fn new(setup: &Setup, app: SocketAddr) -> anyhow::Result<Self> {
        let dir = setup.scratch.join("mesh");
        std::fs::create_dir_all(&dir)?;
        let examples = workspace::root().join("controller/examples/mesh");
        let plugins = workspace::root().join("plugins");
        for entry in std::fs::read_dir(&examples)? {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)?
                .replace("../../../plugins/", &format!("{}/", plugins.display()));
            std::fs::write(dir.join(path.file_name().context("a file name")?), text)?;
        }
        let [api, identity, inbound, outbound, admin] = free_ports()?.map(loopback);
        Ok(Self {
            state: setup.scratch.join("controller-state"),
            controller_log: setup.scratch.join("controller.log"),
            proxy_log: setup.scratch.join("app-proxy.log"),
            dir,
            api,
            identity,
            app,
            inbound,
            outbound,
            admin,
        })
    }

    fn controller_command(&self, setup: &Setup) -> Command {
        let mut command = pinned(CLIENT_CPU, setup.bin.join("weft-controller"));
        command
            .env("WEFT_CONTROLLER_DIR", &self.dir)
            .env("WEFT_CONTROLLER_LISTEN_ADDR", self.api.to_string())
            .env(
                "WEFT_CONTROLLER_IDENTITY_LISTEN_ADDR",
                self.identity.to_string(),
            )
            .env("WEFT_CONTROLLER_STATE_DIR", &self.state);
        command
    }

    fn token(&self) -> PathBuf {
        self.state.join("tokens").join(WORKLOAD)
    }

    /// The controller writes the pod's token once its issuer is loaded.
    fn wait_for_token(&self, controller: &mut Owned) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_LIMIT;
        while !self.token().exists() {
            controller.ensure_running()?;
            ensure!(
                Instant::now() < deadline,
                "weft-controller wrote no token within {START_LIMIT:?}:\n{}",
                tail(&self.controller_log)
            );
            pause(0.1)?;
        }
        Ok(())
    }

    /// Starts app's sidecar and waits until it is ready, or answers on its
    /// inbound listener.
    fn start_proxy(&self, setup: &Setup, wait: Wait) -> anyhow::Result<Owned> {
        let mut command = pinned(PROXY_CPU, setup.bin.join("weft-proxy"));
        command
            .env("WEFT_PROXY_CONTROLLER_ADDR", format!("http://{}", self.api))
            .env("WEFT_PROXY_WORKLOAD", WORKLOAD)
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", self.inbound.to_string())
            .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", self.outbound.to_string())
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", self.admin.to_string())
            // Not the default 4190, which a running demo may hold.
            .env("WEFT_PROXY_TAP_LISTEN", "127.0.0.1:0")
            .env("WEFT_PROXY_INBOUND_APP_ADDR", self.app.to_string())
            .env(
                "WEFT_PROXY_PLUGIN_CACHE_DIR",
                setup.scratch.join("proxy-cache"),
            )
            .env("WEFT_PROXY_IDENTITY_LOCAL_NAME", IDENTITY)
            .env("WEFT_PROXY_IDENTITY_TOKEN_FILE", self.token())
            .env(
                "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
                self.state.join("identity/ca.crt"),
            )
            .env("WEFT_PROXY_IDENTITY_SVC_ADDR", self.identity.to_string())
            .env_remove("WEFT_PROXY_PLUGINS_CONFIG")
            .env("WEFT_LOG", "warn");
        let mut proxy = Owned::start("weft-proxy", command, &self.proxy_log)?;
        let deadline = Instant::now() + START_LIMIT;
        let up = || match wait {
            Wait::Ready => {
                http_status(self.admin, &self.admin.to_string(), "/ready").is_ok_and(|s| s == 200)
            }
            Wait::Serving => http_status(self.inbound, "app", "/").is_ok(),
        };
        while !up() {
            proxy.ensure_running()?;
            ensure!(
                Instant::now() < deadline,
                "app's sidecar was not ready within {START_LIMIT:?}:\n{}",
                tail(&self.proxy_log)
            );
            pause(0.1)?;
        }
        Ok(proxy)
    }

    /// Points authz's url at a file that is not a component.
    fn push_bad_authz(&self, setup: &Setup) -> anyhow::Result<()> {
        let bad = setup.scratch.join("not-a-component.wasm");
        std::fs::write(&bad, b"\0asm but not really a component")?;
        let plugins = self.dir.join("plugins.yaml");
        let text = std::fs::read_to_string(&plugins)?;
        let authz_url = text
            .lines()
            .find(|line| line.trim_start().starts_with("url:") && line.contains("authz.wasm"))
            .context("authz's url in plugins.yaml")?;
        let text = text.replace(authz_url, &format!("  url: {}", bad.display()));
        write_atomically(&plugins, &text)
    }
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A process this module stops and starts again itself; killed on drop.
struct Owned {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Owned {
    fn start(name: &'static str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name,
            child,
            log: log.to_path_buf(),
        })
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("{} exited ({status}):\n{}", self.name, tail(&self.log));
        }
        Ok(())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.kill();
    }
}
