//! The soak: 2,000 req/s through a proxy whose plugin chain is swapped
//! every 10 s between all four shipped plugins and two of them, for as
//! long as asked. Nothing may fail, the proxy must not restart, and its
//! resident memory after the warm-up should stay flat.

use std::time::{Duration, Instant};

use super::load::{Background, describe, pause, rss_kb};
use super::plugin_faults::loads;
use super::report::Row;
use super::{Setup, chain_file};
use crate::harness::processes::Processes;
use crate::harness::weft::{AUTHORITY, Listeners, Proxy, SHIPPED_PLUGINS, start_app};

const RATE: u32 = 2_000;
const SWAP_EVERY: Duration = Duration::from_secs(10);
/// Memory settles as pools, instances and allocator arenas fill.
const WARM_UP: Duration = Duration::from_secs(30);
/// The target: resident memory after the warm-up within this.
const FLAT_KB: u64 = 2 * 1024;

pub fn run(setup: &Setup, seconds: u64) -> anyhow::Result<Row> {
    let mut processes = Processes::default();
    let app = start_app(&mut processes, &setup.bin)?;
    let chain = setup.scratch.join("soak.json");
    let sets: [&[&str]; 2] = [&SHIPPED_PLUGINS, &["metrics", "authz"]];
    chain_file(setup, &chain, sets[0], app.addr)?;
    let log = setup.scratch.join("soak.log");
    let proxy = Proxy {
        bin: &setup.bin,
        app: app.addr,
        chain: Some(&chain),
        log: &log,
    };
    let env = [("WEFT_LOG", std::ffi::OsStr::new("info"))];
    let proxy = proxy.start_with(&mut processes, Listeners::free()?, &env)?;
    let loaded_at_start = loads(&log);

    let started = Instant::now();
    let load = Background::start(proxy.inbound, AUTHORITY, RATE, seconds);
    let mut next_swap = started + SWAP_EVERY;
    let mut swaps = 0;
    let mut after_warm_up: Vec<u64> = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        pause(1.0)?;
        processes.ensure_running()?;
        if started.elapsed() >= WARM_UP {
            after_warm_up.push(rss_kb(proxy.pid));
        }
        if Instant::now() >= next_swap {
            swaps += 1;
            chain_file(setup, &chain, sets[swaps % 2], app.addr)?;
            next_swap += SWAP_EVERY;
        }
    }
    let load = load.finish()?;
    let restarted = processes.ensure_running().is_err();
    // The last swap is picked up within a second.
    pause(2.0)?;
    let swapped = loads(&log) - loaded_at_start;

    let (min, max) = (
        after_warm_up.iter().copied().min().unwrap_or(0),
        after_warm_up.iter().copied().max().unwrap_or(0),
    );
    let flat = !after_warm_up.is_empty() && max - min <= FLAT_KB;
    Ok(Row {
        area: "soak",
        what: format!(
            "plugin chain swapped every {} s (four plugins ↔ metrics and authz)",
            SWAP_EVERY.as_secs()
        ),
        load: format!("{RATE} req/s for {seconds} s"),
        result: format!(
            "{}; {swaps} swaps written, {swapped} loaded; proxy {}; RSS after {} s of warm-up {:.1}–{:.1} MB ({} KB apart)",
            describe(&load),
            if restarted {
                "**restarted**"
            } else {
                "never restarted"
            },
            WARM_UP.as_secs(),
            min as f64 / 1024.0,
            max as f64 / 1024.0,
            max - min,
        ),
        target: "0 failed, RSS flat within 2 MB after warm-up",
        met: load.errors == 0 && !restarted && flat && swapped >= swaps,
    })
}
