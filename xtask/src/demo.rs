//! `cargo xtask demo`: a local mesh on one machine, without Kubernetes or
//! iptables. weft-controller serves `controller/examples/mesh/` (Namespaces,
//! Pods, Services, EndpointSlices and WasmPlugins as YAML); each demo
//! workload runs behind its own weft-proxy sidecar, which takes its plugin
//! chain from the controller; load generators send steady traffic through
//! the sidecars:
//!
//! ```text
//! load-inbound  ──▶ app's sidecar  :4143 ──▶ app (:8080)   authz, retry, metrics
//! load-outbound ──▶ load's sidecar :4340 ──split 900/100──▶ Service backend, balanced:
//!                                    │            backend's sidecar   :4243 ──▶ backend   (:8081)
//!                                    │            backend-1's sidecar :4443 ──▶ backend-1 (:8082)
//!                                    │            backend-2's sidecar :4543 ──▶ backend-2 (:8083)
//!                                    └──────────▶ Service app: app's sidecar :4143 ──▶ app
//! ```
//!
//! On loopback a sidecar's inbound listener stands for the pod address that
//! iptables would redirect to it. Editing a WasmPlugin in the example
//! directory changes the running mesh within a second.

mod check;
mod http_get;
mod services;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::Args;

use crate::workspace;
use services::{Services, Stderr};

const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

const CONTROLLER: SocketAddr = loopback(8090);
const IDENTITY: SocketAddr = loopback(8091);
/// The controller's stats API, where `weft stat` asks by default.
const STATS: SocketAddr = loopback(8085);
const APP: SocketAddr = loopback(8080);
/// Backend's replicas, one process each.
const BACKENDS: [(&str, SocketAddr); 3] = [
    ("backend", loopback(8081)),
    ("backend-1", loopback(8082)),
    ("backend-2", loopback(8083)),
];
/// What load-outbound asks for: the Service its sidecar balances.
const BACKEND_SERVICE: &str = "backend.demo.svc.cluster.local:8081";

/// One demo workload's sidecar: which pod it is, its service account (its
/// identity) and its three listeners.
struct Sidecar {
    name: &'static str,
    workload: &'static str,
    service_account: &'static str,
    app: Option<SocketAddr>,
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
    /// Its tap server (the pod's `weft-tap` port in `controller/examples/mesh`).
    tap: SocketAddr,
}

const APP_SIDECAR: Sidecar = Sidecar {
    name: "app-proxy",
    workload: "demo/app",
    service_account: "app",
    app: Some(APP),
    inbound: loopback(4143),
    outbound: loopback(4140),
    admin: loopback(4191),
    tap: loopback(4190),
};
const BACKEND_SIDECARS: [Sidecar; 3] = [
    Sidecar {
        name: "backend-proxy",
        workload: "demo/backend",
        service_account: "backend",
        app: Some(BACKENDS[0].1),
        inbound: loopback(4243),
        outbound: loopback(4240),
        admin: loopback(4291),
        tap: loopback(4290),
    },
    Sidecar {
        name: "backend-1-proxy",
        workload: "demo/backend-1",
        service_account: "backend",
        app: Some(BACKENDS[1].1),
        inbound: loopback(4443),
        outbound: loopback(4440),
        admin: loopback(4491),
        tap: loopback(4490),
    },
    Sidecar {
        name: "backend-2-proxy",
        workload: "demo/backend-2",
        service_account: "backend",
        app: Some(BACKENDS[2].1),
        inbound: loopback(4543),
        outbound: loopback(4540),
        admin: loopback(4591),
        tap: loopback(4590),
    },
];
const LOAD_SIDECAR: Sidecar = Sidecar {
    name: "load-proxy",
    workload: "demo/load",
    service_account: "load",
    app: None,
    inbound: loopback(4343),
    outbound: loopback(4340),
    admin: loopback(4391),
    tap: loopback(4390),
};
const SIDECARS: [&Sidecar; 5] = [
    &APP_SIDECAR,
    &BACKEND_SIDECARS[0],
    &BACKEND_SIDECARS[1],
    &BACKEND_SIDECARS[2],
    &LOAD_SIDECAR,
];

impl Sidecar {
    /// Its identity in the controller's default trust domain.
    fn identity(&self) -> String {
        let namespace = self.workload.split('/').next().expect("namespace/pod");
        format!(
            "{}.{namespace}.serviceaccount.identity.weft-system.cluster.local",
            self.service_account
        )
    }
}

/// Where the example resources are, relative to the workspace root.
const MESH_DIR: &str = "controller/examples/mesh";
/// The controller's state (its generated trust anchor and issuer, the
/// pods' tokens), kept across demo runs.
const STATE_DIR: &str = "target/demo/controller-state";

fn ports() -> Vec<(SocketAddr, String)> {
    let mut ports = vec![
        (CONTROLLER, "weft-controller".to_string()),
        (IDENTITY, "weft-controller's identity service".to_string()),
        (STATS, "weft-controller's stats API".to_string()),
        (APP, "the app demo service".to_string()),
    ];
    for (name, addr) in BACKENDS {
        ports.push((addr, format!("the {name} demo service")));
    }
    for sidecar in SIDECARS {
        for (addr, listener) in [
            (sidecar.inbound, "inbound listener"),
            (sidecar.outbound, "outbound listener"),
            (sidecar.admin, "admin server"),
            (sidecar.tap, "tap server"),
        ] {
            ports.push((addr, format!("{}'s {listener}", sidecar.name)));
        }
    }
    ports
}

const LOADS: [&str; 2] = ["load-inbound", "load-outbound"];

/// A demo service that cannot bind loopback in this long is broken.
const SERVICE_START_LIMIT: Duration = Duration::from_secs(10);
/// A sidecar is ready once it has its chain (compiled) and a certificate.
const PROXY_READY_LIMIT: Duration = Duration::from_secs(60);
/// The controller checks (compiles) every module before it serves.
const CONTROLLER_READY_LIMIT: Duration = Duration::from_secs(60);
const READY_POLL: Duration = Duration::from_millis(100);

#[derive(Args)]
pub struct DemoArgs {
    /// Verify that requests flow through both listeners and are counted,
    /// then stop everything (non-zero exit on any failure).
    #[arg(long)]
    check: bool,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let bin = build()?;
    workspace::build_plugins()?;
    ensure_ports_free()?;
    // From here on Ctrl-C and SIGTERM stop the services instead of killing
    // xtask and leaving them behind.
    let mut services = Services::new()?;
    start(&mut services, &bin)?;
    if args.check {
        check::run(&mut services)?;
        services.stop();
        return Ok(());
    }
    print_instructions();
    services.run_until_stopped()?;
    eprintln!("stopping the demo");
    Ok(())
}

fn build() -> anyhow::Result<PathBuf> {
    let status = workspace::cargo()
        .args([
            "build",
            "-p",
            "weft-proxy",
            "-p",
            "weft-demo",
            "-p",
            "weft-controller",
        ])
        .arg("--bins")
        .status()
        .context("running cargo build")?;
    ensure!(
        status.success(),
        "building weft-proxy, weft-demo and weft-controller failed ({status})"
    );
    let bin = workspace::debug_dir();
    for name in ["weft-proxy", "weft-demo", "weft-controller", "weft"] {
        ensure!(
            bin.join(name).is_file(),
            "cargo build did not produce {}",
            bin.join(name).display()
        );
    }
    Ok(bin)
}

/// Checked up front so a busy port is reported by name, not as one
/// service's bind error among the others' logs.
fn ensure_ports_free() -> anyhow::Result<()> {
    for (addr, role) in ports() {
        if let Err(error) = std::net::TcpListener::bind(addr) {
            bail!(
                "cannot use port {} for {role} on {addr}: {error}; stop whatever holds it (see `ss -ltnp 'sport = :{}'`) and try again",
                addr.port(),
                addr.port()
            );
        }
    }
    Ok(())
}

fn start(services: &mut Services, bin: &Path) -> anyhow::Result<()> {
    let state = workspace::root().join(STATE_DIR);
    let mut controller = Command::new(bin.join("weft-controller"));
    controller
        .env("WEFT_CONTROLLER_DIR", workspace::root().join(MESH_DIR))
        .env("WEFT_CONTROLLER_LISTEN_ADDR", CONTROLLER.to_string())
        .env("WEFT_CONTROLLER_IDENTITY_LISTEN_ADDR", IDENTITY.to_string())
        .env("WEFT_CONTROLLER_STATS_LISTEN_ADDR", STATS.to_string())
        .env("WEFT_CONTROLLER_STATE_DIR", &state);
    services.start("weft-controller", controller, Stderr::Tee)?;

    let demo = bin.join("weft-demo");
    for (name, addr) in [("app", APP)].into_iter().chain(BACKENDS) {
        let mut command = Command::new(&demo);
        command.args(["http", "--listen", &addr.to_string(), "--name", name]);
        services.start(name, command, Stderr::Inherit)?;
        services.wait_for_line(name, SERVICE_START_LIMIT)?;
    }

    for sidecar in SIDECARS {
        // The controller writes the pod's token once its issuer is loaded
        // (after the trust anchors), so the token is the readiness signal.
        let token = state.join("tokens").join(sidecar.workload);
        wait_for_file(services, &token, CONTROLLER_READY_LIMIT)?;
        let mut proxy = Command::new(bin.join("weft-proxy"));
        proxy
            .env("WEFT_PROXY_CONTROLLER_ADDR", format!("http://{CONTROLLER}"))
            .env("WEFT_PROXY_WORKLOAD", sidecar.workload)
            .env(
                "WEFT_PROXY_INBOUND_LISTEN_ADDR",
                sidecar.inbound.to_string(),
            )
            .env(
                "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
                sidecar.outbound.to_string(),
            )
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", sidecar.admin.to_string())
            .env("WEFT_PROXY_TAP_LISTEN", sidecar.tap.to_string())
            // Its identity: the token the controller writes for its pod,
            // checked by the controller's identity service.
            .env("WEFT_PROXY_IDENTITY_LOCAL_NAME", sidecar.identity())
            .env("WEFT_PROXY_IDENTITY_TOKEN_FILE", &token)
            .env(
                "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
                state.join("identity/ca.crt"),
            )
            .env("WEFT_PROXY_IDENTITY_SVC_ADDR", IDENTITY.to_string());
        if let Some(app) = sidecar.app {
            proxy.env("WEFT_PROXY_INBOUND_APP_ADDR", app.to_string());
        }
        services.start(sidecar.name, proxy, Stderr::Tee)?;
        wait_until_ready(services, sidecar)?;
    }

    let [load_inbound, load_outbound] = LOADS;
    let mut inbound = Command::new(&demo);
    inbound.args([
        "load",
        "--target",
        &format!("http://{}/", APP_SIDECAR.inbound),
        "--rps",
        "20",
    ]);
    services.start(load_inbound, inbound, Stderr::Inherit)?;
    let mut outbound = Command::new(&demo);
    outbound.args([
        "load",
        "--target",
        &format!("http://{}/", LOAD_SIDECAR.outbound),
        "--host",
        BACKEND_SERVICE,
        "--rps",
        "20",
    ]);
    services.start(load_outbound, outbound, Stderr::Inherit)
}

fn wait_for_file(services: &mut Services, path: &Path, limit: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while !path.exists() {
        services.ensure_all_running()?;
        if std::time::Instant::now() > deadline {
            bail!(
                "weft-controller did not write {} within {limit:?}; its stderr:\n{}",
                path.display(),
                services.stderr_of("weft-controller")
            );
        }
        services.idle(READY_POLL)?;
    }
    Ok(())
}

fn wait_until_ready(services: &mut Services, sidecar: &Sidecar) -> anyhow::Result<()> {
    let admin = sidecar.admin;
    let deadline = std::time::Instant::now() + PROXY_READY_LIMIT;
    loop {
        let ready = http_get::get(admin, &admin.to_string(), "/ready");
        if ready.is_ok_and(|reply| reply.status == 200) {
            return Ok(());
        }
        services.ensure_all_running()?;
        if std::time::Instant::now() > deadline {
            bail!(
                "{} was not ready within {PROXY_READY_LIMIT:?}: GET http://{admin}/ready never answered 200\n\
                 its stderr:\n{}",
                sidecar.name,
                services.stderr_of(sidecar.name)
            );
        }
        services.idle(READY_POLL)?;
    }
}

fn print_instructions() {
    let (app, load, backend) = (APP_SIDECAR, LOAD_SIDECAR, &BACKEND_SIDECARS[0]);
    let tries = [
        (
            format!("curl http://{}/", app.inbound),
            "through app's sidecar",
        ),
        (
            format!("curl -i http://{}/admin", app.inbound),
            "403: the authz plugin",
        ),
        (
            format!(
                "curl -H 'Host: {BACKEND_SERVICE}' http://{}/",
                load.outbound
            ),
            "split 9 in 10 to backend's replicas",
        ),
        (
            format!("curl http://{}/metrics", app.admin),
            "golden metrics from the metrics plugin",
        ),
        (
            format!("curl http://{}/metrics", load.admin),
            "the split's choices",
        ),
        (
            format!("curl http://{}/metrics", backend.admin),
            "backend's sidecar",
        ),
        (
            "target/debug/weft stat deploy -n demo".to_string(),
            "success rate, RPS and latency per workload",
        ),
        (
            "target/debug/weft stat pod -n demo -o wide".to_string(),
            "the same per pod, with bytes per second",
        ),
        (
            "target/debug/weft edges pod -n demo".to_string(),
            "who talks to whom, with their mTLS identities",
        ),
        (
            "target/debug/weft routes deploy/backend -n demo".to_string(),
            "per route: retries and latency",
        ),
        (
            "target/debug/weft tap deploy/backend -n demo".to_string(),
            "live requests to backend, as they happen",
        ),
        (
            "target/debug/weft top deploy/backend -n demo".to_string(),
            "the same, by path, refreshed every second",
        ),
        (
            "target/debug/weft dashboard --open".to_string(),
            "the dashboard (http://127.0.0.1:8085/): workloads, edges, live tap, plugins",
        ),
        (
            format!("target/debug/weft endpoints {BACKEND_SERVICE}"),
            "the Service's three endpoints",
        ),
        (
            "target/debug/weft workloads".to_string(),
            "which plugins each sidecar runs",
        ),
        (
            "target/debug/weft plugins".to_string(),
            "every WasmPlugin, and why one was rejected",
        ),
    ];
    println!(
        "\nThe Weft local mesh is running: weft-controller serves {MESH_DIR}/ on {CONTROLLER},"
    );
    println!(
        "five sidecars take their plugin chains from it (logs on stderr, load reports below).\n"
    );
    for (command, what) in tries {
        println!("  {command:<58} # {what}");
    }
    println!(
        "\nEdit a WasmPlugin in {MESH_DIR}/plugins.yaml (say, authz's pathPrefixes) and save:\n\
         every sidecar running it swaps the new chain in within a second, while serving.\n\
         \nCtrl-C stops everything.\n"
    );
}
