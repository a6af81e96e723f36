//! An HTTP/1.1 app inside the test that holds every request until the test
//! releases them, and says when each arrives: requests in flight for as long
//! as a test needs them, with no timing guesses.
//!
//! ```ignore
//! let app = HeldApp::start().await;
//! // ... send two requests through a proxy ...
//! app.arrived(2).await;
//! app.release();
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

use crate::PATIENCE;

pub struct HeldApp {
    pub addr: SocketAddr,
    arrivals: Mutex<mpsc::UnboundedReceiver<()>>,
    released: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl HeldApp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let (released, release) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (arrived, release) = (arrived.clone(), release.clone());
                let service = service_fn(move |_req| {
                    let (arrived, mut release) = (arrived.clone(), release.clone());
                    async move {
                        let _ = arrived.send(());
                        let _ = release.wait_for(|released| *released).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("released\n"))))
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self {
            addr,
            arrivals: Mutex::new(arrivals),
            released,
            accept,
        }
    }

    /// Returns once `n` more requests have reached the app.
    pub async fn arrived(&self, n: usize) {
        let mut arrivals = self.arrivals.lock().await;
        for i in 0..n {
            tokio::time::timeout(PATIENCE, arrivals.recv())
                .await
                .unwrap_or_else(|_| panic!("only {i} of {n} requests reached the app"))
                .expect("the app is serving");
        }
    }

    /// Answers the requests held so far, and every later one at once.
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

impl Drop for HeldApp {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
