//! A real Prometheus on loopback (Debian's `prometheus`), scraping the
//! proxies' admin ports every second with the pod labels Weft's queries
//! group by, as a cluster's scrape configuration adds them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{eventually, eventually_within, http1};

const INSTALL: &str = "apt-get update && apt-get install -y prometheus \
                       (cargo xtask test does it when run as root)";

/// A scraped proxy: its admin address and its pod's labels
/// (`namespace`, `pod`, `serviceaccount`, `deployment`…).
pub struct Target {
    pub admin: SocketAddr,
    pub labels: Vec<(&'static str, String)>,
}

pub struct RunningPrometheus {
    pub addr: SocketAddr,
    dir: PathBuf,
    _child: Child,
}

impl RunningPrometheus {
    /// Starts Prometheus scraping `targets` every second and waits until
    /// `/-/ready` answers 200.
    pub async fn spawn(targets: &[Target]) -> Self {
        let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("prometheus is not installed: run {INSTALL}"));
        let addr = crate::closed_port();
        let dir = std::env::temp_dir().join(format!(
            "weft-prometheus-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n- job_name: weft-proxy\n  static_configs:\n",
        );
        for target in targets {
            config += &format!("  - targets: ['{}']\n    labels:\n", target.admin);
            for (name, value) in &target.labels {
                config += &format!("      {name}: '{value}'\n");
            }
        }
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[prometheus] {line}");
                log.lock().unwrap().push(line);
            }
        });
        let prometheus = RunningPrometheus {
            addr,
            dir,
            _child: child,
        };
        eventually("prometheus is ready", || async {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return Err(logs.lock().unwrap().join("\n"));
            }
            let rsp = http1::get(addr, &addr.to_string(), "/-/ready").await;
            match rsp.status.as_u16() {
                200 => Ok(()),
                status => Err(format!("/-/ready answered {status}")),
            }
        })
        .await;
        prometheus
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until Prometheus holds a scrape of `pod` at every second of
    /// the last `window`: before that, `rate` over the window divides what
    /// it saw by the whole window and reads low.
    pub async fn wait_for_full_window(&self, pod: &str, window: Duration) {
        let seconds = window.as_secs();
        // count_over_time(up{pod="POD"}[Ns]), URL-encoded.
        let path = format!(
            "/api/v1/query?query=count_over_time%28up%7Bpod%3D%22{pod}%22%7D%5B{seconds}s%5D%29"
        );
        let what = format!("Prometheus has {seconds} s of {pod}'s scrapes");
        eventually_within(&what, window + crate::PATIENCE, || async {
            let rsp = http1::get(self.addr, &self.addr.to_string(), &path).await;
            let answer: serde_json::Value =
                serde_json::from_str(&rsp.text()).map_err(|e| format!("{e}: {}", rsp.text()))?;
            let count = answer["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|count| count.parse::<u64>().ok())
                .unwrap_or(0);
            // One scrape a second; the first may land just inside the edge.
            (count + 1 >= seconds)
                .then_some(())
                .ok_or_else(|| answer.to_string())
        })
        .await
    }
}

impl Drop for RunningPrometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
