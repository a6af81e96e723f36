//! HTTP/2 with prior knowledge: multiplexed streams, trailers, and a real
//! gRPC client and server talking through the proxy.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use weft_tests::{Demo, PATIENCE, Proxy};

async fn h2_connect(addr: std::net::SocketAddr) -> http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn concurrent_streams_share_one_connection() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().spawn().await;
    let sender = h2_connect(proxy.outbound).await;

    let requests = (0..20).map(|i| {
        let mut sender = sender.clone();
        let uri = format!("http://{}/echo", app.addr);
        async move {
            let req = Request::post(uri)
                .body(Full::new(Bytes::from(format!("stream {i}"))))
                .unwrap();
            let rsp = sender.send_request(req).await.unwrap();
            assert_eq!(rsp.status(), 200);
            assert_eq!(rsp.version(), http::Version::HTTP_2);
            let body = rsp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("stream {i}").as_bytes());
        }
    });
    tokio::time::timeout(PATIENCE, futures_util::future::join_all(requests))
        .await
        .expect("all streams answered");

    let metrics = proxy.metrics().await;
    let opened = |peer| {
        metrics.sum(
            "tcp_open_total",
            &[("direction", "outbound"), ("peer", peer)],
        )
    };
    assert_eq!(opened("src"), 1.0, "{}", metrics.text);
    assert_eq!(
        opened("dst"),
        1.0,
        "one multiplexed upstream connection: {}",
        metrics.text
    );
}

#[tokio::test]
async fn authority_and_trailers_pass_through() {
    // An upstream that reports the :authority it saw and sends trailers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service =
                hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let authority = req
                        .uri()
                        .authority()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    let mut trailers = HeaderMap::new();
                    trailers.insert("x-checksum", "abc123".parse().unwrap());
                    let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                        Ok(Frame::data(Bytes::from(authority))),
                        Ok(Frame::trailers(trailers)),
                    ];
                    Ok::<_, Infallible>(Response::new(StreamBody::new(futures_util::stream::iter(
                        frames,
                    ))))
                });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let proxy = Proxy::new().spawn().await;
    let mut sender = h2_connect(proxy.outbound).await;

    let uri = format!("http://{upstream}/trailers");
    let rsp = sender
        .send_request(Request::get(uri).body(Full::default()).unwrap())
        .await
        .unwrap();
    let collected = rsp.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc123");
    assert_eq!(collected.to_bytes(), upstream.to_string().as_bytes());
}

async fn grpc_health_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("weft.Demo", ServingStatus::Serving)
        .await;
    tokio::spawn(async move {
        let _keep = reporter;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    addr
}

#[tokio::test]
async fn grpc_unary_calls_work_both_ways() {
    let server = grpc_health_server().await;
    let outbound = Proxy::new().spawn().await;
    let inbound = Proxy::new().inbound_app(server).spawn().await;

    // Outbound routes by :authority, so the client names the server there
    // while connecting to the proxy.
    let channels = [
        tonic::transport::Endpoint::from_shared(format!("http://{}", outbound.outbound))
            .unwrap()
            .origin(format!("http://{server}").parse().unwrap()),
        tonic::transport::Endpoint::from_shared(format!("http://{}", inbound.inbound)).unwrap(),
    ];
    for endpoint in channels {
        let mut client = HealthClient::new(endpoint.connect().await.unwrap());
        let ok = client
            .check(HealthCheckRequest {
                service: "weft.Demo".into(),
            })
            .await
            .unwrap();
        assert_eq!(ok.into_inner().status, ServingStatus::Serving as i32);

        // A gRPC error travels in a trailers-only response.
        let missing = client
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }
}
