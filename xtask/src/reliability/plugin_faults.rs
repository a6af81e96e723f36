//! Plugins that misbehave under load: one that traps, one that spins until
//! its time limit, one that grows its memory until its limit, each running
//! on the proxy's outbound requests (a few a second) while 1,000 req/s of
//! ordinary inbound requests go through authz and metrics on the same
//! worker. Their p99 before and during, and the proxy still up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::load::{Background, describe, pause, rss_kb};
use super::report::Row;
use super::{Setup, chain_file};
use crate::harness::processes::Processes;
use crate::harness::weft::{AUTHORITY, Listeners, Proxy, start_app};
use crate::harness::{http_status, tail};

const RATE: u32 = 1_000;
const SECONDS: u64 = 10;
/// Requests a second that reach the misbehaving plugin.
const BAD_EVERY: Duration = Duration::from_millis(200);
const BASE: [&str; 2] = ["authz", "metrics"];
/// A chain file change is picked up within a second; give it more.
const RELOAD_LIMIT: Duration = Duration::from_secs(15);

pub fn run(setup: &Setup) -> anyhow::Result<Vec<Row>> {
    let mut processes = Processes::default();
    let app = start_app(&mut processes, &setup.bin)?;
    let chain = setup.scratch.join("plugin-faults.json");
    chain_file(setup, &chain, &BASE, app.addr)?;
    let log = setup.scratch.join("plugin-faults.log");
    let proxy = Proxy {
        bin: &setup.bin,
        app: app.addr,
        chain: Some(&chain),
        log: &log,
    };
    let env = [("WEFT_LOG", std::ffi::OsStr::new("info"))];
    let proxy = proxy.start_with(&mut processes, Listeners::free()?, &env)?;

    let before = Background::start(proxy.inbound, AUTHORITY, RATE, SECONDS).finish()?;
    let mut rows = Vec::new();
    for (bad, what) in [
        ("trap", "a plugin that traps on every call"),
        ("spin", "a plugin that spins until its 50 ms time limit"),
        (
            "hog",
            "a plugin that grows its memory until its 16 MiB limit",
        ),
    ] {
        with_bad_plugin(setup, &chain, &log, app.addr, bad)?;
        let rss_before = rss_kb(proxy.pid);
        let bad_load = BadRequests::start(proxy.outbound, app.addr);
        let during = Background::start(proxy.inbound, AUTHORITY, RATE, SECONDS).finish()?;
        let (bad_sent, bad_failed) = bad_load.finish();
        let rss_after = rss_kb(proxy.pid);
        let alive = processes.ensure_running().is_ok()
            && http_status(proxy.inbound, AUTHORITY, "/").is_ok_and(|s| s == 200);
        rows.push(Row {
            area: "faults under load",
            what: what.to_string(),
            load: format!(
                "{RATE} req/s inbound through authz and metrics, {SECONDS} s; {bad_sent} outbound requests through the plugin (5 a second)"
            ),
            result: format!(
                "before: {}; during: {}; p99 {:+.2} ms; {bad_failed} of the plugin's requests refused (fail-closed); RSS {:.1} → {:.1} MB; proxy {}",
                describe(&before),
                describe(&during),
                during.p99_ms - before.p99_ms,
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0,
                if alive { "alive and serving" } else { "**down**" },
            ),
            target: "others' p99 within 1 ms of before, proxy alive",
            met: alive && during.errors == 0 && during.p99_ms - before.p99_ms <= 1.0,
        });
    }
    Ok(rows)
}

/// Rewrites the chain to the base plus `bad` on outbound requests only, and
/// waits until the proxy has loaded it.
fn with_bad_plugin(
    setup: &Setup,
    chain: &Path,
    log: &Path,
    app: SocketAddr,
    bad: &str,
) -> anyhow::Result<()> {
    let loaded_before = loads(log);
    chain_file(setup, chain, &BASE, app)?;
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(chain)?)?;
    let plugins = spec["plugins"].as_array_mut().context("a plugins list")?;
    plugins.push(json!({
        "name": bad,
        "module": setup.components.join(format!("{bad}.wasm")),
        "directions": ["outbound"],
    }));
    let tmp = chain.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&spec)?)?;
    std::fs::rename(&tmp, chain)?;
    let deadline = std::time::Instant::now() + RELOAD_LIMIT;
    while loads(log) == loaded_before {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the proxy did not load the chain with {bad} within {RELOAD_LIMIT:?}:\n{}",
            tail(log)
        );
        pause(0.1)?;
    }
    Ok(())
}

/// Chains the proxy has loaded, by its log.
pub fn loads(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("plugin chain loaded")
        .count()
}

/// Outbound requests to the app, each one through the misbehaving plugin.
struct BadRequests {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl BadRequests {
    fn start(outbound: SocketAddr, app: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (stopped, counted, refused) = (stop.clone(), sent.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                counted.fetch_add(1, Ordering::Relaxed);
                if !http_status(outbound, &app.to_string(), "/").is_ok_and(|s| s == 200) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(BAD_EVERY);
            }
        });
        Self {
            stop,
            sent,
            failed,
            thread,
        }
    }

    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
