//! `weft stat` and `weft edges` on real traffic: load's sidecar sends to
//! the backend Service, whose endpoint is backend's sidecar, over mTLS.
//! The controller scrapes both sidecars itself; a real Prometheus scraping
//! the same sidecars gives the same figures.

use serde_json::Value;
use weft_tests::controller::{ExampleMesh, identity_name};
use weft_tests::eventually;
use weft_tests::prometheus::{RunningPrometheus, Target};
use weft_tests::proxy::RunningProxy;
use weft_tests::traffic::Traffic;

/// load sends to backend's sidecar alone: no split.
async fn traffic(name: &str) -> Traffic {
    Traffic::start(name, |mesh: &ExampleMesh| {
        mesh.edit(
            "workloads.yaml",
            "weft.io/plugins: split,metrics",
            "weft.io/plugins: metrics",
        )
    })
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
    let mesh = traffic("stat").await;
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
    let mesh = traffic("stat-prometheus").await;
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
