//! A real Prometheus on loopback (Debian's `prometheus`), scraping the
//! proxies' admin ports every second with the pod labels Weft's queries
//! group by, as a cluster's scrape configuration adds them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{eventually, http1};

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
}

impl Drop for RunningPrometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
