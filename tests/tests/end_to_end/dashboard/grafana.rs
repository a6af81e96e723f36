//! The Grafana dashboards in `charts/weft/dashboards/`, held to the proxy:
//! each parses as a dashboard with a `${datasource}` Prometheus variable,
//! every panel's query is PromQL that Prometheus' own `promtool` accepts,
//! and every metric its queries name is one a running sidecar exports (a
//! sample in its `/metrics`, or a family it declares).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use weft_tests::prometheus::{RunningPrometheus, Target};
use weft_tests::proxy::RunningProxy;
use weft_tests::{eventually, http1};

/// Families the test's traffic does not produce (no retries, splits,
/// dropped series or opaque TCP; backend calls nothing), whose panels may
/// be empty.
const QUIET: [&str; 5] = [
    "retry_",
    "outbound_split_",
    "weft_plugin_metric_series_dropped",
    "inbound_tcp_authz",
    "direction=\"outbound\"",
];

/// A real Prometheus scrapes backend's and load's sidecars with their pods'
/// labels; every panel's query, with the variables set to backend, runs
/// and, unless it reads a [`QUIET`] family, returns data.
pub async fn every_panel_query_returns_data_in_prometheus(
    backend: &RunningProxy,
    load: &RunningProxy,
) {
    let pod = |admin, name: &str, deployment: Option<&str>| {
        let mut labels = vec![
            ("namespace", "demo".to_string()),
            ("pod", name.to_string()),
            ("serviceaccount", name.to_string()),
        ];
        labels.extend(deployment.map(|d| ("deployment", d.to_string())));
        Target { admin, labels }
    };
    let prometheus = RunningPrometheus::spawn(&[
        pod(backend.admin, "backend", Some("backend")),
        pod(load.admin, "load", None),
    ])
    .await;
    let queries: Vec<String> = dashboards()
        .iter()
        .flat_map(|(_, dashboard)| panel_exprs(dashboard))
        .map(|expr| {
            expr.replace("$__rate_interval", "1m")
                .replace("$namespace", "demo")
                .replace("$deployment", "backend")
                .replace("$pod", ".*")
        })
        .collect();
    eventually("every panel's query returns data", || async {
        for query in &queries {
            let path = format!("/api/v1/query?query={}", encode(query));
            let reply = http1::get(prometheus.addr, &prometheus.addr.to_string(), &path).await;
            let answer: Value = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
            assert_eq!(answer["status"], "success", "{query}: {answer}");
            let empty = answer["data"]["result"]
                .as_array()
                .is_none_or(Vec::is_empty);
            if empty && !QUIET.iter().any(|quiet| query.contains(quiet)) {
                return Err(format!("no data yet for {query}"));
            }
        }
        Ok(())
    })
    .await;
}

/// Percent-encodes everything but unreserved characters, for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn every_query_names_metrics_the_sidecars_export(proxies: &[&RunningProxy]) {
    let mut exported = BTreeSet::new();
    for proxy in proxies {
        exported.extend(exported_names(&proxy.metrics().await.text));
    }
    let dashboards = dashboards();
    assert!(dashboards.len() >= 3, "{dashboards:?}");
    promtool_accepts(&dashboards);
    for (file, dashboard) in &dashboards {
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables
                .iter()
                .any(|v| v["name"] == "datasource" && v["query"] == "prometheus"),
            "{file}: no datasource variable"
        );
        let exprs = exprs(dashboard);
        assert!(exprs.len() >= 5, "{file}: {exprs:?}");
        for expr in exprs {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{file}: no metric in {expr}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{file}: `{name}` (in {expr}) is not a metric the proxy exports: {exported:?}"
                );
            }
        }
    }
}

/// Runs `promtool check rules` on every panel's query as a recording rule
/// (Grafana's `$__rate_interval` as `1m`).
fn promtool_accepts(dashboards: &[(String, Value)]) {
    let mut rules = String::from("groups:\n- name: dashboards\n  rules:\n");
    for (n, expr) in dashboards
        .iter()
        .flat_map(|(_, d)| panel_exprs(d))
        .enumerate()
    {
        let expr = Value::String(expr.replace("$__rate_interval", "1m"));
        rules += &format!("  - record: query_{n}\n    expr: {expr}\n");
    }
    let file = std::env::temp_dir().join(format!("weft-dashboards-{}.yml", std::process::id()));
    std::fs::write(&file, rules).unwrap();
    let checked = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): `apt-get install -y prometheus` (`cargo xtask test` installs it as root)")
        });
    let _ = std::fs::remove_file(&file);
    assert!(
        checked.status.success(),
        "promtool refuses a dashboard query: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/weft/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let dashboard: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                dashboard["uid"].is_string() && dashboard["title"].is_string(),
                "{name}"
            );
            (name, dashboard)
        })
        .collect()
}

/// The PromQL of every panel (rows' panels too).
fn panel_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("a target's expr");
                out.push(expr.to_string());
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every series selector of the dashboard: its panels' queries and its
/// query variables' series.
fn exprs(dashboard: &Value) -> Vec<String> {
    let mut out = panel_exprs(dashboard);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(query) = variable["query"]["query"].as_str() {
            out.push(series_of(query).to_string());
        }
    }
    out
}

/// The series a `label_values(SERIES, label)` variable reads.
fn series_of(query: &str) -> &str {
    query
        .strip_prefix("label_values(")
        .and_then(|args| args.rsplit_once(','))
        .map_or(query, |(series, _label)| series)
}

/// The names a proxy's `/metrics` text exports: every sample's, and every
/// declared family's as Prometheus stores it (`_total` for counters; the
/// buckets, sum and count of histograms).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut parts = declared.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    names.insert(format!("{}_total", name.trim_end_matches("_total")));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// The metric names a PromQL expression reads: identifiers outside label
/// matchers, strings, ranges and `by (…)` lists that are neither functions,
/// keywords nor Grafana's variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Followed by a list of label names.
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregations may be followed by `by (…)` rather than their `(`.
    const KEYWORDS: [&str; 18] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "le",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ];
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let rest = chars[i..].iter().collect::<String>();
                let called = rest.trim_start().starts_with('(');
                let grouping = GROUPING.contains(&word.as_str());
                if grouping && called {
                    // `by (a, b)`: label names, not metrics.
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                } else if !called && !grouping && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_leave_out_labels_functions_and_variables() {
    let expr = "histogram_quantile(0.95, sum by (le, namespace) (rate(response_latency_ms_bucket\
                {direction=\"inbound\", pod=~\"$pod\"}[$__rate_interval]))) / ignoring(backend) \
                group_left sum(tcp_open_total) and on() vector(1)";
    assert_eq!(
        metric_names(expr).into_iter().collect::<Vec<_>>(),
        ["response_latency_ms_bucket", "tcp_open_total"]
    );
    let variable = series_of("label_values(request_total{namespace=\"$namespace\"}, deployment)");
    assert_eq!(
        metric_names(variable).into_iter().collect::<Vec<_>>(),
        ["request_total"]
    );
}
