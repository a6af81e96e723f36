//! A tiny HTTP server for module files, as a plugin host or artifact store
//! would serve them: `GET /NAME` answers what was published as NAME (404
//! otherwise) and counts the requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Files {
    bytes: HashMap<String, Bytes>,
    requests: HashMap<String, usize>,
}

pub struct ModuleServer {
    pub addr: SocketAddr,
    files: Arc<Mutex<Files>>,
    accept: JoinHandle<()>,
}

impl ModuleServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let files = Arc::new(Mutex::new(Files::default()));
        let served = files.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let files = served.clone();
                let service = service_fn(move |req| {
                    let files = files.clone();
                    async move { Ok::<_, Infallible>(answer(&files, &req)) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        ModuleServer {
            addr,
            files,
            accept,
        }
    }

    /// Serves `bytes` at `/name` from now on.
    pub fn publish(&self, name: &str, bytes: impl Into<Bytes>) {
        let mut files = self.files.lock().unwrap();
        files.bytes.insert(name.to_string(), bytes.into());
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// How many times `/name` was asked for.
    pub fn requests(&self, name: &str) -> usize {
        let files = self.files.lock().unwrap();
        files.requests.get(name).copied().unwrap_or(0)
    }
}

impl Drop for ModuleServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn answer(files: &Mutex<Files>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let name = req.uri().path().trim_start_matches('/').to_string();
    let mut files = files.lock().unwrap();
    *files.requests.entry(name.clone()).or_default() += 1;
    let mut rsp = Response::new(Full::new(Bytes::new()));
    match files.bytes.get(&name) {
        Some(bytes) if req.method() == http::Method::GET => {
            *rsp.body_mut() = Full::new(bytes.clone());
        }
        Some(_) => *rsp.status_mut() = StatusCode::METHOD_NOT_ALLOWED,
        None => *rsp.status_mut() = StatusCode::NOT_FOUND,
    }
    rsp
}
