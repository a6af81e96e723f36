//! The Destination API over a real gRPC connection on loopback.

mod get;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use weft_api::destination::destination_client::DestinationClient;
use weft_api::destination::{Endpoint, GetEndpointRequest, ProtocolHint};
use weft_identity::TrustDomain;

use super::{DestinationApi, endpoint};
use crate::index::Index;
use crate::modules::Modules;
use crate::state::State;

/// Pod `demo/backend` (service account `backend`), injected, at
/// 10.244.1.12.
fn backend(service_account: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "demo", "name": "backend"},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [
                {"name": "backend", "image": "weft-demo"},
                {"name": "weft-proxy", "image": "weft-proxy",
                 "ports": [{"name": "weft-inbound", "containerPort": 4143}]},
            ],
        },
        "status": {"phase": "Running", "podIP": "10.244.1.12", "podIPs": [{"ip": "10.244.1.12"}]},
    }))
    .unwrap()
}

fn index_of(pod: Pod) -> Index {
    let mut index = Index::default();
    index.apply(pod.into());
    index
}

async fn client() -> DestinationClient<tonic::transport::Channel> {
    let state = State {
        index: index_of(backend("backend")),
        modules: Modules::default(),
    };
    let (publish, receiver) = watch::channel(Arc::new(state));
    let api = DestinationApi::new(receiver, TrustDomain::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _publish = publish;
        tonic::transport::Server::builder()
            .add_service(api.into_service())
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
    });
    DestinationClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn ask(address: &str) -> GetEndpointRequest {
    GetEndpointRequest {
        address: address.into(),
    }
}

#[tokio::test]
async fn a_meshed_address_names_its_proxy_s_identity() {
    let mut client = client().await;
    let found = client.get_endpoint(ask("10.244.1.12:8081")).await.unwrap();
    assert_eq!(
        found.into_inner(),
        Endpoint {
            address: "10.244.1.12:8081".into(),
            identity: "backend.demo.serviceaccount.identity.weft-system.cluster.local".into(),
            protocol_hint: ProtocolHint::H2.into(),
            metric_labels: HashMap::from([
                ("namespace".into(), "demo".into()),
                ("pod".into(), "backend".into()),
                ("serviceaccount".into(), "backend".into()),
            ]),
            // Opaque TCP goes to the sidecar's own port, 4143.
            opaque_transport_port: 4143,
        }
    );

    let elsewhere = client.get_endpoint(ask("[fd00::1]:80")).await.unwrap();
    assert_eq!(
        elsewhere.into_inner(),
        Endpoint {
            address: "[fd00::1]:80".into(),
            ..Endpoint::default()
        },
        "not meshed is an answer, not an error"
    );

    let refused = client.get_endpoint(ask("backend:8081")).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("\"backend:8081\""), "{refused}");
}

#[test]
fn a_service_account_that_cannot_be_certified_proves_no_identity() {
    let index = index_of(backend("Backend.v2"));
    let addr = "10.244.1.12:8081".parse().unwrap();
    assert!(index.endpoint(addr).is_some());
    let answer = endpoint(&index, &TrustDomain::default(), addr.to_string(), addr);
    assert_eq!(answer.identity, "");
    assert_eq!(answer.protocol_hint, ProtocolHint::Unspecified as i32);
}
