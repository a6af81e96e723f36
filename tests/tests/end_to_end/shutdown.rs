//! Graceful shutdown: on SIGTERM the proxy stops accepting, reports not
//! ready, lets in-flight requests finish, and exits.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use weft_tests::http1::{self, Connection};
use weft_tests::{PATIENCE, Proxy};

/// An upstream that reports each request's arrival and answers only when
/// told to.
async fn held_upstream() -> (std::net::SocketAddr, mpsc::Receiver<oneshot::Sender<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived, arrivals) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let arrived = arrived.clone();
            let service = hyper::service::service_fn(move |_req| {
                let arrived = arrived.clone();
                async move {
                    let (release, released) = oneshot::channel();
                    let _ = arrived.send(release).await;
                    let _ = released.await;
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("done\n"))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, arrivals)
}

async fn wait_until_refused(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "proxy still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn in_flight_requests_finish_after_sigterm() {
    let (upstream, mut arrivals) = held_upstream().await;
    let mut proxy = Proxy::new().inbound_app(upstream).spawn().await;

    let mut conn = Connection::open(proxy.inbound).await;
    let in_flight = tokio::spawn(async move { conn.get("app", "/slow").await });
    let release = tokio::time::timeout(PATIENCE, arrivals.recv())
        .await
        .unwrap()
        .unwrap();

    proxy.terminate();
    wait_until_refused(proxy.inbound).await;
    let ready = http1::get(proxy.admin, "admin", "/ready").await;
    assert_eq!(ready.status, 503, "a draining proxy is not ready");

    release.send(()).unwrap();
    let rsp = in_flight.await.unwrap();
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.text(), "done\n");
    assert!(proxy.wait().await.success(), "clean exit after draining");
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let (upstream, mut arrivals) = held_upstream().await;
    let mut proxy = Proxy::new()
        .inbound_app(upstream)
        .env("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", "300ms")
        .spawn()
        .await;

    let mut conn = Connection::open(proxy.inbound).await;
    let _stuck = tokio::spawn(async move { conn.get("app", "/never").await });
    let _release = tokio::time::timeout(PATIENCE, arrivals.recv())
        .await
        .unwrap()
        .unwrap();

    let started = Instant::now();
    proxy.terminate();
    assert!(proxy.wait().await.success());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "exited before the grace period: {took:?}"
    );
    assert!(
        proxy.logs().contains("grace period over"),
        "{}",
        proxy.logs()
    );
}
