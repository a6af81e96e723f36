//! Hostile and broken input: whatever arrives, the proxy answers or closes
//! that one connection, and goes on serving everyone else.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weft_tests::{Demo, HeldApp, PATIENCE, Proxy, http1};

/// Deterministic pseudo-random bytes (a linear congruential generator), so a
/// failure can be replayed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn inputs() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = [
        &b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nshort",
        b"GET / HT",
        b"\r\n\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nx-bin: \xff\xfe\x00\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE GARBAGE\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x08\x00\x00\x00\x00\x00\x7f\xff\xff\xff",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    inputs.push(format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "p".repeat(100_000)).into_bytes());
    for seed in 0..20 {
        inputs.push(noise(seed, 1 + (seed as usize * 997) % 5000));
    }
    let mut half_http = b"GET / HTTP/1.1\r\n".to_vec();
    half_http.extend(noise(99, 3000));
    inputs.push(half_http);
    inputs
}

#[tokio::test]
async fn garbage_never_takes_the_proxy_down() {
    let app = Demo::http("app").spawn().await;
    let mut proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_DETECT_PROTOCOL_TIMEOUT", "200ms")
        .env("WEFT_PROXY_HTTP_RESPONSE_TIMEOUT", "2s")
        .spawn()
        .await;

    for (i, input) in inputs().iter().enumerate() {
        for listener in [proxy.inbound, proxy.outbound] {
            let mut stream = TcpStream::connect(listener).await.unwrap();
            // The proxy may close before reading everything; that is fine.
            let _ = stream.write_all(input).await;
            let _ = stream.shutdown().await;
            let mut sink = Vec::new();
            let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
            assert!(
                closed.is_ok(),
                "input {i} held the connection open: {:?}",
                &input[..input.len().min(40)]
            );
        }
        assert!(
            proxy.is_running(),
            "input {i} stopped the proxy: {}",
            proxy.logs()
        );
    }

    let rsp = tokio::time::timeout(
        Duration::from_secs(10),
        http1::get(proxy.inbound, "app", "/"),
    )
    .await
    .expect("still answering");
    assert_eq!(rsp.text(), "hello from app\n");
    assert!(!proxy.logs().contains("panicked"), "{}", proxy.logs());
}

/// Slowloris: after a first request, the next request head arrives a byte
/// at a time, slower than the header read timeout allows.
#[tokio::test]
async fn a_request_head_dribbled_on_a_kept_alive_connection_is_cut_off() {
    let app = Demo::http("app").spawn().await;
    let mut proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "1s")
        .spawn()
        .await;

    let mut slow = TcpStream::connect(proxy.inbound).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        .await
        .unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 1024];
    let answered = tokio::time::timeout(PATIENCE, async {
        while !first.ends_with(b"hello from app\n") {
            match slow.read(&mut buf).await {
                Ok(n) if n > 0 => first.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
        true
    })
    .await;
    assert_eq!(
        answered,
        Ok(true),
        "first response: {}",
        String::from_utf8_lossy(&first)
    );

    // Never a whole head: it has no blank line. 40 bytes take 12 s, well
    // past the 1 s limit and short of hyper's own 30 s.
    let head = b"GET / HTTP/1.1\r\nHost: app\r\nx-slow: aaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in head.iter().take(40) {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        // Only the proxy closing ends the loop early.
        let read = tokio::time::timeout(Duration::from_millis(300), slow.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the proxy kept a connection open whose request head took 12 s"
    );

    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(rsp.text(), "hello from app\n");
    assert!(proxy.is_running(), "{}", proxy.logs());
}

#[tokio::test]
async fn past_its_in_flight_limit_the_proxy_sheds_requests_with_503() {
    let app = HeldApp::start().await;
    let proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_MAX_IN_FLIGHT_REQUESTS", "2")
        .spawn()
        .await;

    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(http1::get(proxy.inbound, "app", "/")))
        .collect();
    app.arrived(2).await;

    let shed = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(shed.status, 503, "{}", shed.text());
    assert_eq!(shed.header("x-weft-proxy-error"), Some("proxy overloaded"));

    app.release();
    for request in held {
        let rsp = request.await.expect("held request");
        assert_eq!(rsp.status, 200);
        assert_eq!(rsp.text(), "released\n");
    }
    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());

    let metrics = proxy.metrics().await;
    let shed = metrics.sum("http_requests_shed_total", &[("direction", "inbound")]);
    assert_eq!(shed, 1.0, "{}", metrics.text);
}
