//! Demo services (`weft-demo`) as real processes: the upstreams of most tests.

use std::net::SocketAddr;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{PATIENCE, binaries};

pub struct Demo {
    args: Vec<String>,
}

pub struct RunningDemo {
    pub addr: SocketAddr,
    _child: Child,
}

impl Demo {
    /// An HTTP/1.1 + HTTP/2 service answering `hello from NAME` on `/`.
    pub fn http(name: &str) -> Self {
        Self::with(&["http", "--name", name])
    }

    /// The same, waiting `delay_ms` before every answer: a slow replica.
    pub fn slow_http(name: &str, delay_ms: u64) -> Self {
        Self::with(&["http", "--name", name, "--delay-ms", &delay_ms.to_string()])
    }

    /// Echoes bytes until the client half-closes.
    pub fn tcp_echo() -> Self {
        Self::with(&["tcp-echo"])
    }

    /// A TCP echo server that speaks first.
    pub fn tcp_greeter(greeting: &str) -> Self {
        Self::with(&["tcp-echo", "--greeting", greeting])
    }

    fn with(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub async fn spawn(self) -> RunningDemo {
        let mut child = Command::new(binaries::path("weft-demo"))
            .args(&self.args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting weft-demo");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("weft-demo did not report its address in time")
            .unwrap()
            .expect("weft-demo exited before listening");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from weft-demo: {line}"));
        RunningDemo {
            addr,
            _child: child,
        }
    }
}
