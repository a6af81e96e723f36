//! `cargo xtask bench --idle`: what an idle keep-alive connection costs
//! Weft and HAProxy in resident memory, measured in the same run. Clients
//! open 1,000, then 5,000, then 10,000 connections (as many as the open
//! files limit allows), each sending one request, reading its answer and
//! then saying nothing; the proxy's RSS is read at each step, against its
//! RSS once warm. HTTP/1.1 and HTTP/2 each get a fresh proxy. The table
//! replaces the "Idle connections" section of `docs/benchmarks.md`, which
//! a full `cargo xtask bench` run keeps.

mod clients;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use super::Target;
use super::peers::render;
use super::setup::{self, Setup};
use crate::harness::processes::{Processes, ensure_not_interrupted, pin_this_process, pinned};
use crate::harness::weft::{AUTHORITY, Listeners, Proxy, start_app};
use crate::harness::{self, CLIENT_CPU, PROXY_CPU, Scratch, free_ports, loopback, wait_for_200};
use crate::reliability::{pause, raise_open_files_limit, rss_kb};
use crate::workspace;
use clients::{Idle, Protocol};

const HAPROXY_TEMPLATE: &str = include_str!("../../../bench/haproxy-idle.cfg");
/// Connections held at each step, as far as open files allow.
const STEPS: [usize; 3] = [1_000, 5_000, 10_000];
/// Open files each process keeps for other uses than the connections.
const OPEN_FILES_SPARE: u64 = 100;
/// Open files HAProxy keeps besides two per connection (it refuses to
/// start when `maxconn` leaves it fewer).
const HAPROXY_OPEN_FILES_SPARE: u64 = 500;
/// A step stops after this many connections in a row got no answer.
const GIVE_UP_AFTER: usize = 20;
/// The section's title in `docs/benchmarks.md`.
pub const SECTION: &str = "## Idle connections";

/// One proxy's figures under one protocol.
struct Measured {
    target: &'static str,
    protocol: Protocol,
    warm_kb: u64,
    /// Connections held and the proxy's RSS then, per step.
    steps: Vec<(usize, u64)>,
    refused: usize,
    /// Whether a new client was still served with every connection open.
    served: bool,
}

pub fn run() -> anyhow::Result<()> {
    harness::ensure_two_cpus()?;
    crate::harness::processes::catch_stop_signals()?;
    let open_files = raise_open_files_limit()?;
    let most = open_files.saturating_sub(OPEN_FILES_SPARE) as usize;
    let steps: Vec<usize> = STEPS.iter().map(|&step| step.min(most)).collect();
    let setup = setup::prepare(&[Target::Weft, Target::Haproxy])?;
    if let Some(reason) = setup.unavailable(Target::Haproxy) {
        anyhow::bail!("HAProxy is needed beside Weft: {reason}");
    }
    let environment = setup.environment();
    pin_this_process(CLIENT_CPU)?;
    let scratch = Scratch::new("weft-bench-idle")?;
    let mut measured = Vec::new();
    for protocol in [Protocol::Http1, Protocol::Http2] {
        for target in ["Weft", "HAProxy"] {
            ensure_not_interrupted()?;
            eprintln!("{target}, {}: {steps:?} idle connections", protocol.label());
            let dir = scratch.dir.join(format!("{target}-{protocol:?}"));
            std::fs::create_dir_all(&dir)?;
            measured.push(measure(&setup, &dir, target, protocol, &steps, open_files)?);
        }
    }
    let date = environment.date.clone();
    let text = section(&measured, &date, open_files);
    println!("\n{text}");
    let doc = workspace::root().join("docs/benchmarks.md");
    let old = std::fs::read_to_string(&doc).unwrap_or_default();
    std::fs::write(&doc, with_section(&old, &text))
        .with_context(|| format!("writing {}", doc.display()))?;
    eprintln!("wrote its section of {}", doc.display());
    Ok(())
}

/// Starts `target` in front of a fresh app and holds idle connections to it
/// step by step.
fn measure(
    setup: &Setup,
    dir: &Path,
    target: &'static str,
    protocol: Protocol,
    steps: &[usize],
    open_files: u64,
) -> anyhow::Result<Measured> {
    let mut processes = Processes::default();
    let app = start_app(&mut processes, &setup.bin)?;
    let (pid, addr, most) = match target {
        "Weft" => start_weft(setup, dir, &mut processes, app.addr)?,
        _ => start_haproxy(dir, &mut processes, app.addr, protocol, open_files)?,
    };
    // Warm: pools, allocator arenas, first-use tables.
    for _ in 0..100 {
        clients::open(protocol, addr, AUTHORITY).context("a warm-up request")?;
    }
    pause(1.0)?;
    let warm_kb = rss_kb(pid);
    let mut held: Vec<Idle> = Vec::with_capacity(steps.last().copied().unwrap_or(0));
    let (mut refused, mut in_a_row) = (0, 0);
    let mut figures = Vec::new();
    for step in steps.iter().map(|&step| step.min(most)) {
        while held.len() < step && in_a_row < GIVE_UP_AFTER {
            if held.len().is_multiple_of(500) {
                ensure_not_interrupted()?;
            }
            match clients::open(protocol, addr, AUTHORITY) {
                Ok(idle) => {
                    held.push(idle);
                    in_a_row = 0;
                }
                Err(_) => {
                    refused += 1;
                    in_a_row += 1;
                }
            }
        }
        pause(2.0)?;
        figures.push((held.len(), rss_kb(pid)));
    }
    let served = clients::open(protocol, addr, AUTHORITY).is_ok();
    processes.ensure_running()?;
    drop(held);
    Ok(Measured {
        target,
        protocol,
        warm_kb,
        steps: figures,
        refused,
        served,
    })
}

/// weft-proxy with no plugins; its inbound listener, which detects both
/// protocols, and no limit of its own on connections. Kept-alive HTTP/1
/// connections would otherwise be closed at the header read timeout
/// (10 s) while the steps are counted.
fn start_weft(
    setup: &Setup,
    dir: &Path,
    processes: &mut Processes,
    app: SocketAddr,
) -> anyhow::Result<(u32, SocketAddr, usize)> {
    let log = dir.join("weft-proxy.log");
    let proxy = Proxy {
        bin: &setup.bin,
        app,
        chain: None,
        log: &log,
    };
    let env = [("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", OsStr::new("600s"))];
    let running = proxy.start_with(processes, Listeners::free()?, &env)?;
    Ok((running.pid, running.inbound, usize::MAX))
}

/// HAProxy, one thread, as in the throughput runs but with room for as
/// many connections as its open files allow (it counts two per
/// connection, whether or not the server side stays open); its HTTP/1.1 or
/// HTTP/2 port, and how many connections it takes.
fn start_haproxy(
    dir: &Path,
    processes: &mut Processes,
    app: SocketAddr,
    protocol: Protocol,
    open_files: u64,
) -> anyhow::Result<(u32, SocketAddr, usize)> {
    let [http1, http2] = free_ports()?;
    let maxconn = (open_files.saturating_sub(HAPROXY_OPEN_FILES_SPARE) / 2) as usize;
    let values = [
        ("listen_port", http1.to_string()),
        ("h2_port", http2.to_string()),
        ("upstream_port", app.port().to_string()),
        ("maxconn", maxconn.to_string()),
    ];
    let config = dir.join("haproxy.cfg");
    std::fs::write(&config, render(HAPROXY_TEMPLATE, &values)?)?;
    let log = File::create(dir.join("haproxy.log"))?;
    let mut command = pinned(PROXY_CPU, "haproxy");
    command.arg("-db").arg("-f").arg(&config);
    command.stdout(log.try_clone()?).stderr(log);
    let pid = processes.spawn("haproxy", &mut command)?.id();
    let addr = loopback(match protocol {
        Protocol::Http1 => http1,
        Protocol::Http2 => http2,
    });
    wait_for_200(processes, loopback(http1), AUTHORITY, "/")
        .with_context(|| harness::tail(&dir.join("haproxy.log")))?;
    // A few for the warm-up's and the last check's connections.
    Ok((pid, addr, maxconn.saturating_sub(10)))
}

/// The section for `docs/benchmarks.md`.
fn section(measured: &[Measured], date: &str, open_files: u64) -> String {
    let mut out = format!("{SECTION}\n\n");
    let _ = writeln!(
        out,
        "- **Date**: {date}\n- **Command**: `cargo xtask bench --idle`\n- **How**: each client \
         connection sends one `GET /`, reads its 200 and then stays open, saying nothing; the \
         proxy (Weft with no plugins, HAProxy with one thread, each alone on CPU 1) forwards to \
         `weft-demo http`, in the protocol the client spoke. Per connection: the proxy's RSS \
         with them all open, less its RSS once warm, over their number; each upstream side is \
         included. Open files are limited to {open_files} per process here: Weft holds \
         one per client connection (its upstream connections are pooled), HAProxy counts two \
         per connection and takes at most half as many, so its last step may hold fewer \
         (`Weft / HAProxy` in the connections column)."
    );
    let _ = writeln!(
        out,
        "\n| protocol | connections | Weft RSS MB | Weft KB per connection | HAProxy RSS MB | HAProxy KB per connection | Weft ÷ HAProxy |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let of = |target| {
            measured
                .iter()
                .find(|m| m.protocol == protocol && m.target == target)
        };
        let (Some(weft), Some(haproxy)) = (of("Weft"), of("HAProxy")) else {
            continue;
        };
        for (index, &(count, weft_kb)) in weft.steps.iter().enumerate() {
            let Some(&(haproxy_count, haproxy_kb)) = haproxy.steps.get(index) else {
                continue;
            };
            let per = |m: &Measured, rss: u64, n: usize| {
                rss.saturating_sub(m.warm_kb) as f64 / n.max(1) as f64
            };
            let (weft_per, haproxy_per) = (
                per(weft, weft_kb, count),
                per(haproxy, haproxy_kb, haproxy_count),
            );
            let counts = if count == haproxy_count {
                count.to_string()
            } else {
                format!("{count} / {haproxy_count}")
            };
            let _ = writeln!(
                out,
                "| {} | {counts} | {:.1} | {weft_per:.1} | {:.1} | {haproxy_per:.1} | {:.2}× |",
                protocol.label(),
                weft_kb as f64 / 1024.0,
                haproxy_kb as f64 / 1024.0,
                weft_per / haproxy_per.max(0.01),
            );
        }
    }
    let _ = writeln!(out);
    for m in measured {
        let _ = writeln!(
            out,
            "- {} over {}: RSS once warm {:.1} MB; {} connections refused; a new client {} with all of them open.",
            m.target,
            m.protocol.label(),
            m.warm_kb as f64 / 1024.0,
            m.refused,
            if m.served { "served" } else { "**not served**" },
        );
    }
    out
}

/// `doc` with its idle-connections section replaced by `section`, or
/// `section` added before the notes when it has none.
pub fn with_section(doc: &str, section: &str) -> String {
    let section = format!("{}\n", section.trim_end());
    if let Some((start, end)) = bounds(doc) {
        let rest = &doc[end..];
        let gap = if rest.is_empty() { "" } else { "\n" };
        return format!("{}{section}{gap}{rest}", &doc[..start]);
    }
    match doc.find("\n## Notes") {
        Some(notes) => format!("{}{section}{}", &doc[..=notes], &doc[notes..]),
        None if doc.is_empty() => section,
        None => format!("{}\n\n{section}", doc.trim_end()),
    }
}

/// The idle-connections section of `doc`, if it has one.
pub fn section_of(doc: &str) -> Option<&str> {
    bounds(doc).map(|(start, end)| doc[start..end].trim_end())
}

/// Where the section starts, and where the next one does (or the end).
fn bounds(doc: &str) -> Option<(usize, usize)> {
    let start = doc.find(SECTION)?;
    let body = start + SECTION.len();
    let end = doc[body..]
        .find("\n## ")
        .map_or(doc.len(), |i| body + i + 1);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Benchmarks\n\n## HTTP/2\n\ntable\n\n## Notes\n\n- a note\n";

    #[test]
    fn the_section_goes_before_the_notes_then_replaces_itself() {
        let first = with_section(DOC, "## Idle connections\n\nfirst\n");
        assert_eq!(
            first,
            "# Benchmarks\n\n## HTTP/2\n\ntable\n\n## Idle connections\n\nfirst\n\n## Notes\n\n- a note\n"
        );
        let second = with_section(&first, "## Idle connections\n\nsecond");
        assert_eq!(second, first.replace("first", "second"));
        assert_eq!(section_of(&second), Some("## Idle connections\n\nsecond"));
        assert_eq!(section_of(DOC), None);
    }
}
