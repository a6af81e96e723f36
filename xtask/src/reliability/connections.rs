//! Hostile clients by the thousand: idle keep-alive connections (what each
//! costs the proxy) and slowloris connections (closed at the header read
//! timeout while a normal client is served).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hdrhistogram::Histogram;

use super::load::{pause, rss_kb};
use super::report::Row;
use super::{Setup, chain_file};
use crate::bench::fixed_rate::connection::Connection;
use crate::harness::processes::{Processes, ensure_not_interrupted};
use crate::harness::weft::{AUTHORITY, Listeners, Proxy, RunningProxy, start_app};
use crate::harness::{HTTP_TIMEOUT, http_status};

/// Slowloris connections get this long to be closed (the detection and
/// header read timeouts, 10 s each by default, and some slack).
const SLOWLORIS_LIMIT: Duration = Duration::from_secs(45);
/// A slowloris client sends one more byte of its head this often.
const TRICKLE_EVERY: Duration = Duration::from_millis(1000);
/// The normal client's pace while slowloris connections hang.
const NORMAL_EVERY: Duration = Duration::from_millis(20);

/// Starts the app and a proxy running `plugins` with extra settings.
fn start(
    setup: &Setup,
    processes: &mut Processes,
    name: &str,
    plugins: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<RunningProxy> {
    let app = start_app(processes, &setup.bin)?;
    let chain = setup.scratch.join(format!("{name}.json"));
    chain_file(setup, &chain, plugins, app.addr)?;
    let log = setup.scratch.join(format!("{name}.log"));
    let proxy = Proxy {
        bin: &setup.bin,
        app: app.addr,
        chain: (!plugins.is_empty()).then_some(chain.as_path()),
        log: &log,
    };
    proxy.start_with(processes, Listeners::free()?, env)
}

/// `count` keep-alive connections, each after one request, held idle:
/// the proxy's resident memory before and after, per connection.
pub fn idle(setup: &Setup, count: usize, plugins: &[&str]) -> anyhow::Result<Row> {
    let mut processes = Processes::default();
    // Kept-alive connections are otherwise closed at the header read
    // timeout (10 s), before all of them are open.
    let env = [(
        "WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT",
        std::ffi::OsStr::new("600s"),
    )];
    let name = format!("idle-{}", plugins.len());
    let proxy = start(setup, &mut processes, &name, plugins, &env)?;
    let request = format!("GET / HTTP/1.1\r\nHost: {AUTHORITY}\r\n\r\n").into_bytes();
    // Warm: pools, plugin instances, allocator arenas.
    let mut warm = Connection::open(proxy.inbound, HTTP_TIMEOUT)?;
    for _ in 0..100 {
        warm.exchange(&request)?;
    }
    drop(warm);
    pause(1.0)?;
    let before = rss_kb(proxy.pid);

    let mut held = Vec::with_capacity(count);
    let mut failed = 0;
    for i in 0..count {
        if i % 500 == 0 {
            ensure_not_interrupted()?;
        }
        let mut connection = Connection::open(proxy.inbound, HTTP_TIMEOUT)
            .with_context(|| format!("opening connection {i}"))?;
        match connection.exchange(&request) {
            Ok(answer) if answer.status == 200 => held.push(connection),
            _ => failed += 1,
        }
    }
    pause(2.0)?;
    let after = rss_kb(proxy.pid);
    let served = http_status(proxy.inbound, AUTHORITY, "/").is_ok_and(|s| s == 200);
    processes.ensure_running()?;
    drop(held);

    let per_connection = after.saturating_sub(before) as f64 / count as f64;
    let chain = if plugins.is_empty() {
        "no plugins".to_string()
    } else {
        plugins.join(", ")
    };
    Ok(Row {
        area: "hostile clients",
        what: format!("idle keep-alive connections ({chain})"),
        load: format!("{count} connections open at once, one request each, then idle"),
        result: format!(
            "RSS {:.1} → {:.1} MB: {per_connection:.1} KB per connection (upstream connections pooled); {failed} refused; a new client {}",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            if served { "served" } else { "**not served**" }
        ),
        target: "all held, memory per connection reported",
        met: failed == 0 && served,
    })
}

/// `count` connections each trickling a request head a byte a second:
/// how long until the proxy closed them all, its memory meanwhile, and a
/// normal client's latency.
pub fn slowloris(setup: &Setup, count: usize) -> anyhow::Result<Row> {
    let mut processes = Processes::default();
    let proxy = start(setup, &mut processes, "slowloris", &[], &[])?;
    let before = rss_kb(proxy.pid);
    let normal = NormalClient::start(proxy.inbound);

    let started = Instant::now();
    let mut open: Vec<(TcpStream, usize)> = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = TcpStream::connect_timeout(&proxy.inbound, HTTP_TIMEOUT)?;
        stream.set_nonblocking(true)?;
        open.push((stream, 0));
    }
    let head = b"GET / HTTP/1.1\r\nHost: slow\r\nx-slow: ";
    let mut closed_after = Vec::with_capacity(count);
    let mut peak = before;
    while !open.is_empty() && started.elapsed() < SLOWLORIS_LIMIT {
        ensure_not_interrupted()?;
        open.retain_mut(|(stream, sent)| {
            let byte = head.get(*sent).copied().unwrap_or(b'a');
            let alive = stream.write(&[byte]).is_ok() && !closed_by_peer(stream);
            *sent += 1;
            if !alive {
                closed_after.push(started.elapsed());
            }
            alive
        });
        peak = peak.max(rss_kb(proxy.pid));
        std::thread::sleep(TRICKLE_EVERY);
    }
    let left_open = open.len();
    drop(open);
    let (latencies, failures) = normal.finish()?;
    processes.ensure_running()?;

    closed_after.sort();
    let last = closed_after.last().copied().unwrap_or_default();
    let first = closed_after.first().copied().unwrap_or_default();
    Ok(Row {
        area: "hostile clients",
        what: "slowloris: request heads trickled a byte a second (default limits)".to_string(),
        load: format!("{count} connections at once, a normal client every 20 ms meanwhile"),
        result: format!(
            "{} closed between {:.1} s and {:.1} s, {left_open} left open after {} s; RSS {:.1} → peak {:.1} MB; normal client: {} requests, {failures} failed, p50 {:.2} ms, p99 {:.2} ms",
            closed_after.len(),
            first.as_secs_f64(),
            last.as_secs_f64(),
            SLOWLORIS_LIMIT.as_secs(),
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            latencies.len(),
            latencies.value_at_quantile(0.5) as f64 / 1000.0,
            latencies.value_at_quantile(0.99) as f64 / 1000.0,
        ),
        target: "all closed after the header read timeout, others served",
        met: left_open == 0 && failures == 0,
    })
}

/// Whether the proxy has closed `stream` (a nonblocking socket).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != ErrorKind::WouldBlock,
    }
}

/// A client sending ordinary requests on new connections at a steady pace.
struct NormalClient {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<(Histogram<u64>, u64)>>,
}

impl NormalClient {
    fn start(addr: SocketAddr) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut failures = 0;
            while !stopped.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match http_status(addr, "app", "/") {
                    Ok(200) => latencies.saturating_record(sent.elapsed().as_micros() as u64),
                    _ => failures += 1,
                }
                std::thread::sleep(NORMAL_EVERY);
            }
            Ok((latencies, failures))
        });
        Self { stop, thread }
    }

    fn finish(self) -> anyhow::Result<(Histogram<u64>, u64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let result = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the normal client panicked"))?;
        let (latencies, failures) = result?;
        ensure!(
            !latencies.is_empty(),
            "the normal client was never answered"
        );
        Ok((latencies, failures))
    }
}
