//! What clients see when the proxy cannot forward: a status that says whose
//! fault it was, a short body, and the `x-weft-proxy-error` header. Bad
//! configuration stops the proxy with exit code 64.

use std::time::Duration;

use tokio::net::TcpListener;
use weft_tests::http1::{self, Connection};
use weft_tests::mesh::Mesh;
use weft_tests::{Demo, Proxy, closed_port};

const ERROR_HEADER: &str = "x-weft-proxy-error";

#[tokio::test]
async fn refused_upstream_is_502() {
    let proxy = Proxy::new().spawn().await;
    let rsp = http1::get(proxy.outbound, &closed_port().to_string(), "/").await;
    assert_eq!(rsp.status, 502);
    assert_eq!(
        rsp.header(ERROR_HEADER),
        Some("upstream connection refused")
    );
    assert!(rsp.text().contains("refused"), "{}", rsp.text());
}

#[tokio::test]
async fn silent_upstream_is_504() {
    // Accepts connections, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let proxy = Proxy::new()
        .env("WEFT_PROXY_HTTP_RESPONSE_TIMEOUT", "300ms")
        .spawn()
        .await;
    let rsp = http1::get(proxy.outbound, &silent.to_string(), "/").await;
    assert_eq!(rsp.status, 504);
    assert_eq!(rsp.header(ERROR_HEADER), Some("upstream response timeout"));
}

#[tokio::test]
async fn malformed_requests_are_400_and_the_proxy_keeps_serving() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let bad: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: app\r\nno colon here\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"GET / HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n",
    ];
    for request in bad {
        let reply = http1::raw(proxy.inbound, request).await;
        assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
        assert!(
            reply.contains(&format!("{ERROR_HEADER}: malformed request")),
            "{reply}"
        );
    }
    // Outbound, a request with no Host has nothing to route by.
    let reply = http1::raw(proxy.outbound, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.0 400 "), "{reply}");
    assert!(
        reply.contains(&format!("{ERROR_HEADER}: missing authority")),
        "{reply}"
    );

    assert_eq!(http1::get(proxy.inbound, "app", "/").await.status, 200);
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_MAX_HEADER_BYTES", "8192")
        .spawn()
        .await;

    let big = "a".repeat(10_000);
    let reply = http1::raw(
        proxy.inbound,
        format!("GET / HTTP/1.1\r\nHost: app\r\nx-big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 431 "),
        "{}",
        &reply[..80.min(reply.len())]
    );
    assert!(reply.contains(&format!("{ERROR_HEADER}: request headers too large")));

    // Within the limit on a kept-alive connection, all is well.
    let mut conn = Connection::open(proxy.inbound).await;
    let mut req = http1::request("GET", "app", "/", "");
    req.headers_mut()
        .insert("x-fine", "b".repeat(4_000).parse().unwrap());
    assert_eq!(conn.send(req).await.status, 200);
}

#[tokio::test]
async fn bad_configuration_exits_64_naming_the_setting() {
    let cases = [
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", "not-an-address"),
        ("WEFT_PROXY_OPAQUE_PORTS", "25,http"),
        ("WEFT_PROXY_CONNECT_TIMEOUT", "10"),
        ("WEFT_LOG", "=[bad"),
    ];
    for (key, value) in cases {
        let output = Proxy::new().env(key, value).command().output();
        let output = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .expect("exits promptly")
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{key}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(value) || stderr.contains(key),
            "{key}={value}: error should name it: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_proxy_without_its_plugin_chain_refuses_traffic_with_a_reason() {
    let app = Demo::http("app").spawn().await;
    // Nothing listens at the controller's address and there is no saved
    // chain: the mesh's cache directory is new.
    let mesh = Mesh::new("no-chain");
    let proxy = mesh.proxy_awaiting_its_chain(closed_port(), app.addr).await;

    let ready = http1::get(proxy.admin, "admin", "/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("plugin chain"), "{}", ready.text());
    // Inbound would skip the workload's authorization; outbound its other
    // policies: both wait for the chain.
    for (listener, host) in [
        (proxy.inbound, "app".to_string()),
        (proxy.outbound, app.addr.to_string()),
    ] {
        let rsp = http1::get(listener, &host, "/").await;
        assert_eq!(rsp.status, 503, "{host}: {}", rsp.text());
        assert_eq!(rsp.header(ERROR_HEADER), Some("plugin chain pending"));
        assert!(rsp.text().contains("controller"), "{}", rsp.text());
    }

    // Opaque TCP cannot carry a reason: it is closed unanswered, where the
    // app itself answers these bytes.
    let bytes = b"\x00binary, not HTTP\r\n\r\n";
    assert!(
        http1::raw(app.addr, bytes)
            .await
            .starts_with("HTTP/1.1 400")
    );
    assert_eq!(http1::raw(proxy.inbound, bytes).await, "");
    assert!(proxy.ready().await.is_err(), "still waiting for the chain");
}
