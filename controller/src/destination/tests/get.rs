//! `Get`: a Service's endpoints streamed over real gRPC, the first update
//! at once and then the difference each published state makes.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Streaming};
use weft_api::destination::destination_client::DestinationClient;
use weft_api::destination::update::Update as Kind;
use weft_api::destination::{
    AddrSet, GetDestination, LoadBalancer, NoEndpoints, ProtocolHint, Update, WeightedAddr,
    WeightedAddrSet,
};
use weft_identity::TrustDomain;

use super::super::DestinationApi;
use crate::index::{Event, Index, ResourceKey, ServiceRef};
use crate::modules::Modules;
use crate::state::State;

const BACKEND: &str = "backend.demo.svc.cluster.local:8081";

/// An injected pod of Deployment `backend` (service account `account`).
fn pod(name: &str, ip: &str, account: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "namespace": "demo", "name": name,
            "labels": {"app": "backend", "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "backend-5d8f7c9b6", "uid": "0d1e", "controller": true}],
        },
        "spec": {
            "serviceAccountName": account,
            "containers": [
                {"name": "backend", "image": "weft-demo"},
                {"name": "weft-proxy", "image": "weft-proxy",
                 "ports": [{"name": "weft-inbound", "containerPort": 4143}]},
            ],
        },
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }))
    .unwrap()
}

fn service() -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "demo", "name": "backend",
                     "annotations": {"weft.io/load-balancer": "p2c"}},
        "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                 "ports": [{"name": "http", "port": 8081, "targetPort": 8081}]},
    }))
    .unwrap()
}

/// The Service's one slice, with these `(ip, pod)` endpoints ready.
fn slice(endpoints: &[(&str, &str)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, pod)| {
            json!({"addresses": [ip], "conditions": {"ready": true},
                   "targetRef": {"kind": "Pod", "namespace": "demo", "name": pod}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "demo", "name": "backend-x7k2m",
                     "labels": {"kubernetes.io/service-name": "backend"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8081, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

/// A controller's Destination API over `index`, whose state the test
/// publishes anew.
struct Served {
    index: Index,
    publish: watch::Sender<Arc<State>>,
    live: watch::Receiver<usize>,
    client: DestinationClient<tonic::transport::Channel>,
}

impl Served {
    async fn start() -> Self {
        let mut index = Index::default();
        for event in [
            pod("backend-5d8f7c9b6-a1", "10.244.1.12", "backend").into(),
            pod("backend-5d8f7c9b6-b2", "10.244.1.13", "backend").into(),
            service().into(),
            slice(&[
                ("10.244.1.12", "backend-5d8f7c9b6-a1"),
                ("10.244.1.13", "backend-5d8f7c9b6-b2"),
            ])
            .into(),
        ] {
            index.apply(event);
        }
        let (publish, state) = watch::channel(Arc::new(State {
            index: index.clone(),
            modules: Modules::default(),
        }));
        let api = DestinationApi::new(state, TrustDomain::default());
        let live = api.live_streams();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(api.into_service())
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let client = DestinationClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        Served {
            index,
            publish,
            live,
            client,
        }
    }

    async fn get(&mut self, authority: &str) -> Streaming<Update> {
        let request = GetDestination {
            authority: authority.into(),
        };
        self.client.get(request).await.unwrap().into_inner()
    }

    /// Applies `event` and publishes the new state.
    fn apply(&mut self, event: Event) {
        assert!(self.index.apply(event), "the event changes the index");
        let modules = Modules::default();
        let index = self.index.clone();
        self.publish
            .send_replace(Arc::new(State { index, modules }));
    }
}

async fn next(updates: &mut Streaming<Update>) -> Kind {
    updates.message().await.unwrap().unwrap().update.unwrap()
}

fn backend_addr(ip: &str, pod: &str, account: &str) -> WeightedAddr {
    WeightedAddr {
        address: format!("{ip}:8081"),
        weight: 10_000,
        identity: format!("{account}.demo.serviceaccount.identity.weft-system.cluster.local"),
        protocol_hint: ProtocolHint::H2.into(),
        metric_labels: HashMap::from([
            ("pod".into(), pod.into()),
            ("serviceaccount".into(), account.into()),
            ("deployment".into(), "backend".into()),
        ]),
    }
}

fn add(addrs: Vec<WeightedAddr>) -> Kind {
    Kind::Add(WeightedAddrSet {
        addrs,
        metric_labels: HashMap::from([
            ("namespace".into(), "demo".into()),
            ("service".into(), "backend".into()),
        ]),
        load_balancer: LoadBalancer::P2c.into(),
    })
}

fn no_endpoints(exists: bool) -> Kind {
    Kind::NoEndpoints(NoEndpoints { exists })
}

#[tokio::test]
async fn the_first_update_holds_every_endpoint() {
    let mut served = Served::start().await;
    let mut updates = served.get(BACKEND).await;
    assert_eq!(
        next(&mut updates).await,
        add(vec![
            backend_addr("10.244.1.12", "backend-5d8f7c9b6-a1", "backend"),
            backend_addr("10.244.1.13", "backend-5d8f7c9b6-b2", "backend"),
        ])
    );

    // The same by cluster IP, port 80 by default (none there).
    let mut by_ip = served.get("10.96.0.20:8081").await;
    assert!(matches!(next(&mut by_ip).await, Kind::Add(set) if set.addrs.len() == 2));
    let mut port_80 = served.get("10.96.0.20").await;
    assert_eq!(next(&mut port_80).await, no_endpoints(true));
}

#[tokio::test]
async fn slice_edits_stream_adds_and_removes() {
    let mut served = Served::start().await;
    let mut updates = served.get(BACKEND).await;
    next(&mut updates).await;

    // A rollout step: b2 replaced by c3.
    served.apply(pod("backend-5d8f7c9b6-c3", "10.244.2.7", "backend").into());
    served.apply(
        slice(&[
            ("10.244.1.12", "backend-5d8f7c9b6-a1"),
            ("10.244.2.7", "backend-5d8f7c9b6-c3"),
        ])
        .into(),
    );
    assert_eq!(
        next(&mut updates).await,
        add(vec![backend_addr(
            "10.244.2.7",
            "backend-5d8f7c9b6-c3",
            "backend"
        )])
    );
    assert_eq!(
        next(&mut updates).await,
        Kind::Remove(AddrSet {
            addresses: vec!["10.244.1.13:8081".into()]
        })
    );

    // A changed identity is sent again.
    served.apply(pod("backend-5d8f7c9b6-a1", "10.244.1.12", "backend-v2").into());
    assert_eq!(
        next(&mut updates).await,
        add(vec![backend_addr(
            "10.244.1.12",
            "backend-5d8f7c9b6-a1",
            "backend-v2"
        )])
    );

    served.apply(slice(&[]).into());
    assert_eq!(next(&mut updates).await, no_endpoints(true));

    served.apply(Event::Deleted(ResourceKey::Service(ServiceRef::new(
        "demo", "backend",
    ))));
    assert_eq!(next(&mut updates).await, no_endpoints(false));

    // Created again, its slice still empty, then filled: endpoints whole.
    served.apply(service().into());
    assert_eq!(next(&mut updates).await, no_endpoints(true));
    served.apply(slice(&[("10.244.1.12", "backend-5d8f7c9b6-a1")]).into());
    assert_eq!(
        next(&mut updates).await,
        add(vec![backend_addr(
            "10.244.1.12",
            "backend-5d8f7c9b6-a1",
            "backend-v2"
        )])
    );
}

#[tokio::test]
async fn an_unknown_authority_does_not_exist() {
    let mut served = Served::start().await;
    for authority in [
        "frontend.demo.svc.cluster.local:8080",
        "10.96.0.21:8081",
        "example.com:443",
    ] {
        let mut updates = served.get(authority).await;
        assert_eq!(next(&mut updates).await, no_endpoints(false), "{authority}");
    }
}

#[tokio::test]
async fn garbage_is_an_invalid_argument() {
    let mut served = Served::start().await;
    for authority in ["", "backend:http", "back end:80", "[10.0.0.1]:80"] {
        let request = GetDestination {
            authority: authority.into(),
        };
        let refused = served.client.get(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{authority:?}");
        assert!(
            refused.message().contains(&format!("{authority:?}")),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_client_goes_away() {
    let mut served = Served::start().await;
    let mut updates = served.get(BACKEND).await;
    next(&mut updates).await;
    assert_eq!(*served.live.borrow(), 1);
    drop(updates);
    // No state changes: the stream notices the client itself.
    served.live.wait_for(|n| *n == 0).await.unwrap();
}
