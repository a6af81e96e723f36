//! Small HTTP/1.1 clients for tests: one request per connection, a
//! keep-alive connection, and raw bytes for malformed input.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::PATIENCE;

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connecting");
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn.with_upgrades());
        Self { sender }
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        let exchange = async {
            self.sender.ready().await.expect("connection ready");
            let rsp = self.sender.send_request(req).await.expect("response");
            let (parts, body) = rsp.into_parts();
            let body = body.collect().await.expect("response body").to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .expect("response in time")
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        self.send(request("GET", host, path, Bytes::new())).await
    }
}

pub fn request(
    method: &str,
    host: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .body(Full::new(body.into()))
        .unwrap()
}

/// GET on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    Connection::open(addr).await.get(host, path).await
}

/// Writes `bytes` as they are and returns everything the server sends back
/// until it closes.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("server closed in time")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
