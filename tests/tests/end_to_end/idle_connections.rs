//! Idle kept-alive clients cost the proxy their own connection only: an
//! HTTP/1 upstream connection goes back to the pool once its response has
//! been read, for the next request from any client.

use weft_tests::http1::Connection;
use weft_tests::{Demo, Proxy};

#[tokio::test]
async fn idle_kept_alive_clients_share_one_upstream_connection() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = Connection::open(proxy.inbound).await;
        assert_eq!(client.get("app", "/").await.status, 200);
        clients.push(client);
    }
    // Each asks again in turn, on the connection it kept open.
    for client in &mut clients {
        assert_eq!(client.get("app", "/").await.status, 200);
    }

    let metrics = proxy.metrics().await;
    let opened = |peer| {
        metrics.sum(
            "tcp_open_total",
            &[("direction", "inbound"), ("peer", peer)],
        )
    };
    assert_eq!(opened("src"), 20.0, "{}", metrics.text);
    assert_eq!(
        opened("dst"),
        1.0,
        "one pooled upstream connection serves the clients in turn: {}",
        metrics.text
    );
}
