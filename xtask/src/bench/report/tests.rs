use std::collections::BTreeMap;

use super::*;
use crate::bench::measure::Load;

fn measured(per_second: f64, cpu: Option<f64>) -> Measurement {
    Measurement {
        load: Load {
            requests: (per_second * 10.0) as u64,
            per_second,
            p50_ms: 0.48,
            p99_ms: 1.8,
            p999_ms: Some(3.25),
            errors: 0,
            answered_by: BTreeMap::new(),
        },
        cpu_s_per_10k: cpu,
        rss_load_kb: cpu.map(|_| 15 * 1024),
        others_on_proxy_cpu_pct: cpu.map(|_| 1.0),
        others_on_load_cpu_pct: 2.0,
        handshakes: None,
    }
}

fn ran(target: Target, per_second: f64, cpu: Option<f64>) -> TargetResult {
    TargetResult {
        target,
        outcome: Ok(Figures {
            rss_idle_kb: cpu.map(|_| 12 * 1024),
            http1: Ok(measured(per_second, cpu)),
            fixed_rate: Ok(measured(2000.0, cpu)),
            http2: Ok(measured(per_second, cpu)),
            handshakes_since_start: None,
            slow_endpoint: None,
        }),
    }
}

fn report() -> Report {
    let mut weft = ran(Target::Weft, 60_000.0, Some(0.16));
    if let Ok(figures) = &mut weft.outcome {
        figures.http2 = Err("h2load failed (exit status: 1):\nconnect: refused | x".into());
    }
    let mut envoy = ran(Target::Envoy, 20_000.0, Some(0.49));
    if let Ok(Figures {
        http1: Ok(measured),
        ..
    }) = &mut envoy.outcome
    {
        measured.others_on_proxy_cpu_pct = Some(37.4);
    }
    Report {
        environment: Environment {
            date: "2026-11-23 03:00 UTC".into(),
            cpus: 2,
            cpu_model: "Test CPU".into(),
            memory_kb: 24 * 1024 * 1024,
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            kernel: "6.1.0".into(),
            load_average: "0.10 0.20 0.30".into(),
            versions: vec![("nginx", "nginx version: nginx/1.22.1".into())],
        },
        command: "cargo xtask bench --quick".into(),
        seconds: 3,
        results: vec![
            ran(Target::Direct, 120_000.0, None),
            weft,
            envoy,
            TargetResult {
                target: Target::Nginx,
                outcome: Err("`nginx` not found (nginx: apt-get failed)".into()),
            },
            ran(Target::Haproxy, 55_000.0, Some(0.17)),
        ],
    }
}

fn row<'a>(markdown: &'a str, section: &str, label: &str) -> &'a str {
    let start = markdown.find(section).expect("the section is there");
    markdown[start..]
        .lines()
        .find(|line| line.starts_with(&format!("| {label} |")))
        .expect("the row is there")
}

#[test]
fn puts_ratios_beside_the_figures() {
    let markdown = report().markdown();
    let weft = row(&markdown, "## HTTP/1.1 keep-alive", "Weft, no plugins");
    assert_eq!(
        weft,
        "| Weft, no plugins | 60000 | 1.09 | 3.00 | 0.48 | 1.80 | 0.160 | 0.94 | 0.33 \
         | 12.0 | 15.0 | 0 |"
    );
    let direct = row(
        &markdown,
        "## HTTP/1.1 keep-alive",
        "upstream direct (the limit)",
    );
    assert_eq!(
        direct,
        "| upstream direct (the limit) | 120000 | 2.18 | 6.00 | 0.48 | 1.80 | — | — | — \
         | — | — | 0 |"
    );
    let fixed = row(&markdown, "## HTTP/1.1 at a fixed rate", "HAProxy");
    assert_eq!(
        fixed,
        "| HAProxy | 2000 | 0.48 | 1.80 | 3.25 | 0.170 | 1.00 | 0.35 | 15.0 | 0 |"
    );
}

#[test]
fn says_why_a_target_or_a_load_is_missing() {
    let markdown = report().markdown();
    let nginx = row(&markdown, "## HTTP/2", "nginx");
    assert_eq!(
        nginx,
        "| nginx | unavailable: `nginx` not found (nginx: apt-get failed) \
         |  |  |  |  |  |  |  |  |  |  |"
    );
    let weft = row(&markdown, "## HTTP/2", "Weft, no plugins");
    assert!(weft.starts_with("| Weft, no plugins | failed: h2load failed (exit status: 1): |"));
    assert!(markdown.contains("## gRPC unary\n\nNot measured: "));
    assert!(markdown.contains("- **Command**: `cargo xtask bench --quick`"));
    assert!(markdown.contains("nginx: `nginx version: nginx/1.22.1`"));
}

#[test]
fn calls_out_runs_that_shared_the_proxy_cpu() {
    let markdown = report().markdown();
    assert!(markdown.contains("again on a quiet machine: Envoy HTTP/1.1 37 %.\n"));
    let mut quiet = report();
    quiet.results.retain(|r| r.target != Target::Envoy);
    assert!(quiet.markdown().contains(
        "other processes used under 5 % of CPU 1 (the proxy's) and of CPU 0 (the load's and \
         the upstream's) during every measured run ("
    ));
}

#[test]
fn calls_out_runs_that_shared_the_load_cpu() {
    let mut direct = ran(Target::Direct, 50_000.0, None);
    if let Ok(Figures {
        fixed_rate: Ok(measured),
        ..
    }) = &mut direct.outcome
    {
        measured.others_on_load_cpu_pct = 12.0;
    }
    let mut report = report();
    report.results[0] = direct;
    assert!(
        report
            .markdown()
            .contains("upstream direct (the limit) fixed rate 12 %, Envoy HTTP/1.1 37 %.\n"),
        "{}",
        report.markdown()
    );
    assert_eq!(
        report.json()["targets"][0]["fixed_rate"]["others_on_load_cpu_pct"],
        12.0
    );
}

#[test]
fn keeps_every_table_rectangular() {
    for (report, count) in [
        (report(), 3),
        (report_with_pairs(), 4),
        (report_with_balanced(), 5),
    ] {
        let markdown = report.markdown();
        let tables: Vec<Vec<&str>> = markdown
            .split("\n\n")
            .map(|block| block.lines().filter(|l| l.starts_with('|')).collect())
            .filter(|lines: &Vec<&str>| !lines.is_empty())
            .collect();
        assert_eq!(tables.len(), count);
        for table in tables {
            let columns = |line: &str| line.replace("\\|", "").matches('|').count();
            let header = columns(table[0]);
            assert!(
                table.iter().all(|line| columns(line) == header),
                "{table:#?}"
            );
        }
    }
}

#[test]
fn keeps_raw_figures_and_reasons_in_json() {
    let json = report().json();
    assert_eq!(json["seconds_per_load"], 3);
    assert_eq!(json["machine"]["cpus"], 2);
    assert_eq!(json["versions"]["nginx"], "nginx version: nginx/1.22.1");
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 5);
    assert_eq!(targets[0]["name"], "direct");
    assert_eq!(targets[0]["http1"]["cpu_s_per_10k"], Value::Null);
    assert_eq!(targets[1]["http1"]["req_per_s"], 60_000.0);
    assert_eq!(targets[1]["http1"]["rss_load_kb"], 15 * 1024);
    assert_eq!(targets[2]["http1"]["others_on_proxy_cpu_pct"], 37.4);
    assert_eq!(
        targets[1]["http2"]["failed"],
        "h2load failed (exit status: 1):\nconnect: refused | x"
    );
    assert_eq!(
        targets[3]["unavailable"],
        "`nginx` not found (nginx: apt-get failed)"
    );
    assert!(json["workloads"]["grpc"]["skipped"].is_string());
}

fn with_handshakes(mut result: TargetResult, count: u64) -> TargetResult {
    if let Ok(figures) = &mut result.outcome {
        figures.handshakes_since_start = Some(count + 1);
        let loads = [
            &mut figures.http1,
            &mut figures.fixed_rate,
            &mut figures.http2,
        ];
        for measured in loads.into_iter().flatten() {
            measured.handshakes = Some(count);
        }
    }
    result
}

fn report_with_pairs() -> Report {
    let mut report = report();
    report.results.extend([
        ran(Target::WeftPair, 50_000.0, Some(0.30)),
        with_handshakes(ran(Target::WeftMtlsPair, 50_000.0, Some(0.36)), 1),
        with_handshakes(ran(Target::EnvoyMtlsPair, 10_000.0, Some(1.5)), 0),
    ]);
    report
}

#[test]
fn sets_the_meshed_pairs_against_their_targets() {
    let markdown = report_with_pairs().markdown();
    let http1 = row(&markdown, "## Meshed pairs", "HTTP/1.1");
    assert_eq!(
        http1,
        "| HTTP/1.1 | 0.300 | 0.360 | 1.500 | 1.20 (met) | 0.24 (met) | 0.02 (1) | 0.00 (0) |"
    );
    assert!(markdown.contains(
        "readiness checks and warm-ups included: Weft → Weft, mTLS: 2; Envoy → Envoy, mTLS: 1.\n"
    ));
    let mut missed = report_with_pairs();
    missed.results.retain(|r| r.target != Target::EnvoyMtlsPair);
    let markdown = missed.markdown();
    let http2 = row(&markdown, "## Meshed pairs", "HTTP/2");
    assert_eq!(
        http2,
        "| HTTP/2 | 0.300 | 0.360 | — | 1.20 (met) | — | 0.02 (1) | — |"
    );
    assert!(
        !report().markdown().contains("## Meshed pairs"),
        "no pair, no pairs table"
    );
}

#[test]
fn keeps_the_pairs_ratios_and_handshakes_in_json() {
    let json = report_with_pairs().json();
    let http1 = &json["pairs"]["loads"][0];
    assert_eq!(http1["load"], "HTTP/1.1");
    assert!((http1["mtls_over_plaintext"].as_f64().unwrap() - 1.2).abs() < 1e-9);
    assert!((http1["mtls_over_envoy_mtls"].as_f64().unwrap() - 0.24).abs() < 1e-9);
    assert_eq!(http1["handshakes_per_10k"]["envoy-mtls-pair"], 0.0);
    assert_eq!(json["pairs"]["targets"]["mtls_over_plaintext_at_most"], 1.3);
    assert_eq!(json["pairs"]["handshakes_since_start"]["weft-mtls-pair"], 2);
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets[6]["name"], "weft-mtls-pair");
    assert_eq!(targets[6]["http1"]["handshakes"], 1);
    assert_eq!(report().json()["pairs"], Value::Null);
}

/// A balanced target whose slow round answered `p99_ms` at the tail, the
/// slow instance giving `slow` of every 100 answers.
fn balanced(target: Target, cpu: f64, p99_ms: f64, slow: u64) -> TargetResult {
    let mut result = ran(target, 40_000.0, Some(cpu));
    if let Ok(figures) = &mut result.outcome {
        let mut measured = measured(2000.0, Some(cpu));
        measured.load.p99_ms = p99_ms;
        measured.load.answered_by = BTreeMap::from([
            ("a".to_string(), (100 - slow) * 100 / 2),
            ("b".to_string(), (100 - slow) * 100 / 2),
            ("slow".to_string(), slow * 100),
        ]);
        figures.slow_endpoint = Some(Ok(measured));
    }
    result
}

fn report_with_balanced() -> Report {
    let mut report = report();
    report.results.extend([
        balanced(Target::WeftBalanced, 0.18, 2.0, 2),
        balanced(Target::HaproxyBalanced, 0.20, 40.0, 1),
        TargetResult {
            target: Target::EnvoyBalanced,
            outcome: Err("no pip to download Envoy with".into()),
        },
    ]);
    report
}

#[test]
fn sets_the_balanced_targets_against_haproxy() {
    let markdown = report_with_balanced().markdown();
    let http1 = row(&markdown, "## Balancing three endpoints", "HTTP/1.1");
    assert_eq!(
        http1,
        "| HTTP/1.1 | 0.180 | 0.200 | — | 0.90 (met) | 1.80 | 1.80 | — | 1.00 (met) |"
    );
    let weft = row(
        &markdown,
        "## One slow endpoint of three",
        "Weft, balancing 3 (EWMA)",
    );
    assert_eq!(
        weft,
        "| Weft, balancing 3 (EWMA) | 2000 | 0.48 | 2.00 | 3.25 | 0.05 | 2.0 % (200 of 10000) | 0.180 \
         | 0 |"
    );
    let envoy = row(
        &markdown,
        "## One slow endpoint of three",
        "Envoy, balancing 3 (LEAST_REQUEST)",
    );
    assert!(envoy.contains("| unavailable: no pip to download Envoy with |"));
    assert!(
        !report().markdown().contains("## Balancing three endpoints"),
        "no balanced target, no balancing table"
    );
}

#[test]
fn keeps_the_balanced_ratios_and_the_slow_round_in_json() {
    let json = report_with_balanced().json();
    let http1 = &json["balanced"]["loads"][0];
    assert!((http1["weft_over_haproxy_cpu"].as_f64().unwrap() - 0.9).abs() < 1e-9);
    assert_eq!(http1["p99_ms"]["envoy-balanced"], Value::Null);
    let slow = &json["balanced"]["slow_endpoint"];
    assert_eq!(slow["delay_ms"], 50);
    assert!(
        (slow["measured"]["haproxy-balanced"]["slow_share"]
            .as_f64()
            .unwrap()
            - 0.01)
            .abs()
            < 1e-9
    );
    assert_eq!(
        slow["measured"]["weft-balanced"]["answered_by"]["slow"],
        200
    );
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets[5]["name"], "weft-balanced");
    assert_eq!(targets[5]["slow_endpoint"]["p99_ms"], 2.0);
    assert_eq!(report().json()["balanced"], Value::Null);
}
