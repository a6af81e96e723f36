//! `weft stat` and `weft edges` on real traffic: load's sidecar sends to
//! the backend Service, whose endpoint is backend's sidecar, over mTLS.
//! The controller scrapes both sidecars itself; a real Prometheus scraping
//! the same sidecars gives the same figures.

use std::net::SocketAddr;

use serde_json::Value;
use weft_tests::controller::{ExampleMesh, RunningController, identity_name};
use weft_tests::demo::RunningDemo;
use weft_tests::prometheus::{RunningPrometheus, Target};
use weft_tests::proxy::RunningProxy;
use weft_tests::{Demo, eventually, http1};

const BACKEND_SERVICE: &str = "backend.demo.svc.cluster.local:8081";

/// The example mesh with load sending straight to backend's sidecar (no
/// split), both sidecars certified, their ports told to the controller,
/// and steady traffic until dropped.
struct Traffic {
    _mesh: ExampleMesh,
    controller: RunningController,
    _app: RunningDemo,
    backend: RunningProxy,
    load: RunningProxy,
    sender: tokio::task::JoinHandle<()>,
}

impl Traffic {
    async fn start(name: &str) -> Self {
        let mesh = ExampleMesh::copy(name);
        // The example's TrafficSplit would send a tenth of load's requests
        // to app, which does not run here.
        std::fs::remove_file(mesh.resources().join("traffic.yaml")).unwrap();
        mesh.edit(
            "workloads.yaml",
            "weft.io/plugins: split,metrics",
            "weft.io/plugins: metrics",
        );
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
            weft_tests::closed_port(),
        )
        .await;
        for (from, to) in [
            ("containerPort: 4243", backend.inbound.port()),
            ("containerPort: 4291", backend.admin.port()),
            ("containerPort: 4391", load.admin.port()),
        ] {
            mesh.edit("workloads.yaml", from, &format!("containerPort: {to}"));
        }
        // The pods not running here point at ports nothing listens on, so
        // a local mesh running beside the test is never scraped or called.
        for port in ["4191", "4443", "4491", "4543", "4591"] {
            let closed = weft_tests::closed_port().port();
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
        // Steady traffic; what the proxies counted is what the test checks.
        let sender = tokio::spawn(async move {
            loop {
                http1::get(outbound, BACKEND_SERVICE, "/").await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        Traffic {
            _mesh: mesh,
            controller,
            _app: app,
            backend,
            load,
            sender,
        }
    }

    /// Runs `weft ARGS -o json` and parses what it printed.
    async fn weft_json(&self, args: &[&str]) -> Result<Value, String> {
        let output = tokio::process::Command::new(weft_tests::binaries::path("weft"))
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

/// The row of `name` in `weft stat … -o json`.
fn row<'a>(rows: &'a Value, name: &str) -> Option<&'a Value> {
    rows.as_array()?.iter().find(|row| row["name"] == name)
}

/// backend's row once it shows traffic: success rate and RPS.
fn served(rows: &Value, name: &str) -> Result<(f64, f64), String> {
    let row = row(rows, name).ok_or_else(|| rows.to_string())?;
    match (row["success_rate"].as_f64(), row["rps"].as_f64()) {
        (Some(success), Some(rps)) if rps > 0.0 => Ok((success, rps)),
        _ => Err(rows.to_string()),
    }
}

#[tokio::test]
async fn stat_and_edges_show_traffic_through_sidecars_and_its_mtls_identities() {
    let mesh = Traffic::start("stat").await;
    let backend = std::cell::Cell::new(None);
    eventually("weft stat shows backend's traffic", || async {
        let rows = mesh.weft_json(&["stat", "deploy", "-n", "demo"]).await?;
        backend.set(Some(served(&rows, "backend")?));
        let row = row(&rows, "backend").unwrap();
        // backend and two replicas that are not running here.
        assert_eq!(row["meshed"], serde_json::json!({"meshed": 3, "total": 3}));
        Ok(())
    })
    .await;
    let (success, rps) = backend.get().unwrap();
    assert_eq!(success, 1.0);
    assert!(rps > 1.0, "requests go out every 20 ms: {rps}");

    eventually("weft edges shows load → backend over mTLS", || async {
        let edges = mesh.weft_json(&["edges", "pod", "-n", "demo"]).await?;
        let edge = edges
            .as_array()
            .and_then(|edges| {
                edges
                    .iter()
                    .find(|e| e["src"] == "load" && e["dst"] == "backend")
            })
            .ok_or_else(|| edges.to_string())?;
        assert_eq!(edge["secured"], true, "{edge}");
        assert_eq!(edge["client_id"], identity_name("demo", "load"));
        assert_eq!(edge["server_id"], identity_name("demo", "backend"));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_prometheus_scraping_the_same_sidecars_agrees_with_the_controller() {
    let mesh = Traffic::start("stat-prometheus").await;
    let pod = |proxy: &RunningProxy, pod: &str, account: &str| Target {
        admin: proxy.admin,
        labels: vec![
            ("namespace", "demo".into()),
            ("pod", pod.into()),
            ("serviceaccount", account.into()),
        ],
    };
    let mut backend = pod(&mesh.backend, "backend", "backend");
    backend.labels.push(("deployment", "backend".into()));
    let prometheus = RunningPrometheus::spawn(&[backend, pod(&mesh.load, "load", "load")]).await;
    let url = prometheus.url();
    let stat = ["stat", "pod", "-n", "demo", "-t", "10s"];
    prometheus
        .wait_for_full_window("backend", std::time::Duration::from_secs(10))
        .await;

    let figures = std::cell::Cell::new(None);
    eventually("both sources show backend's traffic", || async {
        let embedded = served(&mesh.weft_json(&stat).await?, "backend")?;
        let mut with_prometheus = stat.to_vec();
        with_prometheus.extend(["--prometheus-url", &url]);
        let queried = served(&mesh.weft_json(&with_prometheus).await?, "backend")?;
        figures.set(Some((embedded, queried)));
        // Both are rates over the same, full window.
        let ratio = embedded.1 / queried.1;
        if !(0.5..2.0).contains(&ratio) {
            return Err(format!(
                "the controller says {embedded:?}, Prometheus {queried:?}"
            ));
        }
        Ok(())
    })
    .await;
    let ((success, rps), (prometheus_success, prometheus_rps)) = figures.get().unwrap();
    assert_eq!((success, prometheus_success), (1.0, 1.0));
    let ratio = rps / prometheus_rps;
    assert!(
        (0.5..2.0).contains(&ratio),
        "the controller says {rps} rps, Prometheus {prometheus_rps}"
    );

    eventually("Prometheus shows load → backend over mTLS", || async {
        let args = ["edges", "pod", "-n", "demo", "--prometheus-url", &url];
        let edges = mesh.weft_json(&args).await?;
        let backend = identity_name("demo", "backend");
        let secured = edges.as_array().into_iter().flatten().any(|e| {
            e["src"] == "load" && e["dst"] == "backend" && e["server_id"] == backend.as_str()
        });
        secured.then_some(()).ok_or_else(|| edges.to_string())
    })
    .await;
}
