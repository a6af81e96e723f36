//! What the benchmarks share: the CPU pinning, starting and stopping the
//! processes under test, reading their CPU time and memory from /proc, wrk,
//! and the Weft binaries with the demo app they proxy to.
//!
//! The proxy under test runs alone on CPU 1; the load and the app share
//! CPU 0, the pinning that gave stable figures on two cores. CPU time per
//! request comes from the proxy's own utime and stime, so it stays
//! comparable when the client side is the bottleneck.

pub mod processes;
pub mod procfs;
pub mod weft;
pub mod wrk;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::test::{apt_get, on_path};
use processes::{Processes, ensure_not_interrupted};

pub const PROXY_CPU: &str = "1";
pub const CLIENT_CPU: &str = "0";
/// A smoke run's seconds per measurement.
pub const QUICK_SECONDS: u64 = 3;
/// Lets connections, pools and lazily built state settle before measuring.
pub const WARM_UP_SECONDS: u64 = 1;
/// Includes compiling plugins when the disk cache is cold.
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// A load generator still running this long past its duration is hung.
pub const LOAD_GRACE: Duration = Duration::from_secs(30);
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
pub const POLL: Duration = Duration::from_millis(50);

/// `--duration`'s parser: whole seconds, `10` or `10s`.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    match digits.parse() {
        Ok(0) | Err(_) => Err(format!(
            "`{text}` is not a whole number of seconds (e.g. 10s)"
        )),
        Ok(seconds) => Ok(seconds),
    }
}

pub fn ensure_two_cpus() -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        cpus >= 2,
        "the benchmark pins the proxy to CPU {PROXY_CPU} and the load to CPU {CLIENT_CPU}: \
         it needs 2 CPUs, this process may use {cpus}"
    );
    Ok(())
}

/// The tools of `tools` (a program and the Debian package it comes in)
/// that are not on PATH.
pub fn missing_tools<'a>(tools: &[(&'a str, &'a str)]) -> Vec<&'a str> {
    tools
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(tool, _)| *tool)
        .collect()
}

/// Installs every package of `tools` with apt-get when one of them is
/// missing; without root or apt-get, says what to install instead.
pub fn install_missing(tools: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing = missing_tools(tools);
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = tools.iter().map(|(_, package)| *package).collect();
    ensure!(
        nix::unistd::geteuid().is_root() && on_path("apt-get"),
        "missing {}: install {} (apt-get install {}), or run this as root to have it installed",
        missing.join(", "),
        packages.join(" "),
        packages.join(" ")
    );
    println!(
        "installing {} with apt-get (missing: {})",
        packages.join(" "),
        missing.join(", ")
    );
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(packages);
    apt_get(&install)
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `N` distinct free loopback ports: all bound at once so the kernel hands
/// out different ones, then released for the processes under test.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    for _ in 0..N {
        listeners.push(TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?);
    }
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// The status of `GET path` on its own connection.
pub fn http_status(addr: SocketAddr, host: &str, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    String::from_utf8_lossy(&reply)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))
}

/// Waits until `GET http://addr{path}` answers 200, while every process of
/// `processes` keeps running.
pub fn wait_for_200(
    processes: &mut Processes,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        if http_status(addr, host, path).is_ok_and(|status| status == 200) {
            return Ok(());
        }
        processes.ensure_running()?;
        ensure_not_interrupted()?;
        ensure!(
            Instant::now() < deadline,
            "not ready within {READY_LIMIT:?}: GET http://{addr}{path} never answered 200"
        );
        std::thread::sleep(POLL * 2);
    }
}

/// A scratch directory for configuration files and logs, removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The end of a log, to quote in an error.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations_in_seconds() {
        assert_eq!(parse_seconds("10s"), Ok(10));
        assert_eq!(parse_seconds("3"), Ok(3));
        assert!(parse_seconds("0s").is_err());
        assert!(parse_seconds("1m").is_err());
    }

    #[test]
    fn hands_out_distinct_ports() {
        let [a, b, c] = free_ports().unwrap();
        assert!(a != b && b != c && a != c);
    }
}
