//! `cargo xtask demo`: the whole mesh data path on one machine, without
//! Kubernetes or iptables. weft-proxy sits between two demo services while
//! load generators send steady traffic through both of its listeners:
//!
//! ```text
//! load-inbound  ──▶ :4143 inbound  ──▶ app     (:8080)
//! load-outbound ──▶ :4140 outbound ──▶ backend (:8081, picked by Host)
//! ```

mod check;
mod http_get;
mod services;
mod stop_signal;

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

const APP: SocketAddr = loopback(8080);
const BACKEND: SocketAddr = loopback(8081);
const INBOUND: SocketAddr = loopback(4143);
const OUTBOUND: SocketAddr = loopback(4140);
const ADMIN: SocketAddr = loopback(4191);

const PORTS: [(SocketAddr, &str); 5] = [
    (APP, "the app demo service"),
    (BACKEND, "the backend demo service"),
    (INBOUND, "weft-proxy's inbound listener"),
    (OUTBOUND, "weft-proxy's outbound listener"),
    (ADMIN, "weft-proxy's admin server"),
];

const LOADS: [&str; 2] = ["load-inbound", "load-outbound"];

/// A demo service that cannot bind loopback in this long is broken.
const SERVICE_START_LIMIT: Duration = Duration::from_secs(10);
const PROXY_READY_LIMIT: Duration = Duration::from_secs(20);
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
        .args(["build", "-p", "weft-proxy", "-p", "weft-demo", "--bins"])
        .status()
        .context("running cargo build")?;
    ensure!(
        status.success(),
        "building weft-proxy and weft-demo failed ({status})"
    );
    let bin = workspace::debug_dir();
    for name in ["weft-proxy", "weft-demo"] {
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
    for (addr, role) in PORTS {
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
    let demo = bin.join("weft-demo");
    for (name, addr) in [("app", APP), ("backend", BACKEND)] {
        let mut command = Command::new(&demo);
        command.args(["http", "--listen", &addr.to_string(), "--name", name]);
        services.start(name, command, Stderr::Inherit)?;
        services.wait_for_line(name, SERVICE_START_LIMIT)?;
    }

    let mut proxy = Command::new(bin.join("weft-proxy"));
    proxy
        .env("WEFT_PROXY_INBOUND_APP_ADDR", APP.to_string())
        .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", INBOUND.to_string())
        .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", OUTBOUND.to_string())
        .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", ADMIN.to_string());
    services.start("weft-proxy", proxy, Stderr::Tee)?;
    wait_until_proxy_ready(services)?;

    let [load_inbound, load_outbound] = LOADS;
    let mut inbound = Command::new(&demo);
    inbound.args([
        "load",
        "--target",
        &format!("http://{INBOUND}/"),
        "--rps",
        "20",
    ]);
    services.start(load_inbound, inbound, Stderr::Inherit)?;
    let mut outbound = Command::new(&demo);
    outbound.args([
        "load",
        "--target",
        &format!("http://{OUTBOUND}/"),
        "--host",
        &BACKEND.to_string(),
        "--rps",
        "20",
    ]);
    services.start(load_outbound, outbound, Stderr::Inherit)
}

fn wait_until_proxy_ready(services: &mut Services) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + PROXY_READY_LIMIT;
    loop {
        let ready = http_get::get(ADMIN, &ADMIN.to_string(), "/ready");
        if ready.is_ok_and(|reply| reply.status == 200) {
            return Ok(());
        }
        services.ensure_all_running()?;
        if std::time::Instant::now() > deadline {
            bail!(
                "weft-proxy was not ready within {PROXY_READY_LIMIT:?}: GET http://{ADMIN}/ready never answered 200\n\
                 weft-proxy's stderr:\n{}",
                services.stderr_of("weft-proxy")
            );
        }
        services.idle(READY_POLL)?;
    }
}

fn print_instructions() {
    let tries = [
        (format!("curl http://{INBOUND}/"), "inbound -> app"),
        (
            format!("curl -H 'Host: {BACKEND}' http://{OUTBOUND}/"),
            "outbound -> backend",
        ),
        (
            format!("curl http://{ADMIN}/metrics"),
            "the proxy's metrics",
        ),
    ];
    println!("\nThe Weft demo is running (weft-proxy logs on stderr, load reports below).\n");
    for (command, what) in tries {
        println!("  {command:<53} # {what}");
    }
    println!("\nCtrl-C stops everything.\n");
}
