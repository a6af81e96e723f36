//! The meshed pairs side by side: what two Weft proxies cost per request
//! over mTLS against the same pair in plaintext and against two Envoys over
//! mTLS, beside the targets those ratios have, and how rarely the client
//! proxy had to handshake.

use std::fmt::Write;

use serde_json::{Value, json};

use super::{Figures, Report, WORKLOADS, Workload, against_target, figure};
use crate::bench::Target;

/// The mTLS pair's CPU per request at most this many times the plaintext
/// pair's…
pub const MTLS_OVER_PLAINTEXT_TARGET: f64 = 1.3;
/// …and at most this many times Envoy's mTLS pair's.
pub const MTLS_OVER_ENVOY_TARGET: f64 = 0.3;

const PAIRS: [Target; 3] = [
    Target::WeftPair,
    Target::WeftMtlsPair,
    Target::EnvoyMtlsPair,
];

impl Report {
    /// Whether the run measured any pair: runs without one keep their
    /// tables as they were.
    pub(super) fn has_pairs(&self) -> bool {
        self.results.iter().any(|r| PAIRS.contains(&r.target))
    }

    pub(super) fn write_pairs(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n## Meshed pairs: two proxies in a row, in plaintext and over mTLS\n\n\
             The load enters a client proxy, which hands each request to a server proxy in \
             front of the upstream, as between two meshed pods; both proxies share CPU 1 and \
             their CPU is added up. Between Weft's proxies over mTLS, and between the Envoys, \
             the client keeps one HTTP/2 connection over TLS 1.3 with client certificates and \
             no session resumption. Targets: the Weft mTLS pair's CPU per request at most \
             {MTLS_OVER_PLAINTEXT_TARGET:.1}× the plaintext pair's and at most \
             {MTLS_OVER_ENVOY_TARGET:.1}× Envoy's mTLS pair's. Handshakes are the TLS \
             connections the client proxy opened during the measured run (Weft: \
             `tcp_open_total{{direction=\"outbound\",tls=\"true\"}}`; Envoy: \
             `cluster.server.ssl.handshake`), per 10,000 requests, with the count.\n"
        );
        let _ = writeln!(
            out,
            "| load | {} CPU s / 10k req | {} | {} | mTLS ÷ plaintext (≤ {MTLS_OVER_PLAINTEXT_TARGET:.1}) \
             | Weft mTLS ÷ Envoy mTLS (≤ {MTLS_OVER_ENVOY_TARGET:.1}) | Weft mTLS handshakes / 10k req \
             | Envoy mTLS handshakes / 10k req |",
            Target::WeftPair.label(),
            Target::WeftMtlsPair.label(),
            Target::EnvoyMtlsPair.label(),
        );
        let _ = writeln!(out, "|---|{}", "---:|".repeat(7));
        for (name, workload) in WORKLOADS {
            let cpu = |target| self.pair_cpu(target, workload);
            let (plain, mtls, envoy) = (
                cpu(Target::WeftPair),
                cpu(Target::WeftMtlsPair),
                cpu(Target::EnvoyMtlsPair),
            );
            let cells = [
                figure(plain),
                figure(mtls),
                figure(envoy),
                against_target(mtls, plain, MTLS_OVER_PLAINTEXT_TARGET),
                against_target(mtls, envoy, MTLS_OVER_ENVOY_TARGET),
                self.handshakes_cell(Target::WeftMtlsPair, workload),
                self.handshakes_cell(Target::EnvoyMtlsPair, workload),
            ];
            let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
        }
        let since_start: Vec<String> = [Target::WeftMtlsPair, Target::EnvoyMtlsPair]
            .into_iter()
            .filter_map(|target| {
                let count = self.figures(target)?.handshakes_since_start?;
                Some(format!("{}: {count}", target.label()))
            })
            .collect();
        if !since_start.is_empty() {
            let _ = writeln!(
                out,
                "\nHandshakes since each client proxy started, readiness checks and warm-ups \
                 included: {}.",
                since_start.join("; ")
            );
        }
    }

    /// Each load's pair figures and ratios, for the JSON.
    pub(super) fn pairs_json(&self) -> Value {
        let loads: Vec<Value> = WORKLOADS
            .iter()
            .map(|&(name, workload)| {
                let cpu = |target| self.pair_cpu(target, workload);
                let (plain, mtls, envoy) = (
                    cpu(Target::WeftPair),
                    cpu(Target::WeftMtlsPair),
                    cpu(Target::EnvoyMtlsPair),
                );
                let divided = |value: Option<f64>, base: Option<f64>| match (value, base) {
                    (Some(value), Some(base)) if base > 0.0 => Some(value / base),
                    _ => None,
                };
                let handshakes = |target| {
                    self.measured(target, workload)
                        .and_then(|m| m.handshakes_per_10k())
                };
                json!({
                    "load": name,
                    "cpu_s_per_10k": {
                        Target::WeftPair.name(): plain,
                        Target::WeftMtlsPair.name(): mtls,
                        Target::EnvoyMtlsPair.name(): envoy,
                    },
                    "mtls_over_plaintext": divided(mtls, plain),
                    "mtls_over_envoy_mtls": divided(mtls, envoy),
                    "handshakes_per_10k": {
                        Target::WeftMtlsPair.name(): handshakes(Target::WeftMtlsPair),
                        Target::EnvoyMtlsPair.name(): handshakes(Target::EnvoyMtlsPair),
                    },
                })
            })
            .collect();
        let since_start = |target| self.figures(target)?.handshakes_since_start;
        json!({
            "handshakes_since_start": {
                Target::WeftMtlsPair.name(): since_start(Target::WeftMtlsPair),
                Target::EnvoyMtlsPair.name(): since_start(Target::EnvoyMtlsPair),
            },
            "targets": {
                "mtls_over_plaintext_at_most": MTLS_OVER_PLAINTEXT_TARGET,
                "mtls_over_envoy_mtls_at_most": MTLS_OVER_ENVOY_TARGET,
            },
            "loads": loads,
        })
    }

    fn figures(&self, target: Target) -> Option<&Figures> {
        let result = self.results.iter().find(|r| r.target == target)?;
        result.outcome.as_ref().ok()
    }

    fn pair_cpu(&self, target: Target, workload: Workload) -> Option<f64> {
        self.measured(target, workload)?.cpu_s_per_10k
    }

    fn handshakes_cell(&self, target: Target, workload: Workload) -> String {
        let measured = self.measured(target, workload);
        match measured.and_then(|m| Some((m.handshakes_per_10k()?, m.handshakes?))) {
            Some((per_10k, count)) => format!("{per_10k:.2} ({count})"),
            None => "—".into(),
        }
    }
}
