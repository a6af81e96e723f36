//! wrk, the HTTP/1.1 keep-alive load: one thread and 32 connections on the
//! client CPU, as fast as the target answers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use super::processes::{output_within, pinned};
use super::{CLIENT_CPU, LOAD_GRACE};

pub const CONNECTIONS: u32 = 32;

/// The command line, for reports.
pub fn describe(seconds: u64) -> String {
    format!("wrk -t1 -c{CONNECTIONS} -d{seconds}s --latency")
}

/// wrk on the client CPU against `addr` for `seconds`, sending `Host: host`.
pub fn run(addr: SocketAddr, host: &str, seconds: u64) -> anyhow::Result<WrkReport> {
    let mut command = pinned(CLIENT_CPU, "wrk");
    command
        .args(["-t1", "-c", &CONNECTIONS.to_string(), "--latency"])
        .arg(format!("-d{seconds}s"))
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("http://{addr}/"));
    let limit = Duration::from_secs(seconds) + LOAD_GRACE;
    let output = output_within(&mut command, limit)?;
    parse_wrk(&output).with_context(|| format!("cannot read wrk's report:\n{output}"))
}

/// What we read from `wrk --latency`.
#[derive(Debug, PartialEq)]
pub struct WrkReport {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// wrk's "Socket errors" line, when there is one.
    pub socket_errors: Option<String>,
}

fn parse_wrk(output: &str) -> Option<WrkReport> {
    let mut requests = None;
    let mut per_second = None;
    let (mut p50_ms, mut p99_ms) = (None, None);
    let mut non_2xx = 0;
    let mut socket_errors = None;
    for line in output.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("50%") {
            p50_ms = wrk_time_ms(value.trim());
        } else if let Some(value) = line.strip_prefix("99%") {
            p99_ms = wrk_time_ms(value.trim());
        } else if let Some(value) = line.strip_prefix("Requests/sec:") {
            per_second = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = value.trim().parse().ok()?;
        } else if let Some(value) = line.strip_prefix("Socket errors:") {
            socket_errors = Some(value.trim().to_string());
        } else if let Some((count, _)) = line.split_once(" requests in ") {
            requests = count.parse().ok();
        }
    }
    Some(WrkReport {
        requests: requests?,
        per_second: per_second?,
        p50_ms: p50_ms?,
        p99_ms: p99_ms?,
        non_2xx,
        socket_errors,
    })
}

/// A wrk duration (`480.00us`, `1.80ms`, `2.00s`) in milliseconds.
fn wrk_time_ms(text: &str) -> Option<f64> {
    let units = [
        ("us", 1e-3),
        ("ms", 1.0),
        ("s", 1e3),
        ("m", 60e3),
        ("h", 3600e3),
    ];
    units.into_iter().find_map(|(unit, ms)| {
        let number: f64 = text.strip_suffix(unit)?.parse().ok()?;
        Some(number * ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "\
Running 3s test @ http://127.0.0.1:4143/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   532.14us  210.00us   9.30ms   91.00%
    Req/Sec    57.12k     2.00k   60.00k    80.00%
  Latency Distribution
     50%  480.00us
     75%  560.00us
     90%  700.00us
     99%    1.80ms
  171234 requests in 3.00s, 24.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 0
  Non-2xx or 3xx responses: 5
Requests/sec:  57078.00
Transfer/sec:      8.00MB
";

    #[test]
    fn reads_a_wrk_report() {
        let report = parse_wrk(WRK).unwrap();
        assert_eq!(report.requests, 171_234);
        assert_eq!(report.per_second, 57_078.0);
        assert!((report.p50_ms - 0.48).abs() < 1e-9);
        assert!((report.p99_ms - 1.8).abs() < 1e-9);
        assert_eq!(report.non_2xx, 5);
        assert_eq!(
            report.socket_errors.as_deref(),
            Some("connect 0, read 2, write 0, timeout 0")
        );
        assert!(parse_wrk("unable to connect to 127.0.0.1:1").is_none());
    }

    #[test]
    fn reads_wrk_durations() {
        assert_eq!(wrk_time_ms("2.00s"), Some(2000.0));
        assert_eq!(wrk_time_ms("1.50m"), Some(90_000.0));
        assert_eq!(wrk_time_ms("fast"), None);
    }
}
