//! The Destination API to proxies (`weft.destination.v1alpha1`): before
//! connecting to an address, a proxy asks whether a meshed workload receives
//! there and which identity its proxy presents (`GetEndpoint`); to balance
//! over a Service, it follows the Service's endpoints (`Get`). Answered from
//! the index of the snapshot proxies' chains come from.

mod updates;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use weft_api::destination::destination_server::{Destination, DestinationServer};
use weft_api::destination::{Endpoint, GetDestination, GetEndpointRequest, ProtocolHint, Update};
use weft_identity::TrustDomain;

pub use updates::{DEFAULT_WEIGHT, EndpointSet, Told, endpoint_set};

use crate::api::LiveStream;
use crate::index::{Authority, ClusterDomain, Index};
use crate::state::State;

type UpdateStream = Pin<Box<dyn Stream<Item = Result<Update, Status>> + Send>>;

#[derive(Clone)]
pub struct DestinationApi {
    state: watch::Receiver<Arc<State>>,
    trust: TrustDomain,
    cluster_domain: ClusterDomain,
    streams: Arc<watch::Sender<usize>>,
}

impl DestinationApi {
    /// Services are named in the default cluster domain, `cluster.local`.
    pub fn new(state: watch::Receiver<Arc<State>>, trust: TrustDomain) -> Self {
        DestinationApi {
            state,
            trust,
            cluster_domain: ClusterDomain::default(),
            streams: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Services named `name.ns.svc.<domain>`.
    pub fn cluster_domain(mut self, domain: ClusterDomain) -> Self {
        self.cluster_domain = domain;
        self
    }

    /// How many `Get` streams are being served, updated as each one
    /// starts and ends.
    pub fn live_streams(&self) -> watch::Receiver<usize> {
        self.streams.subscribe()
    }

    pub fn into_service(self) -> DestinationServer<Self> {
        DestinationServer::new(self)
    }
}

#[tonic::async_trait]
impl Destination for DestinationApi {
    type GetStream = UpdateStream;

    async fn get_endpoint(
        &self,
        request: Request<GetEndpointRequest>,
    ) -> Result<Response<Endpoint>, Status> {
        let address = request.into_inner().address;
        let addr: SocketAddr = address.parse().map_err(|_| {
            Status::invalid_argument(format!(
                "address {address:?} is not ip:port ([ip]:port for IPv6)"
            ))
        })?;
        let state = self.state.borrow().clone();
        Ok(Response::new(endpoint(
            &state.index,
            &self.trust,
            address,
            addr,
        )))
    }

    /// The first update at once, then the difference each new state makes,
    /// until the client goes away.
    async fn get(
        &self,
        request: Request<GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let text = request.into_inner().authority;
        let authority = Authority::parse(&text, &self.cluster_domain)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let mut state = self.state.clone();
        let trust = self.trust.clone();
        let mut told = Told::default();
        let first = told.update(endpoint_set(
            &state.borrow_and_update().index,
            &trust,
            &authority,
        ));
        tracing::debug!(authority = %text, "destination watched");
        let (send, receive) = mpsc::channel(4);
        let live = LiveStream::new(self.streams.clone());
        tokio::spawn(async move {
            let _live = live;
            let mut updates = first;
            loop {
                for update in updates {
                    if send.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
                // A client that went away ends its stream now, not at the
                // next state change, which may never come.
                tokio::select! {
                    changed = state.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = send.closed() => {
                        tracing::debug!(authority = %text, "destination no longer watched");
                        return;
                    }
                }
                let now = endpoint_set(&state.borrow_and_update().index, &trust, &authority);
                updates = told.update(now);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receive))))
    }
}

/// What a client proxy should expect at `addr`. An address no meshed
/// workload receives on is an answer too: an empty identity, so the client
/// connects in plaintext as the app asked.
pub fn endpoint(index: &Index, trust: &TrustDomain, address: String, addr: SocketAddr) -> Endpoint {
    let not_meshed = Endpoint {
        address,
        ..Endpoint::default()
    };
    let Some((pod, account)) = index.endpoint(addr) else {
        return not_meshed;
    };
    let Some(Ok(identity)) = index.identity(pod, trust) else {
        return not_meshed;
    };
    Endpoint {
        identity,
        protocol_hint: ProtocolHint::H2.into(),
        opaque_transport_port: index.inbound_port(pod).map_or(0, u32::from),
        metric_labels: HashMap::from([
            ("namespace".to_string(), pod.namespace.clone()),
            ("pod".to_string(), pod.name.clone()),
            ("serviceaccount".to_string(), account.to_string()),
        ]),
        ..not_meshed
    }
}

#[cfg(test)]
mod tests;
