//! The dashboard in a real headless Chromium: the controller serves it on
//! its stats listener while load's sidecar sends to backend's over mTLS.
//! The page shows backend's traffic, the edge, a rejected WasmPlugin and
//! why, and tap rows for requests sent after the tap opened; a screenshot
//! is kept in `target/dashboard-screenshot.png`. The Grafana dashboards'
//! queries name only metrics these sidecars really export.

mod browser;
mod grafana;

use std::cell::Cell;
use std::path::Path;

use weft_tests::controller::{ExampleMesh, identity_name};
use weft_tests::mesh::Mesh;
use weft_tests::traffic::Traffic;
use weft_tests::{eventually, http1};

use browser::Browser;

/// The example mesh's backend (behind authz, metrics and retry) and
/// load, and a WasmPlugin whose sha256 is not hex.
async fn traffic() -> Traffic {
    Traffic::start("dashboard", |mesh: &ExampleMesh| {
        mesh.edit(
            "workloads.yaml",
            "  # No weft.io/plugins: runs the namespace's metrics,retry.\nspec:",
            "  annotations:\n    weft.io/plugins: authz,metrics,retry\n    \
             weft.io/plugin-config.metrics: '{\"routes\": [{\"name\": \"all\"}]}'\nspec:",
        );
        std::fs::write(
            mesh.resources().join("broken.yaml"),
            format!(
                "apiVersion: weft.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: broken\n  \
                 namespace: demo\nspec:\n  url: file://{}\n  sha256: not-hex\n",
                weft_tests::plugins::component("authz").display()
            ),
        )
        .unwrap();
    })
    .await
}

/// The text of each cell of the rows `css` selects.
async fn rows(browser: &Browser, css: &str) -> Vec<Vec<String>> {
    let script = format!(
        "return [...document.querySelectorAll({css:?})].map(r => [...r.cells].map(c => c.textContent))"
    );
    serde_json::from_value(browser.eval(&script).await).unwrap_or_default()
}

async fn text(browser: &Browser, css: &str) -> String {
    let script = format!("return document.querySelector({css:?}).textContent");
    browser
        .eval(&script)
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn the_dashboard_shows_traffic_edges_plugins_and_live_tap_in_chromium() {
    let mesh = traffic().await;
    // authz's denials, for the Grafana check below.
    assert_eq!(mesh.get("/admin").await, 403);
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/", mesh.controller.stats_api()))
        .await;

    eventually("the page shows backend's requests per second", || async {
        let rows = rows(&browser, "#workloads tr[data-name=backend]").await;
        let row = rows.first().ok_or("no backend row")?;
        // Namespace, name, meshed, success, RPS, …
        let rps: f64 = row[4]
            .trim_end_matches("rps")
            .parse()
            .map_err(|_| row.join(" | "))?;
        (row[1] == "backend" && row[3] != "—" && rps > 0.0)
            .then_some(())
            .ok_or_else(|| row.join(" | "))
    })
    .await;

    eventually("the page shows load → backend over mTLS", || async {
        let edges = rows(&browser, "#edges tbody tr").await;
        let secured = edges.iter().any(|edge| {
            edge[0] == "demo/load"
                && edge[1] == "demo/backend"
                && edge[2] == "✓"
                && edge[4] == identity_name("demo", "load")
                && edge[5] == identity_name("demo", "backend")
        });
        secured.then_some(()).ok_or_else(|| format!("{edges:?}"))
    })
    .await;

    let broken = rows(&browser, "#plugins tr[data-name='demo/broken']").await;
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0][2], "rejected", "{broken:?}");
    assert!(broken[0][3].contains("InvalidSha256"), "{broken:?}");
    let chains = rows(&browser, "#chains tbody tr").await;
    let backend_chain = chains
        .iter()
        .find(|row| row[0] == "demo/backend")
        .unwrap_or_else(|| panic!("{chains:?}"));
    for plugin in ["authz@", "metrics@", "retry@"] {
        assert!(backend_chain[2].contains(plugin), "{backend_chain:?}");
    }

    // Tap backend, for the probes only: the steady traffic to `/` would
    // use up the tap's rate.
    browser.type_into("#tap-path", "/bytes/").await;
    browser
        .click("#workloads tr[data-name=backend] button")
        .await;
    eventually("the tap opens", || async {
        let status = text(&browser, "#tap-status").await;
        (status == "tapping").then_some(()).ok_or(status)
    })
    .await;
    let sent = Cell::new(0);
    eventually("a probe sent after the tap opened appears", || async {
        sent.set(sent.get() + 1);
        let path = format!("/bytes/{}", sent.get());
        assert_eq!(mesh.get(&path).await, 200);
        let tapped = rows(&browser, "#tap tbody tr").await;
        // Pod, direction, source, mTLS, client identity, method,
        // authority, path, status, latency, answered by.
        let seen = tapped.iter().any(|row| {
            row[0] == "demo/backend"
                && row[1] == "in"
                && row[3] == "✓"
                && row[4] == identity_name("demo", "load")
                && row[5] == "GET"
                && row[7].starts_with("/bytes/")
                && row[8] == "200"
        });
        let other = tapped.iter().find(|row| !row[7].starts_with("/bytes/"));
        assert!(other.is_none(), "the path filter let through {other:?}");
        seen.then_some(()).ok_or_else(|| format!("{tapped:?}"))
    })
    .await;

    let png = browser.screenshot().await;
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    std::fs::write(target.join("dashboard-screenshot.png"), &png).unwrap();
    assert_png(&png);

    browser.click("#tap-stop").await;
    assert_eq!(text(&browser, "#tap-status").await, "stopped");

    grafana::every_query_names_metrics_the_sidecars_export(&[&mesh.backend, &mesh.load]).await;
    grafana::every_panel_query_returns_data_in_prometheus(&mesh.backend, &mesh.load).await;
}

#[tokio::test]
async fn weft_dashboard_prints_the_url_and_the_page_refuses_other_hosts_and_unbounded_taps() {
    let mesh = Mesh::new("dashboard-cli");
    let controller = mesh.controller().await;
    let stats = controller.stats_api();
    let printed = tokio::process::Command::new(weft_tests::binaries::path("weft"))
        .args(["dashboard", "--stats-api", &stats])
        .output()
        .await
        .expect("running weft");
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        format!("{stats}/\n")
    );

    let addr = controller
        .logged_addr(" serving the stats API ", "stats_addr=")
        .unwrap();
    let page = http1::get(addr, &addr.to_string(), "/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/dashboard.js"), "{}", page.text());
    // A name that is not this machine's: a page rebinding its own name.
    let rebound = http1::get(addr, "weft.example:8085", "/api/v1/workloads").await;
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    let greedy = http1::get(
        addr,
        &addr.to_string(),
        "/api/v1/tap?resource=deploy/web&namespace=demo&limit=100000",
    )
    .await;
    assert_eq!(greedy.status, 400, "{}", greedy.text());
    assert!(greedy.text().contains("limit"), "{}", greedy.text());
    let nothing = http1::get(
        addr,
        &addr.to_string(),
        "/api/v1/tap?resource=deploy/nothing",
    )
    .await;
    assert_eq!(nothing.status, 404, "{}", nothing.text());
}

/// A PNG of a page, not a blank or tiny image: its signature, its size
/// from the IHDR chunk, and enough bytes for rendered tables.
fn assert_png(png: &[u8]) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width >= 800 && height >= 600, "{width}x{height}");
    assert!(png.len() > 20_000, "{} bytes: an empty page?", png.len());
}
