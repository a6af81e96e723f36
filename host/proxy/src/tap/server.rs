//! The tap listener: gRPC `weft.tap.v1alpha1.Tap` over mTLS, the proxy
//! presenting its own certificate. Only a client that proves the allowed
//! identity (the controller's) may observe; anyone else is refused with
//! PermissionDenied, before anything is recorded for them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tonic::{Request, Response, Status};
use weft_api::tap::tap_server::{Tap, TapServer};
use weft_api::tap::{ObserveRequest, TapEvent};

use super::{OpenTap, Taps};
use crate::accept::{Backoff, accept};
use crate::identity::Identity;

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves taps on `listener` until the process exits.
pub async fn serve(
    taps: Arc<Taps>,
    listener: TcpListener,
    identity: &Identity,
    allowed: String,
) -> Result<(), weft_identity::TlsError> {
    let tls =
        weft_identity::server_config(identity.credentials.clone(), &identity.anchors, &[b"h2"])?;
    let acceptor = TlsAcceptor::from(tls);
    let allowed: Arc<str> = allowed.into();
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let (tcp, client) = accept(&listener, "tap", &mut backoff).await;
            let (acceptor, taps, allowed) = (acceptor.clone(), taps.clone(), allowed.clone());
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            return tracing::debug!(%client, %error, "tap: TLS handshake failed");
                        }
                        Err(_) => return tracing::debug!(%client, "tap: TLS handshake timed out"),
                    };
                let peer = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(weft_identity::peer_identity);
                let service = TapServer::new(TapService {
                    taps,
                    allowed,
                    peer,
                });
                let service = hyper::service::service_fn(move |req| {
                    let mut service = service.clone();
                    async move { tower::Service::call(&mut service, req).await }
                });
                let served = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%client, %error, "tap connection ended with an error");
                }
            });
        }
    });
    Ok(())
}

/// The service for one connection, which knows who its client proved to be.
struct TapService {
    taps: Arc<Taps>,
    allowed: Arc<str>,
    peer: Option<String>,
}

#[tonic::async_trait]
impl Tap for TapService {
    type ObserveStream = Events;

    async fn observe(&self, request: Request<ObserveRequest>) -> Result<Response<Events>, Status> {
        if self.peer.as_deref() != Some(&*self.allowed) {
            let proved = self.peer.as_deref().unwrap_or("no identity");
            tracing::info!(client = proved, "tap refused");
            return Err(Status::permission_denied(format!(
                "only {} may tap this proxy; the client proved {proved}",
                self.allowed
            )));
        }
        let (open, events) = self.taps.subscribe(request.into_inner());
        tracing::debug!("tap opened");
        Ok(Response::new(Events {
            events,
            _open: open,
        }))
    }
}

/// A tap's events; dropping it closes the tap.
pub struct Events {
    events: mpsc::Receiver<TapEvent>,
    _open: OpenTap,
}

impl Stream for Events {
    type Item = Result<TapEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx).map(|event| event.map(Ok))
    }
}
