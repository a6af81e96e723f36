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

/// Reads `stream` until the proxy closes it; false if it stays open past
/// `PATIENCE`.
async fn closed_by_the_proxy(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// An HTTP/2 frame: length, type, flags, stream, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_HEADERS: u8 = 0x1;
const H2_SETTINGS: u8 = 0x4;
const H2_CONTINUATION: u8 = 0x9;
const H2_END_STREAM: u8 = 0x1;

/// The start of an HTTP/2 connection whose first request's header block
/// never ends: a HEADERS frame without END_HEADERS, then `more` bytes of
/// CONTINUATION frames, none of them the last.
fn h2_unfinished_headers(more: usize) -> Vec<u8> {
    let mut bytes = H2_PREFACE.to_vec();
    bytes.extend(h2_frame(H2_SETTINGS, 0, 0, &[]));
    // :method GET, :scheme http, :path / (static table), then a literal
    // header that the CONTINUATION frames go on spelling out.
    bytes.extend(h2_frame(H2_HEADERS, H2_END_STREAM, 1, &[0x82, 0x86, 0x84]));
    let chunk = [0x40, 0x01, b'x', 0x7f, 0xff, 0x7f]
        .into_iter()
        .chain(std::iter::repeat_n(b'a', 16_000))
        .collect::<Vec<_>>();
    let mut sent = 0;
    while sent < more {
        bytes.extend(h2_frame(H2_CONTINUATION, 0, 1, &chunk));
        sent += chunk.len();
    }
    bytes
}

/// A request body that stops coming holds neither the request nor its
/// connection past the body read timeout.
#[tokio::test]
async fn a_request_body_that_stops_coming_is_cut_off() {
    let app = Demo::http("app").spawn().await;
    let mut proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_HTTP_BODY_READ_TIMEOUT", "1s")
        .spawn()
        .await;

    let mut slow = TcpStream::connect(proxy.inbound).await.unwrap();
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\nfirst bytes")
        .await
        .unwrap();
    assert!(
        closed_by_the_proxy(&mut slow).await,
        "the proxy waited more than {PATIENCE:?} for a body that stopped coming"
    );

    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(rsp.text(), "hello from app\n");
    assert!(proxy.is_running(), "{}", proxy.logs());
}

/// HTTP/2 has no header read timeout of its own: a connection with no
/// request in flight is closed, after the header read timeout before its
/// first request and the idle timeout after.
#[tokio::test]
async fn http2_connections_with_nothing_in_flight_are_closed() {
    let app = Demo::http("app").spawn().await;
    let mut proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "1s")
        .env("WEFT_PROXY_HTTP2_IDLE_TIMEOUT", "1s")
        .env("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", "1s")
        .spawn()
        .await;

    // A header block that never ends, and a connection that says nothing.
    let mut unfinished = TcpStream::connect(proxy.inbound).await.unwrap();
    unfinished
        .write_all(&h2_unfinished_headers(1))
        .await
        .unwrap();
    let mut silent = TcpStream::connect(proxy.inbound).await.unwrap();
    silent.write_all(H2_PREFACE).await.unwrap();
    assert!(
        closed_by_the_proxy(&mut unfinished).await,
        "unfinished headers kept open"
    );
    assert!(
        closed_by_the_proxy(&mut silent).await,
        "a silent connection kept open"
    );

    // A client that made a request and went quiet gets a GOAWAY.
    let stream = TcpStream::connect(proxy.inbound).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = ::http::Request::get("http://app/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let rsp = sender.send_request(req).await.expect("a response");
    assert_eq!(rsp.status(), 200);
    drop(rsp);
    let closed = tokio::time::timeout(PATIENCE, conn).await;
    assert!(closed.is_ok(), "an idle HTTP/2 connection was kept open");
    assert!(proxy.is_running(), "{}", proxy.logs());
}

/// Too many headers or too large a head: 431 or a closed connection, and
/// the proxy's memory does not follow what the client sends.
#[tokio::test]
async fn header_floods_get_431_or_a_close_and_memory_stays_bounded() {
    let app = Demo::http("app").spawn().await;
    let mut proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "2s")
        .env("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", "1s")
        .spawn()
        .await;
    let flood: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();

    // As a first request: the proxy's own 431.
    let mut stream = TcpStream::connect(proxy.inbound).await.unwrap();
    let head = format!("GET / HTTP/1.1\r\nHost: app\r\n{flood}\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert!(
        reply.contains("x-weft-proxy-error: request headers too large"),
        "{reply}"
    );

    // On a kept-alive connection: hyper's 431, or a close.
    let mut stream = TcpStream::connect(proxy.inbound).await.unwrap();
    let heads = format!("GET / HTTP/1.1\r\nHost: app\r\n\r\n{head}");
    stream.write_all(heads.as_bytes()).await.unwrap();
    let mut replies = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut replies)).await;
    let replies = String::from_utf8_lossy(&replies);
    assert!(replies.starts_with("HTTP/1.1 200"), "{replies}");
    assert_eq!(replies.matches("HTTP/1.1 ").count(), 2, "{replies}");
    assert!(replies.contains("HTTP/1.1 431"), "{replies}");

    // HTTP/2: a header block continued for 4 MB (the CONTINUATION flood)
    // is refused long before it ends; the connection closes.
    let before = proxy.peak_rss_kib();
    let mut flood = TcpStream::connect(proxy.inbound).await.unwrap();
    let _ = flood.write_all(&h2_unfinished_headers(4 << 20)).await;
    assert!(
        closed_by_the_proxy(&mut flood).await,
        "a CONTINUATION flood kept open"
    );
    let grown = proxy.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 2048,
        "the proxy grew {grown} KiB for a 4 MB header block"
    );

    let rsp = http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(rsp.text(), "hello from app\n");
    assert!(proxy.is_running(), "{}", proxy.logs());
}

/// Slowloris at scale: hundreds of heads trickled a byte at a time are all
/// closed at the header read timeout, and another client is served while
/// they hang.
#[tokio::test]
async fn hundreds_of_slowloris_connections_are_closed_and_others_served() {
    const SLOW: usize = 300;
    let app = Demo::http("app").spawn().await;
    let mut proxy = Proxy::new()
        .inbound_app(app.addr)
        .env("WEFT_PROXY_DETECT_PROTOCOL_TIMEOUT", "1s")
        .env("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "1s")
        .spawn()
        .await;

    let inbound = proxy.inbound;
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(inbound).await.unwrap();
                let mut buf = [0u8; 512];
                // Never a whole head: no blank line, a byte every 200 ms,
                // for at most 20 s.
                let trickle = b"GET / HTTP/1.1\r\nHost: app\r\nx-slow: ".iter();
                for byte in trickle.chain(std::iter::repeat(&b'a')).take(100) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return true;
                    }
                    let read =
                        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf));
                    if let Ok(Ok(0) | Err(_)) = read.await {
                        return true;
                    }
                }
                false
            })
        })
        .collect();

    // Served meanwhile, each on a new connection.
    for _ in 0..10 {
        let rsp = http1::get(proxy.inbound, "app", "/").await;
        assert_eq!(rsp.text(), "hello from app\n");
    }
    let mut still_open = 0;
    for connection in slow {
        if !connection.await.unwrap() {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "slowloris connections left open after 20 s");
    assert!(proxy.is_running(), "{}", proxy.logs());
}
