//! The tap relay (`weft.tap.v1alpha1.TapRelay`), served on the controller's
//! API to the `weft` CLI and the dashboard: it finds the proxies a resource
//! names in the index, taps each over mTLS as the controller's own identity
//! (the only one a proxy lets tap), and merges their events into one
//! stream, until the client goes away or the limit is reached.
//!
//! - `targets`: which proxies a resource names (pure);
//! - `cli`: `weft tap` and `weft top`.

pub mod cli;
mod targets;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use rustls::pki_types::ServerName;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};
use weft_api::tap::tap_client::TapClient;
use weft_api::tap::tap_event::Event;
use weft_api::tap::tap_relay_server::{TapRelay, TapRelayServer};
use weft_api::tap::{ObserveRequest, TapError, TapEvent, TapRequest};
use weft_identity::{Credentials, TrustDomain};

pub use targets::{Resource, ResourceError, Target, targets};

use crate::identity::SharedIssuer;
use crate::state::State;

/// Events held for a slow client before the proxies' streams wait (and the
/// proxies, which never wait, drop theirs).
const EVENTS_BUFFERED: usize = 1024;

#[derive(Clone)]
pub struct TapRelayApi {
    state: watch::Receiver<Arc<State>>,
    /// The controller's own certificate, which proxies let tap.
    credentials: Credentials,
    issuer: SharedIssuer,
    trust: TrustDomain,
}

impl TapRelayApi {
    pub fn new(
        state: watch::Receiver<Arc<State>>,
        credentials: Credentials,
        issuer: SharedIssuer,
        trust: TrustDomain,
    ) -> Self {
        Self {
            state,
            credentials,
            issuer,
            trust,
        }
    }

    pub fn into_service(self) -> TapRelayServer<Self> {
        TapRelayServer::new(self)
    }
}

#[tonic::async_trait]
impl TapRelay for TapRelayApi {
    type TapStream = Merged;

    async fn tap(&self, request: Request<TapRequest>) -> Result<Response<Merged>, Status> {
        let request = request.into_inner();
        let resource = Resource::parse(&request.resource, &request.namespace)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let found = targets(&self.state.borrow().index, &resource, &self.trust);
        if found.is_empty() {
            return Err(Status::not_found(format!(
                "no meshed pod with an address in {}",
                request.resource
            )));
        }
        let tls = weft_identity::client_config(
            Some(self.credentials.clone()),
            self.issuer.current().anchors(),
            &[b"h2"],
        )
        .map_err(|e| Status::internal(e.to_string()))?;
        let observe = ObserveRequest {
            r#match: request.r#match,
            limit: request.limit,
            max_rps: request.max_rps,
        };
        let (tx, events) = mpsc::channel(EVENTS_BUFFERED);
        for target in found {
            tokio::spawn(relay(target, observe.clone(), tls.clone(), tx.clone()));
        }
        Ok(Response::new(Merged {
            events,
            remaining: (request.limit > 0).then_some(request.limit),
        }))
    }
}

/// Streams one proxy's events into `tx`, each named with the proxy's pod,
/// until either side ends; a proxy that cannot be tapped is one error event.
async fn relay(
    target: Target,
    request: ObserveRequest,
    tls: Arc<rustls::ClientConfig>,
    tx: mpsc::Sender<TapEvent>,
) {
    let proxy = target.pod.to_string();
    let relayed = async {
        let server = ServerName::try_from(target.identity.clone())
            .map_err(|_| format!("{} is not a DNS name", target.identity))?;
        let channel = weft_api::tls::channel(target.addr.to_string(), server, tls)
            .await
            .map_err(|e| format!("cannot reach its proxy's tap at {}: {e}", target.addr))?;
        let mut events = TapClient::new(channel)
            .observe(request)
            .await
            .map_err(|status| format!("its proxy refused: {}", status.message()))?
            .into_inner();
        loop {
            let event = tokio::select! {
                _ = tx.closed() => return Ok(()),
                event = events.message() => event,
            };
            match event.map_err(|status| format!("tap ended: {}", status.message()))? {
                Some(mut event) => {
                    event.proxy = proxy.clone();
                    if tx.send(event).await.is_err() {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
        }
    };
    if let Err(message) = relayed.await {
        tracing::info!(%proxy, %message, "tap failed");
        let error = TapEvent {
            proxy,
            event: Some(Event::Error(TapError { message })),
            ..TapEvent::default()
        };
        let _ = tx.send(error).await;
    }
}

/// The proxies' events, merged; ends after `remaining` requests have
/// ended, or when every proxy's stream has.
pub struct Merged {
    events: mpsc::Receiver<TapEvent>,
    remaining: Option<u32>,
}

impl Stream for Merged {
    type Item = Result<TapEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.remaining == Some(0) {
            return Poll::Ready(None);
        }
        let polled = self.events.poll_recv(cx);
        if let Poll::Ready(Some(TapEvent {
            event: Some(Event::ResponseEnd(_)),
            ..
        })) = &polled
            && let Some(remaining) = &mut self.remaining
        {
            *remaining -= 1;
        }
        polled.map(|event| event.map(Ok))
    }
}
