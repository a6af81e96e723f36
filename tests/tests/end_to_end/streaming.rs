//! Bodies stream: a gigabyte through the proxy, both ways at once, while
//! the proxy's memory stays flat.

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use weft_tests::{Demo, Proxy};

const CHUNK: usize = 64 * 1024;
const TOTAL: usize = 1 << 30;
/// Far below the body size; a proxy that buffered would blow through it.
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;

#[tokio::test]
async fn a_gigabyte_streams_through_in_bounded_memory() {
    let app = Demo::http("app").spawn().await;
    let proxy = Proxy::new().inbound_app(app.addr).spawn().await;

    let chunk = Bytes::from(vec![7u8; CHUNK]);
    let frames = futures_util::stream::iter(
        (0..TOTAL / CHUNK)
            .map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))),
    );
    let req = http::Request::post("/echo")
        .header("host", "app")
        .header("content-length", TOTAL)
        .body(StreamBody::new(frames))
        .unwrap();
    let stream = TcpStream::connect(proxy.inbound).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);

    let transfer = async {
        let rsp = sender.send_request(req).await.unwrap();
        assert_eq!(rsp.status(), 200);
        let mut body = rsp.into_body();
        let mut received = 0usize;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                assert!(data.iter().all(|&b| b == 7), "corrupted body");
                received += data.len();
            }
        }
        received
    };
    let received = tokio::time::timeout(std::time::Duration::from_secs(300), transfer)
        .await
        .expect("1 GiB echoed within 5 minutes");
    assert_eq!(received, TOTAL);

    let peak = proxy.peak_rss_kib();
    eprintln!("proxy peak RSS after 2 GiB through it: {peak} KiB");
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "proxy peak RSS {peak} KiB: bodies are being buffered"
    );
}
