//! `weft-proxy` as a real process on loopback ports chosen by the kernel.
//! Its "listening" log lines are the readiness signal and tell the ports.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::{Metrics, PATIENCE, binaries, http1};

pub struct Proxy {
    env: Vec<(String, String)>,
    /// A command that runs the proxy (e.g. `ip netns exec NS setpriv ...`).
    wrapper: Vec<String>,
}

pub struct RunningProxy {
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    /// The tap server, with an identity (it starts before the admin server).
    pub tap: Option<SocketAddr>,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// Reads stderr to its end; awaited in `wait` so that every line the
    /// process wrote is in `logs` once it has exited.
    log_reader: Option<tokio::task::JoinHandle<()>>,
}

impl Default for Proxy {
    fn default() -> Self {
        Self::new()
    }
}

impl Proxy {
    pub fn new() -> Self {
        Self {
            env: Vec::new(),
            wrapper: Vec::new(),
        }
        .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
        .env("WEFT_PROXY_TAP_LISTEN", "127.0.0.1:0")
        .env("WEFT_LOG", "info")
    }

    /// Inbound traffic goes to `addr` (no iptables here).
    pub fn inbound_app(self, addr: SocketAddr) -> Self {
        self.env("WEFT_PROXY_INBOUND_APP_ADDR", &addr.to_string())
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the proxy through `wrapper`, which ends with the binary to run;
    /// its listeners are then not reachable from the test, so readiness is
    /// only the "listening" log lines.
    pub fn wrapped(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|a| a.to_string()).collect();
        self
    }

    /// The proxy's command, for tests that run it some other way.
    pub fn command(&self) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            None => Command::new(binaries::path("weft-proxy")),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
        };
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WEFT_")) {
            cmd.env_remove(key);
        }
        cmd.envs(self.env.iter().cloned())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Starts the proxy and waits until `/ready` answers 200 (a proxy
    /// taking its chain from the controller is ready once the chain is in).
    pub async fn spawn(self) -> RunningProxy {
        let check_ready = self.wrapper.is_empty();
        let proxy = self.spawn_unready().await;
        if check_ready {
            crate::eventually("the proxy becomes ready", || proxy.ready()).await;
        }
        proxy
    }

    /// Starts the proxy and returns once it listens, ready or not.
    pub async fn spawn_unready(self) -> RunningProxy {
        let mut child = self.command().spawn().expect("starting weft-proxy");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = logs.clone();
        let log_reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[weft-proxy] {line}");
                if let Some(listening) = parse_listening(&line) {
                    let _ = tx.send(listening);
                }
                log.lock().unwrap().push(line);
            }
        });
        let (mut inbound, mut outbound, mut admin, mut tap) = (None, None, None, None);
        while inbound.is_none() || outbound.is_none() || admin.is_none() {
            let next = tokio::time::timeout(PATIENCE, rx.recv()).await;
            let Ok(Some((listener, addr))) = next else {
                panic!(
                    "weft-proxy did not start: {}",
                    logs.lock().unwrap().join("\n")
                );
            };
            match listener.as_str() {
                "inbound" => inbound = Some(addr),
                "outbound" => outbound = Some(addr),
                "admin" => admin = Some(addr),
                "tap" => tap = Some(addr),
                _ => {}
            }
        }
        RunningProxy {
            inbound: inbound.unwrap(),
            outbound: outbound.unwrap(),
            admin: admin.unwrap(),
            tap,
            child,
            logs,
            log_reader: Some(log_reader),
        }
    }
}

/// `... listening listener=inbound addr=127.0.0.1:4143`
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    let rest = line.split_once(" listening ")?.1;
    let listener = rest.split_once("listener=")?.1.split_whitespace().next()?;
    let addr = rest.split_once("addr=")?.1.split_whitespace().next()?;
    Some((listener.to_string(), addr.parse().ok()?))
}

impl RunningProxy {
    /// `Ok` when `/ready` answers 200, else what it answered.
    pub async fn ready(&self) -> Result<(), String> {
        let ready = http1::get(self.admin, "admin", "/ready").await;
        match ready.status.as_u16() {
            200 => Ok(()),
            status => Err(format!("/ready answered {status}: {}", ready.text())),
        }
    }

    pub async fn metrics(&self) -> Metrics {
        let rsp = http1::get(self.admin, "admin", "/metrics").await;
        assert_eq!(rsp.status, 200);
        Metrics::parse(&rsp.text())
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("proxy still running")
    }

    /// Sends SIGTERM, as Kubernetes does when a pod stops.
    pub fn terminate(&self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM).expect("signalling the proxy");
    }

    /// Whether the process is still up (it has not crashed or exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("checking the proxy process")
            .is_none()
    }

    pub async fn wait(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("proxy did not exit in time")
            .unwrap();
        if let Some(reader) = self.log_reader.take() {
            tokio::time::timeout(PATIENCE, reader)
                .await
                .expect("proxy's stderr still open after it exited")
                .expect("reading the proxy's logs");
        }
        status
    }

    /// The most memory the proxy has held (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// `Ok` once the proxy has logged `text`; else its logs so far, for
    /// [`eventually`](crate::eventually).
    pub fn logged(&self, text: &str) -> Result<(), String> {
        let logs = self.logs();
        if logs.contains(text) {
            Ok(())
        } else {
            Err(logs)
        }
    }
}
