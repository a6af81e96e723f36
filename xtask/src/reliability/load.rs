//! A fixed-rate load (`cargo xtask bench`'s generator) running in the
//! background while a fault is made, and the proxy's memory sampled
//! meanwhile.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::anyhow;

use crate::bench::fixed_rate;
use crate::bench::measure::Load;
use crate::harness::procfs::proc_status_kb;

/// A load started by [`Background::start`].
pub struct Background {
    thread: JoinHandle<anyhow::Result<Load>>,
}

impl Background {
    /// `rate` GET requests a second to `addr` for `seconds`, over the
    /// generator's keep-alive connections.
    pub fn start(addr: SocketAddr, host: &str, rate: u32, seconds: u64) -> Self {
        let host = host.to_string();
        let thread = std::thread::spawn(move || fixed_rate::run_at(addr, &host, rate, seconds));
        Self { thread }
    }

    pub fn finish(self) -> anyhow::Result<Load> {
        self.thread
            .join()
            .map_err(|_| anyhow!("the load thread panicked"))?
    }
}

/// `pid`'s resident memory in KiB, or 0 once it is gone.
pub fn rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmRSS").unwrap_or(0)
}

/// Latency figures of a load, for a table cell.
pub fn describe(load: &Load) -> String {
    format!(
        "{} answered, {} failed, p50 {:.2} ms, p99 {:.2} ms",
        load.requests, load.errors, load.p50_ms, load.p99_ms
    )
}

/// Sleeps for `seconds` in short steps, so Ctrl-C is noticed.
pub fn pause(seconds: f64) -> anyhow::Result<()> {
    let until = std::time::Instant::now() + Duration::from_secs_f64(seconds);
    while std::time::Instant::now() < until {
        crate::harness::processes::ensure_not_interrupted()?;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
