//! The example mesh with two of its pods running for real: backend behind
//! its certified sidecar and load's certified sidecar sending to the
//! backend Service over mTLS, steadily, until dropped. The controller
//! scrapes both sidecars every 250 ms; the tests read what it saw.

use std::net::SocketAddr;

use serde_json::Value;

use crate::controller::{ExampleMesh, RunningController};
use crate::demo::RunningDemo;
use crate::proxy::RunningProxy;
use crate::{Demo, eventually, http1};

/// The Service load sends to.
pub const BACKEND_SERVICE: &str = "backend.demo.svc.cluster.local:8081";

pub struct Traffic {
    pub mesh: ExampleMesh,
    pub controller: RunningController,
    _app: RunningDemo,
    pub backend: RunningProxy,
    pub load: RunningProxy,
    sender: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// Starts it from a copy of the example mesh named `name`, which
    /// `prepare` may edit before the controller reads it.
    pub async fn start(name: &str, prepare: impl FnOnce(&ExampleMesh)) -> Self {
        let mesh = ExampleMesh::copy(name);
        // The example's TrafficSplit would send a tenth of load's requests
        // to app, which does not run here.
        std::fs::remove_file(mesh.resources().join("traffic.yaml")).unwrap();
        prepare(&mesh);
        let controller = RunningController::spawn_with(
            &mesh.resources(),
            "127.0.0.1:0".parse().unwrap(),
            &[("WEFT_CONTROLLER_SCRAPE_INTERVAL", "250ms")],
        )
        .await;
        let app = Demo::http("backend").spawn().await;
        let backend = sidecar(&mesh, &controller, "demo/backend", "backend", app.addr).await;
        let load = sidecar(
            &mesh,
            &controller,
            "demo/load",
            "load",
            crate::closed_port(),
        )
        .await;
        let backend_tap = backend.tap.expect("a certified sidecar serves tap");
        for (from, to) in [
            ("containerPort: 4243", backend.inbound.port()),
            ("containerPort: 4291", backend.admin.port()),
            ("containerPort: 4290", backend_tap.port()),
            ("containerPort: 4391", load.admin.port()),
        ] {
            mesh.edit("workloads.yaml", from, &format!("containerPort: {to}"));
        }
        // The pods not running here point at ports nothing listens on, so
        // a local mesh running beside the test is never scraped or called.
        for port in [
            "4190", "4191", "4390", "4443", "4490", "4491", "4543", "4590", "4591",
        ] {
            let closed = crate::closed_port().port();
            mesh.edit(
                "workloads.yaml",
                &format!("containerPort: {port}"),
                &format!("containerPort: {closed}"),
            );
            if matches!(port, "4443" | "4543") {
                mesh.edit(
                    "services.yaml",
                    &format!("port: {port}"),
                    &format!("port: {closed}"),
                );
            }
        }
        mesh.edit(
            "services.yaml",
            "port: 4243",
            &format!("port: {}", backend.inbound.port()),
        );
        let outbound = load.outbound;
        // Until the controller has the edited ports, load's sidecar knows
        // only endpoints where nothing listens.
        eventually("load reaches backend through the Service", || async {
            let rsp = http1::get(outbound, BACKEND_SERVICE, "/").await;
            (rsp.status == 200).then_some(()).ok_or_else(|| rsp.text())
        })
        .await;
        // Steady traffic; what the proxies counted is what the tests check.
        let sender = tokio::spawn(async move {
            loop {
                http1::get(outbound, BACKEND_SERVICE, "/").await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        Traffic {
            mesh,
            controller,
            _app: app,
            backend,
            load,
            sender,
        }
    }

    /// A request from load's app to the backend Service; its status.
    pub async fn get(&self, path: &str) -> u16 {
        http1::get(self.load.outbound, BACKEND_SERVICE, path)
            .await
            .status
            .as_u16()
    }

    /// Runs `weft ARGS -o json` against the controller's stats API and
    /// parses what it printed.
    pub async fn weft_json(&self, args: &[&str]) -> Result<Value, String> {
        let output = tokio::process::Command::new(crate::binaries::path("weft"))
            .args(args)
            .args(["-o", "json", "--stats-api", &self.controller.stats_api()])
            .output()
            .await
            .expect("running weft");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "{}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        serde_json::from_str(&stdout).map_err(|e| format!("{e}: {stdout}"))
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

async fn sidecar(
    mesh: &ExampleMesh,
    controller: &RunningController,
    workload: &str,
    account: &str,
    app: SocketAddr,
) -> RunningProxy {
    let sidecar = mesh.sidecar(controller, workload, app);
    controller
        .with_identity(sidecar, workload, account)
        .spawn()
        .await
}
