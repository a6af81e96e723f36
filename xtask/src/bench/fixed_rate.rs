//! The fixed-rate HTTP/1.1 load: requests sent on a schedule over a few
//! keep-alive connections, each latency measured from the moment the
//! request was *meant* to go out. A stall then shows up in the latencies of
//! every request it delayed, not just the one it hit (coordinated
//! omission, which closed-loop tools like wrk hide). It also counts which
//! upstream instance answered each request, by the name `weft-demo` puts
//! in `x-demo-name`: how a balancer shared the load.
//!
//! It runs as a hidden `cargo xtask` subcommand so taskset can pin it to
//! the client CPU like every other load generator, with one blocking
//! thread per connection: at a few thousand requests a second, a sleep per
//! request is precise enough once the timer slack is lowered.

pub mod connection;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;

use super::measure::Load;
use crate::harness::processes::{output_within, pinned};
use crate::harness::{CLIENT_CPU, LOAD_GRACE};
use connection::Connection;

pub const RATE: u32 = 2_000;
pub const CONNECTIONS: u32 = 16;
/// An unanswered request fails after this, and its connection is replaced.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Past the end of the schedule, requests not yet sent count as failed.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// Time to open every connection before the first request is due.
const START_DELAY: Duration = Duration::from_millis(50);
/// Latencies are kept in microseconds, up to a minute, to 3 digits.
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Args)]
pub struct FixedRateArgs {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = RATE)]
    rate: u32,
    #[arg(long, default_value_t = CONNECTIONS)]
    connections: u32,
    #[arg(long)]
    seconds: u64,
}

/// The command line, for reports.
pub fn describe(seconds: u64) -> String {
    format!(
        "{RATE} req/s for {seconds}s over {CONNECTIONS} HTTP/1.1 keep-alive connections, \
         latency from each request's scheduled send time (xtask's generator)"
    )
}

/// Runs the generator pinned to the client CPU and reads its report.
pub fn run(addr: SocketAddr, host: &str, seconds: u64) -> anyhow::Result<Load> {
    run_at(addr, host, RATE, seconds)
}

/// The same at `rate` requests a second.
pub fn run_at(addr: SocketAddr, host: &str, rate: u32, seconds: u64) -> anyhow::Result<Load> {
    // This very binary, even after a build in the shared target directory
    // has replaced the file it was started from.
    let exe = format!("/proc/{}/exe", std::process::id());
    let mut command = pinned(CLIENT_CPU, exe);
    command
        .arg("bench-fixed-rate")
        .args(["--addr", &addr.to_string(), "--host", host])
        .args(["--rate", &rate.to_string()])
        .args(["--seconds", &seconds.to_string()]);
    let limit = Duration::from_secs(seconds) + LOAD_GRACE;
    let output = output_within(&mut command, limit)?;
    parse_report(&output).with_context(|| format!("cannot read the generator's report: {output}"))
}

/// The hidden subcommand: runs the schedule and prints one JSON report.
pub fn generate(args: &FixedRateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.connections > 0,
        "--rate and --connections must be positive"
    );
    // Threads inherit it: wake-ups within a few µs of the schedule, not 50.
    let _ = std::fs::write("/proc/self/timerslack_ns", "1");
    let request = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", args.host).into_bytes();
    let mut connections = Vec::new();
    for _ in 0..args.connections {
        connections.push(Connection::open(args.addr, REQUEST_TIMEOUT)?);
    }
    let start = Instant::now() + START_DELAY;
    let spacing = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let schedule = Schedule {
        end: start + Duration::from_secs(args.seconds),
        every: spacing * args.connections,
        request,
    };
    let threads: Vec<_> = connections
        .into_iter()
        .zip(0..)
        .map(|(connection, index)| {
            let first = start + spacing * index;
            let schedule = schedule.clone();
            std::thread::spawn(move || schedule.run(connection, first))
        })
        .collect();
    let mut tally = Tally::new()?;
    for thread in threads {
        let part = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        tally.add(&part)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{}", tally.report(seconds));
    Ok(())
}

/// One connection's share of the schedule.
#[derive(Clone)]
struct Schedule {
    end: Instant,
    every: Duration,
    request: Vec<u8>,
}

impl Schedule {
    fn run(&self, mut connection: Connection, first: Instant) -> Tally {
        let mut tally = Tally::new().expect("the bounds are valid");
        let mut due = first;
        while due < self.end {
            let now = Instant::now();
            if now > self.end + DRAIN_LIMIT {
                tally.errors += 1;
            } else {
                std::thread::sleep(due.saturating_duration_since(now));
                match connection.exchange(&self.request) {
                    Ok(answer) if (200..400).contains(&answer.status) => {
                        tally.record(due.elapsed(), answer.from);
                    }
                    Ok(_) => tally.errors += 1,
                    Err(_) => {
                        tally.errors += 1;
                        connection.reopen();
                    }
                }
            }
            due += self.every;
        }
        tally
    }
}

/// Latencies of the requests answered with 2xx/3xx, and the rest counted.
struct Tally {
    latencies_us: Histogram<u64>,
    /// The 2xx/3xx answers by the instance that gave them.
    answered_by: BTreeMap<String, u64>,
    errors: u64,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latencies_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
            answered_by: BTreeMap::new(),
            errors: 0,
        })
    }

    fn record(&mut self, latency: Duration, from: Option<String>) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies_us.saturating_record(micros.max(1));
        if let Some(from) = from {
            *self.answered_by.entry(from).or_default() += 1;
        }
    }

    fn add(&mut self, other: &Self) -> anyhow::Result<()> {
        self.latencies_us.add(&other.latencies_us)?;
        for (from, count) in &other.answered_by {
            *self.answered_by.entry(from.clone()).or_default() += count;
        }
        self.errors += other.errors;
        Ok(())
    }

    fn report(&self, seconds: f64) -> serde_json::Value {
        let at = |quantile| self.latencies_us.value_at_quantile(quantile);
        json!({
            "requests": self.latencies_us.len(),
            "errors": self.errors,
            "seconds": seconds,
            "p50_us": at(0.5),
            "p99_us": at(0.99),
            "p999_us": at(0.999),
            "max_us": self.latencies_us.max(),
            "answered_by": self.answered_by,
        })
    }
}

fn parse_report(output: &str) -> Option<Load> {
    let report: serde_json::Value = serde_json::from_str(output.trim()).ok()?;
    let number = |key: &str| report.get(key)?.as_f64();
    let requests = report.get("requests")?.as_u64()?;
    let answered_by = match report.get("answered_by") {
        None => BTreeMap::new(),
        Some(counts) => serde_json::from_value(counts.clone()).ok()?,
    };
    Some(Load {
        requests,
        per_second: requests as f64 / number("seconds")?,
        p50_ms: number("p50_us")? / 1e3,
        p99_ms: number("p99_us")? / 1e3,
        p999_ms: Some(number("p999_us")? / 1e3),
        errors: report.get("errors")?.as_u64()?,
        answered_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_report() {
        let mut tally = Tally::new().unwrap();
        for micros in 1..=1000 {
            let from = ["a", "b", "slow"][micros as usize % 3];
            tally.record(Duration::from_micros(micros), Some(from.into()));
        }
        tally.errors = 2;
        let load = parse_report(&tally.report(0.5).to_string()).unwrap();
        assert_eq!(load.requests, 1000);
        assert_eq!(load.errors, 2);
        assert!((load.per_second - 2000.0).abs() < 1e-9);
        assert!((load.p50_ms - 0.5).abs() < 0.001);
        assert!((load.p99_ms - 0.99).abs() < 0.001);
        assert!((load.p999_ms.unwrap() - 0.999).abs() < 0.001);
        let shares: Vec<(&str, u64)> = load
            .answered_by
            .iter()
            .map(|(from, count)| (from.as_str(), *count))
            .collect();
        assert_eq!(shares, [("a", 333), ("b", 334), ("slow", 333)]);
    }
}
