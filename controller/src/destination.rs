//! The Destination API to proxies (`weft.destination.v1alpha1`): before
//! connecting to an address, a proxy asks whether a meshed workload receives
//! there and which identity its proxy presents. Answered from the index of
//! the snapshot proxies' chains come from.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Request, Response, Status};
use weft_api::destination::destination_server::{Destination, DestinationServer};
use weft_api::destination::{Endpoint, GetEndpointRequest, ProtocolHint};
use weft_identity::{ServiceAccount, TrustDomain};

use crate::index::Index;
use crate::state::State;

#[derive(Clone)]
pub struct DestinationApi {
    state: watch::Receiver<Arc<State>>,
    trust: TrustDomain,
}

impl DestinationApi {
    pub fn new(state: watch::Receiver<Arc<State>>, trust: TrustDomain) -> Self {
        DestinationApi { state, trust }
    }

    pub fn into_service(self) -> DestinationServer<Self> {
        DestinationServer::new(self)
    }
}

#[tonic::async_trait]
impl Destination for DestinationApi {
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
    // A service account name that is not a DNS label cannot be certified
    // (the identity service refuses it), so that proxy proves no identity.
    let Ok(account) = ServiceAccount::new(&pod.namespace, account) else {
        return not_meshed;
    };
    Endpoint {
        identity: trust.identity(&account),
        protocol_hint: ProtocolHint::H2.into(),
        metric_labels: HashMap::from([
            ("namespace".to_string(), pod.namespace.clone()),
            ("pod".to_string(), pod.name.clone()),
            ("serviceaccount".to_string(), account.name),
        ]),
        ..not_meshed
    }
}

#[cfg(test)]
mod tests;
