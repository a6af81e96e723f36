//! HTTP/1.1 through both listeners: routing, keep-alive, chunked bodies,
//! hop-by-hop headers and WebSocket upgrades.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use weft_tests::http1::{self, Connection};
use weft_tests::{Demo, PATIENCE, Proxy};

#[tokio::test]
async fn inbound_forwards_to_the_app() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let rsp = http1::get(proxy.inbound, "app.example", "/").await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.text(), "hello from app\n");
    assert_eq!(rsp.header("x-demo-name"), Some("app"));
}

#[tokio::test]
async fn outbound_routes_by_host_header() {
    let one = Demo::http("one").spawn().await;
    let two = Demo::http("two").spawn().await;
    let proxy = Proxy::new().spawn().await;

    let mut conn = Connection::open(proxy.outbound).await;
    for (upstream, name) in [(&one, "one"), (&two, "two"), (&one, "one")] {
        let rsp = conn.get(&upstream.addr.to_string(), "/").await;
        assert_eq!(rsp.text(), format!("hello from {name}\n"));
    }
}

#[tokio::test]
async fn keep_alive_reuses_one_client_connection() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let mut conn = Connection::open(proxy.inbound).await;
    for _ in 0..10 {
        assert_eq!(conn.get("app", "/").await.status, 200);
    }
    let metrics = proxy.metrics().await;
    let opened = |peer| {
        metrics.sum(
            "tcp_open_total",
            &[("direction", "inbound"), ("peer", peer)],
        )
    };
    // /ready and /metrics go to the admin listener, not counted here.
    assert_eq!(opened("src"), 1.0, "{}", metrics.text);
    assert_eq!(
        opened("dst"),
        1.0,
        "the upstream connection is pooled: {}",
        metrics.text
    );
}

#[tokio::test]
async fn chunked_request_bodies_stream_through() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    // A body of unknown length goes out chunked.
    let chunks: Vec<Result<_, std::convert::Infallible>> = (0..50)
        .map(|i| Ok(http_body::Frame::data(Bytes::from(format!("chunk {i};")))))
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
    let req = http::Request::post("/echo")
        .header("host", "app")
        .body(body)
        .unwrap();
    let stream = TcpStream::connect(proxy.inbound).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let rsp = sender.send_request(req).await.unwrap();
    assert_eq!(rsp.status(), 200);
    let echoed = rsp.into_body().collect().await.unwrap().to_bytes();
    let expected: String = (0..50).map(|i| format!("chunk {i};")).collect();
    assert_eq!(echoed, expected.as_bytes());
}

#[tokio::test]
async fn hop_by_hop_headers_stop_at_the_proxy() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let req = http::Request::get("/headers")
        .header("host", "app")
        .header("connection", "keep-alive, x-private")
        .header("keep-alive", "timeout=5")
        .header("x-private", "secret")
        .header("proxy-connection", "keep-alive")
        .header("x-end-to-end", "kept")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let seen = Connection::open(proxy.inbound).await.send(req).await.text();
    assert!(seen.contains("x-end-to-end: kept"), "{seen}");
    for name in ["x-private", "keep-alive", "proxy-connection"] {
        assert!(
            !seen.contains(&format!("{name}:")),
            "{name} reached the app:\n{seen}"
        );
    }
    assert!(
        seen.contains("host: app"),
        "the Host header is the client's: {seen}"
    );
}

#[tokio::test]
async fn every_connection_line_names_headers_that_stop_at_the_proxy() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    // Raw bytes, so the two `Connection` lines reach the proxy as two lines.
    let seen = http1::raw(
        proxy.inbound,
        b"GET /headers HTTP/1.1\r\nhost: app\r\nconnection: x-first\r\n\
          connection: close, X-Second\r\nx-first: 1\r\nx-second: 2\r\n\
          x-end-to-end: kept\r\n\r\n",
    )
    .await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("x-end-to-end: kept"), "{seen}");
    for name in ["x-first", "x-second"] {
        assert!(
            !seen.contains(&format!("{name}:")),
            "{name} reached the app:\n{seen}"
        );
    }
}

#[tokio::test]
async fn websocket_upgrades_are_relayed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() {
                ws.send(Message::text(format!("echo: {}", msg.to_text().unwrap())))
                    .await
                    .unwrap();
            }
        }
    });
    let proxy = Proxy::new().spawn().await;

    let stream = TcpStream::connect(proxy.outbound).await.unwrap();
    let url = format!("ws://{server_addr}/chat");
    let (mut ws, rsp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(rsp.status(), 101);
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let reply = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reply.to_text().unwrap(), format!("echo: hello {i}"));
    }
    ws.close(None).await.unwrap();
}
