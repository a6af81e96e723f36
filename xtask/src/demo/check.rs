//! `cargo xtask demo --check`: proof that the demo works end to end, for CI
//! and for anyone changing the proxy: every request through each listener
//! reaches the right service, the metrics count both directions, and the
//! load generators see no failures.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use super::services::Services;
use super::{ADMIN, BACKEND, INBOUND, LOADS, OUTBOUND, http_get};

const REQUESTS_PER_LISTENER: usize = 20;
/// Load generators report once a second; allow for a slow machine.
const LOAD_REPORT_LIMIT: Duration = Duration::from_secs(5);

pub fn run(services: &mut Services) -> anyhow::Result<()> {
    expect_hellos("inbound", INBOUND, &INBOUND.to_string(), "hello from app\n")?;
    expect_hellos(
        "outbound",
        OUTBOUND,
        &BACKEND.to_string(),
        "hello from backend\n",
    )?;
    expect_metrics()?;
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
        "demo check passed: {REQUESTS_PER_LISTENER} inbound requests reached app, \
         {REQUESTS_PER_LISTENER} outbound reached backend, /metrics counts both directions, \
         load generators had {load_ok} successes and no failures"
    );
    Ok(())
}

fn expect_hellos(
    listener: &str,
    addr: SocketAddr,
    host: &str,
    expected: &str,
) -> anyhow::Result<()> {
    for attempt in 1..=REQUESTS_PER_LISTENER {
        let reply = http_get::get(addr, host, "/").with_context(|| {
            format!("{listener} request {attempt} to {addr} (Host: {host}) failed")
        })?;
        if reply.status != 200 || reply.body != expected {
            bail!(
                "{listener} request {attempt} to {addr} (Host: {host}) answered {} {:?}, expected 200 {expected:?}",
                reply.status,
                reply.body
            );
        }
    }
    Ok(())
}

fn expect_metrics() -> anyhow::Result<()> {
    let reply = http_get::get(ADMIN, &ADMIN.to_string(), "/metrics")
        .with_context(|| format!("fetching http://{ADMIN}/metrics failed"))?;
    ensure!(
        reply.status == 200,
        "http://{ADMIN}/metrics answered {}",
        reply.status
    );
    for direction in ["inbound", "outbound"] {
        let series = format!("tcp_open_total{{direction=\"{direction}\"");
        ensure!(
            reply.body.contains(&series),
            "http://{ADMIN}/metrics has no `{series}` series:\n{}",
            reply.body
        );
    }
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
