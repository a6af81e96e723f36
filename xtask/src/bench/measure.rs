//! The three workloads against one started target, each with the CPU time
//! and memory its proxy used meanwhile (both proxies', for a pair) and, for
//! a meshed pair, the TLS handshakes its client proxy made. A workload that
//! fails is recorded with its reason and the next one still runs. A
//! balanced target is measured once more with one of its upstream
//! instances slow, at the fixed rate only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use super::handshakes::Handshakes;
use super::{fixed_rate, h2load};
use crate::harness::processes::ensure_not_interrupted;
use crate::harness::procfs::{self, CpuTicks, RssSampler};
use crate::harness::wrk::{self, WrkReport};
use crate::harness::{CLIENT_CPU, PROXY_CPU, WARM_UP_SECONDS};

/// Other work on either CPU above this share of a run makes the figures
/// unfair: the run is repeated, and called out if it stays so.
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
    /// The answers each upstream instance gave, by its `x-demo-name`,
    /// where the load generator reads them (only the fixed-rate one does).
    pub answered_by: BTreeMap<String, u64>,
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
    /// The same on the CPU the load generator and the upstream share: work
    /// there slows every row, the direct one included.
    pub others_on_load_cpu_pct: f64,
    /// TLS handshakes the client proxy of a meshed pair made during the
    /// run; None for a target without one.
    pub handshakes: Option<u64>,
}

impl Measurement {
    /// The larger share other work took of either CPU.
    pub fn interference_pct(&self) -> f64 {
        self.others_on_load_cpu_pct
            .max(self.others_on_proxy_cpu_pct.unwrap_or(0.0))
    }

    /// Handshakes per 10,000 requests answered.
    pub fn handshakes_per_10k(&self) -> Option<f64> {
        self.handshakes
            .map(|count| count as f64 / self.load.requests.max(1) as f64 * 1e4)
    }
}

/// A target ready for load: the processes to account for (one proxy, both
/// of a pair, none when the client talks to the upstream directly), where
/// it listens and the authority its requests carry.
pub struct Endpoint {
    pub pids: Vec<u32>,
    pub http1: SocketAddr,
    pub http2: SocketAddr,
    /// What the client proxy of a pair routes by; `app.example` elsewhere.
    pub authority: String,
    /// Where a meshed pair's client proxy counts its handshakes.
    pub handshakes: Option<Handshakes>,
}

/// One target's figures; a workload that failed holds its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub rss_idle_kb: Option<u64>,
    pub http1: Result<Measurement, String>,
    pub fixed_rate: Result<Measurement, String>,
    pub http2: Result<Measurement, String>,
    /// Every handshake a meshed pair's client proxy made since it started,
    /// read after the loads: readiness checks and warm-ups included.
    pub handshakes_since_start: Option<u64>,
    /// A balanced target's fixed-rate load with one of its instances slow,
    /// measured on a fresh start; None for the other targets.
    pub slow_endpoint: Option<Result<Measurement, String>>,
}

/// Runs every workload against `endpoint`, the closed-loop ones after a
/// short warm-up that is not counted.
pub fn workloads(
    endpoint: &Endpoint,
    meter: &Meter,
    seconds: u64,
    scratch: &Path,
) -> anyhow::Result<Figures> {
    let rss_idle_kb = if endpoint.pids.is_empty() {
        None
    } else {
        let trees: anyhow::Result<Vec<u64>> = endpoint
            .pids
            .iter()
            .map(|&pid| procfs::tree_rss_kb(pid))
            .collect();
        Some(trees?.into_iter().sum())
    };
    let authority = endpoint.authority.as_str();
    let http1 = meter.measure(
        || wrk::run(endpoint.http1, authority, WARM_UP_SECONDS).map(drop),
        || wrk::run(endpoint.http1, authority, seconds).map(wrk_load),
    );
    ensure_not_interrupted()?;
    // Follows the HTTP/1.1 run: already warm.
    let fixed_rate = meter.measure(
        || Ok(()),
        || fixed_rate::run(endpoint.http1, authority, seconds),
    );
    ensure_not_interrupted()?;
    let log = scratch.join("h2load.log");
    let http2 = meter.measure(
        || h2load::run(endpoint.http2, authority, WARM_UP_SECONDS, &log).map(drop),
        || h2load::run(endpoint.http2, authority, seconds, &log),
    );
    ensure_not_interrupted()?;
    // A counter that cannot be read leaves the loads' figures standing.
    let handshakes_since_start = endpoint.handshakes.as_ref().and_then(|probe| {
        probe
            .count()
            .inspect_err(|error| eprintln!("warning: counting handshakes: {error:#}"))
            .ok()
    });
    Ok(Figures {
        rss_idle_kb,
        http1,
        fixed_rate,
        http2,
        handshakes_since_start,
        slow_endpoint: None,
    })
}

/// The fixed-rate load alone, after the same warm-up as the closed-loop
/// loads get, so a latency-aware balancer has seen every instance answer:
/// the round with a slow instance.
pub fn fixed_rate_only(
    endpoint: &Endpoint,
    meter: &Meter,
    seconds: u64,
) -> Result<Measurement, String> {
    let authority = endpoint.authority.as_str();
    meter.measure(
        || wrk::run(endpoint.http1, authority, WARM_UP_SECONDS).map(drop),
        || fixed_rate::run(endpoint.http1, authority, seconds),
    )
}

/// Reads the proxies' CPU time and memory around a load, and what processes
/// other than the proxies, the upstream and this one did on both CPUs.
pub struct Meter<'a> {
    /// The proxy, or both of a pair, their CPU summed; none when the client
    /// talks to the upstream directly.
    pub proxies: &'a [u32],
    /// The upstream instances: one, or a balanced target's three.
    pub upstreams: &'a [u32],
    pub clock_ticks: f64,
    pub handshakes: Option<&'a Handshakes>,
}

impl Meter<'_> {
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
                let others = quietest.interference_pct();
                if others <= INTERFERENCE_PCT {
                    break;
                }
                ensure_not_interrupted()?;
                eprintln!(
                    "  other processes took {others:.0} % of CPU {PROXY_CPU} or \
                     {CLIENT_CPU}: measuring again"
                );
                let again = self.metered(&load)?;
                if again.interference_pct() < others {
                    quietest = again;
                }
            }
            Ok(quietest)
        };
        attempts().map_err(|error| format!("{error:#}"))
    }

    fn metered(&self, load: &impl Fn() -> anyhow::Result<Load>) -> anyhow::Result<Measurement> {
        let metered = !self.proxies.is_empty();
        let sampler = metered.then(|| RssSampler::start(self.proxies));
        let handshakes_before = self.handshakes.map(Handshakes::count).transpose()?;
        let started = Instant::now();
        let proxy_cpu_before = procfs::cpu_user_ticks(PROXY_CPU)?;
        let load_cpu_before = procfs::cpu_user_ticks(CLIENT_CPU)?;
        let proxy_before = metered.then(|| self.proxy_ticks()).transpose()?;
        // User time that belongs on CPU 0: the upstreams', this process's
        // (the fixed-rate generator) and its waited children's (wrk, h2load).
        let ours = || -> anyhow::Result<u64> {
            let mut ticks = procfs::own_user_ticks()?;
            for &upstream in self.upstreams {
                ticks += procfs::tree_cpu_ticks(upstream)?.user;
            }
            Ok(ticks)
        };
        let ours_before = ours()?;
        let load = load()?;
        let ours_used = ours()?.saturating_sub(ours_before);
        let load_cpu = procfs::cpu_user_ticks(CLIENT_CPU)?.saturating_sub(load_cpu_before);
        let proxy_cpu = procfs::cpu_user_ticks(PROXY_CPU)?.saturating_sub(proxy_cpu_before);
        let proxy_used = proxy_before
            .map(|before| self.proxy_ticks().map(|now| now.since(before)))
            .transpose()?;
        let handshakes = match (self.handshakes, handshakes_before) {
            (Some(probe), Some(before)) => Some(probe.count()?.saturating_sub(before)),
            _ => None,
        };
        let window_ticks = (started.elapsed().as_secs_f64() * self.clock_ticks).max(1.0);
        let share = |ticks: u64| ticks as f64 / window_ticks * 100.0;
        Ok(Measurement {
            cpu_s_per_10k: proxy_used.map(|used| {
                used.total() as f64 / self.clock_ticks / load.requests.max(1) as f64 * 1e4
            }),
            load,
            rss_load_kb: sampler.map(RssSampler::max_kb),
            others_on_proxy_cpu_pct: proxy_used
                .map(|used| share(proxy_cpu.saturating_sub(used.user))),
            others_on_load_cpu_pct: share(load_cpu.saturating_sub(ours_used)),
            handshakes,
        })
    }

    /// The proxies' CPU time, summed over their process trees.
    fn proxy_ticks(&self) -> anyhow::Result<CpuTicks> {
        let mut sum = CpuTicks::default();
        for &pid in self.proxies {
            let ticks = procfs::tree_cpu_ticks(pid)?;
            sum.user += ticks.user;
            sum.system += ticks.system;
        }
        Ok(sum)
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
        answered_by: BTreeMap::new(),
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
