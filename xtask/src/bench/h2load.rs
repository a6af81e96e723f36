//! h2load, the HTTP/2 load (prior knowledge, no TLS): 8 connections with
//! 16 streams each on the client CPU. It prints no percentiles, so they come
//! from its per-request log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;

use super::measure::Load;
use crate::harness::processes::{output_within, pinned};
use crate::harness::{CLIENT_CPU, LOAD_GRACE};

const CLIENTS: u32 = 8;
const STREAMS: u32 = 16;

/// The command line, for reports.
pub fn describe(seconds: u64) -> String {
    format!("h2load -t1 -c{CLIENTS} -m{STREAMS} -D{seconds} (h2c prior knowledge)")
}

/// h2load against `addr` for `seconds`, logging each request to `log`.
pub fn run(addr: SocketAddr, host: &str, seconds: u64, log: &Path) -> anyhow::Result<Load> {
    let mut command = pinned(CLIENT_CPU, "h2load");
    command
        .args(["-t1", &format!("-c{CLIENTS}"), &format!("-m{STREAMS}")])
        .arg(format!("-D{seconds}"))
        .arg(format!("--log-file={}", log.display()))
        .args(["-H", &format!(":authority: {host}")])
        .arg(format!("http://{addr}/"));
    let limit = Duration::from_secs(seconds) + LOAD_GRACE;
    let output = output_within(&mut command, limit)?;
    let summary = parse_summary(&output)
        .with_context(|| format!("cannot read h2load's report:\n{output}"))?;
    let log_text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let latencies = parse_log(&log_text)?;
    let ms = |quantile| latencies.value_at_quantile(quantile) as f64 / 1e3;
    Ok(Load {
        requests: summary.succeeded,
        per_second: summary.per_second,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: Some(ms(0.999)),
        errors: summary.errors,
        answered_by: BTreeMap::new(),
    })
}

/// What we read from h2load's summary.
#[derive(Debug, PartialEq)]
struct Summary {
    per_second: f64,
    succeeded: u64,
    /// Failed requests and responses that were not 2xx/3xx.
    errors: u64,
}

fn parse_summary(output: &str) -> Option<Summary> {
    let mut per_second = None;
    let mut counts = None;
    let mut rejected = None;
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            // finished in 10.00s, 51234.50 req/s, 1.23MB/s
            let rate = rest.split(", ").nth(1)?;
            per_second = rate.strip_suffix(" req/s")?.parse().ok();
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            counts = Some(labelled_counts(rest)?);
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            let statuses = labelled_counts(rest)?;
            rejected = Some(count(&statuses, "4xx")? + count(&statuses, "5xx")?);
        }
    }
    let counts = counts?;
    let failed = count(&counts, "failed")?;
    Some(Summary {
        per_second: per_second?,
        succeeded: count(&counts, "succeeded")?,
        errors: failed + rejected?,
    })
}

/// `512 total, 512 started, 0 failed` as (label, count) pairs.
fn labelled_counts(text: &str) -> Option<Vec<(&str, u64)>> {
    text.split(", ")
        .map(|part| {
            let (number, label) = part.trim().split_once(' ')?;
            Some((label, number.parse().ok()?))
        })
        .collect()
}

fn count(counts: &[(&str, u64)], label: &str) -> Option<u64> {
    counts.iter().find(|(l, _)| *l == label).map(|(_, n)| *n)
}

/// Latencies in µs from h2load's log: per request, tab-separated, the start
/// time, the status (-1 when it failed) and the µs until the response ended.
fn parse_log(text: &str) -> anyhow::Result<Histogram<u64>> {
    let mut latencies = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for line in text.lines().filter(|line| !line.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(status), Some(micros)) = (fields.get(1), fields.get(2)) else {
            anyhow::bail!("an h2load log line has fewer than 3 fields: {line:?}");
        };
        let status: i32 = status
            .parse()
            .with_context(|| format!("status in {line:?}"))?;
        let micros: u64 = micros
            .parse()
            .with_context(|| format!("time in {line:?}"))?;
        if (200..400).contains(&status) {
            latencies.saturating_record(micros.max(1));
        }
    }
    anyhow::ensure!(!latencies.is_empty(), "h2load logged no successful request");
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H2LOAD: &str = "\
starting benchmark...
spawning thread #0: 8 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 40000.00 req/s, 3.75MB/s
requests: 80042 total, 80042 started, 80042 done, 80000 succeeded, 42 failed, 42 errored, 0 timeout
status codes: 79990 2xx, 0 3xx, 3 4xx, 7 5xx
traffic: 750.52KB (768528) total, 492.19KB (504000) headers (space savings 44.25%), 117.19KB (120000) data
                     min         max         mean         sd        +/- sd
time for request:      830us     26.81ms      5.80ms      2.73ms    91.94%
";

    #[test]
    fn reads_an_h2load_summary() {
        assert_eq!(
            parse_summary(H2LOAD),
            Some(Summary {
                per_second: 40_000.0,
                succeeded: 80_000,
                errors: 52,
            })
        );
        assert_eq!(parse_summary("connect: Connection refused"), None);
    }

    #[test]
    fn reads_latencies_from_an_h2load_log() {
        let log = "1795401245639946\t200\t100\n1795401245640135\t200\t300\n\
                   1795401245639948\t-1\t9000\n1795401245639949\t200\t200\n";
        let latencies = parse_log(log).unwrap();
        assert_eq!(latencies.len(), 3);
        assert_eq!(latencies.max(), 300);
        assert_eq!(latencies.value_at_quantile(0.5), 200);
        assert!(parse_log("1\t200\n").is_err());
        assert!(parse_log("1\t-1\t5\n").is_err());
    }
}
