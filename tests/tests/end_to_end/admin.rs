//! The admin server: probes, and `/metrics` read as a scraper reads it.

use weft_tests::http1::{self, Connection};
use weft_tests::{Demo, PATIENCE, Proxy};

#[tokio::test]
async fn probes_answer() {
    let proxy = Proxy::new().spawn().await;
    let live = http1::get(proxy.admin, "admin", "/live").await;
    assert_eq!(
        (live.status.as_u16(), live.text().as_str()),
        (200, "live\n")
    );
    assert_eq!(http1::get(proxy.admin, "admin", "/ready").await.status, 200);
    assert_eq!(http1::get(proxy.admin, "admin", "/nope").await.status, 404);
}

#[tokio::test]
async fn transport_metrics_count_connections_and_bytes() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let mut conn = Connection::open(proxy.inbound).await;
    let body = "x".repeat(10_000);
    for _ in 0..3 {
        let rsp = conn
            .send(http1::request("POST", "app", "/echo", body.clone()))
            .await;
        assert_eq!(rsp.body.len(), body.len());
    }
    drop(conn);

    let rsp = http1::get(proxy.admin, "admin", "/metrics").await;
    assert!(
        rsp.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        rsp.headers
    );
    assert!(
        rsp.text().contains("# TYPE tcp_open counter"),
        "{}",
        rsp.text()
    );

    // The connection's close is recorded once the proxy sees it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let metrics = loop {
        let metrics = proxy.metrics().await;
        let src = [("direction", "inbound"), ("peer", "src")];
        if metrics.sum("tcp_close_total", &src) == 1.0 {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "close never recorded: {}",
            metrics.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let src = [
        ("direction", "inbound"),
        ("peer", "src"),
        ("tls", "disabled"),
    ];
    assert_eq!(metrics.sum("tcp_open_total", &src), 1.0);
    assert_eq!(metrics.sum("tcp_open_connections", &src), 0.0);
    // Three requests of 10 kB each were read from the client, three echoes
    // written back: headers come on top.
    let read = metrics.sum("tcp_read_bytes_total", &src);
    let written = metrics.sum("tcp_write_bytes_total", &src);
    assert!((30_000.0..31_000.0).contains(&read), "read {read}");
    assert!((30_000.0..31_000.0).contains(&written), "written {written}");
    let dst = [("direction", "inbound"), ("peer", "dst")];
    assert!(metrics.sum("tcp_write_bytes_total", &dst) >= 30_000.0);
    let target = app.addr.to_string();
    let to_app = [("peer", "dst"), ("target_addr", target.as_str())];
    assert_eq!(
        metrics.sum("tcp_open_total", &to_app),
        1.0,
        "{}",
        metrics.text
    );
    assert_eq!(metrics.sum("tcp_connection_duration_ms_count", &src), 1.0);

    let rss = metrics.sum("process_resident_memory_bytes", &[]);
    assert!((1e6..1e9).contains(&rss), "RSS {rss}");
    assert!(metrics.sum("process_open_fds", &[]) >= 3.0);
    assert!(metrics.sum("process_start_time_seconds", &[]) > 1.7e9);
}
