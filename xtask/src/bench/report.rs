//! The run as Markdown (`docs/benchmarks.md`) and raw JSON
//! (`docs/benchmarks.json`): what was measured, on what, with which
//! versions, and each target's figures with their ratio to HAProxy's and
//! to Envoy's beside them; the meshed pairs also side by side (`pairs`),
//! and the balanced targets, with and without a slow instance (`balanced`).

mod balanced;
mod pairs;

use std::fmt::Write;

use serde_json::{Value, json};

use super::Target;
use super::environment::Environment;
use super::measure::{Figures, INTERFERENCE_PCT, Measurement};
use super::{fixed_rate, h2load};
use crate::harness::{CLIENT_CPU, PROXY_CPU, WARM_UP_SECONDS, wrk};

/// Why there is no gRPC table.
pub const GRPC_SKIPPED: &str = "not measured: the upstream (weft-demo) serves no gRPC \
    method and no gRPC load generator (ghz) is packaged for Debian; a unary gRPC call is an \
    HTTP/2 POST with trailers, so the HTTP/2 table covers the same proxy path";
/// Longest reason quoted in a table cell; the JSON keeps all of it.
const CELL_REASON_CHARS: usize = 140;

pub struct TargetResult {
    pub target: Target,
    /// Unavailable (could not be installed or started) with the reason.
    pub outcome: Result<Figures, String>,
}

pub struct Report {
    pub environment: Environment,
    pub command: String,
    pub seconds: u64,
    pub results: Vec<TargetResult>,
}

/// One column of a workload's table.
#[derive(Clone, Copy)]
enum Column {
    Rate,
    RateRatio(Target),
    P50,
    P99,
    P999,
    Cpu,
    CpuRatio(Target),
    RssIdle,
    RssLoad,
    Errors,
}

type Workload = fn(&Figures) -> &Result<Measurement, String>;

/// Each workload's name in prose, and where its figures are.
const WORKLOADS: [(&str, Workload); 3] = [
    ("HTTP/1.1", |f| &f.http1),
    ("fixed rate", |f| &f.fixed_rate),
    ("HTTP/2", |f| &f.http2),
];

const HTTP1_COLUMNS: [Column; 11] = [
    Column::Rate,
    Column::RateRatio(Target::Haproxy),
    Column::RateRatio(Target::Envoy),
    Column::P50,
    Column::P99,
    Column::Cpu,
    Column::CpuRatio(Target::Haproxy),
    Column::CpuRatio(Target::Envoy),
    Column::RssIdle,
    Column::RssLoad,
    Column::Errors,
];
/// The rate is fixed: what differs is latency and the CPU it costs.
const FIXED_RATE_COLUMNS: [Column; 9] = [
    Column::Rate,
    Column::P50,
    Column::P99,
    Column::P999,
    Column::Cpu,
    Column::CpuRatio(Target::Haproxy),
    Column::CpuRatio(Target::Envoy),
    Column::RssLoad,
    Column::Errors,
];
const HTTP2_COLUMNS: [Column; 11] = [
    Column::Rate,
    Column::RateRatio(Target::Haproxy),
    Column::RateRatio(Target::Envoy),
    Column::P50,
    Column::P99,
    Column::P999,
    Column::Cpu,
    Column::CpuRatio(Target::Haproxy),
    Column::CpuRatio(Target::Envoy),
    Column::RssLoad,
    Column::Errors,
];

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        let _ = writeln!(
            out,
            "\n## HTTP/1.1 keep-alive, as fast as it goes\n\n`{}`, after a {WARM_UP_SECONDS} s \
             warm-up.\n",
            wrk::describe(self.seconds)
        );
        self.write_table(&mut out, |f| &f.http1, &HTTP1_COLUMNS);
        let _ = writeln!(
            out,
            "\n## HTTP/1.1 at a fixed rate, latency corrected for coordinated omission\n\n{}.\n",
            fixed_rate::describe(self.seconds)
        );
        self.write_table(&mut out, |f| &f.fixed_rate, &FIXED_RATE_COLUMNS);
        let _ = writeln!(
            out,
            "\n## HTTP/2\n\n`{}`, after a {WARM_UP_SECONDS} s warm-up; percentiles from its \
             per-request log (closed loop: not corrected for coordinated omission).\n",
            h2load::describe(self.seconds)
        );
        self.write_table(&mut out, |f| &f.http2, &HTTP2_COLUMNS);
        self.write_tracing_cost(&mut out);
        if self.has_pairs() {
            self.write_pairs(&mut out);
        }
        if self.has_balanced() {
            self.write_balanced(&mut out);
        }
        let _ = writeln!(out, "\n## gRPC unary\n\n{}.", capitalised(GRPC_SKIPPED));
        write_notes(&mut out);
        out
    }

    fn write_header(&self, out: &mut String) {
        let env = &self.environment;
        let _ = writeln!(
            out,
            "# Benchmarks: Weft beside Envoy, nginx and HAProxy\n\n\
             Written by `cargo xtask bench`; run it again rather than editing this file.\n"
        );
        let _ = writeln!(out, "- **Date**: {}", env.date);
        let _ = writeln!(out, "- **Command**: `{}`", self.command);
        let _ = writeln!(
            out,
            "- **Machine**: {} CPUs (`nproc`), {}, {:.1} GiB memory; {}, Linux {}",
            env.cpus,
            env.cpu_model,
            env.memory_kb as f64 / 1024.0 / 1024.0,
            env.os,
            env.kernel
        );
        let _ = writeln!(
            out,
            "- **Load average** when measuring began (1, 5, 15 min): {}",
            env.load_average
        );
        let _ = writeln!(out, "- **Interference**: {}", self.interference());
        let versions: Vec<String> = env
            .versions
            .iter()
            .map(|(program, version)| format!("{program}: `{version}`"))
            .collect();
        let _ = writeln!(out, "- **Versions**: {}", versions.join("; "));
        let _ = writeln!(
            out,
            "- **Setup**: loopback; each proxy alone on CPU {PROXY_CPU} with one worker \
             (thread or process), the two proxies of a meshed pair together there; the load \
             generator and the upstream, `weft-demo http` (release; three instances of it for \
             a balanced target), on CPU {CLIENT_CPU}, and with them the weft-controller that \
             certifies the Weft mTLS pair and names the balanced Weft's endpoints (idle while \
             the load runs, not counted). Every request is `GET /` with `Host: app.example` (to \
             a Weft pair, the server proxy's address, which the client proxy routes by; to a \
             balanced target, `backend.bench.svc.cluster.local:8081`), answered 200 with a \
             15-byte body. {} s per load per target.",
            self.seconds
        );
        let _ = writeln!(
            out,
            "- **Figures**: CPU is the proxy's utime + stime (its child processes' included; \
             both proxies' for a pair) over the measured run, in CPU seconds per 10,000 requests answered. RSS idle is \
             read before any load; RSS under load is the largest sampled every 100 ms during \
             the run. ×HAProxy and ×Envoy divide the figure to their left by HAProxy's and \
             plain Envoy's: above 1 is more requests per second, or more CPU per request. \
             Errors are failed requests and 4xx/5xx answers."
        );
    }

    /// Which runs shared a CPU with other work, which lowers their req/s
    /// and raises their latency and CPU per request.
    fn interference(&self) -> String {
        let mut shared = Vec::new();
        for result in &self.results {
            let Ok(figures) = &result.outcome else {
                continue;
            };
            let slow = figures.slow_endpoint.iter().map(|m| ("slow endpoint", m));
            let loads = WORKLOADS
                .iter()
                .map(|(name, workload)| (*name, workload(figures)));
            for (name, measured) in loads.chain(slow) {
                let pct = measured.as_ref().map(Measurement::interference_pct);
                if let Some(pct) = pct.ok().filter(|pct| *pct > INTERFERENCE_PCT) {
                    shared.push(format!("{} {name} {pct:.0} %", result.target.label()));
                }
            }
        }
        if shared.is_empty() {
            return format!(
                "other processes used under {INTERFERENCE_PCT:.0} % of CPU {PROXY_CPU} (the \
                 proxy's) and of CPU {CLIENT_CPU} (the load's and the upstream's) during every \
                 measured run (a run above that is measured again, up to three times, and the \
                 quietest kept)."
            );
        }
        format!(
            "other processes took CPU {PROXY_CPU} or {CLIENT_CPU} during some runs even at the quietest of \
             three tries, which lowers their req/s and raises their latency and CPU per request; \
             compare those rows with care, or run again on a quiet machine: {}.",
            shared.join(", ")
        )
    }

    fn write_table(&self, out: &mut String, workload: Workload, columns: &[Column]) {
        let titles: Vec<&str> = columns.iter().map(|c| c.title()).collect();
        let _ = writeln!(out, "| target | {} |", titles.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len()));
        for result in &self.results {
            let cells: Vec<String> = match &result.outcome {
                Err(reason) => reason_cells(&format!("unavailable: {reason}"), columns.len()),
                Ok(figures) => match workload(figures) {
                    Err(reason) => reason_cells(&format!("failed: {reason}"), columns.len()),
                    Ok(measured) => columns
                        .iter()
                        .map(|column| self.cell(*column, figures, measured, workload))
                        .collect(),
                },
            };
            let _ = writeln!(out, "| {} | {} |", result.target.label(), cells.join(" | "));
        }
    }

    fn cell(
        &self,
        column: Column,
        figures: &Figures,
        measured: &Measurement,
        workload: Workload,
    ) -> String {
        let base = |target| self.measured(target, workload);
        let load = &measured.load;
        match column {
            Column::Rate => format!("{:.0}", load.per_second),
            Column::RateRatio(target) => ratio(
                Some(load.per_second),
                base(target).map(|b| b.load.per_second),
            ),
            Column::P50 => format!("{:.2}", load.p50_ms),
            Column::P99 => format!("{:.2}", load.p99_ms),
            Column::P999 => load.p999_ms.map_or("—".into(), |ms| format!("{ms:.2}")),
            Column::Cpu => measured
                .cpu_s_per_10k
                .map_or("—".into(), |cpu| format!("{cpu:.3}")),
            Column::CpuRatio(target) => ratio(
                measured.cpu_s_per_10k,
                base(target).and_then(|b| b.cpu_s_per_10k),
            ),
            Column::RssIdle => megabytes(figures.rss_idle_kb),
            Column::RssLoad => megabytes(measured.rss_load_kb),
            Column::Errors => load.errors.to_string(),
        }
    }

    /// What tracing costs when nothing is traced: Weft with a collector
    /// set against Weft without, per request, in each workload.
    fn write_tracing_cost(&self, out: &mut String) {
        let ratios: Vec<String> = WORKLOADS
            .iter()
            .filter_map(|(name, workload)| {
                let cpu = |target| self.measured(target, *workload)?.cpu_s_per_10k;
                let (traced, plain) = (cpu(Target::WeftTraced)?, cpu(Target::Weft)?);
                Some(format!("{name} ×{:.2}", traced / plain))
            })
            .collect();
        if ratios.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Tracing and tap when unused\n\n\
             CPU per request of {} divided by {}'s, same run: {} (the target is at most \
             ×1.02; differences of a few percent are within this machine's run-to-run noise). \
             Every Weft row runs with tap compiled in and nobody tapping, which costs one atomic \
             load per request.",
            Target::WeftTraced.label(),
            Target::Weft.label(),
            ratios.join(", ")
        );
    }

    /// `target`'s figures for a workload, if it ran.
    fn measured(&self, target: Target, workload: Workload) -> Option<&Measurement> {
        let result = self.results.iter().find(|r| r.target == target)?;
        workload(result.outcome.as_ref().ok()?).as_ref().ok()
    }

    pub fn json(&self) -> Value {
        let env = &self.environment;
        let versions: serde_json::Map<String, Value> = env
            .versions
            .iter()
            .map(|(program, version)| (program.to_string(), json!(version)))
            .collect();
        let mut json = json!({
            "date": env.date,
            "command": self.command,
            "seconds_per_load": self.seconds,
            "machine": {
                "cpus": env.cpus,
                "cpu_model": env.cpu_model,
                "memory_kb": env.memory_kb,
                "os": env.os,
                "kernel": env.kernel,
                "load_average": env.load_average,
            },
            "versions": versions,
            "pinning": {"proxy_cpu": PROXY_CPU, "client_cpu": CLIENT_CPU},
            "workloads": {
                "http1": wrk::describe(self.seconds),
                "fixed_rate": fixed_rate::describe(self.seconds),
                "http2": h2load::describe(self.seconds),
                "grpc": {"skipped": GRPC_SKIPPED},
            },
            "targets": self.results.iter().map(target_json).collect::<Vec<_>>(),
        });
        if self.has_pairs() {
            json["pairs"] = self.pairs_json();
        }
        if self.has_balanced() {
            json["balanced"] = self.balanced_json();
        }
        json
    }
}

impl Column {
    fn title(self) -> &'static str {
        match self {
            Self::Rate => "req/s",
            Self::RateRatio(target) | Self::CpuRatio(target) => ratio_title(target),
            Self::P50 => "p50 ms",
            Self::P99 => "p99 ms",
            Self::P999 => "p99.9 ms",
            Self::Cpu => "CPU s / 10k req",
            Self::RssIdle => "RSS idle MB",
            Self::RssLoad => "RSS under load MB",
            Self::Errors => "errors",
        }
    }
}

fn ratio_title(target: Target) -> &'static str {
    match target {
        Target::Envoy => "×Envoy",
        _ => "×HAProxy",
    }
}

fn write_notes(out: &mut String) {
    let _ = writeln!(
        out,
        "\n## Notes\n\n\
         - The direct row has no proxy, hence no proxy CPU or memory; with the load generator \
           and the upstream sharing CPU 0, it is the most any proxy row can reach.\n\
         - nginx 1.22 takes HTTP/2 only on a port of its own and proxies it to the upstream as \
           HTTP/1.1; the other proxies keep HTTP/2 end to end.\n\
         - Envoy runs with its defaults besides the route (it adds `x-request-id` and \
           `x-envoy-*` headers); its filter, `bench/envoy-filter`, reads the method, path and \
           authority, adds a header and counts each request and its latency in metrics, about \
           what Weft's four plugins do together.\n\
         - The meshed pairs run no plugins. Over mTLS, Weft's client proxy sends HTTP/1.1 \
           requests over HTTP/2 with a `weft-orig-proto` header and the server proxy restores \
           them; the Envoy pair does the same with a header of its own, so that both speak to \
           the upstream what the load spoke. The Weft mTLS pair's certificates come from \
           weft-controller's identity service, the Envoys' are made for the run (ECDSA P-256 \
           both). In the tables above, a pair's ×HAProxy and ×Envoy set two proxies against \
           one.\n\
         - Configurations: `bench/envoy.yaml`, `bench/nginx.conf`, `bench/haproxy.cfg`, \
           `bench/envoy-mtls-client.yaml`, `bench/envoy-mtls-server.yaml`, \
           `bench/weft-mesh.yaml`, `bench/haproxy-balanced.cfg`, `bench/envoy-balanced.yaml`, \
           `bench/weft-balanced-mesh.yaml`; Weft's plugin chain is the one `cargo xtask bench-plugins` \
           measures."
    );
}

/// A reason in the first cell of a row, the other cells left empty.
fn reason_cells(reason: &str, columns: usize) -> Vec<String> {
    let mut cells = vec![String::new(); columns];
    cells[0] = table_safe(reason);
    cells
}

/// One line, no column breaks, not too long.
fn table_safe(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().replace('|', "\\|");
    if line.chars().count() <= CELL_REASON_CHARS {
        return line;
    }
    let cut: String = line.chars().take(CELL_REASON_CHARS).collect();
    format!("{cut}…")
}

fn ratio(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(value), Some(base)) if base > 0.0 => format!("{:.2}", value / base),
        _ => "—".into(),
    }
}

/// A CPU figure, or a dash.
fn figure(cpu: Option<f64>) -> String {
    cpu.map_or("—".into(), |cpu| format!("{cpu:.3}"))
}

/// The ratio, and whether it meets its target.
fn against_target(value: Option<f64>, base: Option<f64>, target: f64) -> String {
    let shown = ratio(value, base);
    match (value, base) {
        (Some(value), Some(base)) if base > 0.0 => {
            let verdict = if value / base <= target {
                "met"
            } else {
                "missed"
            };
            format!("{shown} ({verdict})")
        }
        _ => shown,
    }
}

fn megabytes(kb: Option<u64>) -> String {
    kb.map_or("—".into(), |kb| format!("{:.1}", kb as f64 / 1024.0))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn target_json(result: &TargetResult) -> Value {
    let target = result.target;
    match &result.outcome {
        Err(reason) => json!({
            "name": target.name(),
            "label": target.label(),
            "unavailable": reason,
        }),
        Ok(figures) => {
            let mut json = json!({
                "name": target.name(),
                "label": target.label(),
                "rss_idle_kb": figures.rss_idle_kb,
                "handshakes_since_start": figures.handshakes_since_start,
                "http1": measurement_json(&figures.http1),
                "fixed_rate": measurement_json(&figures.fixed_rate),
                "http2": measurement_json(&figures.http2),
            });
            if let Some(slow) = &figures.slow_endpoint {
                json["slow_endpoint"] = measurement_json(slow);
            }
            json
        }
    }
}

fn measurement_json(measured: &Result<Measurement, String>) -> Value {
    match measured {
        Err(reason) => json!({ "failed": reason }),
        Ok(measured) => {
            let load = &measured.load;
            let mut json = json!({
                "requests": load.requests,
                "req_per_s": load.per_second,
                "p50_ms": load.p50_ms,
                "p99_ms": load.p99_ms,
                "p999_ms": load.p999_ms,
                "errors": load.errors,
                "cpu_s_per_10k": measured.cpu_s_per_10k,
                "rss_load_kb": measured.rss_load_kb,
                "others_on_proxy_cpu_pct": measured.others_on_proxy_cpu_pct,
                "others_on_load_cpu_pct": measured.others_on_load_cpu_pct,
                "handshakes": measured.handshakes,
                "handshakes_per_10k": measured.handshakes_per_10k(),
            });
            if !load.answered_by.is_empty() {
                json["answered_by"] = json!(load.answered_by);
            }
            json
        }
    }
}

#[cfg(test)]
mod tests;
