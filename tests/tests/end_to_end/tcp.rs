//! Opaque TCP: bytes both ways with half-close, server-speaks-first
//! protocols after the detection timeout, and ports configured as opaque.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use weft_tests::{Demo, PATIENCE, Proxy};

#[tokio::test]
async fn opaque_bytes_echo_and_half_close_is_honoured() {
    let echo = Demo::tcp_echo().spawn().await;
    let proxy = Proxy::new().inbound_app(echo.addr).spawn().await;

    let mut stream = TcpStream::connect(proxy.inbound).await.unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    stream.write_all(b"\x00binary, not HTTP\n").await.unwrap();
    stream.write_all(&payload).await.unwrap();
    // Half-close: we are done sending but still read the echo to the end.
    stream.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut echoed))
        .await
        .expect("echo finished")
        .unwrap();
    assert_eq!(&echoed[..18], b"\x00binary, not HTTP\n");
    assert_eq!(&echoed[18..], &payload[..]);

    let metrics = proxy.metrics().await;
    let read = metrics.sum(
        "tcp_read_bytes_total",
        &[("direction", "inbound"), ("peer", "src")],
    );
    assert_eq!(read as usize, payload.len() + 18, "{}", metrics.text);
}

async fn first_line(addr: std::net::SocketAddr) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(stream).read_line(&mut line))
        .await
        .expect("greeting in time")
        .unwrap();
    line
}

#[tokio::test]
async fn server_first_protocols_flow_after_the_detection_timeout() {
    let greeter = Demo::tcp_greeter("220 ready").spawn().await;
    let proxy = Proxy::new()
        .inbound_app(greeter.addr)
        .env("WEFT_PROXY_DETECT_PROTOCOL_TIMEOUT", "200ms")
        .spawn()
        .await;

    let started = Instant::now();
    assert_eq!(first_line(proxy.inbound).await, "220 ready\n");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "sent before detection gave up"
    );
}

#[tokio::test]
async fn opaque_ports_skip_detection() {
    let greeter = Demo::tcp_greeter("220 ready").spawn().await;
    let port = greeter.addr.port().to_string();
    // Detection would wait a minute; the opaque port does not wait at all.
    let proxy = Proxy::new()
        .inbound_app(greeter.addr)
        .env("WEFT_PROXY_DETECT_PROTOCOL_TIMEOUT", "60s")
        .env("WEFT_PROXY_OPAQUE_PORTS", &format!("1-2,{port}"))
        .spawn()
        .await;

    let greeting = tokio::time::timeout(Duration::from_secs(10), first_line(proxy.inbound)).await;
    assert_eq!(
        greeting.expect("greeting long before the detection timeout"),
        "220 ready\n"
    );
}
