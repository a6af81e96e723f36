//! `cargo xtask demo --check`: proof that the local mesh works end to end,
//! for CI and for anyone changing it: the sidecars run the chains the
//! controller serves, requests reach the right services, the plugins'
//! metrics are counted, and the load generators see no failures.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use super::services::Services;
use super::{
    APP_SIDECAR, BACKEND_SERVICE, BACKEND_SIDECARS, LOAD_SIDECAR, LOADS, SIDECARS, STATS, http_get,
};
use crate::workspace;

const REQUESTS_PER_LISTENER: usize = 20;
/// Load generators report once a second; allow for a slow machine.
const LOAD_REPORT_LIMIT: Duration = Duration::from_secs(5);
/// The sidecars compile their chains after they are ready.
const CHAIN_LIMIT: Duration = Duration::from_secs(30);

pub fn run(services: &mut Services) -> anyhow::Result<()> {
    let app = APP_SIDECAR.inbound;
    let load = LOAD_SIDECAR.outbound;
    // Sidecars are ready once their chains arrive; check each chain's
    // effect: app's authz answers `/admin` with 403 (the app itself would
    // say 404), and load's split counts its choices.
    wait_for(services, "app's sidecar to run the authz plugin", || {
        Ok(http_get::get(app, &app.to_string(), "/admin")?.status == 403)
    })?;
    wait_for(services, "load's sidecar to run the split plugin", || {
        http_get::get(load, BACKEND_SERVICE, "/")?;
        let admin = LOAD_SIDECAR.admin;
        let metrics = http_get::get(admin, &admin.to_string(), "/metrics")?;
        Ok(metrics.body.contains("outbound_split_requests_total{"))
    })?;
    expect_replies(
        "app's sidecar",
        app,
        &app.to_string(),
        &["hello from app\n"],
    )?;
    // The split sends 9 in 10 to the backend Service, balanced across its
    // three replicas, and the rest to app.
    expect_replies(
        "load's sidecar",
        load,
        BACKEND_SERVICE,
        &[
            "hello from backend\n",
            "hello from backend-1\n",
            "hello from backend-2\n",
            "hello from app\n",
        ],
    )?;
    expect_metrics(APP_SIDECAR.admin, "request_total{direction=\"inbound\"")?;
    // The replicas share the load, and between sidecars it is mutual TLS:
    // each replica's sidecar counts requests from load's as inbound over
    // TLS.
    for sidecar in &BACKEND_SIDECARS {
        wait_for(
            services,
            &format!("{} to count inbound responses over mTLS", sidecar.name),
            || {
                let admin = sidecar.admin;
                let metrics = http_get::get(admin, &admin.to_string(), "/metrics")?;
                Ok(metrics.body.lines().any(|line| {
                    line.starts_with("response_total{")
                        && line.contains("direction=\"inbound\"")
                        && line.contains("tls=\"true\"")
                }))
            },
        )?;
    }
    // load's sidecar balances the Service's three endpoints and labels its
    // requests with the replica that answered.
    let admin = LOAD_SIDECAR.admin;
    let metrics = http_get::get(admin, &admin.to_string(), "/metrics")
        .with_context(|| format!("fetching http://{admin}/metrics failed"))?;
    let ready = format!(
        "outbound_http_balancer_endpoints{{authority=\"{BACKEND_SERVICE}\",endpoint_state=\"ready\"}} 3"
    );
    ensure!(
        metrics.body.lines().any(|line| line == ready),
        "load's sidecar does not balance three ready endpoints ({ready}):\n{}",
        metrics.body
    );
    ensure!(
        metrics
            .body
            .lines()
            .any(|line| line.starts_with("response_total{")
                && line.contains("direction=\"outbound\"")
                && line.contains("dst_service=\"backend\"")
                && line.contains("dst_pod=\"backend-1\"")),
        "load's sidecar labelled no response from backend-1 (dst_service, dst_pod):\n{}",
        metrics.body
    );
    // Every sidecar holds a certificate for its service account.
    for sidecar in SIDECARS {
        wait_for(
            services,
            &format!("{} to be certified", sidecar.name),
            || {
                let admin = sidecar.admin;
                let metrics = http_get::get(admin, &admin.to_string(), "/metrics")?;
                Ok(metrics.body.lines().any(|line| {
                    line.starts_with("identity_cert_refresh_count ") && !line.ends_with(" 0")
                }))
            },
        )?;
    }
    // The controller scrapes the same sidecars: `weft stat` shows traffic
    // for every pod that serves (load only sends).
    wait_for(
        services,
        "weft stat to show each serving pod's traffic",
        || {
            let busy = stat_pods_with_traffic()?;
            Ok(["app", "backend", "backend-1", "backend-2"]
                .iter()
                .all(|pod| busy.iter().any(|name| name == pod)))
        },
    )?;
    let mut load_ok = 0;
    for load in LOADS {
        let line = services.wait_for_line(load, LOAD_REPORT_LIMIT)?;
        let (ok, failed) = parse_load_report(&line)
            .with_context(|| format!("{load} printed {line:?}, not `ok=N failed=M`"))?;
        ensure!(
            ok > 0 && failed == 0,
            "{load} reported {line:?}: its requests are failing"
        );
        load_ok += ok;
    }
    println!(
        "demo check passed: the sidecars run the controller's chains (authz answered 403 for /admin, \
         the split counts its choices), {REQUESTS_PER_LISTENER} requests through app's sidecar and \
         {REQUESTS_PER_LISTENER} through load's split succeeded, the backend Service's three replicas share \
         its load, golden metrics are counted with dst_* labels, every sidecar is certified for its service \
         account, sidecars speak mTLS to each other, `weft stat` shows every serving pod's traffic, load \
         generators had {load_ok} successes and no failures"
    );
    Ok(())
}

/// The pods `weft stat pod -n demo -o json` shows with requests per second
/// above zero.
fn stat_pods_with_traffic() -> std::io::Result<Vec<String>> {
    let output = std::process::Command::new(workspace::debug_dir().join("weft"))
        .args(["stat", "pod", "-n", "demo", "-o", "json"])
        .args(["--stats-api", &format!("http://{STATS}")])
        .output()?;
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let busy = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["rps"].as_f64().is_some_and(|rps| rps > 0.0));
    Ok(busy
        .filter_map(|row| Some(row["name"].as_str()?.to_string()))
        .collect())
}

/// Polls `done` until it holds, within `CHAIN_LIMIT`.
fn wait_for(
    services: &mut Services,
    what: &str,
    mut done: impl FnMut() -> std::io::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + CHAIN_LIMIT;
    loop {
        if done().with_context(|| format!("waiting for {what}"))? {
            return Ok(());
        }
        services.ensure_all_running()?;
        if std::time::Instant::now() > deadline {
            bail!(
                "timed out after {CHAIN_LIMIT:?} waiting for {what}; weft-controller's stderr:\n{}",
                services.stderr_of("weft-controller")
            );
        }
        services.idle(Duration::from_millis(200))?;
    }
}

fn expect_replies(
    through: &str,
    addr: SocketAddr,
    host: &str,
    expected: &[&str],
) -> anyhow::Result<()> {
    for attempt in 1..=REQUESTS_PER_LISTENER {
        let reply = http_get::get(addr, host, "/").with_context(|| {
            format!("request {attempt} through {through} at {addr} (Host: {host}) failed")
        })?;
        if reply.status != 200 || !expected.contains(&reply.body.as_str()) {
            bail!(
                "request {attempt} through {through} at {addr} (Host: {host}) answered {} {:?}, expected 200 and one of {expected:?}",
                reply.status,
                reply.body
            );
        }
    }
    Ok(())
}

fn expect_metrics(admin: SocketAddr, series: &str) -> anyhow::Result<()> {
    let reply = http_get::get(admin, &admin.to_string(), "/metrics")
        .with_context(|| format!("fetching http://{admin}/metrics failed"))?;
    ensure!(
        reply.status == 200,
        "http://{admin}/metrics answered {}",
        reply.status
    );
    ensure!(
        reply.body.contains(series),
        "http://{admin}/metrics has no `{series}` series:\n{}",
        reply.body
    );
    Ok(())
}

/// `ok=N failed=M`, as `weft-demo load` prints each second.
fn parse_load_report(line: &str) -> Option<(u64, u64)> {
    let (ok, failed) = line.trim().split_once(' ')?;
    Some((
        ok.strip_prefix("ok=")?.parse().ok()?,
        failed.strip_prefix("failed=")?.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_load_reports() {
        assert_eq!(parse_load_report("ok=20 failed=0"), Some((20, 0)));
        assert_eq!(parse_load_report("ok=3 failed=17\n"), Some((3, 17)));
        assert_eq!(parse_load_report("listening on 127.0.0.1:1"), None);
        assert_eq!(parse_load_report("ok=x failed=0"), None);
    }
}
