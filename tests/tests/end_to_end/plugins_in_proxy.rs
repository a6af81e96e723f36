//! Plugins in the running proxy, configured from a plain file: edits and
//! local answers on the request path, golden metrics on `/metrics` (bounded
//! in series), a failing plugin answered by its policy, and live reloads.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use weft_tests::http1::{self, Connection};
use weft_tests::plugins::{self, ChainFile};
use weft_tests::{Demo, PATIENCE, eventually};

fn stamp(value: &str) -> serde_json::Value {
    plugins::entry(
        "stamp",
        "add_header",
        serde_json::json!({"name": "x-weft-example", "value": value}),
    )
}

fn plugin(name: &str, component: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "module": plugins::component(component)})
}

#[tokio::test]
async fn plugins_edit_traffic_and_count_golden_metrics() {
    let app = Demo::http("app").spawn().await;
    let config = ChainFile::new(serde_json::json!([
        stamp("hello"),
        plugin("metrics", "metrics")
    ]));
    let proxy = config.proxy().inbound_app(app.addr).spawn().await;

    let mut conn = Connection::open(proxy.inbound).await;
    let seen = conn.get("app.example", "/headers").await;
    assert_eq!(
        seen.header("x-weft-example"),
        Some("hello"),
        "the response hook ran"
    );
    assert!(
        seen.text().contains("x-weft-example: hello"),
        "the app saw the request hook's header: {}",
        seen.text()
    );
    for path in ["/", "/status/503", "/status/404"] {
        conn.get("app.example", path).await;
    }

    let metrics = proxy.metrics().await;
    let inbound = [
        ("direction", "inbound"),
        ("authority", "app.example"),
        ("tls", "false"),
    ];
    assert_eq!(
        metrics.sum("request_total", &inbound),
        4.0,
        "{}",
        metrics.text
    );
    let failed = [
        ("direction", "inbound"),
        ("tls", "false"),
        ("classification", "failure"),
    ];
    assert_eq!(
        metrics.sum("response_total", &failed),
        1.0,
        "only the 503 failed: {}",
        metrics.text
    );
    assert_eq!(metrics.sum("response_latency_ms_count", &inbound), 4.0);
}

#[tokio::test]
async fn metric_series_stop_at_the_plugins_limit_and_the_rest_are_counted() {
    const LIMIT: usize = 5;
    const AUTHORITIES: usize = 3 * LIMIT;
    let app = Demo::http("app").spawn().await;
    let mut metrics = plugin("metrics", "metrics");
    metrics["metricSeriesLimit"] = LIMIT.into();
    let config = ChainFile::new(serde_json::json!([metrics]));
    let proxy = config.proxy().inbound_app(app.addr).spawn().await;

    // A client choosing a new `Host` per request, as a scanner does.
    let mut conn = Connection::open(proxy.inbound).await;
    for n in 0..AUTHORITIES {
        let rsp = conn.get(&format!("host-{n}.example"), "/").await;
        assert_eq!(rsp.status, 200, "a dropped sample fails no request");
    }
    // The first label sets keep counting.
    conn.get("host-0.example", "/").await;

    let metrics = proxy.metrics().await;
    let series = |name: &str| metrics.samples.iter().filter(|s| s.name == name).count();
    for family in [
        "request_total",
        "response_total",
        "response_latency_ms_count",
    ] {
        assert_eq!(series(family), LIMIT, "{family}: {}", metrics.text);
    }
    let first = [("authority", "host-0.example")];
    assert_eq!(
        metrics.sum("request_total", &first),
        2.0,
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.sum("request_total", &[("authority", "host-5.example")]),
        0.0
    );
    for family in ["request_total", "response_total", "response_latency_ms"] {
        let dropped = [("plugin", "metrics"), ("family", family)];
        assert_eq!(
            metrics.sum("weft_plugin_metric_series_dropped_total", &dropped),
            (AUTHORITIES - LIMIT) as f64,
            "{family}: {}",
            metrics.text
        );
    }
    assert!(
        metrics
            .text
            .contains("# HELP weft_plugin_metric_series_dropped "),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn plugins_answer_and_fail_closed_with_a_named_5xx() {
    let app = Demo::http("app").spawn().await;
    let deny = ChainFile::new(serde_json::json!([plugin("deny", "deny_all")]));
    let proxy = deny.proxy().inbound_app(app.addr).spawn().await;
    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(
        (rsp.status.as_u16(), rsp.text().as_str()),
        (403, "denied by deny-all\n")
    );

    let gate = serde_json::json!([{
        "name": "gate",
        "module": plugins::component("deny_all"),
        "config": {"connections": true},
    }]);
    let gate = ChainFile::new(gate);
    let proxy = gate.proxy().inbound_app(app.addr).spawn().await;
    // Opaque bytes are denied with a closed connection and no answer.
    let mut stream = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
    let _ = stream.write_all(b"\x00not http").await;
    let mut reply = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "the connection is closed");
    assert!(reply.is_empty(), "nothing is answered: {reply:?}");
    eventually("the denial is logged", || async {
        proxy.logged("connection denied by plugin")
    })
    .await;

    let trap = ChainFile::new(serde_json::json!([plugin("trapper", "trap")]));
    let proxy = trap.proxy().inbound_app(app.addr).spawn().await;
    for _ in 0..3 {
        let rsp = http1::get(proxy.inbound, "app", "/").await;
        assert_eq!(rsp.status, 500);
        assert_eq!(rsp.header("x-weft-proxy-error"), Some("plugin failed"));
        assert!(
            rsp.text().contains("plugin `trapper` failed: trapped"),
            "{}",
            rsp.text()
        );
    }
}

#[tokio::test]
async fn a_changed_file_swaps_the_chain_and_a_bad_one_is_refused() {
    let app = Demo::http("app").spawn().await;
    let config = ChainFile::new(serde_json::json!([stamp("one")]));
    let proxy = config.proxy().inbound_app(app.addr).spawn().await;
    assert_eq!(
        http1::get(proxy.inbound, "app", "/")
            .await
            .header("x-weft-example"),
        Some("one")
    );

    config.write(serde_json::json!([stamp("two")]));
    eventually("the new chain serves", || async {
        let rsp = http1::get(proxy.inbound, "app", "/").await;
        assert_eq!(rsp.status, 200, "no request fails during a swap");
        match rsp.header("x-weft-example") {
            Some("two") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    config.write(serde_json::json!([plugin("other", "wrong_world")]));
    eventually("the bad chain is reported", || async {
        proxy.logged("plugin configuration rejected")
    })
    .await;
    assert!(
        proxy
            .logs()
            .contains("does not match the weft:plugin world"),
        "{}",
        proxy.logs()
    );
    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(
        rsp.header("x-weft-example"),
        Some("two"),
        "the old chain keeps serving"
    );
}

#[tokio::test]
async fn a_bad_plugin_configuration_stops_startup_with_64() {
    let config = ChainFile::new(serde_json::json!([plugin("other", "wrong_world")]));
    let output = config.proxy().command().output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plugin `other`"), "{stderr}");
}
