//! `weft stat`, `weft edges` and `weft routes`: ask the controller's stats
//! API (or, with `--prometheus-url`, a Prometheus directly) and print a
//! table (`-o table`, `wide`) or JSON (`-o json`).

use std::process::ExitCode;

use anyhow::Context;
use serde::de::DeserializeOwned;

use super::http::{DEFAULT_WINDOW, edges_query, routes_query, stat_query};
use super::{Edge, Prometheus, RouteRow, StatRow, edges, routes, stat};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Wide,
    Json,
}

/// Where the figures come from.
#[derive(clap::Args)]
pub struct SourceArgs {
    /// The controller's stats API.
    #[arg(long, env = "WEFT_STATS_API", default_value = "http://127.0.0.1:8085")]
    stats_api: String,
    /// Ask this Prometheus instead of the controller (the pods' meshed
    /// counts are then those whose proxies Prometheus scrapes).
    #[arg(long, env = "WEFT_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// The window the rates and latencies are computed over.
    #[arg(short = 't', long = "time-window", default_value = DEFAULT_WINDOW)]
    window: String,
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(clap::Args)]
pub struct StatArgs {
    /// The kind of resource (`deploy`, `pod`, `ns`, `svc`, `sts`, `ds`,
    /// `job`), or `kind/name`.
    resource: String,
    /// Only this one.
    name: Option<String>,
    /// Only this namespace (every namespace without it).
    #[arg(short, long)]
    namespace: Option<String>,
    /// What this resource (`kind/name`) sent to the listed ones.
    #[arg(long)]
    from: Option<String>,
    /// What the listed resources sent to this one (`kind/name`).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(clap::Args)]
pub struct EdgesArgs {
    /// The kind of resource the edges join (`deploy`, `pod`, …).
    kind: String,
    /// Only clients in this namespace (every namespace without it).
    #[arg(short, long)]
    namespace: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(clap::Args)]
pub struct RoutesArgs {
    /// `svc/NAME` (requests to the Service) or `deploy/NAME` (what its
    /// proxies counted).
    target: String,
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Only the workload's requests to this Service (`svc/NAME`).
    #[arg(long)]
    to: Option<String>,
    /// The `--to` Service's namespace (the target's by default).
    #[arg(long, requires = "to")]
    to_namespace: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

pub async fn run_stat(args: &StatArgs) -> anyhow::Result<ExitCode> {
    let (kind, name) = match args.resource.split_once('/') {
        Some((kind, name)) => (kind.to_string(), Some(name.to_string())),
        None => (args.resource.clone(), args.name.clone()),
    };
    let mut params = vec![("kind", kind), ("window", args.source.window.clone())];
    params.extend(name.map(|v| ("name", v)));
    params.extend(args.namespace.clone().map(|v| ("namespace", v)));
    params.extend(args.from.clone().map(|v| ("from", v)));
    params.extend(args.to.clone().map(|v| ("to", v)));
    let rows: Vec<StatRow> = match &args.source.prometheus_url {
        Some(url) => {
            let query = stat_query(&to_map(&params)).map_err(anyhow::Error::msg)?;
            stat(&Prometheus::new(url)?, None, &query).await?
        }
        None => ask(&args.source.stats_api, "stat", &params, "rows").await?,
    };
    print(args.source.output, &rows, render_stat);
    Ok(ExitCode::SUCCESS)
}

pub async fn run_edges(args: &EdgesArgs) -> anyhow::Result<ExitCode> {
    let mut params = vec![
        ("kind", args.kind.clone()),
        ("window", args.source.window.clone()),
    ];
    params.extend(args.namespace.clone().map(|v| ("namespace", v)));
    let rows: Vec<Edge> = match &args.source.prometheus_url {
        Some(url) => {
            let query = edges_query(&to_map(&params)).map_err(anyhow::Error::msg)?;
            edges(&Prometheus::new(url)?, &query).await?
        }
        None => ask(&args.source.stats_api, "edges", &params, "edges").await?,
    };
    print(args.source.output, &rows, render_edges);
    Ok(ExitCode::SUCCESS)
}

pub async fn run_routes(args: &RoutesArgs) -> anyhow::Result<ExitCode> {
    let mut params = vec![
        ("target", args.target.clone()),
        ("namespace", args.namespace.clone()),
        ("window", args.source.window.clone()),
    ];
    params.extend(args.to.clone().map(|v| ("to", v)));
    params.extend(args.to_namespace.clone().map(|v| ("to_namespace", v)));
    let rows: Vec<RouteRow> = match &args.source.prometheus_url {
        Some(url) => {
            let query = routes_query(&to_map(&params)).map_err(anyhow::Error::msg)?;
            routes(&Prometheus::new(url)?, &query).await?
        }
        None => ask(&args.source.stats_api, "routes", &params, "routes").await?,
    };
    print(args.source.output, &rows, render_routes);
    Ok(ExitCode::SUCCESS)
}

fn to_map(params: &[(&str, String)]) -> std::collections::HashMap<String, String> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// GETs `/api/v1/{path}` and reads `field` of the JSON answer.
async fn ask<T: DeserializeOwned>(
    api: &str,
    path: &str,
    params: &[(&str, String)],
    field: &str,
) -> anyhow::Result<T> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let endpoint = format!("{}/api/v1/{path}", api.trim_end_matches('/'));
    let url = reqwest::Url::parse_with_params(&endpoint, params.iter().map(|(k, v)| (*k, v)))
        .with_context(|| format!("{api} is not a URL"))?;
    let response = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach the controller's stats API at {api}"))?;
    let status = response.status();
    let mut body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("the stats API answered {status} without JSON"))?;
    if !status.is_success() {
        let message = body["error"].as_str().unwrap_or("no reason given");
        anyhow::bail!("the stats API answered {status}: {message}");
    }
    serde_json::from_value(body[field].take())
        .with_context(|| format!("the stats API's answer has no {field}"))
}

fn print<T: serde::Serialize>(output: Output, rows: &[T], render: fn(&[T], bool) -> String) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(rows).expect("JSON of plain values")
        ),
        Output::Table | Output::Wide => {
            if rows.is_empty() {
                eprintln!("No traffic found.");
            } else {
                print!("{}", render(rows, output == Output::Wide));
            }
        }
    }
}

fn render_stat(rows: &[StatRow], wide: bool) -> String {
    let mut header = vec![
        "NAMESPACE",
        "NAME",
        "MESHED",
        "SUCCESS",
        "RPS",
        "LATENCY_P50",
        "LATENCY_P95",
        "LATENCY_P99",
        "TCP_CONN",
    ];
    if wide {
        header.extend(["READ_BYTES/SEC", "WRITE_BYTES/SEC"]);
    }
    let lines = rows.iter().map(|row| {
        let mut cells = vec![
            row.namespace.clone(),
            row.name.clone(),
            row.meshed
                .map_or("-".into(), |m| format!("{}/{}", m.meshed, m.total)),
            percent(row.success_rate),
            rps(row.success_rate.map(|_| row.rps)),
            ms(row.latency_ms_p50),
            ms(row.latency_ms_p95),
            ms(row.latency_ms_p99),
            row.tcp_connections
                .map_or("-".into(), |n| format!("{n:.0}")),
        ];
        if wide {
            cells.push(bytes(row.read_bytes_per_sec));
            cells.push(bytes(row.write_bytes_per_sec));
        }
        cells
    });
    table(&header, lines)
}

fn render_edges(rows: &[Edge], wide: bool) -> String {
    let mut header = vec![
        "SRC",
        "DST",
        "SRC_NS",
        "DST_NS",
        "SECURED",
        "CLIENT_ID",
        "SERVER_ID",
    ];
    if wide {
        header.push("RPS");
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".into()
        } else {
            s.to_string()
        }
    };
    let lines = rows.iter().map(|edge| {
        let mut cells = vec![
            edge.src.clone(),
            edge.dst.clone(),
            edge.src_namespace.clone(),
            edge.dst_namespace.clone(),
            if edge.secured { "√" } else { "×" }.to_string(),
            dash(&edge.client_id),
            dash(&edge.server_id),
        ];
        if wide {
            cells.push(rps(Some(edge.rps)));
        }
        cells
    });
    table(&header, lines)
}

fn render_routes(rows: &[RouteRow], wide: bool) -> String {
    let mut header = vec![
        "ROUTE",
        "DIRECTION",
        "AUTHORITY",
        "SUCCESS",
        "RPS",
        "LATENCY_P50",
        "LATENCY_P95",
        "LATENCY_P99",
        "RETRIES/SEC",
    ];
    if wide {
        header.push("BACKENDS");
    }
    let lines = rows.iter().map(|row| {
        let mut cells = vec![
            row.route.clone(),
            row.direction.clone(),
            if row.authority.is_empty() {
                "-".into()
            } else {
                row.authority.clone()
            },
            percent(row.success_rate),
            rps(row.success_rate.map(|_| row.rps)),
            ms(row.latency_ms_p50),
            ms(row.latency_ms_p95),
            ms(row.latency_ms_p99),
            row.retries_per_sec
                .map_or("-".into(), |r| format!("{r:.1}")),
        ];
        if wide {
            let backends: Vec<String> = row
                .backends
                .iter()
                .map(|(backend, rps)| format!("{backend}={rps:.1}rps"))
                .collect();
            cells.push(if backends.is_empty() {
                "-".into()
            } else {
                backends.join(" ")
            });
        }
        cells
    });
    table(&header, lines)
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows)
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".into(), |r| format!("{:.2}%", r * 100.0))
}

fn rps(rps: Option<f64>) -> String {
    rps.map_or("-".into(), |r| format!("{r:.1}rps"))
}

fn ms(latency: Option<f64>) -> String {
    latency.map_or("-".into(), |l| {
        if l < 10.0 {
            format!("{l:.1}ms")
        } else {
            format!("{l:.0}ms")
        }
    })
}

fn bytes(rate: Option<f64>) -> String {
    rate.map_or("-".into(), |b| format!("{:.1}KiB/s", b / 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Meshed;

    #[test]
    fn a_stat_table_shows_linkerd_s_columns_and_dashes_without_traffic() {
        let rows = [
            StatRow {
                namespace: "demo".into(),
                name: "backend".into(),
                meshed: Some(Meshed {
                    meshed: 3,
                    total: 3,
                }),
                success_rate: Some(0.95),
                rps: 20.0,
                latency_ms_p50: Some(0.55),
                latency_ms_p95: Some(4.2),
                latency_ms_p99: Some(12.0),
                tcp_connections: Some(3.0),
                read_bytes_per_sec: Some(2048.0),
                write_bytes_per_sec: None,
            },
            StatRow {
                namespace: "demo".into(),
                name: "idle".into(),
                meshed: Some(Meshed {
                    meshed: 0,
                    total: 1,
                }),
                success_rate: None,
                rps: 0.0,
                latency_ms_p50: None,
                latency_ms_p95: None,
                latency_ms_p99: None,
                tcp_connections: None,
                read_bytes_per_sec: None,
                write_bytes_per_sec: None,
            },
        ];
        assert_eq!(
            render_stat(&rows, false),
            "NAMESPACE  NAME     MESHED  SUCCESS  RPS      LATENCY_P50  LATENCY_P95  LATENCY_P99  TCP_CONN\n\
             demo       backend  3/3     95.00%   20.0rps  0.6ms        4.2ms        12ms         3\n\
             demo       idle     0/1     -        -        -            -            -            -\n"
        );
        assert!(render_stat(&rows, true).contains("2.0KiB/s"));
    }
}
