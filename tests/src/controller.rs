//! `weft-controller` as a real process serving a directory of resources.
//! Its "listening" log line is the readiness signal and tells the address.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{PATIENCE, binaries};

pub struct RunningController {
    pub addr: SocketAddr,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl RunningController {
    /// Serves `dir` on `listen` (port 0 picks one).
    pub async fn spawn(dir: &Path, listen: SocketAddr) -> Self {
        let mut child = Command::new(binaries::path("weft-controller"))
            .env_clear()
            .env("WEFT_CONTROLLER_DIR", dir)
            .env("WEFT_CONTROLLER_LISTEN_ADDR", listen.to_string())
            .env("WEFT_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting weft-controller");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[weft-controller] {line}");
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                log.lock().unwrap().push(line);
            }
        });
        let addr = tokio::time::timeout(PATIENCE, rx.recv()).await;
        let Ok(Some(addr)) = addr else {
            panic!(
                "weft-controller did not start: {}",
                logs.lock().unwrap().join("\n")
            );
        };
        Self { addr, child, logs }
    }

    /// The address proxies are given (`WEFT_PROXY_CONTROLLER_ADDR`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// `Ok` once the controller has logged `text`, else its logs so far.
    pub fn logged(&self, text: &str) -> Result<(), String> {
        let logs = self.logs.lock().unwrap().join("\n");
        if logs.contains(text) {
            Ok(())
        } else {
            Err(logs)
        }
    }
}

/// `... listening addr=127.0.0.1:8090 dir=...`
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once(" listening ")?.1;
    let addr = rest
        .split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))?;
    addr.parse().ok()
}
