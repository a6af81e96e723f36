//! The balanced targets side by side: what Weft costs per request and how
//! long its tail is while it spreads the load over three upstream instances,
//! against HAProxy and Envoy doing the same, beside the targets those
//! ratios have; then the same three with one instance slow, where a
//! balancer earns its keep by passing it by.

use std::fmt::Write;

use serde_json::{Value, json};

use super::{
    Measurement, Report, WORKLOADS, Workload, against_target, figure, measurement_json, ratio,
    reason_cells,
};
use crate::bench::Target;
use crate::bench::upstreams::{BALANCED_INSTANCES, SLOW_DELAY_MS, SLOW_NAME};
use crate::harness::WARM_UP_SECONDS;

/// Weft's CPU per request at most this many times HAProxy's, balancing…
pub const CPU_OVER_HAPROXY_TARGET: f64 = 1.0;
/// …and its p99 at most this many times HAProxy's.
pub const P99_OVER_HAPROXY_TARGET: f64 = 1.0;

const BALANCED: [Target; 3] = [
    Target::WeftBalanced,
    Target::HaproxyBalanced,
    Target::EnvoyBalanced,
];
/// Each balanced target's name in the column titles.
const SHORT_NAMES: [&str; 3] = ["Weft", "HAProxy", "Envoy"];

const SLOW_COLUMNS: [&str; 8] = [
    "req/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "p99 ×HAProxy",
    "answered by the slow instance",
    "CPU s / 10k req",
    "errors",
];

impl Report {
    /// Whether the run measured any balanced target: runs without one keep
    /// their tables as they were.
    pub(super) fn has_balanced(&self) -> bool {
        self.results.iter().any(|r| r.target.balanced())
    }

    pub(super) fn write_balanced(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n## Balancing three endpoints\n\n\
             Each balanced target spreads the load over {BALANCED_INSTANCES} instances of the \
             upstream (`weft-demo http`, on CPU 0 with the load): Weft as a client pod's \
             sidecar, its outbound listener given `Host: backend.bench.svc.cluster.local:8081`, \
             a Service whose {BALANCED_INSTANCES} endpoints weft-controller's Destination API \
             names (`weft.io/load-balancer: ewma`: the cheaper of two endpoints drawn at random, \
             by peak-EWMA latency times requests in flight); HAProxy with `balance leastconn`; \
             Envoy with `LEAST_REQUEST`. Each is alone on CPU 1 with one worker; the \
             controller runs on CPU 0, idle while the load runs, and is not counted. The same \
             loads as above. Targets: Weft's CPU per request at most \
             {CPU_OVER_HAPROXY_TARGET:.1}× HAProxy's, and its p99 at most \
             {P99_OVER_HAPROXY_TARGET:.1}× HAProxy's.\n"
        );
        let cpu_titles: Vec<String> = SHORT_NAMES
            .iter()
            .map(|name| format!("{name} CPU s / 10k req"))
            .collect();
        let p99_titles: Vec<String> = SHORT_NAMES
            .iter()
            .map(|name| format!("{name} p99 ms"))
            .collect();
        let _ = writeln!(
            out,
            "| load | {} | Weft ÷ HAProxy CPU (≤ {CPU_OVER_HAPROXY_TARGET:.1}) | {} \
             | Weft ÷ HAProxy p99 (≤ {P99_OVER_HAPROXY_TARGET:.1}) |",
            cpu_titles.join(" | "),
            p99_titles.join(" | "),
        );
        let _ = writeln!(out, "|---|{}", "---:|".repeat(8));
        for (name, workload) in WORKLOADS {
            let cpu = BALANCED.map(|target| self.balanced_cpu(target, workload));
            let p99 = BALANCED.map(|target| self.balanced_p99(target, workload));
            let mut cells: Vec<String> = cpu.iter().map(|&cpu| figure(cpu)).collect();
            cells.push(against_target(cpu[0], cpu[1], CPU_OVER_HAPROXY_TARGET));
            cells.extend(
                p99.iter()
                    .map(|p99| p99.map_or("—".into(), |ms| format!("{ms:.2}"))),
            );
            cells.push(against_target(p99[0], p99[1], P99_OVER_HAPROXY_TARGET));
            let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
        }
        self.write_slow_endpoint(out);
    }

    fn write_slow_endpoint(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n## One slow endpoint of three\n\n\
             The balanced targets started afresh with one of the {BALANCED_INSTANCES} instances \
             answering {SLOW_DELAY_MS} ms late (`weft-demo http --delay-ms {SLOW_DELAY_MS}`), \
             under the fixed-rate load alone, after a {WARM_UP_SECONDS} s wrk warm-up: a \
             balancer that keeps sending it requests makes them wait, and the requests queued \
             behind them on the same connections. The slow instance's share is of the requests \
             answered, counted by the fixed-rate generator from each answer's `x-demo-name`; \
             p99 ×HAProxy divides by the balancing HAProxy's.\n"
        );
        let _ = writeln!(out, "| target | {} |", SLOW_COLUMNS.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(SLOW_COLUMNS.len()));
        let haproxy_p99 = self
            .slow_endpoint(Target::HaproxyBalanced)
            .map(|m| m.load.p99_ms);
        for result in self.results.iter().filter(|r| r.target.balanced()) {
            let columns = SLOW_COLUMNS.len();
            let cells = match &result.outcome {
                Err(reason) => reason_cells(&format!("unavailable: {reason}"), columns),
                Ok(figures) => match &figures.slow_endpoint {
                    None => reason_cells("not measured", columns),
                    Some(Err(reason)) => reason_cells(&format!("failed: {reason}"), columns),
                    Some(Ok(measured)) => {
                        let load = &measured.load;
                        vec![
                            format!("{:.0}", load.per_second),
                            format!("{:.2}", load.p50_ms),
                            format!("{:.2}", load.p99_ms),
                            load.p999_ms.map_or("—".into(), |ms| format!("{ms:.2}")),
                            ratio(Some(load.p99_ms), haproxy_p99),
                            slow_share_cell(measured),
                            figure(measured.cpu_s_per_10k),
                            load.errors.to_string(),
                        ]
                    }
                },
            };
            let _ = writeln!(out, "| {} | {} |", result.target.label(), cells.join(" | "));
        }
    }

    /// Each load's balanced figures and ratios, and the slow round, for
    /// the JSON.
    pub(super) fn balanced_json(&self) -> Value {
        let divided = |value: Option<f64>, base: Option<f64>| match (value, base) {
            (Some(value), Some(base)) if base > 0.0 => Some(value / base),
            _ => None,
        };
        let loads: Vec<Value> = WORKLOADS
            .iter()
            .map(|&(name, workload)| {
                let cpu = BALANCED.map(|target| self.balanced_cpu(target, workload));
                let p99 = BALANCED.map(|target| self.balanced_p99(target, workload));
                let by_target = |figures: [Option<f64>; 3]| -> serde_json::Map<String, Value> {
                    BALANCED
                        .iter()
                        .zip(figures)
                        .map(|(target, figure)| (target.name().to_string(), json!(figure)))
                        .collect()
                };
                json!({
                    "load": name,
                    "cpu_s_per_10k": by_target(cpu),
                    "p99_ms": by_target(p99),
                    "weft_over_haproxy_cpu": divided(cpu[0], cpu[1]),
                    "weft_over_haproxy_p99": divided(p99[0], p99[1]),
                })
            })
            .collect();
        let slow: serde_json::Map<String, Value> = self
            .results
            .iter()
            .filter(|r| r.target.balanced())
            .filter_map(|r| {
                let measured = r.outcome.as_ref().ok()?.slow_endpoint.as_ref()?;
                let mut json = measurement_json(measured);
                if let Ok(measured) = measured {
                    json["slow_share"] = json!(slow_share(measured));
                }
                Some((r.target.name().to_string(), json))
            })
            .collect();
        json!({
            "targets": {
                "weft_over_haproxy_cpu_at_most": CPU_OVER_HAPROXY_TARGET,
                "weft_over_haproxy_p99_at_most": P99_OVER_HAPROXY_TARGET,
            },
            "loads": loads,
            "slow_endpoint": {
                "delay_ms": SLOW_DELAY_MS,
                "instance": SLOW_NAME,
                "measured": slow,
            },
        })
    }

    fn balanced_cpu(&self, target: Target, workload: Workload) -> Option<f64> {
        self.measured(target, workload)?.cpu_s_per_10k
    }

    fn balanced_p99(&self, target: Target, workload: Workload) -> Option<f64> {
        Some(self.measured(target, workload)?.load.p99_ms)
    }

    fn slow_endpoint(&self, target: Target) -> Option<&Measurement> {
        let result = self.results.iter().find(|r| r.target == target)?;
        result
            .outcome
            .as_ref()
            .ok()?
            .slow_endpoint
            .as_ref()?
            .as_ref()
            .ok()
    }
}

/// The share of the answers the slow instance gave, when the load
/// generator counted who answered.
fn slow_share(measured: &Measurement) -> Option<f64> {
    let answered_by = &measured.load.answered_by;
    let counted: u64 = answered_by.values().sum();
    (counted > 0).then(|| answered_by.get(SLOW_NAME).copied().unwrap_or(0) as f64 / counted as f64)
}

/// The slow instance's share, and the counts it comes from.
fn slow_share_cell(measured: &Measurement) -> String {
    let answered_by = &measured.load.answered_by;
    let slow = answered_by.get(SLOW_NAME).copied().unwrap_or(0);
    let counted: u64 = answered_by.values().sum();
    match slow_share(measured) {
        Some(share) => format!("{:.1} % ({slow} of {counted})", share * 100.0),
        None => "—".into(),
    }
}
