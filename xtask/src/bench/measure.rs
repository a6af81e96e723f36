//! The three workloads against one started target, each with the CPU time
//! and memory its proxy used meanwhile. A workload that fails is recorded
//! with its reason and the next one still runs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use super::{fixed_rate, h2load};
use crate::harness::processes::ensure_not_interrupted;
use crate::harness::procfs::{self, RssSampler};
use crate::harness::weft::AUTHORITY;
use crate::harness::wrk::{self, WrkReport};
use crate::harness::{PROXY_CPU, WARM_UP_SECONDS};

/// Other work on the proxy's CPU above this share of a run makes the
/// figures unfair: the run is repeated, and called out if it stays so.
pub const INTERFERENCE_PCT: f64 = 5.0;
/// Runs of one load on one target at most, when other work interferes.
const ATTEMPTS: usize = 3;

/// What a load generator reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// Answered with 2xx or 3xx.
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Only where enough samples are kept to tell (not wrk's).
    pub p999_ms: Option<f64>,
    /// Failed requests and 4xx/5xx answers.
    pub errors: u64,
}

/// A load and what the proxy spent serving it.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub load: Load,
    /// None when nothing stands between client and upstream.
    pub cpu_s_per_10k: Option<f64>,
    /// The most resident memory seen while the load ran.
    pub rss_load_kb: Option<u64>,
    /// User-space time other processes took on the proxy's CPU, as a share
    /// of the run: the figures are only fair when it is near 0.
    pub others_on_proxy_cpu_pct: Option<f64>,
}

/// A target ready for load: the process to account for (none when the
/// client talks to the upstream directly) and where it listens.
pub struct Endpoint {
    pub pid: Option<u32>,
    pub http1: SocketAddr,
    pub http2: SocketAddr,
}

/// One target's figures; a workload that failed holds its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub rss_idle_kb: Option<u64>,
    pub http1: Result<Measurement, String>,
    pub fixed_rate: Result<Measurement, String>,
    pub http2: Result<Measurement, String>,
}

/// Runs every workload against `endpoint`, the closed-loop ones after a
/// short warm-up that is not counted.
pub fn workloads(
    endpoint: &Endpoint,
    seconds: u64,
    clock_ticks: f64,
    scratch: &Path,
) -> anyhow::Result<Figures> {
    let rss_idle_kb = endpoint.pid.map(procfs::tree_rss_kb).transpose()?;
    let meter = Meter {
        pid: endpoint.pid,
        clock_ticks,
    };
    let http1 = meter.measure(
        || wrk::run(endpoint.http1, AUTHORITY, WARM_UP_SECONDS).map(drop),
        || wrk::run(endpoint.http1, AUTHORITY, seconds).map(wrk_load),
    );
    ensure_not_interrupted()?;
    // Follows the HTTP/1.1 run: already warm.
    let fixed_rate = meter.measure(
        || Ok(()),
        || fixed_rate::run(endpoint.http1, AUTHORITY, seconds),
    );
    ensure_not_interrupted()?;
    let log = scratch.join("h2load.log");
    let http2 = meter.measure(
        || h2load::run(endpoint.http2, AUTHORITY, WARM_UP_SECONDS, &log).map(drop),
        || h2load::run(endpoint.http2, AUTHORITY, seconds, &log),
    );
    ensure_not_interrupted()?;
    Ok(Figures {
        rss_idle_kb,
        http1,
        fixed_rate,
        http2,
    })
}

/// Reads a proxy's CPU time and memory around a load.
struct Meter {
    pid: Option<u32>,
    clock_ticks: f64,
}

impl Meter {
    /// Runs `warm_up`, then `load` with the proxy's CPU time and memory
    /// read around it. A run that shared the proxy's CPU with other work
    /// is run again, up to `ATTEMPTS` in all, and the quietest kept.
    fn measure(
        &self,
        warm_up: impl FnOnce() -> anyhow::Result<()>,
        load: impl Fn() -> anyhow::Result<Load>,
    ) -> Result<Measurement, String> {
        let attempts = || -> anyhow::Result<Measurement> {
            warm_up()?;
            let mut quietest = self.metered(&load)?;
            for _ in 1..ATTEMPTS {
                let Some(others) = quietest.others_on_proxy_cpu_pct else {
                    break;
                };
                if others <= INTERFERENCE_PCT {
                    break;
                }
                ensure_not_interrupted()?;
                eprintln!(
                    "  other processes took {others:.0} % of CPU {PROXY_CPU}: measuring again"
                );
                let again = self.metered(&load)?;
                if again.others_on_proxy_cpu_pct < quietest.others_on_proxy_cpu_pct {
                    quietest = again;
                }
            }
            Ok(quietest)
        };
        attempts().map_err(|error| format!("{error:#}"))
    }

    fn metered(&self, load: &impl Fn() -> anyhow::Result<Load>) -> anyhow::Result<Measurement> {
        let Some(pid) = self.pid else {
            return Ok(Measurement {
                load: load()?,
                cpu_s_per_10k: None,
                rss_load_kb: None,
                others_on_proxy_cpu_pct: None,
            });
        };
        let sampler = RssSampler::start(pid);
        let started = Instant::now();
        let cpu_before = procfs::cpu_user_ticks(PROXY_CPU)?;
        let before = procfs::tree_cpu_ticks(pid)?;
        let load = load()?;
        let used = procfs::tree_cpu_ticks(pid)?.since(before);
        let cpu_user = procfs::cpu_user_ticks(PROXY_CPU)?.saturating_sub(cpu_before);
        let window_ticks = started.elapsed().as_secs_f64() * self.clock_ticks;
        let rss_load_kb = sampler.max_kb();
        let cpu_seconds = used.total() as f64 / self.clock_ticks;
        let others = cpu_user.saturating_sub(used.user) as f64;
        Ok(Measurement {
            cpu_s_per_10k: Some(cpu_seconds / load.requests.max(1) as f64 * 1e4),
            load,
            rss_load_kb: Some(rss_load_kb),
            others_on_proxy_cpu_pct: Some(others / window_ticks.max(1.0) * 100.0),
        })
    }
}

fn wrk_load(report: WrkReport) -> Load {
    Load {
        requests: report.requests.saturating_sub(report.non_2xx),
        per_second: report.per_second,
        p50_ms: report.p50_ms,
        p99_ms: report.p99_ms,
        p999_ms: None,
        errors: report.non_2xx + socket_errors(report.socket_errors.as_deref()),
    }
}

/// The sum of wrk's `connect 0, read 2, write 0, timeout 0`.
fn socket_errors(line: Option<&str>) -> u64 {
    line.unwrap_or_default()
        .split(", ")
        .filter_map(|part| part.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_wrk_socket_errors() {
        assert_eq!(
            socket_errors(Some("connect 0, read 2, write 1, timeout 4")),
            7
        );
        assert_eq!(socket_errors(None), 0);
    }
}
